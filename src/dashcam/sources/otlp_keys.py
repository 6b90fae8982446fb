"""Which span attributes each GenAI fact is read from, and what a span's attribute names alone tell.

:mod:`dashcam.sources.otlp_vocabularies` reads each fact (token counts, sampling settings, the
session, ...) from the first of several attributes, one per vocabulary. Spans of one
instrumentation carry the same attribute names, so which of those candidates a span has is
worked out once per list of names (:func:`keys_of`) rather than every candidate being looked up
in every span: an :class:`AttributeKeys` lists, for each fact, only the candidates present, in
the same order. Reading with it gives exactly what reading with :data:`ALL_KEYS` (every
candidate) gives, because an absent attribute reads as None either way. Facts that depend on the
names only (the Traceloop association properties, the layout of flattened messages) are kept
with it.
"""

from __future__ import annotations

from typing import Any

# Token counts: canonical name -> attributes in vocabulary order.
USAGE_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("input", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt",
               "llm.usage.prompt_tokens")),
    ("output", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
                "llm.usage.completion_tokens")),
    ("cache_read", ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                    "llm.token_count.prompt_details.cache_read")),
    ("cache_write", ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                     "llm.token_count.prompt_details.cache_write")),
    ("reasoning", ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                   "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning")),
    ("total", ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total")),
)

# canonical inferenceConfig key -> attribute names in vocabulary order, then OpenInference's key,
# then the type Converse gives it.
CONFIG_KEYS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], type], ...] = (
    ("maxTokens", ("gen_ai.request.max_tokens", "llm.request.max_tokens"), ("max_tokens", "max_completion_tokens"),
     int),
    ("temperature", ("gen_ai.request.temperature", "llm.temperature"), ("temperature",), float),
    ("topP", ("gen_ai.request.top_p", "llm.top_p"), ("top_p",), float),
    ("topK", ("gen_ai.request.top_k", "llm.top_k"), ("top_k",), int),
    ("stopSequences", ("gen_ai.request.stop_sequences", "llm.chat.stop_sequences"), ("stop",), list),
    ("frequencyPenalty", ("gen_ai.request.frequency_penalty", "llm.frequency_penalty"), ("frequency_penalty",),
     float),
    ("presencePenalty", ("gen_ai.request.presence_penalty", "llm.presence_penalty"), ("presence_penalty",), float),
    ("seed", ("gen_ai.request.seed", "gen_ai.openai.request.seed"), ("seed",), int),
    ("choiceCount", ("gen_ai.request.choice.count",), ("n",), int),
)

PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
REQUEST_MODEL_KEYS = ("gen_ai.request.model", "llm.request.model_name", "llm.model_name", "gen_ai.response.model",
                      "llm.response.model_name")
RESPONSE_MODEL_KEYS = ("gen_ai.response.model", "llm.response.model_name")
STREAM_KEYS = ("gen_ai.request.stream", "llm.is_streaming", "gen_ai.is_streaming")
TTFT_KEYS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
COST_KEYS = ("gen_ai.usage.cost", "llm.cost.total")

ASSOCIATION = "traceloop.association.properties."
SESSION_KEYS = ("gen_ai.conversation.id", "session.id") + tuple(
    ASSOCIATION + k for k in ("session_id", "sessionId", "session", "conversation_id", "thread_id"))
USER_KEYS = ("user.id", "enduser.id", "gen_ai.request.user", "llm.user") + tuple(
    ASSOCIATION + k for k in ("user_id", "userId", "user"))
AGENT_KEYS = ("gen_ai.agent.name", "agent.name")
WORKFLOW_KEYS = ("gen_ai.workflow.name", "traceloop.workflow.name", "graph.node.name")
ENVIRONMENT_KEYS = ("gen_ai.environment",)  # the span's; the resource's deployment.environment comes first
GUARDRAIL_KEYS = ("aws.bedrock.guardrail.id",)
KNOWLEDGE_BASE_KEYS = ("aws.bedrock.knowledge_base.id",)


class AttributeKeys:
    """For each fact the mapping reads, the attributes to try, in vocabulary order.

    :data:`ALL_KEYS` has every candidate; :func:`keys_of` gives one with only those a span has.
    """

    __slots__ = ("names", "usage", "config", "provider", "request_model", "response_model", "stream", "ttft",
                 "cost", "session", "user", "agent", "workflow", "environment", "guardrail", "knowledge_base",
                 "_association", "_flat")

    def __init__(self, names: tuple[str, ...] | None) -> None:
        """Candidates among ``names`` (every candidate when None)."""
        self.names = names
        present = frozenset(names) if names is not None else None

        def have(keys: tuple[str, ...]) -> tuple[str, ...]:
            return keys if present is None else tuple(key for key in keys if key in present)

        self.usage = tuple((name, have(keys)) for name, keys in USAGE_KEYS)
        self.config = tuple((name, have(keys), param_keys, kind) for name, keys, param_keys, kind in CONFIG_KEYS)
        self.provider = have(PROVIDER_KEYS)
        self.request_model = have(REQUEST_MODEL_KEYS)
        self.response_model = have(RESPONSE_MODEL_KEYS)
        self.stream = have(STREAM_KEYS)
        self.ttft = have(TTFT_KEYS)
        self.cost = have(COST_KEYS)
        self.session = have(SESSION_KEYS)
        self.user = have(USER_KEYS)
        self.agent = have(AGENT_KEYS)
        self.workflow = have(WORKFLOW_KEYS)
        self.environment = have(ENVIRONMENT_KEYS)
        self.guardrail = have(GUARDRAIL_KEYS)
        self.knowledge_base = have(KNOWLEDGE_BASE_KEYS)
        self._association = None if names is None else association_keys(names)
        self._flat: dict[tuple[str, tuple[str, str]], tuple[int, int] | None] | None = None if names is None else {}

    def association(self, attrs: dict[str, Any]) -> tuple[str, ...]:
        """The attribute names that are Traceloop association properties, in order."""
        found = self._association
        return association_keys(tuple(attrs)) if found is None else found

    def flat_layout(self, attrs: dict[str, Any], dotted: str, fields: tuple[str, str]) -> tuple[int, int] | None:
        """:func:`flat_layout` of the span's names."""
        memo = self._flat
        if memo is None:
            return flat_layout(tuple(attrs), dotted, fields)
        key = (dotted, fields)
        found = memo.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = memo[key] = _flat_layout(self.names, dotted, fields)
        return found


ALL_KEYS = AttributeKeys(None)


def keys_of(attrs: dict[str, Any]) -> AttributeKeys:
    """The candidate attributes ``attrs`` has, for each fact (cached by its names in their order)."""
    names = tuple(attrs)
    found = _KEYS_BY_NAMES.get(names)
    if found is None:
        found = AttributeKeys(names)
        _remember(_KEYS_BY_NAMES, names, names, found)
    return found


# Facts that depend only on a span's attribute names, cached by the names in their order: spans
# from one instrumentation share them, and looking up or scanning every name costs more than the
# cache. Bounded in entries and in the size of each (emptied when full): names that never repeat
# cost what working it out does, and a client's odd names cannot fill memory.
_NAME_FACTS_LIMIT = 1024
_NAME_FACTS_MAX_CHARS = 16_384
_KEYS_BY_NAMES: dict[tuple[str, ...], AttributeKeys] = {}
_ASSOCIATION_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}
_FLAT_LAYOUTS: dict[tuple[Any, ...], tuple[int, int] | None] = {}
_UNKNOWN: Any = object()


def association_keys(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names that are Traceloop association properties, in order."""
    found = _ASSOCIATION_KEYS.get(names)
    if found is None:
        found = tuple(name for name in names if name.startswith(ASSOCIATION))
        _remember(_ASSOCIATION_KEYS, names, names, found)
    return found


def flat_layout(names: tuple[str, ...], dotted: str, fields: tuple[str, str]) -> tuple[int, int] | None:
    """(how many names are under ``dotted``, the last index) when each is ``dotted{i}{field}``
    for a canonical index ``i`` and one of ``fields``, and the indexes leave no wide gaps (each
    missing position would be an empty message); None otherwise. Cached by names."""
    cache_key = (dotted, fields, names)
    layout = _FLAT_LAYOUTS.get(cache_key, _UNKNOWN)
    if layout is _UNKNOWN:
        layout = _flat_layout(names, dotted, fields)
        _remember(_FLAT_LAYOUTS, cache_key, names, layout)
    return layout


def _flat_layout(names: tuple[str, ...], dotted: str, fields: tuple[str, str]) -> tuple[int, int] | None:
    count, last = 0, -1
    for name in names:
        if not name.startswith(dotted):
            continue
        field = fields[0] if name.endswith(fields[0]) else fields[1] if name.endswith(fields[1]) else None
        index = name[len(dotted):len(name) - len(field)] if field else ""
        if not (index.isdecimal() and len(index) < 10) or str(int(index)) != index:
            return None
        count, last = count + 1, max(last, int(index))
    return (count, last) if last < 2 * count + 64 else None


def _remember(cache: dict[Any, Any], key: Any, names: tuple[str, ...], fact: Any) -> None:
    if sum(map(len, names)) <= _NAME_FACTS_MAX_CHARS:
        if len(cache) >= _NAME_FACTS_LIMIT:
            cache.clear()
        cache[key] = fact
