"""The DuckDB adapter behind the Store port: durable, idempotent writes; groups, streams, retention."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from dashcam.errors import AlreadyExistsError, ConfigError, NotFoundError, QueryExecutionError, StoreBusyError, StoreError
from dashcam.store.duckdb import DuckDBStore
from dashcam.store.schema import ARROW_SCHEMA


def _records(n: int, *, start: int = 0, model: str = "amazon.nova-lite-v1:0") -> list[dict]:
    return [
        {"timestamp": f"2026-03-02T10:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}Z", "modelId": model,
         "requestId": f"req-{start + i}", "operation": "Converse", "input": {"inputTokenCount": i}}
        for i in range(n)
    ]


def test_written_events_are_queryable_with_typed_columns(tmp_path):
    with DuckDBStore(tmp_path) as store:
        result = store.write_records("g", "s", _records(3), source="api")
        assert (result.written, result.duplicates) == (3, 0)
        rows = store.execute("SELECT log_group, log_stream, model_id, input_tokens, source FROM events ORDER BY ts")
        assert rows == [("g", "s", "amazon.nova-lite-v1:0", i, "api") for i in range(3)]


def test_a_retried_batch_is_not_stored_twice(tmp_path):
    with DuckDBStore(tmp_path) as store:
        store.write_records("g", "s", _records(5), source="api")
        again = store.write_records("g", "s", _records(5) + _records(2, start=5), source="api")
        assert (again.written, again.duplicates) == (2, 5)
        assert store.execute("SELECT count(*) FROM events") == [(7,)]


def test_the_same_event_in_two_groups_is_two_events(tmp_path):
    with DuckDBStore(tmp_path) as store:
        store.write_records("a", "s", _records(2), source="api")
        store.write_records("b", "s", _records(2), source="api")
        assert store.execute("SELECT log_group, count(*) FROM events GROUP BY 1 ORDER BY 1") == [("a", 2), ("b", 2)]


def test_acknowledged_writes_survive_a_reopen(tmp_path):
    store = DuckDBStore(tmp_path)
    store.write_records("g", "s", _records(4), source="api")
    store.close()
    with DuckDBStore(tmp_path) as reopened:
        assert reopened.execute("SELECT count(*) FROM events") == [(4,)]


def test_acknowledged_writes_survive_a_killed_process(tmp_path):
    # The child commits, reports, then dies without closing or checkpointing: only the WAL has it.
    code = (
        "import os, sys; sys.path.insert(0, %r)\n"
        "from dashcam.store.duckdb import DuckDBStore\n"
        "s = DuckDBStore(%r)\n"
        "s.write_records('g', 's', [{'timestamp': '2026-03-02T10:00:0%%dZ' %% i, 'requestId': str(i)}"
        " for i in range(5)], source='api')\n"
        "print('acknowledged', flush=True)\n"
        "os._exit(9)\n"
    ) % (str(Path(__file__).resolve().parents[2] / "src"), str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "acknowledged" in done.stdout and done.returncode == 9
    with DuckDBStore(tmp_path) as store:
        assert store.execute("SELECT count(*) FROM events") == [(5,)]


def test_log_groups_and_streams_are_tracked(tmp_path):
    with DuckDBStore(tmp_path) as store:
        store.create_log_group("empty")
        store.write_records("/aws/bedrock/x", "aws/bedrock/modelinvocations", _records(3), source="api")
        groups = {g.name: g for g in store.list_log_groups()}
        assert set(groups) == {"empty", "/aws/bedrock/x"}
        assert groups["/aws/bedrock/x"].events == 3 and groups["empty"].events == 0
        assert [g.name for g in store.list_log_groups("/aws")] == ["/aws/bedrock/x"]
        (stream,) = store.list_log_streams("/aws/bedrock/x")
        assert stream.name == "aws/bedrock/modelinvocations"
        assert stream.first_event_ms == 1772445600000 and stream.last_event_ms == 1772445602000
        with pytest.raises(AlreadyExistsError):
            store.create_log_group("empty")
        store.create_log_group("empty", exist_ok=True)


def test_deleting_a_group_removes_its_events_only(tmp_path):
    with DuckDBStore(tmp_path) as store:
        store.write_records("a", "s", _records(2), source="api")
        store.write_records("b", "s", _records(3), source="api")
        store.delete_log_group("a")
        assert [g.name for g in store.list_log_groups()] == ["b"]
        assert store.execute("SELECT count(*) FROM events") == [(3,)]
        with pytest.raises(NotFoundError, match="'a'"):
            store.delete_log_group("a")


def test_retention_takes_cloudwatch_values_only(tmp_path):
    with DuckDBStore(tmp_path) as store:
        store.create_log_group("g")
        store.set_retention("g", 30)
        assert store.list_log_groups()[0].retention_days == 30
        store.set_retention("g", None)
        assert store.list_log_groups()[0].retention_days is None
        with pytest.raises(ConfigError, match="31"):
            store.set_retention("g", 31)
        with pytest.raises(NotFoundError):
            store.set_retention("nope", 30)


def test_engine_errors_become_query_execution_errors(tmp_path):
    with DuckDBStore(tmp_path) as store:
        with pytest.raises(QueryExecutionError, match="could not run"):
            store.execute("SELECT regexp_matches('a', '(')")


def test_a_failed_batch_stores_nothing_and_the_store_keeps_working(tmp_path):
    with DuckDBStore(tmp_path) as store:
        store.write_records("g", "s", _records(2), source="api")
        wrong = pa.table({"event_id": pa.array([1], pa.int64())})  # not the event schema
        with pytest.raises(StoreError, match="nothing from this batch"):
            store.write_batch(wrong)
        assert store.write_records("g", "s", _records(1, start=9), source="api").written == 1
        assert store.execute("SELECT count(*) FROM events") == [(3,)]


def test_a_second_process_gets_a_clear_busy_error(tmp_path):
    with DuckDBStore(tmp_path):
        code = (
            "import sys; sys.path.insert(0, %r)\n"
            "from dashcam.store.duckdb import DuckDBStore\n"
            "from dashcam.errors import StoreBusyError\n"
            "try:\n    DuckDBStore(%r)\nexcept StoreBusyError as e:\n    print('busy:', e)\n"
        ) % (str(Path(__file__).resolve().parents[2] / "src"), str(tmp_path))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        assert out.startswith("busy:") and "another dashcam process" in out


def test_reads_proceed_while_a_write_is_in_flight(tmp_path):
    with DuckDBStore(tmp_path) as store:
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


def test_the_event_table_matches_the_arrow_schema(tmp_path):
    with DuckDBStore(tmp_path) as store:
        columns = [r[0] for r in store.execute("DESCRIBE events")]
        assert columns == ARROW_SCHEMA.names
