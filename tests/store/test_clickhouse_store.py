"""What only the ClickHouse adapter does: store URLs, exact DDL for one server and for a
cluster, per-group TTL retention, chDB's one-process-per-directory rule, idempotence on reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dashcam.errors import ConfigError, StoreBusyError
from dashcam.store import ClickHouseTarget, DuckDBTarget, parse_store_url
from dashcam.store.clickhouse_schema import ddl_statements, delete_group_statements, retention_ttl

SRC = str(Path(__file__).resolve().parents[2] / "src")


# ---------------------------------------------------------------------- store URLs


def test_directories_and_duckdb_urls_name_the_embedded_store(tmp_path):
    assert parse_store_url(str(tmp_path)) == DuckDBTarget(tmp_path)
    assert parse_store_url("./dashcam-data") == DuckDBTarget(Path("./dashcam-data"))
    assert parse_store_url(f"duckdb://{tmp_path}") == DuckDBTarget(tmp_path)
    assert parse_store_url("C:\\data") == DuckDBTarget(Path("C:\\data"))


def test_clickhouse_urls():
    t = parse_store_url("clickhouse://alice:s%40cret@ch.example:8123/logs?cluster=prod&max_threads=8")
    assert t == ClickHouseTarget("http", database="logs", host="ch.example", port=8123, username="alice",
                                 password="s@cret", cluster="prod", settings={"max_threads": "8"})
    assert "s@cret" not in t.describe()
    assert parse_store_url("clickhouses://ch.example").interface == "https"
    assert parse_store_url("clickhouse://ch.example?secure=1&final=0&fsync=0") == ClickHouseTarget(
        "https", host="ch.example", final=False, fsync=False)
    assert parse_store_url("clickhouse://h").database == "dashcam"
    assert parse_store_url("clickhouse://h").reads_final and not parse_store_url("chdb://memory").reads_final
    assert parse_store_url("chdb://memory?final=1").reads_final


def test_chdb_urls(tmp_path):
    assert parse_store_url(f"chdb://{tmp_path}") == ClickHouseTarget("chdb", path=str(tmp_path))
    assert parse_store_url(f"chdb://{tmp_path}?database=x").database == "x"
    assert parse_store_url("chdb://memory").path is None


@pytest.mark.parametrize("url,message", [
    ("mysql://h/db", "unknown store"), ("clickhouse:///db", "no ClickHouse host"),
    ("clickhouse://h/a/b", "just the database"), ("clickhouse://h?final=maybe", "final"),
    ("chdb:///x?cluster=c", "cluster"), ("clickhouse://h:99999", "invalid port"), ("duckdb://", "directory"),
])
def test_malformed_store_urls_are_config_errors(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_store_url(url)


# ---------------------------------------------------------------------- DDL


def test_single_node_ddl_is_exactly_this():
    statements = ddl_statements("dashcam")
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS `dashcam`"
    assert statements[1] == (
        "CREATE TABLE IF NOT EXISTS `dashcam`.log_group_versions (\n    `name` String,\n    `created_ms` Int64,\n"
        "    `retention_days` Nullable(Int32),\n    `version` UInt64,\n    `deleted` UInt8\n"
        ") ENGINE = ReplacingMergeTree(version, deleted)\nORDER BY `name`")
    assert statements[2].endswith(") ENGINE = AggregatingMergeTree\nORDER BY (`log_group`, `name`)")
    events = statements[3]
    assert events.startswith("CREATE TABLE IF NOT EXISTS `dashcam`.events (\n    `event_id` Int64,\n"
                             "    `log_group` LowCardinality(String),\n    `log_stream` LowCardinality(String),\n"
                             "    `ts` DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),\n")
    assert "    `message` String CODEC(ZSTD(3)),\n" in events
    assert "    `model_id` LowCardinality(Nullable(String)),\n" in events
    assert "    `request_id` Nullable(String),\n" in events and "    `latency_ms` Nullable(Float64),\n" in events
    assert events.endswith(
        ") ENGINE = ReplacingMergeTree(ingestion_time)\nPARTITION BY toDate(`ts`)\n"
        "PRIMARY KEY (`log_group`, `model_id`, `ts`)\nORDER BY (`log_group`, `model_id`, `ts`, `event_id`)\n"
        "SETTINGS allow_nullable_key = 1, fsync_after_insert = 1, fsync_part_directory = 1")
    assert statements[4] == (
        "CREATE VIEW IF NOT EXISTS `dashcam`.log_groups AS\n"
        "SELECT `name`, latest.1 AS `created_ms`, latest.2 AS `retention_days` FROM (\n"
        "    SELECT `name`, argMax((`created_ms`, `retention_days`, `deleted`), `version`) AS latest\n"
        "    FROM `dashcam`.log_group_versions GROUP BY `name`\n"
        ") WHERE latest.3 = 0")
    assert statements[5].startswith("CREATE VIEW IF NOT EXISTS `dashcam`.log_streams AS\n")
    assert statements[5].endswith("FROM `dashcam`.log_stream_parts GROUP BY `log_group`, `name`")
    assert len(statements) == 6
    assert ddl_statements("dashcam", fsync=False)[3].endswith("SETTINGS allow_nullable_key = 1")


def test_cluster_ddl_is_exactly_this():
    statements = ddl_statements("logs", "prod")
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS `logs` ON CLUSTER `prod`"
    assert statements[1].startswith("CREATE TABLE IF NOT EXISTS `logs`.log_group_versions ON CLUSTER `prod` (\n")
    assert statements[1].endswith(
        ") ENGINE = ReplicatedReplacingMergeTree('/clickhouse/dashcam/{database}/log_group_versions', "
        "'{shard}-{replica}', version, deleted)\nORDER BY `name`")
    assert statements[2].endswith(
        ") ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/dashcam/{database}/log_stream_parts', "
        "'{shard}-{replica}')\nORDER BY (`log_group`, `name`)")
    assert statements[3].startswith("CREATE TABLE IF NOT EXISTS `logs`.events_local ON CLUSTER `prod` (\n")
    assert (") ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/events_local', "
            "'{replica}', ingestion_time)\nPARTITION BY toDate(`ts`)\n") in statements[3]
    assert statements[4] == (
        "CREATE TABLE IF NOT EXISTS `logs`.events ON CLUSTER `prod` AS `logs`.events_local\n"
        "ENGINE = Distributed(`prod`, `logs`, events_local, cityHash64(`log_group`, `event_id`))")
    assert statements[5].startswith("CREATE VIEW IF NOT EXISTS `logs`.log_groups ON CLUSTER `prod` AS\n")
    assert statements[6].startswith("CREATE VIEW IF NOT EXISTS `logs`.log_streams ON CLUSTER `prod` AS\n")
    assert len(statements) == 7


def test_retention_is_one_ttl_rule_per_group():
    assert retention_ttl("d", None, {}) == "ALTER TABLE `d`.events REMOVE TTL"
    assert retention_ttl("d", None, {"b": 7, "a'x": 30}) == (
        "ALTER TABLE `d`.events MODIFY TTL "
        "toDateTime(`ts`) + toIntervalDay(30) DELETE WHERE `log_group` = 'a\\'x', "
        "toDateTime(`ts`) + toIntervalDay(7) DELETE WHERE `log_group` = 'b'")
    assert retention_ttl("d", "c", {"a": 1}).startswith("ALTER TABLE `d`.events_local ON CLUSTER `c` MODIFY TTL ")


def test_group_deletes_reach_every_shard():
    assert delete_group_statements("d", "c", "g") == [
        "DELETE FROM `d`.events_local ON CLUSTER `c` WHERE `log_group` = 'g'",
        "DELETE FROM `d`.log_stream_parts WHERE `log_group` = 'g'",
    ]


# ---------------------------------------------------------------------- behaviour on chDB


def _write(store, n: int, start: int = 0, group: str = "g") -> None:
    store.write_records(group, "s", [{"timestamp": f"2026-11-20T10:00:{i:02d}Z", "requestId": f"r{i}"}
                                     for i in range(start, start + n)], source="api")


def test_retention_expires_old_events_by_ttl(open_engine_store):
    store = open_engine_store("clickhouse")
    store.write_records("old", "s", [{"timestamp": "2020-01-01T00:00:00Z", "requestId": "x"}], source="api")
    store.write_records("keep", "s", [{"timestamp": "2020-01-01T00:00:00Z", "requestId": "y"}], source="api")
    store.set_retention("old", 1)
    store.execute("SELECT 1")  # the TTL is applied by merges: force one
    store._writer.command("OPTIMIZE TABLE events FINAL")
    assert store.execute("SELECT log_group FROM events") == [("keep",)]
    ddl = store.execute("SHOW CREATE TABLE events")[0][0]
    assert "WHERE log_group = 'old'" in ddl and "'keep'" not in ddl
    store.set_retention("old", None)
    assert "TTL" not in store.execute("SHOW CREATE TABLE events")[0][0]


def test_copies_of_an_event_written_by_racing_writers_count_once_with_final(chdb_url):
    # Two writers that both passed the duplicate check insert the same events (servers read with
    # FINAL by default; chDB, one writer by construction, when asked): FINAL collapses them.
    from dashcam.store import open_store

    url = chdb_url()
    with open_store(f"{url}&final=1") as store:
        _write(store, 5)
        rows = store._writer.query_arrow("SELECT * FROM events")
        store._insert("events", rows)
        assert store._writer.query("SELECT count() FROM events").result_rows == [(10,)]  # stored twice...
        assert store.execute("SELECT count(*) FROM events") == [(5,)]  # ...counted once
        assert store.list_log_groups()[0].events == 5
        with open_store(url) as plain:  # chDB's default: no FINAL
            assert plain.execute("SELECT count(*) FROM events") == [(10,)]
        store._writer.command("OPTIMIZE TABLE events FINAL")  # what background merges do
    with open_store(url) as merged:
        assert merged.execute("SELECT count(*) FROM events") == [(5,)]


def test_a_chdb_directory_held_by_another_process_is_busy(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {SRC!r})\n"
         f"from dashcam.store import open_store\ns = open_store('chdb://{tmp_path}')\nprint('open', flush=True)\n"
         "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        probe = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {SRC!r})\n"
             "from dashcam.store import open_store\nfrom dashcam.errors import StoreBusyError\n"
             f"try:\n    open_store('chdb://{tmp_path}')\nexcept StoreBusyError as e:\n    print('busy:', e)\n"],
            capture_output=True, text=True)
        assert probe.stdout.startswith("busy:") and "in use" in probe.stdout, probe.stderr
    finally:
        holder.communicate("")


def test_an_unreachable_server_is_a_store_error():
    from dashcam.errors import StoreError
    from dashcam.store import open_store

    with pytest.raises(StoreError, match="cannot"):
        open_store("clickhouse://127.0.0.1:9/db?connect_timeout=1")
    assert not issubclass(StoreError, StoreBusyError)


@pytest.mark.parametrize("engine_name", ["duckdb", "clickhouse"])
def test_bulk_import_follows_python_where_a_stream_starts_with_a_null_chunk(open_engine_store, engine_name):
    # records._stop_reason reads every chunk of a list body; both bulk paths do too.
    from dashcam.sources.lines import frame_lines
    from dashcam.store.base import Store
    from dashcam.store.batch import RawBatchBuilder

    line = (b'{"timestamp":"2026-03-02T14:05:13Z","output":{"outputTokenCount":3,"outputBodyJson":'
            b'[null,{"stop_reason":"z","amazon-bedrock-invocationMetrics":{"invocationLatency":9}}]}}')
    framed = frame_lines(line + b"\n")
    builder = RawBatchBuilder()
    builder.extend("g", "s", framed.array, framed.event_ids("g"), "f", 1)
    table = builder.build()[0]
    engine, python = open_engine_store(engine_name, "bulk"), open_engine_store(engine_name, "python")
    engine.write_raw(table, source="api")
    Store.write_raw(python, table, source="api")
    query = "SELECT stop_reason, latency_ms, output_tokens FROM events"
    assert engine.execute(query) == python.execute(query) == [("z", 9.0, 3)]


def test_the_metadata_views_show_the_current_state_to_any_reader(open_engine_store):
    # Other code (the CloudWatch Logs API) reads log_groups / log_streams with plain SQL.
    store = open_engine_store("clickhouse")
    store.create_log_group("g")
    store.set_retention("g", 30)
    store.set_retention("g", None)
    store.create_log_group("gone")
    store.delete_log_group("gone")
    assert store.execute("SELECT name, retention_days FROM log_groups") == [("g", None)]
    store.set_retention("g", 7)
    assert store.execute("SELECT retention_days FROM log_groups WHERE name = 'g'") == [(7,)]
    _write(store, 2, group="g")
    _write(store, 3, start=10, group="g")
    assert store.execute("SELECT log_group, name, first_event_ms < last_event_ms FROM log_streams") == [
        ("g", "s", 1)]


def test_cluster_statements_are_valid_clickhouse_sql(open_engine_store):
    # No cluster here: ClickHouse's own parser checks every cluster statement dashcam would send.
    store = open_engine_store("clickhouse")
    statements = [*ddl_statements("logs", "prod"), retention_ttl("logs", "prod", {"a": 30}),
                  retention_ttl("logs", "prod", {}), *delete_group_statements("logs", "prod", "g")]
    for statement in statements:
        assert store.execute(f"EXPLAIN AST {statement}"), statement


def test_opening_and_closing_a_chdb_store_again_and_again_does_not_pile_up_threads(tmp_path):
    # chDB rebuilds its engine after its last connection closes and never reclaims the old
    # engine's threads (three open /proc files each): the adapter keeps one engine per process.
    script = (
        "import os, sys\n"
        "from dashcam.store import open_store\n"
        "counts = []\n"
        "for i in range(8):\n"
        "    store = open_store(f'chdb://{sys.argv[1]}?database=db{i}')\n"
        "    store.close()\n"
        "    counts.append(len(os.listdir('/proc/self/task')))\n"
        "print(counts[1], counts[-1])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "chdb")], capture_output=True, text=True,
                          env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr
    second, last = map(int, done.stdout.split())
    assert last - second <= 3, (second, last)
