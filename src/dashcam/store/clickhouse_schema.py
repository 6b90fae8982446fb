"""The ClickHouse schema: DDL for one server or a cluster, and the per-group retention TTL.

Three tables, as on DuckDB (same logical columns, :mod:`dashcam.store.schema`), typed for
ClickHouse:

``events``
    ``ReplacingMergeTree(ingestion_time)``, partitioned by day of ``@timestamp`` (old days drop
    as whole partitions, time-range queries prune whole days), ordered by
    ``(log_group, model_id, ts, event_id)`` with the primary index on the first three: the
    common filters are a log group, a model and a time range, and keeping a model's events
    together also makes ``message`` compress better (similar JSON next to similar JSON).
    ``event_id`` ends the sorting key because ReplacingMergeTree collapses rows with equal
    sorting keys: a re-delivered event (same group, same message, hence same id, timestamp and
    model) collapses into one row. Low-cardinality strings (group, stream, model, operation,
    region, error code, ...) are ``LowCardinality``; ``message`` is ``ZSTD(3)`` (JSON compresses
    ~10x); the two timestamps are ``DoubleDelta`` + ZSTD (near-sorted within a part). Hot columns
    are ``Nullable`` because a missing field must stay missing (NULL), as on DuckDB.

``log_group_versions``, read through the view ``log_groups``
    ``ReplacingMergeTree(version, deleted)`` by name: create, retention change and delete are
    each a new row version; the view shows each group's latest version unless it is a deletion.

``log_stream_parts``, read through the view ``log_streams``
    ``AggregatingMergeTree`` of (first event, last event, last ingestion) per stream with
    ``SimpleAggregateFunction(min|max)`` columns: every write just inserts its own figures and
    the view aggregates, which is exact whatever the merge state and safe with concurrent writers.

The two views have the DuckDB tables' names and columns, so any SQL that reads ``log_groups`` or
``log_streams`` (the CloudWatch Logs API reads retention that way) sees the current state on
both engines, whatever the merge state.

Retention is a table TTL with one ``DELETE WHERE log_group = '...'`` rule per log group that
has a retention (:func:`retention_ttl`), rewritten by ``set_retention``. ClickHouse evaluates
it on inserts and merges, so expired days disappear in the background (CloudWatch also deletes
expired events "eventually").

Cluster mode (``cluster`` given): every statement runs ``ON CLUSTER``; events live in
``events_local`` (``ReplicatedReplacingMergeTree``, one replication path per shard) behind a
``Distributed`` table called ``events`` — so compiled queries read ``events`` unchanged —
sharded by a hash of (log group, event id), which keeps every copy of an event on one shard
where ``FINAL`` can collapse it. The two small metadata tables are replicated to every node
(one replication path for the whole cluster). ``docs/clickhouse.md`` has an example topology.
"""

from __future__ import annotations

from dashcam.pricing import ARN_PREFIX, GEO_PREFIX
from dashcam.records import RECORD_FIELDS
from dashcam.store.schema import EVENT_COLUMNS, EVENTS_TABLE, LOG_GROUPS_TABLE, LOG_STREAMS_TABLE

EVENTS_LOCAL_TABLE = "events_local"
GROUP_VERSIONS_TABLE = "log_group_versions"
STREAM_PARTS_TABLE = "log_stream_parts"

# Strings with few distinct values: dictionary-encoded (LowCardinality) pays for them; ids and
# free text (request ids, trace ids, S3 paths, user ids) are left plain.
LOW_CARDINALITY = frozenset({
    "log_group", "log_stream", "operation", "model_id", "account_id", "region", "inference_region",
    "identity_arn", "error_code", "stop_reason", "provider", "source", "app",
})

_TYPES = {"int": "Int64", "float": "Float64", "string": "String", "timestamp": "DateTime64(3, 'UTC')"}
_NOT_NULL = frozenset({"event_id", "log_group", "log_stream", "ts", "ingestion_time", "message"})
_CODECS = {
    "ts": "CODEC(DoubleDelta, ZSTD(1))",
    "ingestion_time": "CODEC(DoubleDelta, ZSTD(1))",
    "message": "CODEC(ZSTD(3))",
}
_HOT = {f.column for f in RECORD_FIELDS}


def quote_ident(name: str) -> str:
    """A ClickHouse identifier in backquotes (backquotes and backslashes escaped)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(text: str) -> str:
    """A ClickHouse string literal (quotes and backslashes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def column_type(name: str, kind: str, *, codec: bool = True) -> str:
    """The ClickHouse type of an event column, with its codec unless ``codec`` is false (a
    table function's structure, e.g. the archive's ``file()``/``s3()`` reads, takes none)."""
    base = _TYPES[kind]
    if name not in _NOT_NULL:
        base = f"Nullable({base})"
    if name in LOW_CARDINALITY:
        base = f"LowCardinality({base})"
    compression = _CODECS.get(name) if codec else None
    return f"{base} {compression}" if compression else base


def _on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {quote_ident(cluster)}" if cluster else ""


def ddl_statements(database: str, cluster: str | None = None, *, fsync: bool = True) -> list[str]:
    """Every statement that creates dashcam's schema in ``database`` (idempotent: IF NOT EXISTS).

    ``fsync`` makes each insert fsync its part before it is acknowledged, so acknowledged
    events survive a power loss, not only a crashed process (DuckDB's WAL gives the same).
    """
    db, on = quote_ident(database), _on_cluster(cluster)
    columns = ",\n    ".join(f"{quote_ident(name)} {column_type(name, kind)}" for name, kind in EVENT_COLUMNS)
    merge_settings = ["allow_nullable_key = 1"]  # model_id is in the sorting key and may be NULL
    if fsync:
        merge_settings += ["fsync_after_insert = 1", "fsync_part_directory = 1"]
    if cluster:
        # The metadata tables share one replication path across the whole cluster (every node
        # has all groups); replica names must then be unique cluster-wide, hence {shard}-{replica}.
        meta_path = "'/clickhouse/dashcam/{database}/%s', '{shard}-{replica}'"
        groups_engine = f"ReplicatedReplacingMergeTree({meta_path % GROUP_VERSIONS_TABLE}, version, deleted)"
        streams_engine = f"ReplicatedAggregatingMergeTree({meta_path % STREAM_PARTS_TABLE})"
        events_engine = ("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/%s', '{replica}', "
                         "ingestion_time)" % EVENTS_LOCAL_TABLE)
        events_table = EVENTS_LOCAL_TABLE
    else:
        groups_engine = "ReplacingMergeTree(version, deleted)"
        streams_engine = "AggregatingMergeTree"
        events_engine = "ReplacingMergeTree(ingestion_time)"
        events_table = EVENTS_TABLE
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {db}{on}",
        f"CREATE TABLE IF NOT EXISTS {db}.{GROUP_VERSIONS_TABLE}{on} (\n"
        "    `name` String,\n"
        "    `created_ms` Int64,\n"
        "    `retention_days` Nullable(Int32),\n"
        "    `version` UInt64,\n"
        "    `deleted` UInt8\n"
        f") ENGINE = {groups_engine}\nORDER BY `name`",
        f"CREATE TABLE IF NOT EXISTS {db}.{STREAM_PARTS_TABLE}{on} (\n"
        "    `log_group` String,\n"
        "    `name` String,\n"
        "    `created_ms` SimpleAggregateFunction(min, Int64),\n"
        "    `first_event_ms` SimpleAggregateFunction(min, Nullable(Int64)),\n"
        "    `last_event_ms` SimpleAggregateFunction(max, Nullable(Int64)),\n"
        "    `last_ingestion_ms` SimpleAggregateFunction(max, Nullable(Int64))\n"
        f") ENGINE = {streams_engine}\nORDER BY (`log_group`, `name`)",
        f"CREATE TABLE IF NOT EXISTS {db}.{events_table}{on} (\n    {columns}\n"
        f") ENGINE = {events_engine}\n"
        "PARTITION BY toDate(`ts`)\n"
        "PRIMARY KEY (`log_group`, `model_id`, `ts`)\n"
        "ORDER BY (`log_group`, `model_id`, `ts`, `event_id`)\n"
        f"SETTINGS {', '.join(merge_settings)}",
    ]
    if cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{EVENTS_TABLE}{on} AS {db}.{EVENTS_LOCAL_TABLE}\n"
            f"ENGINE = Distributed({quote_ident(cluster)}, {db}, {EVENTS_LOCAL_TABLE}, "
            "cityHash64(`log_group`, `event_id`))"
        )
    # argMax over a tuple: argMax skips NULL arguments, and a removed retention is a NULL.
    statements += [
        f"CREATE VIEW IF NOT EXISTS {db}.{LOG_GROUPS_TABLE}{on} AS\n"
        "SELECT `name`, latest.1 AS `created_ms`, latest.2 AS `retention_days` FROM (\n"
        "    SELECT `name`, argMax((`created_ms`, `retention_days`, `deleted`), `version`) AS latest\n"
        f"    FROM {db}.{GROUP_VERSIONS_TABLE} GROUP BY `name`\n"
        ") WHERE latest.3 = 0",
        f"CREATE VIEW IF NOT EXISTS {db}.{LOG_STREAMS_TABLE}{on} AS\n"
        "SELECT `log_group`, `name`, min(`created_ms`) AS `created_ms`, min(`first_event_ms`) AS `first_event_ms`,\n"
        "    max(`last_event_ms`) AS `last_event_ms`, max(`last_ingestion_ms`) AS `last_ingestion_ms`\n"
        f"FROM {db}.{STREAM_PARTS_TABLE} GROUP BY `log_group`, `name`",
    ]
    return statements


def events_storage_table(database: str, cluster: str | None) -> str:
    """The table that holds event rows (the one TTL and deletes apply to)."""
    return f"{quote_ident(database)}.{EVENTS_LOCAL_TABLE if cluster else EVENTS_TABLE}"


def retention_ttl(database: str, cluster: str | None, retention: dict[str, int]) -> str:
    """``ALTER TABLE`` giving the events table one TTL rule per log group with a retention.

    With no retention anywhere the TTL is removed. Group names are literals (quoted), sorted so
    the statement is the same for the same settings.
    """
    table = events_storage_table(database, cluster) + _on_cluster(cluster)
    if not retention:
        return f"ALTER TABLE {table} REMOVE TTL"
    rules = ", ".join(
        f"toDateTime(`ts`) + toIntervalDay({int(days)}) DELETE WHERE `log_group` = {quote_string(name)}"
        for name, days in sorted(retention.items())
    )
    return f"ALTER TABLE {table} MODIFY TTL {rules}"


def delete_group_statements(database: str, cluster: str | None, name: str) -> list[str]:
    """Lightweight deletes of a group's events and streams (the group row gets a tombstone).

    Events are sharded, so their delete runs ON CLUSTER; the metadata tables are replicated to
    every node through one path, so a delete on the connected node reaches all of them.
    """
    literal = quote_string(name)
    return [
        f"DELETE FROM {events_storage_table(database, cluster)}{_on_cluster(cluster)} WHERE `log_group` = {literal}",
        f"DELETE FROM {quote_ident(database)}.{STREAM_PARTS_TABLE} WHERE `log_group` = {literal}",
    ]


def cost_expression(ranges: list[tuple], *, at: str) -> str:
    """ClickHouse SQL for an event's cost by the rule of :meth:`dashcam.pricing.PriceCatalog.cost`,
    over the typed columns (``model_id``, token counts, ``error_code``) at epoch-ms ``at``, from
    price ranges (:meth:`dashcam.pricing.PriceCatalog.ranges`): a failed call costs 0, no token
    counts or an unpriced model give NULL; the model id is tried without its ARN prefix, then
    also without its geo prefix. Terms are added in the order Python adds them (same floats)."""
    exact = f"replaceRegexpOne(ifNull(`model_id`, ''), {quote_string(ARN_PREFIX)}, '')"
    base = f"replaceRegexpOne({exact}, {quote_string(GEO_PREFIX)}, '')"
    branches = []
    for key in (exact, base):
        for model, start, until, inp, out, read, write in ranges:
            usd = (f"(ifNull(`input_tokens`, 0) * {float(inp)!r} + ifNull(`output_tokens`, 0) * {float(out)!r}"
                   f" + ifNull(`cache_read_tokens`, 0) * {float(inp if read is None else read)!r}"
                   f" + ifNull(`cache_write_tokens`, 0) * {float(inp if write is None else write)!r}) / 1000000")
            branches.append(f"{key} = {quote_string(model)} AND {at} >= {int(start)} AND {at} < {int(until)}, {usd}")
    return ("multiIf(`error_code` IS NOT NULL, 0., `input_tokens` IS NULL AND `output_tokens` IS NULL, NULL, "
            + "".join(f"{b}, " for b in branches) + "NULL)")


def reprice_sql(ranges: list[tuple], start_ms: int | None, end_ms: int | None) -> tuple[str, str]:
    """(count query, ``UPDATE ...`` clause of an ALTER TABLE) recomputing ``cost_usd`` of events in
    a time range by :func:`cost_expression`, as the DuckDB store does: events whose record has
    its own ``costUsd`` keep it; returns the events without one."""
    lo = 0 if start_ms is None else int(start_ms)
    hi = 253402300799999 if end_ms is None else int(end_ms)
    window = f"toUnixTimestamp64Milli(`ts`) BETWEEN {lo} AND {hi}"
    own = "JSONHas(`message`, 'costUsd')"
    cost = cost_expression(ranges, at="toUnixTimestamp64Milli(`ts`)")
    count = f"SELECT count() FROM {EVENTS_TABLE} WHERE {window} AND NOT {own}"
    update = f"UPDATE `cost_usd` = {cost} WHERE {window} AND (NOT {own} OR `cost_usd` IS NULL)"
    return count, update
