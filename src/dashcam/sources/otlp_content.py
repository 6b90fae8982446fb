"""Where prompts and completions live in OTLP, read into one :class:`Content`.

Three generations of the GenAI conventions and the vendor vocabularies put content in span
attributes (OTel ≥1.37 ``gen_ai.input.messages``, OpenLLMetry's flattened ``gen_ai.prompt.{i}.*``,
OpenInference's ``llm.input_messages.{i}.*`` or raw ``input.value``), in span events (≤1.27
``gen_ai.content.prompt``), or in events that are span events or log records (1.28–1.36
``gen_ai.user.message`` / ``gen_ai.choice`` ..., and ``gen_ai.client.inference.operation.details``).
Messages come out in Converse's shape (see :mod:`dashcam.sources.otlp_vocabularies`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from dashcam.sources import otlp_vocabularies as vocab
from dashcam.sources.otlp_keys import ALL_KEYS, AttributeKeys

# Log-record / span-event names that carry prompt or completion content.
_INPUT_EVENTS = {"gen_ai.user.message": "user", "gen_ai.assistant.message": "assistant",
                 "gen_ai.tool.message": "tool"}
_SYSTEM_EVENT = "gen_ai.system.message"
_CHOICE_EVENT = "gen_ai.choice"
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_PROMPT_EVENT, _COMPLETION_EVENT = "gen_ai.content.prompt", "gen_ai.content.completion"
CONTENT_EVENTS = frozenset({*_INPUT_EVENTS, _SYSTEM_EVENT, _CHOICE_EVENT, _DETAILS_EVENT,
                            _PROMPT_EVENT, _COMPLETION_EVENT})


@dataclass
class Content:
    """Prompt and completion of one call, gathered from attributes, span events or log records."""

    system: list[dict[str, Any]] = field(default_factory=list)
    input: list[dict[str, Any]] = field(default_factory=list)
    output: list[dict[str, Any]] = field(default_factory=list)
    tools: list[Any] = field(default_factory=list)
    # True once a completion was reported, even with its text withheld (content capture off).
    answered: bool = False

    @property
    def has_input(self) -> bool:
        return bool(self.system or self.input)

    @property
    def has_output(self) -> bool:
        return bool(self.output) or self.answered

    def __bool__(self) -> bool:
        return self.has_input or self.has_output or bool(self.tools)

    def merge(self, other: "Content") -> "Content":
        """This content with ``other``'s added (other's pieces are later in the conversation)."""
        self.system.extend(other.system)
        self.input.extend(other.input)
        self.output.extend(other.output)
        self.tools.extend(other.tools)
        self.answered = self.answered or other.answered
        return self

    def weight(self) -> int:
        """Rough size in bytes, for the join buffer's bound."""
        pieces = [self.system, self.input, self.output, self.tools]
        try:
            return len(orjson.dumps(pieces, default=str))
        except orjson.JSONEncodeError:  # nested past orjson's limit
            return len(orjson.dumps(vocab.json_safe(pieces)))


def content_from_event(name: str, fields: dict[str, Any]) -> Content:
    """The content one GenAI event carries (a log record's body + attributes, or a span event's
    attributes), whichever generation of the conventions it follows."""
    content = Content()
    if name == _DETAILS_EVENT:
        return content_from_attributes(fields)
    if name == _PROMPT_EVENT:
        content.input = _legacy_messages(fields.get("gen_ai.prompt"), "user")
    elif name == _COMPLETION_EVENT:
        content.output = _legacy_messages(fields.get("gen_ai.completion"), "assistant")
        content.answered = True
    elif name == _SYSTEM_EVENT:
        content.system = vocab.blocks(fields.get("content"))
    elif name in _INPUT_EVENTS:
        message = vocab.openai_message({**fields, "role": fields.get("role") or _INPUT_EVENTS[name]})
        if message is not None:
            content.input = [message]
    elif name == _CHOICE_EVENT:
        raw = fields.get("message")
        raw = vocab.parse_json(raw) if isinstance(raw, str) else raw
        body = dict(raw) if isinstance(raw, dict) else {}
        body["role"] = body.get("role") or "assistant"
        message = vocab.openai_message(body) or {"role": "assistant", "content": []}
        if fields.get("finish_reason") is not None:
            message["finishReason"] = fields["finish_reason"]
        index = _choice_index(fields.get("index"))
        if index is not None:
            message["index"] = index
        content.output = [message]
        content.answered = True
    return content


def content_from_attributes(attrs: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> Content:
    """Content carried in span attributes, by vocabulary: OTel ≥1.37 messages, OpenLLMetry's
    flattened prompt/completion, OpenInference's flattened messages (else raw input/output);
    ``keys`` as in :mod:`dashcam.sources.otlp_vocabularies`."""
    content = Content()
    if "gen_ai.system_instructions" in attrs:
        content.system = vocab.blocks(_decoded(attrs["gen_ai.system_instructions"]))
    if "gen_ai.input.messages" in attrs:
        content.input = vocab.message_list(attrs["gen_ai.input.messages"])
    elif "gen_ai.prompt.0.content" in attrs or "gen_ai.prompt.0.role" in attrs:
        content.input = vocab.openllmetry_messages(attrs, "gen_ai.prompt", keys)
    elif "llm.input_messages.0.message.role" in attrs or "llm.input_messages.0.message.content" in attrs:
        content.input = vocab.openinference_messages(attrs, "llm.input_messages", keys)
    elif "input.value" in attrs:
        content.input = vocab.openinference_value(attrs["input.value"], output=False)
    elif isinstance(attrs.get("gen_ai.prompt"), str):  # deprecated ≤1.27 attribute
        content.input = _legacy_messages(attrs["gen_ai.prompt"], "user")

    if "gen_ai.output.messages" in attrs:
        content.output = vocab.message_list(attrs["gen_ai.output.messages"])
    elif "gen_ai.completion.0.content" in attrs or "gen_ai.completion.0.role" in attrs \
            or "gen_ai.completion.0.finish_reason" in attrs:
        content.output = vocab.openllmetry_messages(attrs, "gen_ai.completion", keys)
    elif "llm.output_messages.0.message.role" in attrs or "llm.output_messages.0.message.content" in attrs:
        content.output = vocab.openinference_messages(attrs, "llm.output_messages", keys)
    elif "output.value" in attrs:
        content.output = vocab.openinference_value(attrs["output.value"], output=True)
    elif isinstance(attrs.get("gen_ai.completion"), str):
        content.output = _legacy_messages(attrs["gen_ai.completion"], "assistant")
    for message in content.output:
        if message.get("role") == "user":
            message["role"] = "assistant"
    content.answered = bool(content.output)

    # System messages sent as ordinary input messages belong in Converse's "system".
    if content.input and any(m.get("role") == "system" for m in content.input):
        for message in content.input:
            if message.get("role") == "system":
                content.system.extend(message["content"])
        content.input = [m for m in content.input if m.get("role") != "system"]
    content.tools = vocab.tool_definitions(attrs)
    return content


def _legacy_messages(value: Any, role: str) -> list[dict[str, Any]]:
    decoded = vocab.parse_json(value) if isinstance(value, str) else value
    if isinstance(decoded, (list, dict)):
        found = vocab.message_list(decoded, vocab.openai_message)
        for message in found:
            if role == "assistant" and message.get("role") == "user":
                message["role"] = "assistant"
        if found:
            return found
    if value is None or value == "":
        return []
    return [{"role": role, "content": vocab.blocks(value if isinstance(value, str) else decoded)}]


def _choice_index(value: Any) -> int | None:
    # Choices are sorted by index: one that is no whole number ("x", 1.5, NaN, a list) would not
    # compare with the others, so it is dropped and the choice sorts as one without an index.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdecimal() and len(value) <= 9:
        return int(value)
    return None


def _decoded(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        decoded = vocab.parse_json(value)
        return value if decoded is None else decoded
    return value
