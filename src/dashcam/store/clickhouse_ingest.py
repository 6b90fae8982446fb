"""Bulk normalization inside ClickHouse: raw JSON lines in, typed event rows out.

The ClickHouse counterpart of :mod:`dashcam.store.duckdb_ingest`: it derives exactly what
:func:`dashcam.records.normalize` and :func:`dashcam.records.hot_values` derive (and the cost
:mod:`dashcam.pricing` gives) — ``tests/store/test_clickhouse_ingest.py`` checks the engine's
rows against the Python reference on every generated record and on edge cases.

Each line is parsed once per level: ``JSONExtract(text, 'Tuple(...)')`` with a named tuple of the
keys dashcam reads at that level gives them all in one pass, each as DuckDB's
``json_extract_string`` would (strings unquoted, other values as compact JSON text, JSON null and
missing as NULL). Nested objects (``input``, ``output``, its body, ...) are read as text and parsed
again on their own, and only when that text is an object: ClickHouse fills a tuple from an
*array* by position, which would read ``"identity": ["a"]`` as an ARN.
"""

from __future__ import annotations

from dashcam.records import _CORRELATION_KEYS, RECORD_FIELDS, THROTTLING_CODES
from dashcam.store.clickhouse_schema import cost_expression, quote_ident, quote_string
from dashcam.store.schema import EVENT_COLUMN_NAMES

_S = "Nullable(String)"

# Every path read from a record, as (name, path). The output body's own paths are under
# ("output", "outputBodyJson"); "results" and "choices" are read as text and indexed afterwards.
_PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("timestamp", ("timestamp",)),
    ("operation", ("operation",)),
    ("modelId", ("modelId",)),
    ("requestId", ("requestId",)),
    ("accountId", ("accountId",)),
    ("region", ("region",)),
    ("inferenceRegion", ("inferenceRegion",)),
    ("identity.arn", ("identity", "arn")),
    ("errorCode", ("errorCode",)),
    ("status", ("status",)),
    ("input.inputTokenCount", ("input", "inputTokenCount")),
    ("output.outputTokenCount", ("output", "outputTokenCount")),
    ("input.cacheReadInputTokenCount", ("input", "cacheReadInputTokenCount")),
    ("input.cacheWriteInputTokenCount", ("input", "cacheWriteInputTokenCount")),
    ("input.inputBodyS3Path", ("input", "inputBodyS3Path")),
    ("output.outputBodyS3Path", ("output", "outputBodyS3Path")),
    ("latencyMs", ("latencyMs",)),
    ("timeToFirstTokenMs", ("timeToFirstTokenMs",)),
    ("costUsd", ("costUsd",)),
    ("throttled", ("throttled",)),
    ("stopReason", ("stopReason",)),
    ("provider", ("provider",)),
    ("source", ("source",)),
    ("body.metrics.latencyMs", ("output", "outputBodyJson", "metrics", "latencyMs")),
    ("body.invocationLatency", ("output", "outputBodyJson", "amazon-bedrock-invocationMetrics", "invocationLatency")),
    ("body.firstByteLatency", ("output", "outputBodyJson", "amazon-bedrock-invocationMetrics", "firstByteLatency")),
    ("body.stopReason", ("output", "outputBodyJson", "stopReason")),
    ("body.stop_reason", ("output", "outputBodyJson", "stop_reason")),
    ("body.finish_reason", ("output", "outputBodyJson", "finish_reason")),
    ("body.results", ("output", "outputBodyJson", "results")),
    ("body.choices", ("output", "outputBodyJson", "choices")),
) + tuple(
    (f"{field}.{key}", ("requestMetadata", key)) for field, keys in _CORRELATION_KEYS.items() for key in keys
) + tuple((field, (field,)) for field in _CORRELATION_KEYS)


def _tree() -> dict:
    tree: dict = {}
    for _, path in _PATHS:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], None)
    return tree


def _alias(path: tuple[str, ...]) -> str:
    """The column holding the parsed object at ``path`` (``j`` for the record itself)."""
    return quote_ident("j" + "".join(f"__{key}" for key in path))


def _extractions() -> list[str]:
    """``JSONExtract(...) AS <alias>`` for the record and each nested object, parents first; every
    key of an object is read as text, so a nested object is parsed from its own (compact) text."""
    out: list[str] = []

    def visit(node: dict, path: tuple[str, ...], text: str) -> None:
        type_ = "Tuple(" + ", ".join(f"{quote_ident(key)} {_S}" for key in node) + ")"
        out.append(f"JSONExtract(if(startsWith({text}, '{{'), {text}, ''), '{type_}') AS {_alias(path)}")
        for key, child in node.items():
            if isinstance(child, dict):
                visit(child, path + (key,), f"ifNull(tupleElement({_alias(path)}, {quote_string(key)}), '')")

    visit(_tree(), (), "trimLeft(message)")
    return out


def _value(path: tuple[str, ...]) -> str:
    return f"tupleElement({_alias(path[:-1])}, {quote_string(path[-1])})"


_R = {name: _value(path) for name, path in _PATHS}
_BODY = _value(("output", "outputBodyJson"))


def _number(value: str) -> str:
    """Text as Float64: numbers and numeric text; NaN, booleans and the rest NULL (records._as_float)."""
    parsed = f"toFloat64OrNull(trimBoth({value}))"
    return f"if(isNaN({parsed}), NULL, {parsed})"


def _integer(value: str) -> str:
    number = f"trunc({_number(value)})"
    return f"if({number} >= -9223372036854775808. AND {number} < 9223372036854775808., toInt64({number}), NULL)"


def _text(value: str) -> str:
    return value


def _kept_or(name: str, derived: str, convert=_text) -> str:
    """The record's own value when it has one (never overwritten), else the derivation."""
    return f"if({_R[name]} IS NULL, {derived}, {convert(_R[name])})"


def _hot_expressions(provider: str, source: str) -> dict[str, str]:
    """SQL per hot column, mirroring records.normalize + records.hot_values; over the parsed objects
    (``j...`` columns), ``is_stream``, ``last`` (a stream's last chunk) and ``stream_stop``."""
    exprs: dict[str, str] = {}
    for field in RECORD_FIELDS:
        if not field.derived:
            convert = {"string": _text, "int": _integer, "float": _number}[field.kind]
            exprs[field.column] = convert(_R[field.path])
    num = _number
    b = {name: _R[f"body.{name}"] for name in ("metrics.latencyMs", "invocationLatency", "firstByteLatency",
                                                "stopReason", "stop_reason", "finish_reason")}
    last = {name: f"JSONExtract(last, 'amazon-bedrock-invocationMetrics', '{name}', '{_S}')"
            for name in ("invocationLatency", "firstByteLatency")}
    exprs["latency_ms"] = _kept_or(
        "latencyMs",
        f"coalesce({num(b['metrics.latencyMs'])}, if(is_stream, {num(last['invocationLatency'])}, "
        f"{num(b['invocationLatency'])}))",
        num,
    )
    exprs["ttft_ms"] = _kept_or(
        "timeToFirstTokenMs", f"if(is_stream, {num(last['firstByteLatency'])}, {num(b['firstByteLatency'])})", num)
    codes = ", ".join(quote_string(code) for code in sorted(THROTTLING_CODES))
    exprs["throttled"] = _kept_or(
        "throttled", f"if(ifNull({_R['errorCode']} IN ({codes}) OR {_R['status']} = '429', 0), 1, 0)", _integer)
    firsts = ", ".join(
        f"nullIf(JSONExtract(if(startsWith(ifNull({_R[name]}, ''), '['), {_R[name]}, ''), 1, '{inner}', '{_S}'), '')"
        for name, inner in (("body.results", "completionReason"), ("body.choices", "finish_reason")))
    exprs["stop_reason"] = _kept_or(
        "stopReason", f"coalesce({b['stopReason']}, {b['stop_reason']}, {b['finish_reason']}, {firsts}, stream_stop)")
    exprs["provider"] = _kept_or("provider", quote_string(provider))
    exprs["source"] = _kept_or("source", quote_string(source))
    for field, keys in _CORRELATION_KEYS.items():
        column = next(f.column for f in RECORD_FIELDS if f.path == field)
        exprs[column] = _kept_or(field, "coalesce(" + ", ".join(_R[f"{field}.{k}"] for k in keys) + ")")
    return exprs


# A line as stored: without the line ending's carriage return (framing already dropped the LF).
UNIX_LINE = "trimRight(message, '\\r\\n')"

_ISO = r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$"


def _timestamp() -> str:
    """``@timestamp`` from the record's ``timestamp``: epoch seconds/ms (number or digits) or RFC 3339."""
    ts = _R["timestamp"]
    number = f"toFloat64OrNull(trimBoth({ts}))"
    epoch_ms = f"trunc(if(abs({number}) < 1e11, {number} * 1000, {number}))"
    return (f"multiIf({number} IS NOT NULL AND isFinite({number}) AND abs({epoch_ms}) < 1e16, "
            f"fromUnixTimestamp64Milli(toInt64({epoch_ms}), 'UTC'), "
            f"{number} IS NOT NULL, NULL, "
            f"match(ifNull({ts}, ''), {quote_string(_ISO)}), parseDateTime64BestEffortOrNull({ts}, 3, 'UTC'), NULL)")


def normalized_sql(table: str, provider: str, source: str, price_ranges: list[tuple]) -> str:
    """SELECT over ``table`` (row_idx, event_id, log_group, log_stream, message) giving ``row_idx``
    and every event column in table order; ``ts`` is NULL for the rows to refuse."""
    hot = _hot_expressions(provider, source)
    typed = ["row_idx", "`j`"]
    for name in EVENT_COLUMN_NAMES:
        if name in ("event_id", "log_group", "log_stream", "message", "ts"):
            typed.append(quote_ident(name))
        elif name == "ingestion_time":
            typed.append("now64(3, 'UTC') AS `ingestion_time`")
        elif name != "cost_usd":
            typed.append(f"{hot[name]} AS {quote_ident(name)}")
    # The cost is computed from the typed columns, so one level out; a record's own costUsd is kept.
    cost = cost_expression(price_ranges, at="toUnixTimestamp64Milli(`ts`)")
    final = ["row_idx"] + [
        f"if({_R['costUsd']} IS NULL, {cost}, {_number(_R['costUsd'])}) AS `cost_usd`" if name == "cost_usd"
        else quote_ident(name) for name in EVENT_COLUMN_NAMES]
    body = f"ifNull({_BODY}, '')"
    stops = ", ".join(
        f"arrayLast(x -> x IS NOT NULL, arrayMap(c -> JSONExtract(c, {path}, '{_S}'), chunks))"
        for path in ("'delta', 'stop_reason'", "'stop_reason'", "'stopReason'", "'completionReason'"))
    return (
        f"SELECT {', '.join(final)} FROM ("
        f" SELECT {', '.join(typed)} FROM ("
        f"  SELECT *, if(is_stream, arrayElement(chunks, -1), NULL) AS last,"
        f"   if(is_stream, coalesce({stops}), NULL) AS stream_stop, {_timestamp()} AS ts FROM ("
        # A stream's body is a non-empty list of chunks (records._stream_metric, records._stop_reason).
        f"   SELECT *, startsWith({body}, '[') AND {body} != '[]' AS is_stream,"
        f"    if(is_stream, JSONExtractArrayRaw({body}), []) AS chunks FROM ("
        f"    SELECT row_idx, event_id, log_group, log_stream, message, {', '.join(_extractions())} FROM ("
        f"     SELECT row_idx, event_id, log_group, log_stream, {UNIX_LINE} AS message FROM {table})))))"
    )


def rejection_sql(table: str, ready: str) -> str:
    """Why each refused row of ``table`` was refused (``ready`` holds its normalized rows, NULL
    ``ts`` for the refused ones); blank lines are passed over silently."""
    raw_ts = "JSONExtractRaw(message, 'timestamp')"
    return f"""
        SELECT i.row_idx,
               multiIf(NOT isValidJSON(i.message), 'not valid JSON',
                       JSONType(i.message) != 'Object',
                           concat('expected a JSON object, got ', multiIf(JSONType(i.message) = 'Array', 'array',
                               JSONType(i.message) = 'String', 'string', JSONType(i.message) = 'Bool', 'boolean',
                               JSONType(i.message) = 'Null', 'null', 'number')),
                       {raw_ts.replace('message', 'i.message')} IN ('', 'null'), 'record has no ''timestamp''',
                       concat('timestamp ', {raw_ts.replace('message', 'i.message')},
                              ' is not an RFC 3339 date-time'))
        FROM {table} AS i INNER JOIN {ready} AS r ON r.row_idx = i.row_idx
        WHERE r.ts IS NULL AND NOT match(i.message, '^[ \\t\\r\\n]*$')
        ORDER BY i.row_idx
    """
