"""The Store port's contract, on every engine (DuckDB embedded, ClickHouse through chDB): durable,
idempotent writes; log groups, streams and retention; engine errors translated."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from dashcam.errors import (
    AlreadyExistsError, ConfigError, NotFoundError, QueryExecutionError, QueryStoppedError, StoreError,
)
from dashcam.store.base import Interrupt
from dashcam.store.schema import ARROW_SCHEMA

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _records(n: int, *, start: int = 0, model: str = "amazon.nova-lite-v1:0") -> list[dict]:
    return [
        {"timestamp": f"2026-03-02T10:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}Z", "modelId": model,
         "requestId": f"req-{start + i}", "operation": "Converse", "input": {"inputTokenCount": i}}
        for i in range(n)
    ]


def test_written_events_are_queryable_with_typed_columns(store_of):
    store = store_of()
    result = store.write_records("g", "s", _records(3), source="api")
    assert (result.written, result.duplicates) == (3, 0)
    rows = store.execute("SELECT log_group, log_stream, model_id, input_tokens, source FROM events ORDER BY ts")
    assert rows == [("g", "s", "amazon.nova-lite-v1:0", i, "api") for i in range(3)]


def test_a_retried_batch_is_not_stored_twice(store_of):
    store = store_of()
    store.write_records("g", "s", _records(5), source="api")
    again = store.write_records("g", "s", _records(5) + _records(2, start=5), source="api")
    assert (again.written, again.duplicates) == (2, 5)
    assert store.execute("SELECT count(*) FROM events") == [(7,)]


def test_the_same_event_in_two_groups_is_two_events(store_of):
    store = store_of()
    store.write_records("a", "s", _records(2), source="api")
    store.write_records("b", "s", _records(2), source="api")
    assert store.execute("SELECT log_group, count(*) FROM events GROUP BY 1 ORDER BY 1") == [("a", 2), ("b", 2)]


def test_acknowledged_writes_survive_a_reopen(store_of):
    store = store_of("reopen", database="reopen_db")
    store.write_records("g", "s", _records(4), source="api")
    store.close()
    reopened = store_of("reopen", database="reopen_db")
    assert reopened.execute("SELECT count(*) FROM events") == [(4,)]


def _in_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {SRC!r})\n" + code],
                          capture_output=True, text=True)


def test_acknowledged_writes_survive_a_killed_process(engine, tmp_path):
    # The child commits, reports, then dies without closing: what it acknowledged must be there.
    # (A second child reads it back: one process holds only one chDB directory.)
    target = str(tmp_path / "data") if engine == "duckdb" else f"chdb://{tmp_path / 'chdb'}"
    writer = _in_child(
        "import os\nfrom dashcam.store import open_store\n"
        f"s = open_store({target!r})\n"
        "s.write_records('g', 's', [{'timestamp': '2026-03-02T10:00:0%d' % i + 'Z', 'requestId': str(i)}"
        " for i in range(5)], source='api')\n"
        "print('acknowledged', flush=True)\nos._exit(9)\n")
    assert "acknowledged" in writer.stdout and writer.returncode == 9, writer.stderr
    reader = _in_child(f"from dashcam.store import open_store\nprint(open_store({target!r}).execute("
                       "'SELECT count(*) FROM events'))")
    assert reader.stdout.strip() == "[(5,)]", reader.stderr


def test_log_groups_and_streams_are_tracked(store_of):
    store = store_of()
    store.create_log_group("empty")
    store.write_records("/aws/bedrock/x", "aws/bedrock/modelinvocations", _records(3), source="api")
    groups = {g.name: g for g in store.list_log_groups()}
    assert set(groups) == {"empty", "/aws/bedrock/x"}
    assert groups["/aws/bedrock/x"].events == 3 and groups["empty"].events == 0
    assert groups["/aws/bedrock/x"].stored_bytes > 0 and groups["empty"].stored_bytes == 0
    assert [g.name for g in store.list_log_groups("/aws")] == ["/aws/bedrock/x"]
    (stream,) = store.list_log_streams("/aws/bedrock/x")
    assert stream.name == "aws/bedrock/modelinvocations"
    assert stream.first_event_ms == 1772445600000 and stream.last_event_ms == 1772445602000
    store.write_records("/aws/bedrock/x", "aws/bedrock/modelinvocations", _records(2, start=60), source="api")
    (stream,) = store.list_log_streams("/aws/bedrock/x")
    assert stream.first_event_ms == 1772445600000 and stream.last_event_ms == 1772445661000
    assert store.list_log_streams("/aws/bedrock/x", "nope") == []
    with pytest.raises(AlreadyExistsError):
        store.create_log_group("empty")
    store.create_log_group("empty", exist_ok=True)


def test_deleting_a_group_removes_its_events_only(store_of):
    store = store_of()
    store.write_records("a", "s", _records(2), source="api")
    store.write_records("b", "s", _records(3), source="api")
    store.delete_log_group("a")
    assert [g.name for g in store.list_log_groups()] == ["b"]
    assert store.execute("SELECT count(*) FROM events") == [(3,)]
    with pytest.raises(NotFoundError, match="'a'"):
        store.delete_log_group("a")
    with pytest.raises(NotFoundError):
        store.list_log_streams("a")
    # The same events can come back after a delete (nothing remembers them as duplicates).
    assert store.write_records("a", "s", _records(2), source="api").written == 2
    assert store.execute("SELECT count(*) FROM events WHERE log_group = 'a'") == [(2,)]


def test_retention_takes_cloudwatch_values_only(store_of):
    store = store_of()
    store.create_log_group("g")
    store.set_retention("g", 30)
    assert store.list_log_groups()[0].retention_days == 30
    store.set_retention("g", None)
    assert store.list_log_groups()[0].retention_days is None
    with pytest.raises(ConfigError, match="31"):
        store.set_retention("g", 31)
    with pytest.raises(NotFoundError):
        store.set_retention("nope", 30)


def test_engine_errors_become_query_execution_errors(store_of, engine):
    store = store_of()
    bad_regex = {"duckdb": "SELECT regexp_matches('a', '(')", "clickhouse": "SELECT match('a', '(')"}[engine]
    with pytest.raises(QueryExecutionError, match="could not run"):
        store.execute(bad_regex)


def test_a_failed_batch_stores_nothing_and_the_store_keeps_working(store_of):
    store = store_of()
    store.write_records("g", "s", _records(2), source="api")
    wrong = pa.table({"event_id": pa.array([1], pa.int64())})  # not the event schema
    with pytest.raises(StoreError, match="nothing from this batch"):
        store.write_batch(wrong)
    assert store.write_records("g", "s", _records(1, start=9), source="api").written == 1
    assert store.execute("SELECT count(*) FROM events") == [(3,)]


def test_reads_proceed_while_a_write_is_in_flight(store_of):
    store = store_of()
    store.write_records("g", "s", _records(10), source="api")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for batch in range(20):
                store.write_records("g", "s", _records(50, start=100 + 50 * batch), source="api")
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    counts = [store.execute("SELECT count(*) FROM events")[0][0] for _ in range(30)]
    thread.join()
    assert not errors
    assert counts == sorted(counts) and counts[0] >= 10
    assert store.execute("SELECT count(*) FROM events") == [(10 + 1000,)]


def test_the_event_table_matches_the_arrow_schema(store_of):
    store = store_of()
    columns = [r[0] for r in store.execute("DESCRIBE events")]
    assert columns == ARROW_SCHEMA.names


def test_scan_events_gives_back_what_was_written(store_of):
    store = store_of()
    store.write_records("g", "s", _records(130), source="api")
    store.write_records("other", "s", _records(3), source="api")
    batches = list(store.scan_events("g", batch_rows=50))
    assert [b.num_rows for b in batches] == [50, 50, 30]
    assert all(b.schema == ARROW_SCHEMA for b in batches)
    table = pa.concat_tables(batches)
    assert table["request_id"].to_pylist() == [f"req-{i}" for i in range(130)]
    assert set(table["log_group"].to_pylist()) == {"g"}


def test_a_redelivery_in_the_last_millisecond_of_a_batch_is_found(store_of):
    # The duplicate check bounds its search by the batch's time span, to the millisecond.
    store = store_of()
    records = lambda: [{"timestamp": "2026-03-02T10:00:00.100Z", "requestId": "a"},  # noqa: E731
                       {"timestamp": "2026-03-02T10:00:00.900Z", "requestId": "b"}]
    store.write_records("g", "s", records(), source="api")
    again = store.write_records("g", "s", records(), source="api")
    assert (again.written, again.duplicates) == (0, 2)
    assert store.execute("SELECT count(*) FROM events") == [(2,)]


# Hours of work for either engine: only an interrupt ends it within a test's lifetime.
ENDLESS_SQL = {
    "duckdb": "SELECT count(*) FROM range(1000000000000) t(i) WHERE hash(i) % 7 = 1",
    "clickhouse": "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) % 7 = 1",
}


def test_an_interrupt_stops_a_running_query(store_of, engine):
    store = store_of()
    interrupt, outcome = Interrupt(), {}

    def run() -> None:
        try:
            store.execute(ENDLESS_SQL[engine], interrupt=interrupt)
            outcome["error"] = None
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(1.0)  # the query is running
    assert worker.is_alive()
    interrupt.stop()
    worker.join(60)
    assert not worker.is_alive() and isinstance(outcome["error"], QueryStoppedError)
    assert store.execute("SELECT 1") == [(1,)]  # the store keeps serving
    with pytest.raises(QueryStoppedError):  # stopped before it starts: it never runs
        store.execute(ENDLESS_SQL[engine], interrupt=interrupt)
