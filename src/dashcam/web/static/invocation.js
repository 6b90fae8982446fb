// Invocation detail: one model call — its conversation rendered readably, its numbers, its error,
// and the raw record one click away.

import { conversationOf } from "./conversation.js";
import { fmtInt, fmtMs, fmtUsd, h, localTime, modelLabel, parseResultTime, timeZoneName } from "./format.js";
import { empty, failure, loading, quiet, show } from "./ui.js";

export const TITLE = "Invocation";

export function mount(root, ctx) {
  const ptr = ctx.currentParams().get("ptr");
  const body = h("div", { class: "invocation" });
  root.append(body);
  let controller = null;

  async function reload() {
    if (!ptr) {
      show(body, empty("No invocation chosen. Run a query on the Query page and open one of its rows."));
      return;
    }
    controller?.abort();
    controller = new AbortController();
    if (!body.children.length) show(body, loading("Loading the invocation…"));
    try {
      const event = await ctx.api(`/api/v1/event?ptr=${encodeURIComponent(ptr)}`, { signal: controller.signal });
      draw(body, event, ctx);
    } catch (error) {
      if (!quiet(error)) show(body, failure(error));
    }
  }

  reload();
  return { reload, dispose: () => controller?.abort() };
}

function draw(el, event, ctx) {
  const record = event.record || {};
  const derived = event.derived || {};
  const input = record.input || {};
  const output = record.output || {};
  const at = parseResultTime(event.timestamp);
  const failed = record.errorCode || record.errorMessage;

  const head = h("div", { class: "page-head" },
    h("div", {},
      h("p", { class: "crumbs" }, h("a", { href: "#", onclick: (e) => { e.preventDefault(); history.length > 1 ? history.back() : ctx.navigate(ctx.pageUrl("/query")); } }, "← Back")),
      h("h1", {}, `${record.operation || "Invocation"} · `, h("span", { title: record.modelId || "" }, modelLabel(record.modelId)))),
    h("span", { class: `pill ${failed ? (derived.throttled ? "warn" : "bad") : "good"}` },
      failed ? record.errorCode || "Error" : "Success"));

  const numbers = [
    ["Latency", fmtMs(derived.latencyMs)],
    ["Time to first token", fmtMs(derived.timeToFirstTokenMs)],
    ["Input tokens", fmtInt(input.inputTokenCount)],
    ["Output tokens", fmtInt(output.outputTokenCount)],
    ["Cache read tokens", fmtInt(input.cacheReadInputTokenCount)],
    ["Cache write tokens", fmtInt(input.cacheWriteInputTokenCount)],
    ["Cost", derived.costUsd == null ? "unpriced" : fmtUsd(derived.costUsd)],
    ["Stop reason", derived.stopReason || "–"],
  ];
  const tiles = h("section", { class: "tiles compact", "aria-label": "Numbers" },
    numbers.map(([label, value]) => h("div", { class: "tile" }, h("div", { class: "tile-label" }, label), h("div", { class: "tile-value" }, value))));

  const facts = [
    ["Time", `${localTime(at)} ${timeZoneName()}`],
    ["UTC", event.timestamp],
    ["Request id", record.requestId],
    ["Caller", record.identity?.arn],
    ["Region", [record.region, record.inferenceRegion && record.inferenceRegion !== record.region ? `served in ${record.inferenceRegion}` : null].filter(Boolean).join(", ")],
    ["Application", derived.app],
    ["User", derived.userId],
    ["Session", derived.sessionId],
    ["Trace", derived.traceId],
    ["Source", [derived.provider, derived.source].filter(Boolean).join(" · ")],
    ["Log", `${event.logGroup} / ${event.logStream}`],
  ].filter(([, value]) => value);
  const details = h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));

  const errorBox = failed ? h("div", { class: "state failure", role: "alert" },
    h("strong", {}, record.errorCode || "Error"), record.errorMessage ? `: ${record.errorMessage}` : "",
    derived.throttled ? " — the request was throttled (too many requests or tokens for the model's quota)." : "") : null;

  const rawPre = h("pre", { class: "raw", hidden: true, tabindex: "0", "aria-label": "Raw record JSON" },
    JSON.stringify(event.record ?? event.message, null, 2));
  const toggle = h("button", { type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": "raw-json" }, "Show raw JSON");
  rawPre.id = "raw-json";
  toggle.addEventListener("click", () => {
    rawPre.hidden = !rawPre.hidden;
    toggle.setAttribute("aria-expanded", String(!rawPre.hidden));
    toggle.textContent = rawPre.hidden ? "Show raw JSON" : "Show conversation";
    conversationBox.hidden = !rawPre.hidden;
  });
  const copy = h("button", { type: "button", class: "secondary", onclick: async () => {
    await navigator.clipboard?.writeText(event.message);
    copy.textContent = "Copied";
    setTimeout(() => (copy.textContent = "Copy JSON"), 1500);
  } }, "Copy JSON");

  const conversationBox = h("div", { class: "conversation" }, renderConversation(conversationOf(record)));
  show(el, head, errorBox, tiles,
    h("div", { class: "invocation-layout" },
      h("section", { class: "card" },
        h("div", { class: "card-head" }, h("h2", {}, "Conversation"), h("div", { class: "actions" }, toggle, copy)),
        conversationBox, rawPre),
      h("section", { class: "card" }, h("h2", {}, "Details"), details)));
}

function renderConversation(c) {
  const blocks = [];
  if (c.notes.length) blocks.push(h("div", { class: "note" }, c.notes.join(" ")));
  if (Object.keys(c.settings).length) {
    blocks.push(h("p", { class: "settings" }, Object.entries(c.settings).map(([k, v]) => h("span", { class: "setting" }, `${k}: ${v}`))));
  }
  if (c.system.length) blocks.push(turn("system", "System", c.system.map((t) => ({ type: "text", text: t }))));
  for (const message of c.messages) blocks.push(turn(message.role, roleName(message.role), message.parts));
  if (c.response) {
    blocks.push(turn("response", `Response${c.response.stop ? ` · stopped: ${c.response.stop}` : ""}`, c.response.parts));
  }
  if (c.tools.length) {
    blocks.push(h("details", { class: "tools" }, h("summary", {}, `Tools offered (${c.tools.length})`),
      h("ul", {}, c.tools.map((t) => h("li", {}, h("code", {}, t.name), t.description ? ` — ${t.description}` : "")))));
  }
  if (!c.system.length && !c.messages.length && !c.response) blocks.push(h("p", { class: "muted" }, "This record has no request or response body (body logging may be off)."));
  return blocks;
}

function roleName(role) {
  return { user: "User", assistant: "Assistant", tool: "Tool result", system: "System" }[role] || role;
}

function turn(kind, title, parts) {
  return h("article", { class: `turn turn-${kind}` }, h("h3", {}, title), parts.map(part));
}

function part(p) {
  if (p.type === "text") return h("div", { class: `text${p.reasoning ? " reasoning" : ""}` }, p.text);
  if (p.type === "tool_call") {
    return h("div", { class: "tool-call" }, h("div", { class: "tool-head" }, "Tool call ", h("code", {}, p.name || "?"), p.id ? h("span", { class: "muted" }, ` ${p.id}`) : ""),
      h("pre", {}, typeof p.input === "string" ? p.input : JSON.stringify(p.input ?? {}, null, 2)));
  }
  if (p.type === "tool_result") {
    return h("div", { class: `tool-result${p.error ? " error" : ""}` }, h("div", { class: "tool-head" }, p.error ? "Tool error" : "Tool result", p.id ? h("span", { class: "muted" }, ` ${p.id}`) : ""),
      h("pre", {}, p.content));
  }
  if (p.type === "media") return h("div", { class: "media muted" }, p.text);
  return h("pre", { class: "json" }, JSON.stringify(p.value, null, 2));
}
