"""OTLP in, invocation records out: GenAI spans (and their content log records) as Bedrock records.

:func:`map_traces` turns a decoded ``ExportTraceServiceRequest`` and :func:`map_logs` a decoded
``ExportLogsServiceRequest`` into records in the one record shape (:mod:`dashcam.records`). The
vocabularies (OTel GenAI ≥1.37 and ≤1.36, OpenLLMetry legacy, OpenInference, OpenLIT) are read
by :mod:`dashcam.sources.otlp_vocabularies`; where content lives, by
:mod:`dashcam.sources.otlp_content`.

**Which spans become records.** One record per *model call*: a span with a GenAI marker
(``gen_ai.operation.name``, ``gen_ai.system``, ``gen_ai.provider.name``, ``llm.request.type``,
``openinference.span.kind``, ``traceloop.span.kind``) whose operation is not structural. Spans
with no marker are ignored and counted (``ignored``); GenAI spans of agents, tools, workflows
and retrievers (``invoke_agent``, ``execute_tool``, OpenInference ``CHAIN``, Traceloop
``workflow``...) are skipped and counted (``skipped``): their child spans are the model calls,
and recording both would count a request twice and add its tokens twice.

**Operation names.** Bedrock's own where the call went to Bedrock, so queries written for Bedrock
logs work: the botocore instrumentation's ``rpc.method`` when present (``Converse``,
``ConverseStream``, ``InvokeModel``, ``InvokeModelWithResponseStream``); otherwise ``chat`` →
``Converse`` (``ConverseStream`` when streamed), ``text_completion`` / ``generate_content`` /
``embeddings`` → ``InvokeModel`` (``InvokeModelWithResponseStream`` when streamed). Every other
provider keeps the GenAI operation name (``chat``, ``text_completion``, ``embeddings``, or a
non-standard one such as OpenLIT's ``image``), which reads well in ``stats ... by operation``.

**The record.** ``timestamp`` is the span start (RFC 3339, milliseconds); ``latencyMs`` the span
duration; ``timeToFirstTokenMs`` from ``gen_ai.response.time_to_first_chunk`` /
``gen_ai.server.time_to_first_token`` or the first streamed-chunk span event; ``provider``,
``source`` = ``otlp``, ``traceId``, ``spanId``, ``parentSpanId``, ``sessionId``, ``userId``,
``app`` = ``service.name``; ``stopReason`` the first finish reason; ``errorCode`` the
``error.type`` (or the exception event's type) of a failed span and ``throttled`` 1 when that, an
HTTP 429 or the status message says rate limited. Token counts are stored as reported
(``input.inputTokenCount`` includes cached tokens when the instrumentation follows the spec,
unlike Bedrock's own logs; ``output.totalTokenCount`` is the reported total or input + output;
a count that is negative or no 64-bit number is left out). Bytes values read as their text.
Prompt and completion go to ``input.inputBodyJson`` / ``output.outputBodyJson`` in the shape of
Bedrock's Converse API (see the vocabularies module). ``requestMetadata`` carries the session,
user, agent, server and the application's own association properties.

**Log groups.** ``/dashcam/otlp/<service.name>`` (characters CloudWatch does not allow in a group
name become ``_``); the stream is ``service.instance.id``, else ``host.name``, else ``otlp``.

**Content that arrives as log records** (OTel ≤1.36 ``gen_ai.user.message`` / ``gen_ai.choice``
..., and ``gen_ai.client.inference.operation.details``) is joined to its span by trace and span
id through a :class:`JoinBuffer`, in either arrival order, so one call is still one record:

* log records first (the usual order: SDKs emit them during the call and export logs sooner):
  the content waits in the buffer (bounded in entries and bytes, at most ``ttl`` seconds) and is
  written *inside the span's record* when the span arrives.
* span first: if the span has no answer yet, completion content is expected (its service sends
  content log records) and the caller allows it, the span is *held* — its request is not answered
  — for a short time while the content arrives; the record is then written complete. Nothing is
  acknowledged before it is committed.
* content later than that (or from a span written before its service was known to send content):
  the span's record is already stored, and the store is append-only with event ids derived from
  the record, so a rewritten record would be a second invocation. The content is written as a
  separate *content event* instead: ``schemaType`` ``ModelInvocationContent`` with the span's
  ``traceId``/``spanId``/``app`` and the ``input.inputBodyJson`` / ``output.outputBodyJson`` it
  adds, no model, operation or tokens, so sums and per-model stats stay right (``filter
  schemaType = "ModelInvocationLog"`` counts calls exactly). Content whose span never arrives
  within ``ttl`` (or that the bounds push out) is written the same way: never dropped.

The one thing not committed at acknowledgement is content waiting in the buffer for its span:
a crash in that window (at most ``ttl``) loses that content, never an invocation record. Storing
it on arrival would instead store every message twice and inflate every count.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dashcam.records import SCHEMA_TYPE, SCHEMA_VERSION, check_log_group_name
from dashcam.records import timestamp_ms as _parse_timestamp_ms
from dashcam.sources import otlp_vocabularies as vocab
from dashcam.sources.otlp_keys import AttributeKeys, keys_of
from dashcam.sources.otlp_content import CONTENT_EVENTS, Content, content_from_attributes, content_from_event

SOURCE_NAME = "otlp"
LOG_GROUP_PREFIX = "/dashcam/otlp/"
CONTENT_SCHEMA_TYPE = "ModelInvocationContent"

# Span events that mark a streamed chunk (the first one gives time to first token).
_CHUNK_EVENTS = ("First Token Stream Event", "llm.content.completion.chunk", "gen_ai.content.completion.chunk")
_BEDROCK_RUNTIME_METHODS = {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"}
_STATUS_ERROR = 2
_MAX_NAME_CHARS = 512  # of a service, as of a log group name
_BAD_GROUP_CHARS = re.compile(r"[^.\-_/#A-Za-z0-9]")
_RFC3339_MS = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\.([0-9]{3})Z")

Record = tuple[str, str, dict[str, Any]]  # (log group, log stream, record)


# --------------------------------------------------------------------------- OTLP values


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as plain Python (lists for arrays, dicts for kvlists, bytes as text:
    see :func:`~dashcam.sources.otlp_vocabularies.bytes_text`)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return vocab.bytes_text(value.bytes_value)
    return getattr(value, kind) if kind else None


def attributes(key_values: Iterable[Any]) -> dict[str, Any]:
    """OTLP ``KeyValue`` attributes as a dict."""
    out = {}
    for kv in key_values:
        value = kv.value
        # Text is by far the most common kind: read it without asking which kind the value is
        # (an empty text, and every other kind, reads as "" and takes the general path).
        text = value.string_value
        if text:
            out[kv.key] = text
            continue
        kind = value.WhichOneof("value")
        if kind in ("array_value", "kvlist_value", "bytes_value"):
            out[kv.key] = any_value(value)
        else:
            out[kv.key] = getattr(value, kind) if kind else None
    return out


def log_group_for(service: str | None) -> str:
    """The log group of a service's records: ``/dashcam/otlp/<service.name>``, made valid."""
    name = _BAD_GROUP_CHARS.sub("_", service or "unknown_service") or "unknown_service"
    return check_log_group_name((LOG_GROUP_PREFIX + name)[:512])


def rfc3339_ms(unix_nano: int) -> str:
    """``2026-03-02T14:00:00.123Z`` for nanoseconds since the epoch."""
    ms = unix_nano // 1_000_000
    return f"{_rfc3339_seconds(ms // 1000)}.{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _rfc3339_seconds(seconds: int) -> str:
    # Spans of one export mostly share their second: format it once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def timestamp_ms(timestamp: str) -> int:
    """Milliseconds since the epoch of a record ``timestamp``: what
    :func:`dashcam.records.timestamp_ms` gives, read faster when :func:`rfc3339_ms` wrote it."""
    match = _RFC3339_MS.fullmatch(timestamp)
    if match is None:
        return _parse_timestamp_ms(timestamp)
    return _epoch_ms_of_second(match[1]) + int(match[2])


@functools.lru_cache(maxsize=4096)
def _epoch_ms_of_second(text: str) -> int:
    return _parse_timestamp_ms(text + "Z")


# --------------------------------------------------------------------------- the join buffer


@dataclass
class _Waiting:
    content: Content
    added: float
    weight: int
    log_group: str
    log_stream: str
    app: str | None
    provider: str | None
    ts_nano: int


class _Written:
    """A stored span's record, remembered so late content can be recognised and placed."""

    __slots__ = ("log_group", "log_stream", "app", "provider", "timestamp", "has_input", "has_output", "added")

    def __init__(self, log_group: str, log_stream: str, app: str | None, provider: str, timestamp: str,
                 has_input: bool, has_output: bool, added: float) -> None:
        self.log_group, self.log_stream, self.app, self.provider = log_group, log_stream, app, provider
        self.timestamp, self.has_input, self.has_output, self.added = timestamp, has_input, has_output, added


class JoinBuffer:
    """Joins content log records to their spans by (trace id, span id), in either arrival order.

    Holds content that arrived before its span (at most ``max_entries`` entries and ``max_bytes``
    of content, each for at most ``ttl`` seconds) and remembers the last ``remember`` spans
    written (for ``remember_ttl`` seconds) so content arriving after its span is recognised, and
    which services (at most ``max_services``) send content log records. Thread-safe; the clock is
    injectable for tests. Nothing here is ever dropped silently: content pushed out by a bound or
    by time comes back from :meth:`expired` as records to write.
    """

    def __init__(self, *, ttl: float = 30.0, max_entries: int = 20_000, max_bytes: int = 64 << 20,
                 remember: int = 100_000, remember_ttl: float = 900.0, max_services: int = 10_000,
                 clock=time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.remember_limit = remember
        self.remember_ttl = remember_ttl
        self.max_services = max_services
        self.clock = clock
        self._lock = threading.Lock()
        self._waiting: OrderedDict[bytes, _Waiting] = OrderedDict()
        self._written: OrderedDict[bytes, _Written] = OrderedDict()
        self._content_services: dict[str | None, float] = {}
        self._bytes = 0
        self._overflow: list[Record] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def sends_content(self, app: str | None) -> bool:
        """True when ``app`` sent GenAI content log records recently (so a span may await them)."""
        seen = self._content_services.get(app)
        return seen is not None and self.clock() - seen < self.remember_ttl

    def has_output(self, key: bytes) -> bool:
        """True when a completion for the span ``key`` is waiting in the buffer."""
        waiting = self._waiting.get(key)
        return waiting is not None and waiting.content.has_output

    def take(self, key: bytes) -> Content | None:
        """Remove and return the content waiting for span ``key``."""
        if key not in self._waiting:  # the common case, without taking the lock
            return None
        with self._lock:
            waiting = self._waiting.pop(key, None)
            if waiting is None:
                return None
            self._bytes -= waiting.weight
            return waiting.content

    def written(self, key: bytes, log_group: str, log_stream: str, record: dict[str, Any], content: Content) -> None:
        """Note that span ``key``'s record is (about to be) stored, with or without content."""
        entry = _Written(log_group, log_stream, record.get("app"), record.get("provider") or "unknown",
                         record["timestamp"], content.has_input, content.has_output, self.clock())
        with self._lock:
            self._written[key] = entry  # a re-sent span only refreshes its entry; order is good enough
            self._forget_oldest_written()

    def add(self, key: bytes, content: Content, *, log_group: str, log_stream: str, app: str | None,
            provider: str | None, ts_nano: int) -> tuple[str, Record | None]:
        """Offer content for span ``key``. Returns (outcome, record to write now or None):

        ``("waiting", None)`` — buffered for its span; ``("late", record)`` — the span is already
        stored, write this content event; ``("redundant", None)`` — the stored record already has
        this kind of content (e.g. events duplicating attributes).
        """
        now = self.clock()
        with self._lock:
            services = self._content_services
            services.pop(app, None)  # the most recent last, so a bound forgets the longest silent
            services[app] = now
            if len(services) > self.max_services:
                del services[next(iter(services))]
            written = self._written.get(key)
            if written is not None and now - written.added < self.remember_ttl:
                late = _late_content(key, written, content)
                return ("redundant", None) if late is None else ("late", late)
            weight = content.weight()
            waiting = self._waiting.get(key)
            if waiting is None:
                self._waiting[key] = _Waiting(content, now, weight, log_group, log_stream, app, provider, ts_nano)
            else:
                waiting.content.merge(content)
                waiting.weight += weight
            self._bytes += weight
            while len(self._waiting) > self.max_entries or (self._bytes > self.max_bytes and len(self._waiting) > 1):
                self._overflow.append(self._evict_oldest())
            return "waiting", None

    def content_services(self) -> frozenset[str | None]:
        """The services that sent GenAI content log records recently (see :meth:`sends_content`)."""
        now = self.clock()
        with self._lock:
            return frozenset(app for app, seen in self._content_services.items() if now - seen < self.remember_ttl)

    def written_elsewhere(self, notes: list[tuple]) -> list[Record]:
        """Take note of spans mapped without this buffer (in a worker process): each note is
        :meth:`written`'s arguments as ``(key, log_group, log_stream, app, provider, timestamp,
        has_input, has_output)``. Content that reached the buffer for one of them while it was
        being mapped comes back as records to write now (as for content arriving late)."""
        now = self.clock()
        out = []
        with self._lock:
            for key, log_group, log_stream, app, provider, timestamp, has_input, has_output in notes:
                entry = _Written(log_group, log_stream, app, provider, timestamp, has_input, has_output, now)
                self._written[key] = entry
                waiting = self._waiting.pop(key, None)
                if waiting is not None:
                    self._bytes -= waiting.weight
                    late = _late_content(key, entry, waiting.content)
                    if late is not None:
                        out.append(late)
            self._forget_oldest_written()
        return out

    def _forget_oldest_written(self) -> None:
        written = self._written
        if len(written) > self.remember_limit + 1024:
            for _ in range(len(written) - self.remember_limit):  # in chunks: cheaper than one at a time
                written.popitem(last=False)

    def expired(self, now: float | None = None) -> list[Record]:
        """Content events for content that waited ``ttl`` for its span in vain (or was pushed out
        by the bounds): the caller must write them."""
        now = self.clock() if now is None else now
        with self._lock:
            out, self._overflow = self._overflow, []
            while self._waiting:
                first = next(iter(self._waiting.values()))
                if now - first.added < self.ttl:
                    break
                out.append(self._evict_oldest())
            for app, seen in list(self._content_services.items()):
                if now - seen > self.remember_ttl:
                    del self._content_services[app]
            return out

    def drain(self) -> list[Record]:
        """Everything still waiting, as content events (at shutdown)."""
        with self._lock:
            out, self._overflow = self._overflow, []
            while self._waiting:
                out.append(self._evict_oldest())
            return out

    def _evict_oldest(self) -> Record:
        key, waiting = self._waiting.popitem(last=False)
        self._bytes -= waiting.weight
        record = content_record(key, waiting.content, app=waiting.app, provider=waiting.provider,
                                timestamp=rfc3339_ms(waiting.ts_nano))
        return waiting.log_group, waiting.log_stream, record


def _late_content(key: bytes, written: _Written, content: Content) -> Record | None:
    """A content event with what ``content`` adds to the stored record ``written`` (which is
    updated to have it), or None when the record has all of it already."""
    if (written.has_input or not content.has_input) and (written.has_output or not content.has_output):
        return None
    # Only what the stored record lacks goes into the content event.
    late = Content(system=[] if written.has_input else content.system,
                   input=[] if written.has_input else content.input,
                   output=[] if written.has_output else content.output,
                   answered=content.answered and not written.has_output)
    written.has_input = written.has_input or content.has_input
    written.has_output = written.has_output or content.has_output
    record = content_record(key, late, app=written.app, provider=written.provider, timestamp=written.timestamp)
    return written.log_group, written.log_stream, record


def content_record(key: bytes, content: Content, *, app: str | None, provider: str | None,
                   timestamp: str) -> dict[str, Any]:
    """A content event: content for the call ``key`` (trace id + span id) stored apart from its
    invocation record (see the module docstring)."""
    record: dict[str, Any] = {
        "schemaType": CONTENT_SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": timestamp,
    }
    if content.has_input or content.tools:
        record["input"] = {"inputContentType": "application/json", "inputBodyJson": _input_body(content, {})}
    if content.has_output:
        record["output"] = {"outputContentType": "application/json",
                            "outputBodyJson": _output_body(content, None, {}, None)}
    record.update(provider=provider or "unknown", source=SOURCE_NAME, traceId=key[:16].hex() or None,
                  spanId=key[16:].hex() or None, app=app)
    return record


# --------------------------------------------------------------------------- spans -> records


@dataclass
class PendingSpan:
    """A GenAI span whose record waits for completion content (see :attr:`TraceResult.pending`)."""

    key: bytes
    log_group: str
    log_stream: str
    view: "_SpanView"
    content: Content


@dataclass
class TraceResult:
    """What :func:`map_traces` made of a request."""

    records: list[Record] = field(default_factory=list)
    pending: list[PendingSpan] = field(default_factory=list)
    spans: int = 0
    ignored: int = 0  # not GenAI spans
    skipped: int = 0  # GenAI spans that are not model calls (agents, tools, workflows, ...)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _SpanView:
    """A GenAI span with the fields the mapping reads, each taken from the protobuf message once
    (every read of a message field makes new Python objects)."""

    span: Any
    attrs: dict[str, Any]
    keys: AttributeKeys  # which of the attributes the vocabularies try the span has
    resource: dict[str, Any]
    operation: str
    provider: str
    name: str
    trace_id: bytes
    span_id: bytes
    start: int
    end: int
    status_code: int
    events: Any  # the span's events, or () when it has none


def map_traces(request: Any, *, join: JoinBuffer | None = None, hold: bool = False,
               emit: Callable[[Record], Any] | None = None) -> TraceResult:
    """Records for the GenAI model-call spans of an ``ExportTraceServiceRequest``.

    Content in attributes and span events is read from the span; content waiting in ``join``
    (log records that arrived first) is joined in. With ``hold``, a span that still lacks its
    completion while its service sends content log records goes to ``pending`` instead: the
    caller waits a little (:meth:`JoinBuffer.has_output`) and then calls :func:`finish_spans`.

    With ``emit``, each record is handed to it as soon as it is made instead of being collected
    in :attr:`TraceResult.records`: a record consumed at once dies young, while a request's worth
    of records held to the end outlives the garbage collector's young generations and is
    traversed again by every full collection (about a tenth of the receiver's CPU per span).
    """
    result = TraceResult()
    add = result.records.append if emit is None else emit
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        app = service_name(resource)
        group = log_group_for(app)
        stream = _stream_for(resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                result.spans += 1
                attrs = attributes(span.attributes)
                if not vocab.is_genai(attrs):
                    result.ignored += 1
                    continue
                operation = vocab.operation_name(attrs)
                if operation is None or operation in vocab.STRUCTURAL_OPERATIONS:
                    result.skipped += 1
                    continue
                trace_id, span_id, start = span.trace_id, span.span_id, span.start_time_unix_nano
                problem = _span_problem(span, trace_id, span_id, start)
                if problem:
                    result.rejected += 1
                    if len(result.errors) < 5:
                        result.errors.append(problem)
                    continue
                name, events = span.name, span.events
                events = events if len(events) else ()
                keys = keys_of(attrs)
                view = _SpanView(span, attrs, keys, resource, operation, vocab.provider(attrs, name, keys), name,
                                 trace_id, span_id, start, span.end_time_unix_nano, span.status.code, events)
                key = trace_id + span_id
                content = content_from_attributes(attrs, keys)
                for event in events:
                    if event.name in CONTENT_EVENTS:
                        content.merge(content_from_event(event.name, attributes(event.attributes)))
                if join is not None:
                    if hold and not content.has_output and _may_await_content(view, join) \
                            and not join.has_output(key):
                        result.pending.append(PendingSpan(key, group, stream, view, content))
                        continue
                    buffered = join.take(key)
                    if buffered is not None:
                        content = _joined(content, buffered)
                record = _record(view, content, app)
                # Remember the span for content that may follow it: needed when it lacks some, or
                # when its service sends content log records (which could duplicate what it has).
                # Before emitting: a consumer may add derived fields to the record.
                if join is not None and (not (content.has_input and content.has_output) or join.sends_content(app)):
                    join.written(key, group, stream, record, content)
                add((group, stream, record))
    return result


def finish_spans(pending: list[PendingSpan], join: JoinBuffer) -> list[Record]:
    """Records for held spans, with whatever content reached the buffer while they waited."""
    out = []
    for item in pending:
        content = item.content
        buffered = join.take(item.key)
        if buffered is not None:
            content = _joined(content, buffered)
        record = _record(item.view, content, service_name(item.view.resource))
        join.written(item.key, item.log_group, item.log_stream, record, content)
        out.append((item.log_group, item.log_stream, record))
    return out


def _joined(own: Content, buffered: Content) -> Content:
    # What the span says itself wins; log records fill in what it lacks.
    return Content(system=own.system or buffered.system, input=own.input or buffered.input,
                   output=own.output or buffered.output, tools=own.tools or buffered.tools,
                   answered=own.answered or buffered.answered)


def _may_await_content(view: _SpanView, join: JoinBuffer) -> bool:
    if view.status_code == _STATUS_ERROR or view.operation not in vocab.COMPLETION_OPERATIONS:
        return False
    return join.sends_content(service_name(view.resource))


_ZERO_TRACE_ID, _ZERO_SPAN_ID = bytes(16), bytes(8)


def _span_problem(span: Any, trace_id: bytes, span_id: bytes, start: int) -> str | None:
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return f"span {span.name!r}: trace id must be 16 bytes, not all zero"
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return f"span {span.name!r}: span id must be 8 bytes, not all zero"
    if start == 0:
        return f"span {span.name!r}: start time is missing"
    return None


def service_name(resource: dict[str, Any]) -> str | None:
    """The ``service.name`` of a resource's attributes: the app its records are stored for."""
    # The join buffer keeps it for minutes: a name of megabytes must not be, nor stored as an app.
    app = resource.get("service.name")
    return app[:_MAX_NAME_CHARS] if isinstance(app, str) else None


def _stream_for(resource: dict[str, Any]) -> str:
    for key in ("service.instance.id", "host.name"):
        value = resource.get(key)
        if isinstance(value, str) and value:
            return value.replace(":", "_").replace("*", "_")[:512]
    return "otlp"


def _bedrock_operation(view: _SpanView, streaming: bool) -> str:
    method = view.attrs.get("rpc.method")
    if isinstance(method, str) and method in _BEDROCK_RUNTIME_METHODS:  # a list is not hashable
        return method
    name = view.name  # OpenInference: bedrock.converse, bedrock.invoke_model
    if name == "bedrock.converse":
        return "ConverseStream" if streaming else "Converse"
    if view.operation == "chat" and name != "bedrock.invoke_model":
        return "ConverseStream" if streaming else "Converse"
    if view.operation in ("chat", "text_completion", "generate_content", "embeddings"):
        return "InvokeModelWithResponseStream" if streaming else "InvokeModel"
    return view.operation


def _record(view: _SpanView, content: Content, app: str | None) -> dict[str, Any]:
    attrs, keys, resource, start, end = view.attrs, view.keys, view.resource, view.start, view.end
    params = vocab.invocation_parameters(attrs)
    streaming = vocab.is_streaming(attrs, params, keys)
    operation = _bedrock_operation(view, streaming) if view.provider == "aws.bedrock" else view.operation
    tokens = vocab.usage(attrs, keys)
    record: dict[str, Any] = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": rfc3339_ms(start),
    }
    account = resource.get("cloud.account.id")
    if account:
        record["accountId"] = str(account)
    region = attrs.get("cloud.region") or resource.get("cloud.region") or attrs.get("aws.region")
    if region:
        record["region"] = str(region)
    request_id = attrs.get("gen_ai.response.id") or attrs.get("aws.request_id")
    if request_id is None and str(attrs.get("output.value", ""))[:1] == "{":
        decoded = vocab.parse_json(attrs["output.value"])
        request_id = decoded.get("id") if isinstance(decoded, dict) else None
    if request_id:
        record["requestId"] = str(request_id)
    record["operation"] = operation
    model = record["modelId"] = vocab.request_model(attrs, keys)
    answered_by = vocab.response_model(attrs, keys)
    if answered_by and answered_by != model:
        record["responseModelId"] = answered_by

    # Token counts and bodies only when known (never null), in this order.
    section: dict[str, Any] = {"inputContentType": "application/json"}
    if tokens["input"] is not None:
        section["inputTokenCount"] = tokens["input"]
    if tokens["cache_read"] is not None:
        section["cacheReadInputTokenCount"] = tokens["cache_read"]
    if tokens["cache_write"] is not None:
        section["cacheWriteInputTokenCount"] = tokens["cache_write"]
    if content.has_input or content.tools:
        section["inputBodyJson"] = _input_body(content, vocab.inference_config(attrs, params, keys))
    record["input"] = section
    reasons = vocab.finish_reasons(attrs) or [m["finishReason"] for m in content.output if m.get("finishReason")]
    stop_reason = reasons[0] if reasons else None
    latency_ms = round((end - start) / 1e6, 3) if end >= start else None
    section = {"outputContentType": "application/json"}
    if tokens["output"] is not None:
        section["outputTokenCount"] = tokens["output"]
    if tokens["reasoning"] is not None:
        section["reasoningTokenCount"] = tokens["reasoning"]
    if tokens["total"] is not None:
        section["totalTokenCount"] = tokens["total"]
    if content.has_output:
        section["outputBodyJson"] = _output_body(content, stop_reason, tokens, latency_ms)
    record["output"] = section

    error_code = error_message = None
    http_status = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    failed = view.status_code == _STATUS_ERROR or "error.type" in attrs
    if failed:
        exception = next((attributes(e.attributes) for e in view.events if e.name == "exception"), {})
        error_code = attrs.get("error.type") or exception.get("exception.type") or "Error"
        error_message = view.span.status.message or exception.get("exception.message")
        if isinstance(error_code, str) and "." in error_code and error_code.rsplit(".", 1)[1][:1].isupper():
            error_code = error_code.rsplit(".", 1)[1]  # openai.RateLimitError -> RateLimitError
        record["errorCode"] = str(error_code)
        if error_message:
            record["errorMessage"] = str(error_message)
    throttled = failed and vocab.looks_throttled(error_code, http_status, error_message)
    if not failed and isinstance(http_status, int) and http_status == 429:
        throttled = True

    meta = vocab.request_metadata(attrs, resource, keys)
    if meta:
        record["requestMetadata"] = meta
    cost = vocab.reported_cost(attrs, keys)
    if cost is not None:
        record["reportedCostUsd"] = cost

    ttft = vocab.ttft_seconds(attrs, keys)
    record["latencyMs"] = latency_ms
    record["timeToFirstTokenMs"] = round(ttft * 1000, 3) if ttft is not None else _first_chunk_ms(view)
    record["stopReason"] = stop_reason
    record["throttled"] = 1 if throttled else 0
    record["provider"] = view.provider
    record["source"] = SOURCE_NAME
    record["traceId"] = view.trace_id.hex()
    record["spanId"] = view.span_id.hex()
    record["sessionId"] = meta.get("sessionId")
    record["userId"] = meta.get("userId")
    record["app"] = app
    parent = view.span.parent_span_id
    if parent:
        record["parentSpanId"] = parent.hex()
    return record


def _first_chunk_ms(view: _SpanView) -> float | None:
    start = view.start
    for event in view.events:
        if event.name in _CHUNK_EVENTS and event.time_unix_nano >= start:
            return round((event.time_unix_nano - start) / 1e6, 3)
    return None


def _input_body(content: Content, config: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if content.system:
        body["system"] = content.system
    body["messages"] = content.input
    if config:
        body["inferenceConfig"] = config
    if content.tools:
        body["toolConfig"] = {"tools": content.tools}
    return body


def _output_body(content: Content, stop_reason: str | None, tokens: dict[str, Any],
                 latency_ms: float | None) -> dict[str, Any]:
    outputs = content.output
    if len(outputs) > 1:
        outputs = sorted(outputs, key=lambda m: m.get("index", 0))
    elif not outputs:
        outputs = [{"role": "assistant", "content": []}]
    first = outputs[0]
    body: dict[str, Any] = {"output": {"message": {"role": first.get("role") or "assistant",
                                                   "content": first.get("content", [])}}}
    reason = stop_reason or first.get("finishReason")
    if reason is not None:
        body["stopReason"] = reason
    if len(outputs) > 1:  # Converse has one answer; other providers may return n choices
        body["additionalChoices"] = [{"message": {"role": m.get("role") or "assistant", "content": m.get("content", [])},
                                      "stopReason": m.get("finishReason")} for m in outputs[1:]]
    usage = _drop_none({"inputTokens": tokens.get("input"), "outputTokens": tokens.get("output"),
                        "totalTokens": tokens.get("total"), "cacheReadInputTokens": tokens.get("cache_read"),
                        "cacheWriteInputTokens": tokens.get("cache_write")})
    if usage:
        body["usage"] = usage
    if latency_ms is not None:
        body["metrics"] = {"latencyMs": int(round(latency_ms))}
    return body


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


# --------------------------------------------------------------------------- logs -> content


@dataclass
class LogResult:
    """What :func:`map_logs` made of a request: content events to write now, and counts."""

    records: list[Record] = field(default_factory=list)
    log_records: int = 0
    joined: int = 0  # content waiting for (or held by) its span
    late: int = 0  # content for a span already stored: written as a content event
    redundant: int = 0  # content the stored record already has
    ignored: int = 0  # not GenAI content
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


def map_logs(request: Any, *, join: JoinBuffer) -> LogResult:
    """Hand the GenAI content log records of an ``ExportLogsServiceRequest`` to ``join``.

    The event name is the log record's ``event_name`` field, or its ``event.name`` attribute
    (older SDKs). Content records with no span context cannot be joined and are written as
    content events of their own; others wait for their span or, when it is already stored,
    come back in :attr:`LogResult.records` to be written now.
    """
    result = LogResult()
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        app = service_name(resource)
        group = log_group_for(app)
        stream = _stream_for(resource)
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                result.log_records += 1
                attrs = attributes(log.attributes)
                name = log.event_name or attrs.get("event.name")
                if name not in CONTENT_EVENTS:
                    result.ignored += 1
                    continue
                trace_id, span_id = bytes(log.trace_id), bytes(log.span_id)
                if (trace_id and len(trace_id) != 16) or (span_id and len(span_id) != 8):
                    result.rejected += 1
                    if len(result.errors) < 5:
                        result.errors.append(f"log record {name!r}: trace id must be 16 bytes and span id 8")
                    continue
                body = any_value(log.body) if log.HasField("body") else None
                if isinstance(body, str):
                    body = vocab.parse_json(body) if body[:1] == "{" else {"content": body}
                fields = {**attrs, **body} if isinstance(body, dict) else attrs
                content = content_from_event(name, fields)
                provider = vocab.normalize_provider(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system"))
                ts = log.time_unix_nano or log.observed_time_unix_nano or time.time_ns()
                if not any(trace_id) or not any(span_id):
                    record = content_record(b"", content, app=app, provider=provider, timestamp=rfc3339_ms(ts))
                    result.records.append((group, stream, record))
                    result.late += 1
                    continue
                outcome, record_to_write = join.add(trace_id + span_id, content, log_group=group, log_stream=stream,
                                                    app=app, provider=provider, ts_nano=ts)
                if outcome == "late":
                    result.late += 1
                    result.records.append(record_to_write)
                elif outcome == "redundant":
                    result.redundant += 1
                else:
                    result.joined += 1
    return result
