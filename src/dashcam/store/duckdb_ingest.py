"""Bulk normalization inside DuckDB: raw JSON lines in, typed event rows out.

Importing Bedrock logs is dominated by JSON parsing. Parsing each line in Python costs tens of
microseconds; DuckDB parses it once in C++ (``json_extract`` with a list of paths) on all cores.
This module builds that SQL. It derives exactly what :func:`dashcam.records.normalize` and
:func:`dashcam.records.hot_values` derive — ``tests/store/test_duckdb_ingest.py`` checks the two
agree on every generated record — so the Python functions stay the one definition of the record.
"""

from __future__ import annotations

from dashcam.pricing import ARN_PREFIX, GEO_PREFIX
from dashcam.records import _CORRELATION_KEYS, RECORD_FIELDS, THROTTLING_CODES
from dashcam.store.schema import EVENT_COLUMN_NAMES

# Every JSON path read from a record, parsed in one pass. Position in this tuple = list index - 1.
_PATHS: tuple[tuple[str, str], ...] = (
    ("timestamp", "$.timestamp"),
    ("operation", "$.operation"),
    ("modelId", "$.modelId"),
    ("requestId", "$.requestId"),
    ("accountId", "$.accountId"),
    ("region", "$.region"),
    ("inferenceRegion", "$.inferenceRegion"),
    ("identity.arn", "$.identity.arn"),
    ("errorCode", "$.errorCode"),
    ("status", "$.status"),
    ("input.inputTokenCount", "$.input.inputTokenCount"),
    ("output.outputTokenCount", "$.output.outputTokenCount"),
    ("input.cacheReadInputTokenCount", "$.input.cacheReadInputTokenCount"),
    ("input.cacheWriteInputTokenCount", "$.input.cacheWriteInputTokenCount"),
    ("input.inputBodyS3Path", "$.input.inputBodyS3Path"),
    ("output.outputBodyS3Path", "$.output.outputBodyS3Path"),
    ("latencyMs", "$.latencyMs"),
    ("timeToFirstTokenMs", "$.timeToFirstTokenMs"),
    ("costUsd", "$.costUsd"),
    ("throttled", "$.throttled"),
    ("stopReason", "$.stopReason"),
    ("provider", "$.provider"),
    ("source", "$.source"),
    ("body.metrics.latencyMs", "$.output.outputBodyJson.metrics.latencyMs"),
    ("body.invocationLatency", '$.output.outputBodyJson."amazon-bedrock-invocationMetrics".invocationLatency'),
    ("body.firstByteLatency", '$.output.outputBodyJson."amazon-bedrock-invocationMetrics".firstByteLatency'),
    ("last.invocationLatency", '$.output.outputBodyJson[#-1]."amazon-bedrock-invocationMetrics".invocationLatency'),
    ("last.firstByteLatency", '$.output.outputBodyJson[#-1]."amazon-bedrock-invocationMetrics".firstByteLatency'),
    ("body.stopReason", "$.output.outputBodyJson.stopReason"),
    ("body.stop_reason", "$.output.outputBodyJson.stop_reason"),
    ("body.finish_reason", "$.output.outputBodyJson.finish_reason"),
    ("body.results.0.completionReason", "$.output.outputBodyJson.results[0].completionReason"),
    ("body.choices.0.finish_reason", "$.output.outputBodyJson.choices[0].finish_reason"),
    ("body.0", "$.output.outputBodyJson[0]"),
    ("body.last", "$.output.outputBodyJson[#-1]"),
) + tuple(
    (f"{field}.{key}", f'$.requestMetadata."{key}"')
    for field, keys in _CORRELATION_KEYS.items()
    for key in keys
) + tuple((field, f"$.{field}") for field in _CORRELATION_KEYS)


_INDEX = {name: position + 1 for position, (name, _) in enumerate(_PATHS)}
# A list body (a stream of chunks) as records.py sees one: a non-null first or last chunk (an
# object body has neither; a list of nulls has no chunk worth reading either way).
_IS_STREAM = f"(v[{_INDEX['body.0']}] IS NOT NULL OR v[{_INDEX['body.last']}] IS NOT NULL)"

# Stream chunks: the last value of each key across chunks, tried in this order (see records._stop_reason).
_STREAM_STOP_PATHS = (
    "$.output.outputBodyJson[*].delta.stop_reason",
    "$.output.outputBodyJson[*].stop_reason",
    "$.output.outputBodyJson[*].stopReason",
    "$.output.outputBodyJson[*].completionReason",
)

# A line as stored: without the carriage return of a CRLF file (framing already dropped the LF).
UNIX_LINE = "CASE WHEN suffix(message, chr(13)) THEN rtrim(message, chr(13)) ELSE message END"



def _r(name: str) -> str:
    """A path's value as text: strings unquoted, objects and arrays as compact JSON, missing or
    JSON null as NULL — what ``json_extract_string`` gives, and what records._as_str gives."""
    return f"v[{_INDEX[name]}]"


def _text(value: str) -> str:
    return value


def _number(value: str) -> str:
    """Text as DOUBLE: numbers and numeric strings; NaN, booleans and the rest NULL (records._as_float)."""
    return f"(CASE WHEN isnan(TRY_CAST(trim({value}) AS DOUBLE)) THEN NULL ELSE TRY_CAST(trim({value}) AS DOUBLE) END)"


def _integer(value: str) -> str:
    return f"TRY_CAST(trunc({_number(value)}) AS BIGINT)"


def _kept_or(name: str, derived: str, convert=_text) -> str:
    """The record's own value when it has one (never overwritten), else the derivation."""
    return f"CASE WHEN {_r(name)} IS NULL THEN {derived} ELSE {convert(_r(name))} END"


def _hot_expressions(provider: str, source: str) -> dict[str, str]:
    """SQL per hot column, mirroring records.normalize + records.hot_values."""
    exprs: dict[str, str] = {}
    for field in RECORD_FIELDS:
        if not field.derived:
            convert = {"string": _text, "int": _integer, "float": _number}[field.kind]
            exprs[field.column] = convert(_r(field.path))
    num = _number
    is_stream = _IS_STREAM
    exprs["latency_ms"] = _kept_or(
        "latencyMs",
        f"coalesce({num(_r('body.metrics.latencyMs'))}, CASE WHEN {is_stream} "
        f"THEN {num(_r('last.invocationLatency'))} ELSE {num(_r('body.invocationLatency'))} END)",
        num,
    )
    exprs["ttft_ms"] = _kept_or(
        "timeToFirstTokenMs",
        f"CASE WHEN {is_stream} THEN {num(_r('last.firstByteLatency'))} ELSE {num(_r('body.firstByteLatency'))} END",
        num,
    )
    exprs["cost_usd"] = num(_r("costUsd"))
    codes = ", ".join(f"'{code}'" for code in sorted(THROTTLING_CODES))
    exprs["throttled"] = _kept_or(
        "throttled",
        f"CASE WHEN {_text(_r('errorCode'))} IN ({codes}) OR {_text(_r('status'))} = '429' THEN 1 ELSE 0 END",
        _integer,
    )
    dict_body = ", ".join(_text(_r(f"body.{key}")) for key in ("stopReason", "stop_reason", "finish_reason"))
    first_items = ", ".join(
        f"nullif({_text(_r(name))}, '')" for name in ("body.results.0.completionReason", "body.choices.0.finish_reason")
    )
    exprs["stop_reason"] = _kept_or("stopReason", f"coalesce({dict_body}, {first_items}, stream_stop)")
    exprs["provider"] = _kept_or("provider", _literal(provider))
    exprs["source"] = _kept_or("source", _literal(source))
    for field, keys in _CORRELATION_KEYS.items():
        column = next(f.column for f in RECORD_FIELDS if f.path == field)
        exprs[column] = _kept_or(field, "coalesce(" + ", ".join(_text(_r(f"{field}.{k}")) for k in keys) + ")")
    return exprs


def _timestamp() -> str:
    """``@timestamp`` from the record's ``timestamp``: epoch seconds/ms (number or digits) or RFC 3339."""
    ts = _r("timestamp")
    number = f"TRY_CAST({ts} AS DOUBLE)"
    epoch_ms = f"trunc(CASE WHEN abs({number}) < 1e11 THEN {number} * 1000 ELSE {number} END)"
    return (f"CASE WHEN {number} IS NOT NULL THEN TRY(epoch_ms(TRY_CAST({epoch_ms} AS BIGINT))) "
            f"WHEN {ts} IN ('true', 'false') OR left({ts}, 1) IN ('{{', '[') THEN NULL "
            f"ELSE TRY_CAST({ts} AS TIMESTAMPTZ)::TIMESTAMP END")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def staging_sql(provider: str, source: str) -> str:
    """SELECT over ``incoming`` (row_idx, event_id, log_group, log_stream, message) giving ``row_idx``,
    ``event_id``, ``ts`` and every hot column — not the message, which stays in ``incoming``.

    Rows whose JSON is invalid, blank, or lacks a usable timestamp get a NULL ``ts``. Each line
    is parsed once, into a list holding every path's value as text; the typed and derived columns
    are computed from that list.
    """
    paths = ", ".join(_literal(path) for _, path in _PATHS)
    lasts = ", ".join(f"list_last(json_extract_string(message, '{path}'))" for path in _STREAM_STOP_PATHS)
    hot = _hot_expressions(provider, source)
    typed = ", ".join(
        [f"{_timestamp()} AS ts"] + [f'{hot[name]} AS "{name}"' for name in EVENT_COLUMN_NAMES if name in hot]
    )
    return (
        f"SELECT row_idx, event_id, {typed} FROM ("
        f" SELECT row_idx, event_id, v, CASE WHEN {_IS_STREAM}"
        f"  THEN coalesce({lasts}) END AS stream_stop FROM ("
        f"  SELECT row_idx, message, event_id,"
        f"   TRY(json_extract_string(message, [{paths}])) AS v FROM ("
        f"   SELECT row_idx, event_id, {UNIX_LINE} AS message FROM incoming)))"
    )


def ready_events_sql() -> str:
    """The event rows to store, in table column order: ``ready`` (timestamped, deduplicated rows of
    ``staged``) joined back to ``incoming`` for the group, stream and message."""
    columns = []
    for name in EVENT_COLUMN_NAMES:
        if name in ("log_group", "log_stream"):
            columns.append(f"i.{name}")
        elif name == "message":
            columns.append(UNIX_LINE.replace("message", "i.message") + " AS message")
        elif name == "ingestion_time":
            columns.append("now()::TIMESTAMP AS ingestion_time")
        else:
            columns.append(f'r."{name}"')
    return f"SELECT {', '.join(columns)} FROM ready r JOIN incoming i USING (row_idx)"


# The rows of ``staged`` to store: timestamped, the first of each event id within the batch.
READY_SQL = """
    SELECT * FROM staged WHERE ts IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY row_idx) = 1
"""

# Why each refused row was refused; blank lines are passed over silently.
REJECTION_SQL = """
    SELECT row_idx,
           CASE WHEN NOT json_valid(message) THEN 'not valid JSON'
                WHEN json_type(message) <> 'OBJECT'
                     THEN 'expected a JSON object, got ' || CASE json_type(message)
                         WHEN 'ARRAY' THEN 'array' WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean'
                         WHEN 'NULL' THEN 'null' ELSE 'number' END
                WHEN json_extract(message, '$.timestamp') IS NULL
                     OR json_extract(message, '$.timestamp')::VARCHAR = 'null'
                     THEN 'record has no ''timestamp'''
                ELSE 'timestamp ' || json_extract(message, '$.timestamp')::VARCHAR
                     || ' is not an RFC 3339 date-time'
           END
    FROM staged JOIN incoming USING (row_idx)
    WHERE ts IS NULL AND trim(message, ' ' || chr(9) || chr(10) || chr(13)) <> ''
    ORDER BY row_idx
"""


PRICE_COLUMNS = ("model", "from_ms", "until_ms", "input", "output", "cache_read", "cache_write")


def pricing_sql(table: str, *, unpriced: str = "cost_usd IS NULL") -> list[str]:
    """UPDATEs that set ``cost_usd`` on the rows of ``table`` matching ``unpriced``, by the rule of
    :mod:`dashcam.pricing` (the same as records._cost), from a registered ``price_ranges`` table
    (:meth:`dashcam.pricing.PriceCatalog.ranges`). The model id is tried without its ARN prefix,
    then also without its geo prefix; the first with a price in effect wins."""
    exact = f"regexp_replace({table}.model_id, {_literal(ARN_PREFIX)}, '')"
    base = f"regexp_replace({exact}, {_literal(GEO_PREFIX)}, '')"
    usd = ("(coalesce(input_tokens, 0) * p.input + coalesce(output_tokens, 0) * p.output"
           " + coalesce(cache_read_tokens, 0) * coalesce(p.cache_read, p.input)"
           " + coalesce(cache_write_tokens, 0) * coalesce(p.cache_write, p.input)) / 1000000")
    priced = [
        f"UPDATE {table} SET cost_usd = {usd} FROM price_ranges p"
        f" WHERE {table}.{unpriced} AND {table}.error_code IS NULL"
        f" AND ({table}.input_tokens IS NOT NULL OR {table}.output_tokens IS NOT NULL)"
        f" AND p.model = {key} AND epoch_ms({table}.ts) >= p.from_ms AND epoch_ms({table}.ts) < p.until_ms"
        for key in (exact, base)
    ]
    return [f"UPDATE {table} SET cost_usd = 0 WHERE {table}.{unpriced} AND {table}.error_code IS NOT NULL",
            *priced]
