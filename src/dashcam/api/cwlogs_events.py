"""CloudWatch Logs API: writing and reading events (PutLogEvents, GetLogEvents, FilterLogEvents,
GetLogRecord).

Reads are SQL over the store's ``events`` table built as sqlglot trees for the store's dialect
(user text enters only as literals) and run through the Store port. Events are ordered by
``(@timestamp, @ingestionTime, event id)`` — arrival order within a millisecond, as CloudWatch
does, up to events of one batch; pagination tokens carry the position of the last event
returned, so a page never repeats or skips events even when several share a millisecond.

``unmask: true`` on the three reads (CloudWatch's ``logs:Unmask``) shows the originals a
data-protection policy kept, to admin keys on the group only (others get AccessDeniedException);
each such read is audited (:meth:`dashcam.service.Dashcam.unmask_events`). Events without a kept
original stay masked, and a filter pattern still matches the masked text the store holds.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pyarrow as pa
from sqlglot import exp

from dashcam.api.awsjson import AwsError, Member, decode_token, encode_token
from dashcam.api.cwlogs_groups import (
    GROUP_IDENTIFIER, GROUP_NAME, GROUP_PATTERN, STREAM_NAME, STREAM_PATTERN, TOKEN, Context, Handler,
    caller, group_name, group_retention, require_stream,
)
from dashcam.errors import ForbiddenError
from dashcam.keys import Principal
from dashcam.query.compiler import parse_ptr
from dashcam.query.dialects import Dialect, and_, col, get_dialect, lit, or_
from dashcam.query.filter_pattern import MAX_PATTERN_LENGTH, FilterPatternError, parse_filter_pattern
from dashcam.query.results import decode_value
from dashcam.records import RECORD_FIELDS, SCHEMA_TYPE, hot_values, normalize, stable_event_id
from dashcam.store.schema import ARROW_SCHEMA, EVENTS_TABLE

SOURCE_NAME = "cwlogs"
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26               # bytes AWS counts per event on top of its message
MAX_BATCH_SPAN_MS = 24 * 3600_000
TOO_NEW_MS = 2 * 3600_000         # events more than 2 h in the future are rejected
TOO_OLD_MS = 14 * 86400_000       # and those more than 14 days old
MAX_PAGE_BYTES = 1_048_576        # GetLogEvents / FilterLogEvents pages
MAX_RECORD_FIELDS = 1000          # fields GetLogRecord extracts from a JSON event, as Logs Insights does
_NO_HOT = hot_values({})          # a plain (non-record) event has no typed fields


# ---------------------------------------------------------------------- PutLogEvents

PUT_LOG_EVENTS = {
    "logGroupName": Member("string", True, 1, 512, GROUP_PATTERN),
    "logStreamName": Member("string", True, 1, 512, STREAM_PATTERN),
    "logEvents": Member("list", True, 1, MAX_BATCH_EVENTS, items=Member("structure", fields={
        "timestamp": Member("long", True),
        "message": Member("string", True, 1),
    })),
    "sequenceToken": Member("string", low=1),
    "entity": Member("structure"),
}


def put_log_events(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Store a batch by AWS's rules; events too new, too old or past retention are reported by index.

    The batch as a whole is refused (InvalidParameterException, nothing stored) when it is over
    1,048,576 bytes (messages in UTF-8 plus 26 bytes an event), not in chronological order, or
    spans more than 24 hours. Messages that are JSON invocation records are normalized and get
    their typed fields; any other message is stored as a plain event.
    """
    group, stream = params["logGroupName"], params["logStreamName"]
    events = params["logEvents"]
    retention = group_retention(ctx, group)
    require_stream(ctx, group, stream)
    size = sum(len(e["message"].encode()) + EVENT_OVERHEAD for e in events)
    if size > MAX_BATCH_BYTES:
        raise AwsError("InvalidParameterException",
                       f"Upload too large: {size} bytes exceeds the limit of {MAX_BATCH_BYTES} bytes "
                       f"(UTF-8 messages plus {EVENT_OVERHEAD} bytes per event)")
    stamps = [e["timestamp"] for e in events]
    if any(b < a for a, b in zip(stamps, stamps[1:])):
        raise AwsError("InvalidParameterException",
                       "Log events in a single PutLogEvents request must be in chronological order.")
    if stamps[-1] - stamps[0] > MAX_BATCH_SPAN_MS:
        raise AwsError("InvalidParameterException",
                       "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
    now = int(time.time() * 1000)
    expired_before = now - retention * 86400_000 if retention is not None else None
    rejected: dict[str, int] = {}
    accepted: list[tuple[int, str]] = []
    for index, event in enumerate(events):
        ts = event["timestamp"]
        if ts > now + TOO_NEW_MS:
            rejected.setdefault("tooNewLogEventStartIndex", index)
        elif ts < now - TOO_OLD_MS:
            rejected["tooOldLogEventEndIndex"] = index
        elif expired_before is not None and ts < expired_before:
            rejected["expiredLogEventEndIndex"] = index
        else:
            accepted.append((ts, event["message"]))
    if accepted:
        ctx.dashcam.store.write_batch(_events_table(group, stream, accepted, now))
    response: dict[str, Any] = {"nextSequenceToken": str(now)}  # deprecated by AWS; old clients read it
    if rejected:
        response["rejectedLogEventsInfo"] = rejected
    return response


def _invocation_record(message: str) -> dict[str, Any] | None:
    """The message as an invocation record when it is one (a JSON object naming a model and operation)."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        record = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    if record.get("schemaType") == SCHEMA_TYPE or ("modelId" in record and "operation" in record):
        return record
    return None


def _events_table(group: str, stream: str, events: list[tuple[int, str]], now: int) -> pa.Table:
    """The accepted events as one Arrow batch in the store's schema.

    Event ids: an invocation record's id is that of its message alone, the same id a file
    import gives it, so the same record sent both ways is stored once. A plain message's id also
    covers its stream, its timestamp and how many times the same text came before it at that
    timestamp in the batch: the same line logged twice is two events, while a retried batch is
    not stored twice. (Without request ids, a later batch that repeats a line at the very same
    millisecond in the same stream reads as a retry.)
    """
    ids, stamps, messages, hot = [], [], [], []
    seen: set[int] = set()
    occurrences: dict[tuple[int, str], int] = {}
    for ts, message in events:
        record = _invocation_record(message)
        if record is not None:
            event_id = stable_event_id(group, message.encode())
            values = hot_values(normalize(record, source=SOURCE_NAME))
        else:
            n = occurrences[ts, message] = occurrences.get((ts, message), -1) + 1
            event_id = stable_event_id(group, b"%s\x00%d\x00%d\x00%s" % (stream.encode(), ts, n, message.encode()))
            values = _NO_HOT
        if event_id in seen:
            continue
        seen.add(event_id)
        ids.append(event_id)
        stamps.append(ts)
        messages.append(message)
        hot.append(values)
    n = len(ids)
    arrays = [
        pa.array(ids, pa.int64()),
        pa.array([group] * n, pa.string()),
        pa.array([stream] * n, pa.string()),
        pa.array(stamps, pa.int64()).cast(pa.timestamp("ms")),
        pa.array([now] * n, pa.int64()).cast(pa.timestamp("ms")),
        pa.array(messages, pa.string()),
    ]
    for fld, values in zip(list(ARROW_SCHEMA)[6:], zip(*hot)):
        arrays.append(pa.array(list(values), fld.type))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


# ---------------------------------------------------------------------- reading events


Key = tuple[int, int, int]  # an event's position: (timestamp ms, ingestion ms, event id)


def _select(d: Dialect, conds: list[exp.Expression], *, descending: bool, limit: int) -> str:
    """Events matching ``conds`` in position order: stamp ms, message, ingestion ms, id, stream."""
    order = [exp.Ordered(this=col(c), desc=descending) for c in ("ts", "ingestion_time", "event_id")]
    sel = (exp.select(d.epoch_ms(col("ts")), col("message"), d.epoch_ms(col("ingestion_time")),
                      col("event_id"), col("log_stream"))
           .from_(exp.Table(this=exp.to_identifier(EVENTS_TABLE)))
           .where(and_(*conds))
           .order_by(*order)
           .limit(lit(limit)))
    return d.sql(sel)


def _key(row: tuple) -> Key:
    return row[0], row[2], row[3]


def _beyond(d: Dialect, key: Key, *, after: bool) -> exp.Expression:
    """Events after (or before) the position ``key``: a lexicographic comparison, column by column."""
    cmp = exp.GT if after else exp.LT
    columns = [(col("ts"), d.timestamp_literal(key[0])), (col("ingestion_time"), d.timestamp_literal(key[1])),
               (col("event_id"), lit(key[2]))]
    condition = cmp(this=columns[-1][0], expression=columns[-1][1])
    for column, value in reversed(columns[:-1]):
        condition = or_(cmp(this=column, expression=value),
                        and_(exp.EQ(this=column, expression=value), condition))
    return condition


def _time_range(d: Dialect, start: int | None, end: int | None, *, end_inclusive: bool) -> list[exp.Expression]:
    conds: list[exp.Expression] = []
    if start is not None:
        conds.append(exp.GTE(this=col("ts"), expression=d.timestamp_literal(start)))
    if end is not None:
        cmp = exp.LTE if end_inclusive else exp.LT
        conds.append(cmp(this=col("ts"), expression=d.timestamp_literal(end)))
    return conds


def _within_bytes(rows: list[tuple], *, keep_last: bool = False) -> list[tuple]:
    """As many rows as fit a 1 MB page (at least one), from the start or, with keep_last, the end."""
    ordered = list(reversed(rows)) if keep_last else rows
    total, kept = 0, []
    for row in ordered:
        total += len(row[1].encode()) + EVENT_OVERHEAD
        if kept and total > MAX_PAGE_BYTES:
            break
        kept.append(row)
    return list(reversed(kept)) if keep_last else kept


def _unmasker(ctx: Context, params: dict[str, Any], group: str, operation: str) -> Principal | None:
    """With ``unmask: true``: the caller, once it is known to be allowed to unmask ``group``
    (AccessDeniedException, audited, otherwise), so nothing is read for a refused caller. None
    when the request does not ask to unmask."""
    if not params.get("unmask"):
        return None
    principal = caller(ctx)
    try:
        ctx.dashcam.require_unmask(principal, [group], via=operation)
    except ForbiddenError as exc:
        raise AwsError("AccessDeniedException", str(exc)) from None
    return principal  # never None here: require_unmask refuses a request acting for no key


def _originals(ctx: Context, principal: Principal, group: str, event_ids: list[int],
               operation: str) -> dict[int, str]:
    """The kept originals of these events of ``group``, by event id (audited)."""
    try:
        found = ctx.dashcam.unmask_events({group: event_ids}, principal, via=operation)
    except ForbiddenError as exc:
        raise AwsError("AccessDeniedException", str(exc)) from None
    return {event_id: text for (_, event_id), text in found.items()}


def _unmasked(ctx: Context, principal: Principal | None, group: str, rows: list[tuple], operation: str,
              *, keep_last: bool = False) -> list[tuple]:
    """Event rows (as :func:`_select` returns them) with each kept original in place of the
    masked message, re-cut to a page (an original may be longer); the rows as they are when not
    unmasking."""
    if principal is None:
        return rows
    originals = _originals(ctx, principal, group, [int(r[3]) for r in rows], operation)
    swapped = [(r[0], originals.get(int(r[3]), r[1]), *r[2:]) for r in rows]
    return _within_bytes(swapped, keep_last=keep_last)


GET_LOG_EVENTS = {
    "logGroupName": GROUP_NAME,
    "logGroupIdentifier": GROUP_IDENTIFIER,
    "logStreamName": Member("string", True, 1, 512, STREAM_PATTERN),
    "startTime": Member("long", low=0),
    "endTime": Member("long", low=0),
    "nextToken": TOKEN,
    "limit": Member("long", low=1, high=10_000),
    "startFromHead": Member("boolean"),
    "unmask": Member("boolean"),
}


def _position_token(direction: str, key: Key | None) -> str:
    return f"{direction}/head" if key is None else f"{direction}/{key[0]}/{key[1]}/{key[2]}"


def _parse_position(token: str) -> tuple[str, Key | None]:
    parts = token.split("/")
    try:
        if parts[0] in ("f", "b") and parts[1:] == ["head"]:
            return parts[0], None
        if parts[0] in ("f", "b") and len(parts) == 4:
            return parts[0], (int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        pass
    raise AwsError("InvalidParameterException", "The specified nextToken is not valid.")


def get_log_events(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """A page of one stream's events, oldest first within the page.

    Without a token, the first events (``startFromHead``) or the last ones (the default); a
    ``f/...`` token pages forward from its position and a ``b/...`` token backward. At either end
    of the stream the same token comes back, which is how clients know they have everything.
    """
    group, stream = group_name(params), params["logStreamName"]
    require_stream(ctx, group, stream)
    principal = _unmasker(ctx, params, group, "GetLogEvents")
    d = get_dialect(ctx.dashcam.store.dialect)
    limit = params.get("limit") or 10_000
    conds = [exp.EQ(this=col("log_group"), expression=lit(group)),
             exp.EQ(this=col("log_stream"), expression=lit(stream))]
    conds += _time_range(d, params.get("startTime"), params.get("endTime"), end_inclusive=False)
    token = params.get("nextToken")
    if token is not None:
        direction, key = _parse_position(token)
    else:
        direction, key = ("f" if params.get("startFromHead") else "b"), None
    if direction == "f":
        if key is not None:
            conds.append(_beyond(d, key, after=True))
        rows = _within_bytes(ctx.dashcam.store.execute(_select(d, conds, descending=False, limit=limit)))
    elif token is not None and key is None:
        rows = []  # backward from the head: nothing comes before it
    else:
        if key is not None:
            conds.append(_beyond(d, key, after=False))
        rows = list(reversed(ctx.dashcam.store.execute(_select(d, conds, descending=True, limit=limit))))
        rows = _within_bytes(rows, keep_last=True)
    if rows:
        rows = _unmasked(ctx, principal, group, rows, "GetLogEvents", keep_last=direction == "b")
    events = [{"timestamp": r[0], "message": r[1], "ingestionTime": r[2]} for r in rows]
    if rows:
        forward, backward = _position_token("f", _key(rows[-1])), _position_token("b", _key(rows[0]))
    elif token is not None:
        forward, backward = _position_token("f", key), _position_token("b", key)
    else:
        forward, backward = _position_token("f", None), _position_token("b", None)
    return {"events": events, "nextForwardToken": forward, "nextBackwardToken": backward}


FILTER_LOG_EVENTS = {
    "logGroupName": GROUP_NAME,
    "logGroupIdentifier": GROUP_IDENTIFIER,
    "logStreamNames": Member("list", low=1, high=100, items=STREAM_NAME),
    "logStreamNamePrefix": STREAM_NAME,
    "startTime": Member("long", low=0),
    "endTime": Member("long", low=0),
    "filterPattern": Member("string", high=MAX_PATTERN_LENGTH),
    "nextToken": TOKEN,
    "limit": Member("long", low=1, high=10_000),
    "interleaved": Member("boolean"),
    "unmask": Member("boolean"),
}


def filter_log_events(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Events of a group (optionally some streams) in time order that match a filter pattern."""
    group = group_name(params)
    group_retention(ctx, group)  # ResourceNotFoundException for a missing group
    principal = _unmasker(ctx, params, group, "FilterLogEvents")
    names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise AwsError("InvalidParameterException",
                       "logStreamNames and logStreamNamePrefix are mutually exclusive.")
    try:
        pattern = parse_filter_pattern(params.get("filterPattern"))
    except FilterPatternError as exc:
        raise AwsError("InvalidParameterException", str(exc)) from None
    d = get_dialect(ctx.dashcam.store.dialect)
    conds: list[exp.Expression] = [exp.EQ(this=col("log_group"), expression=lit(group))]
    if names is not None:
        conds.append(exp.In(this=col("log_stream"), expressions=[lit(n) for n in names]))
    if prefix is not None:
        conds.append(exp.StartsWith(this=col("log_stream"), expression=lit(prefix)))
    conds += _time_range(d, params.get("startTime"), params.get("endTime"), end_inclusive=True)
    matching = pattern.to_sql(d)
    if matching is not None:
        conds.append(matching)
    if params.get("nextToken") is not None:
        key = decode_token(params["nextToken"], "filter")
        if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, int) for k in key)):
            raise AwsError("InvalidParameterException", "The specified nextToken is not valid.")
        conds.append(_beyond(d, (key[0], key[1], key[2]), after=True))
    limit = params.get("limit") or 10_000
    fetched = ctx.dashcam.store.execute(_select(d, conds, descending=False, limit=limit + 1))
    rows = _within_bytes(fetched[:limit])
    if rows:
        rows = _unmasked(ctx, principal, group, rows, "FilterLogEvents")
    events = [{"logStreamName": r[4], "timestamp": r[0], "message": r[1], "ingestionTime": r[2],
               "eventId": str(r[3])} for r in rows]
    response: dict[str, Any] = {"events": events, "searchedLogStreams": []}
    if len(rows) < len(fetched):
        response["nextToken"] = encode_token("filter", list(_key(rows[-1])))
    return response


GET_LOG_RECORD = {
    "logRecordPointer": Member("string", True),
    "unmask": Member("boolean"),
}


def get_log_record(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Every field of one event, by the ``@ptr`` a query returned; all values as strings.

    The system fields, the fields of a JSON message flattened with dots (array elements by
    index, at most 1000 fields, as Logs Insights discovers them), and the derived fields dashcam
    added at ingest. With ``unmask``, all of them as the kept original has them (when there is one).
    """
    pointer = params["logRecordPointer"]
    try:
        group, event_id = parse_ptr(pointer)
    except ValueError:
        raise AwsError("InvalidParameterException", f"{pointer!r} is not a log record pointer.") from None
    principal = _unmasker(ctx, params, group, "GetLogRecord")
    d = get_dialect(ctx.dashcam.store.dialect)
    hot = [col(f.column) for f in RECORD_FIELDS]
    sel = (exp.select(d.epoch_ms(col("ts")), d.epoch_ms(col("ingestion_time")), col("log_stream"),
                      col("message"), *hot)
           .from_(exp.Table(this=exp.to_identifier(EVENTS_TABLE)))
           .where(and_(exp.EQ(this=col("log_group"), expression=lit(group)),
                       exp.EQ(this=col("event_id"), expression=lit(event_id))))
           .limit(lit(1)))
    rows = ctx.dashcam.store.execute(d.sql(sel))
    if not rows:
        raise AwsError("ResourceNotFoundException", "The specified log record does not exist.")
    ts, ingested, stream, message, *values = rows[0]
    if principal is not None:
        original = _originals(ctx, principal, group, [event_id], "GetLogRecord").get(event_id)
        if original is not None:
            message, values = original, _original_derived(original, values)
    record: dict[str, str] = {}
    try:
        decoded = orjson.loads(message)
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict):
        _flatten(decoded, "", record)
    for fld, value in zip(RECORD_FIELDS, values):
        if fld.derived and value is not None and fld.path not in record:
            record[fld.path] = _text(decode_value(value))
    record.update({"@timestamp": str(ts), "@ingestionTime": str(ingested), "@logStream": stream,
                   "@log": f"{ctx.account}:{group}", "@message": message})
    return {"logRecord": record}


def _original_derived(original: str, stored: list[Any]) -> list[Any]:
    """The typed fields as the original record gives them, where the stored event has them (a
    plain event has none, so unmasking never adds fields that were not there)."""
    try:
        decoded = orjson.loads(original)
    except orjson.JSONDecodeError:
        return stored
    if not isinstance(decoded, dict):
        return stored
    source = stored[[f.path for f in RECORD_FIELDS].index("source")]
    derived = hot_values(normalize(decoded, source=source or SOURCE_NAME))
    return [None if kept is None else again for kept, again in zip(stored, derived)]


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if len(out) >= MAX_RECORD_FIELDS:
            return
        name = f"{prefix}{key}"
        if isinstance(item, (dict, list)) and item:
            _flatten(item, name + ".", out)
        elif item is not None:
            out[name] = _text(item)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    "PutLogEvents": (PUT_LOG_EVENTS, put_log_events),
    "GetLogEvents": (GET_LOG_EVENTS, get_log_events),
    "FilterLogEvents": (FILTER_LOG_EVENTS, filter_log_events),
    "GetLogRecord": (GET_LOG_RECORD, get_log_record),
}
