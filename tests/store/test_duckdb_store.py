"""What only the DuckDB adapter does: one process owns the data directory.

The Store contract itself (durable, idempotent writes; groups, streams, retention; errors) is
tested on every engine in ``test_store.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dashcam.store.duckdb import DuckDBStore


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


def _sizes_by_scan(store: DuckDBStore) -> dict[str, tuple[int, int]]:
    return {g: (int(n), int(b)) for g, n, b in store.execute(
        "SELECT log_group, count(*), sum(strlen(message)) FROM events GROUP BY log_group")}


def _listed(store: DuckDBStore) -> dict[str, tuple[int, int]]:
    return {g.name: (g.events, g.stored_bytes) for g in store.list_log_groups() if g.events}


@pytest.mark.parametrize("settle_ms", [0, 300_000])  # 0: every event is settled, so the kept sums are used
def test_log_group_sizes_stay_exact_through_writes_repeats_and_deletes(tmp_path, monkeypatch, settle_ms):
    from dashcam.store import duckdb as duckdb_store

    monkeypatch.setattr(duckdb_store, "_SIZES_SETTLE_MS", settle_ms)
    store = DuckDBStore(tmp_path / "store")
    try:
        def records(n: int, start: int = 0, text: str = "x") -> list[dict]:
            return [{"timestamp": 1_772_442_000 + i, "modelId": "m", "requestId": f"r{i}",
                     "input": {"inputBodyJson": {"prompt": text * (i + 1)}}} for i in range(start, start + n)]

        store.write_records("a", "s", records(5), source="api")
        assert _listed(store) == _sizes_by_scan(store)
        store.write_records("b", "s", records(3, text="yy"), source="api")
        store.write_records("a", "s", records(5) + records(4, start=5), source="api")  # 5 repeats
        assert _listed(store) == _sizes_by_scan(store) and _listed(store)["a"][0] == 9
        store.delete_log_group("b")
        assert _listed(store) == _sizes_by_scan(store) == {"a": _sizes_by_scan(store)["a"]}
        store.execute("DELETE FROM events WHERE request_id = 'r0'")  # a delete the store was not told of
        assert _listed(store) == _sizes_by_scan(store) and _listed(store)["a"][0] == 8
    finally:
        store.close()


def test_a_bulk_import_runs_the_engine_one_thread_per_statement_and_gives_the_threads_back(tmp_path, monkeypatch):
    """The reader, stager and writer threads of a BatchWriter are its parallelism (see bulk_writes)."""
    import orjson

    from dashcam.ingest import BatchWriter
    from dashcam.simulate.sample_logs import SampleSpec, generate_records
    from dashcam.sources.lines import frame_lines

    store = DuckDBStore(tmp_path)
    setting = "SELECT current_setting('threads')"
    store.execute("SET threads = 3")  # whatever this machine's default, something to give back
    seen = []
    original = DuckDBStore.prepare_raw

    def recording(self, batch, **kwargs):
        seen.append(self.execute(setting)[0][0])
        return original(self, batch, **kwargs)

    monkeypatch.setattr(DuckDBStore, "prepare_raw", recording)
    lines = b"".join(orjson.dumps(r) + b"\n" for r in generate_records(SampleSpec(records=20, hours=1, seed=8)))
    with BatchWriter(store, source="test") as writer:
        writer.add_lines("/g", "s", frame_lines(lines), "file", 1)
    assert writer.result.written == 20
    assert seen == [1]
    assert store.execute(setting)[0][0] == 3
    store.close()


def test_a_log_group_deleted_and_written_again_exists_again_and_a_failed_write_creates_none(tmp_path):
    """The store remembers which groups exist so that a write into one skips creating it."""
    import pyarrow as pa

    from dashcam.errors import StoreError
    from dashcam.store.batch import EventBatchBuilder

    store = DuckDBStore(tmp_path / "store")
    try:
        record = {"timestamp": 1_772_442_000, "modelId": "m", "requestId": "r1"}
        store.write_records("g", "s", [record], source="api")
        store.delete_log_group("g")
        assert [g.name for g in store.list_log_groups()] == []
        store.write_records("g", "s", [record], source="api")
        assert [(g.name, g.events) for g in store.list_log_groups()] == [("g", 1)]
        assert [s.name for s in store.list_log_streams("g")] == ["s"]  # its stream, too, is new again

        # A write that fails after creating its group in the transaction: the group is rolled back
        # with it, and the next write into it creates it.
        builder = EventBatchBuilder()
        builder.add_record("h", "s", record, source="api")
        good = builder.build()
        column = good.schema.get_field_index("input_tokens")
        bad = good.set_column(column, "input_tokens", pa.array(["not a number"]))
        with pytest.raises(StoreError):
            store.write_batch(bad)  # the engine cannot cast the text to the column's integer
        assert [g.name for g in store.list_log_groups()] == ["g"]
        store.write_batch(good)
        assert sorted(g.name for g in store.list_log_groups()) == ["g", "h"]
    finally:
        store.close()


def test_stream_times_move_the_same_whether_a_stream_is_new_or_known(tmp_path):
    """Known streams are updated rather than upserted (one or several per write): same times."""
    from dashcam.store.batch import EventBatchBuilder

    store = DuckDBStore(tmp_path / "store")

    def write(*events: tuple[str, int], ingested: int) -> None:
        builder = EventBatchBuilder()
        for stream, ts in events:
            builder.add_record("g", stream, {"timestamp": ts / 1000, "modelId": "m", "requestId": f"{stream}{ts}"},
                               source="api")
        store.write_batch(builder.build(ingestion_ms=ingested))

    def times() -> dict[str, tuple]:
        return {s.name: (s.first_event_ms, s.last_event_ms, s.last_ingestion_ms) for s in store.list_log_streams("g")}

    try:
        write(("a", 1_772_442_000_000), ingested=1_772_442_100_000)  # new: created
        write(("a", 1_772_441_000_000), ingested=1_772_442_200_000)  # known, alone: earlier first event
        assert times() == {"a": (1_772_441_000_000, 1_772_442_000_000, 1_772_442_200_000)}
        write(("b", 1_772_443_000_000), ingested=1_772_442_300_000)
        write(("a", 1_772_444_000_000), ("b", 1_772_440_000_000), ingested=1_772_442_400_000)  # both known
        assert times() == {"a": (1_772_441_000_000, 1_772_444_000_000, 1_772_442_400_000),
                           "b": (1_772_440_000_000, 1_772_443_000_000, 1_772_442_400_000)}
        write(("a", 1_772_442_500_000), ingested=1_772_442_500_000)  # inside the span: only ingestion moves
        assert times()["a"] == (1_772_441_000_000, 1_772_444_000_000, 1_772_442_500_000)
    finally:
        store.close()
