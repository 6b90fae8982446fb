// Turns an invocation record's request and response bodies, in whichever provider format they
// came (Bedrock Converse, Anthropic Messages and its stream, Amazon Nova, Meta Llama, Titan,
// Mistral, Cohere, OpenAI chat), into one conversation: system prompt, messages, tool calls,
// tool results and the response.
//
// A conversation is {system: [text], messages: [{role, parts}], response: {role, parts} | null,
// tools: [{name, description}], settings: {name: value}, notes: [text]}; a part is
// {type: "text", text} | {type: "tool_call", name, id, input} | {type: "tool_result", id, content, error}
// | {type: "media", text} | {type: "json", value}.

const text = (value) => ({ type: "text", text: String(value) });

export function conversationOf(record) {
  const input = record?.input || {};
  const output = record?.output || {};
  const request = input.inputBodyJson;
  const response = output.outputBodyJson;
  const conversation = { system: [], messages: [], response: null, tools: [], settings: {}, notes: [] };
  if (input.inputBodyS3Path) conversation.notes.push(`The request body was stored in S3: ${input.inputBodyS3Path}`);
  if (output.outputBodyS3Path) conversation.notes.push(`The response body was stored in S3: ${output.outputBodyS3Path}`);
  if (request && typeof request === "object") readRequest(request, conversation);
  else if (typeof request === "string") conversation.messages.push({ role: "user", parts: [text(request)] });
  if (response != null) conversation.response = readResponse(response);
  return conversation;
}

// ---------------------------------------------------------------------------- requests

function readRequest(body, c) {
  // System prompt: Converse/Nova [{text}], Anthropic string or [{type: "text", text}].
  const system = body.system;
  if (typeof system === "string") c.system.push(system);
  else if (Array.isArray(system)) for (const block of system) if (block && typeof block.text === "string") c.system.push(block.text);

  if (Array.isArray(body.messages)) {
    for (const message of body.messages) {
      if (!message || typeof message !== "object") continue;
      const parts = contentParts(message.content);
      if (message.role === "tool" || message.tool_call_id) {
        c.messages.push({ role: "tool", parts: [{ type: "tool_result", id: message.tool_call_id, content: flatText(message.content) }] });
        continue;
      }
      for (const call of message.tool_calls || []) parts.push(openAiToolCall(call));
      if (message.role === "system" || message.role === "developer") c.system.push(...parts.filter((p) => p.type === "text").map((p) => p.text));
      else c.messages.push({ role: message.role || "user", parts });
    }
  } else if (typeof body.prompt === "string") {
    readPrompt(body.prompt, c);
  } else if (typeof body.inputText === "string") {
    c.messages.push({ role: "user", parts: [text(body.inputText)] });
  } else if (typeof body.message === "string") { // Cohere chat
    for (const turn of body.chat_history || []) c.messages.push({ role: String(turn.role || "user").toLowerCase(), parts: [text(turn.message ?? "")] });
    c.messages.push({ role: "user", parts: [text(body.message)] });
  } else if (Array.isArray(body.texts)) { // Cohere embed
    c.messages.push({ role: "user", parts: body.texts.map(text) });
  }

  for (const tool of body.toolConfig?.tools || body.tools || []) {
    const spec = tool.toolSpec || tool.function || tool;
    if (spec && spec.name) c.tools.push({ name: spec.name, description: spec.description || "" });
  }
  const config = { ...(body.inferenceConfig || {}), ...(body.textGenerationConfig || {}) };
  for (const key of ["max_tokens", "maxTokens", "max_gen_len", "maxTokenCount", "temperature", "top_p", "topP",
    "stop_sequences", "stopSequences", "dimensions"]) {
    const value = key in config ? config[key] : body[key];
    if (value != null) c.settings[key] = Array.isArray(value) ? value.join(", ") : value;
  }
}

/** Llama chat templates and Anthropic's old Human/Assistant prompts, split into turns. */
function readPrompt(prompt, c) {
  const llama = [...prompt.matchAll(/<\|start_header_id\|>(\w+)<\|end_header_id\|>\s*([\s\S]*?)(?:<\|eot_id\|>|$)/g)];
  if (llama.length) {
    for (const [, role, content] of llama) {
      if (role === "system") c.system.push(content.trim());
      else if (content.trim()) c.messages.push({ role, parts: [text(content.trim())] });
    }
    return;
  }
  const turns = prompt.split(/\n\n(Human|Assistant):/).slice(1);
  if (turns.length) {
    for (let i = 0; i < turns.length; i += 2) {
      const body = (turns[i + 1] || "").trim();
      if (body) c.messages.push({ role: turns[i] === "Human" ? "user" : "assistant", parts: [text(body)] });
    }
    return;
  }
  c.messages.push({ role: "user", parts: [text(prompt)] });
}

/** Message content in any of the formats, as parts. */
function contentParts(content) {
  if (content == null) return [];
  if (typeof content === "string") return [text(content)];
  if (!Array.isArray(content)) return [{ type: "json", value: content }];
  const parts = [];
  for (const block of content) {
    if (block == null) continue;
    if (typeof block === "string") parts.push(text(block));
    else if (block.toolUse) parts.push({ type: "tool_call", name: block.toolUse.name, id: block.toolUse.toolUseId, input: block.toolUse.input });
    else if (block.toolResult) parts.push({ type: "tool_result", id: block.toolResult.toolUseId, content: flatText(block.toolResult.content),
      error: block.toolResult.status === "error" });
    else if (block.type === "tool_use") parts.push({ type: "tool_call", name: block.name, id: block.id, input: block.input });
    else if (block.type === "tool_result") parts.push({ type: "tool_result", id: block.tool_use_id, content: flatText(block.content), error: !!block.is_error });
    else if (typeof block.text === "string") parts.push(text(block.text));
    else if (block.reasoningContent?.reasoningText?.text) parts.push({ type: "text", text: block.reasoningContent.reasoningText.text, reasoning: true });
    else if (block.type === "thinking" && block.thinking) parts.push({ type: "text", text: block.thinking, reasoning: true });
    else if (block.image || block.type === "image" || block.type === "image_url") parts.push({ type: "media", text: "[image]" });
    else if (block.document || block.type === "document") parts.push({ type: "media", text: `[document${block.document?.name ? `: ${block.document.name}` : ""}]` });
    else if (block.cachePoint || block.cache_control) continue;
    else parts.push({ type: "json", value: block });
  }
  return parts;
}

function flatText(content) {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((b) => (typeof b === "string" ? b : typeof b?.text === "string" ? b.text : JSON.stringify(b?.json ?? b, null, 2))).join("\n");
  }
  return JSON.stringify(content, null, 2);
}

function openAiToolCall(call) {
  let input = call.function?.arguments;
  try {
    input = JSON.parse(input);
  } catch {
    /* keep the text as it is */
  }
  return { type: "tool_call", name: call.function?.name || call.name, id: call.id, input };
}

// ---------------------------------------------------------------------------- responses

function readResponse(body) {
  if (Array.isArray(body)) return readStream(body);
  if (typeof body === "string") return { role: "assistant", parts: [text(body)] };
  if (typeof body !== "object") return null;
  // Converse and Nova
  if (body.output?.message) return { role: "assistant", parts: contentParts(body.output.message.content), stop: body.stopReason };
  // Anthropic Messages
  if (Array.isArray(body.content)) return { role: "assistant", parts: contentParts(body.content), stop: body.stop_reason };
  // OpenAI chat
  if (Array.isArray(body.choices)) {
    const choice = body.choices[0] || {};
    const message = choice.message || {};
    const parts = contentParts(message.content ?? choice.text);
    for (const call of message.tool_calls || []) parts.push(openAiToolCall(call));
    return { role: "assistant", parts, stop: choice.finish_reason };
  }
  if (typeof body.generation === "string") return { role: "assistant", parts: [text(body.generation)], stop: body.stop_reason };
  if (typeof body.completion === "string") return { role: "assistant", parts: [text(body.completion)], stop: body.stop_reason };
  if (Array.isArray(body.results)) return { role: "assistant", parts: body.results.map((r) => text(r.outputText ?? "")), stop: body.results[0]?.completionReason };
  if (Array.isArray(body.outputs)) return { role: "assistant", parts: body.outputs.map((r) => text(r.text ?? "")), stop: body.outputs[0]?.stop_reason };
  if (typeof body.text === "string") return { role: "assistant", parts: [text(body.text)], stop: body.finish_reason };
  if (Array.isArray(body.embedding)) return { role: "assistant", parts: [{ type: "media", text: `[embedding: ${body.embedding.length} dimensions]` }] };
  if (Array.isArray(body.embeddings)) return { role: "assistant", parts: [{ type: "media", text: `[${body.embeddings.length} embeddings]` }] };
  return { role: "assistant", parts: [{ type: "json", value: body }] };
}

/** A streamed response (Anthropic events, Converse/Nova stream events, Llama chunks) put back together. */
function readStream(events) {
  const blocks = [];
  let stop;
  const block = (index) => (blocks[index ?? blocks.length - 1] ||= { type: "text", text: "" });
  for (const event of events) {
    if (!event || typeof event !== "object") continue;
    if (event.type === "content_block_start") {
      const start = event.content_block || {};
      blocks[event.index ?? blocks.length] = start.type === "tool_use"
        ? { type: "tool_call", name: start.name, id: start.id, json: "" } : { type: "text", text: start.text || "" };
    } else if (event.type === "content_block_delta") {
      const delta = event.delta || {};
      const target = block(event.index);
      if (delta.type === "input_json_delta") target.json = (target.json || "") + (delta.partial_json || "");
      else target.text = (target.text || "") + (delta.text || "");
    } else if (event.type === "message_delta") stop = event.delta?.stop_reason ?? stop;
    else if (event.contentBlockStart?.start?.toolUse) {
      const tool = event.contentBlockStart.start.toolUse;
      blocks[event.contentBlockStart.contentBlockIndex ?? blocks.length] = { type: "tool_call", name: tool.name, id: tool.toolUseId, json: "" };
    } else if (event.contentBlockDelta) {
      const delta = event.contentBlockDelta.delta || {};
      const target = block(event.contentBlockDelta.contentBlockIndex);
      if (delta.toolUse) target.json = (target.json || "") + (delta.toolUse.input || "");
      else target.text = (target.text || "") + (delta.text || "");
    } else if (event.messageStop) stop = event.messageStop.stopReason ?? stop;
    else if (typeof event.generation === "string") {
      block(0).text += event.generation;
      stop = event.stop_reason ?? stop;
    } else if (typeof event.outputText === "string") {
      block(0).text += event.outputText;
      stop = event.completionReason ?? stop;
    } else if (Array.isArray(event.choices)) {
      const delta = event.choices[0]?.delta || {};
      if (delta.content) block(0).text += delta.content;
      stop = event.choices[0]?.finish_reason ?? stop;
    }
  }
  const parts = blocks.filter(Boolean).map((b) => {
    if (b.type !== "tool_call") return text(b.text);
    let input = b.json;
    try {
      input = JSON.parse(b.json || "{}");
    } catch {
      /* a partial stream: keep the text */
    }
    return { type: "tool_call", name: b.name, id: b.id, input };
  });
  return { role: "assistant", parts, stop };
}
