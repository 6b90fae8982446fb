"""The embedded store's write-ahead log is checkpointed even when DuckDB skips it (staging under way),
its row groups are dashcam's size, and a write the memory limit cannot hold says what to change."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import orjson
import pytest

from dashcam.errors import StoreError
from dashcam.simulate.sample_logs import SampleSpec, generate_records
from dashcam.sources.lines import frame_lines
from dashcam.store.batch import RawBatchBuilder
from dashcam.store.duckdb import ROW_GROUP_SIZE, DuckDBStore
from dashcam.store.duckdb_checkpoints import CheckpointGate

pytestmark = pytest.mark.usefixtures("embedded_store")


def _raw_batch(count: int, seed: int = 3):
    lines = b"".join(orjson.dumps(r) + b"\n" for r in generate_records(SampleSpec(records=count, hours=1, seed=seed)))
    framed = frame_lines(lines)
    builder = RawBatchBuilder()
    builder.extend("g", "s", framed.array, framed.event_ids("g"), "request", 0)
    return builder.build()[0]


def _log_bytes(store: DuckDBStore) -> int:
    wal = Path(str(store.path) + ".wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize("gate_threshold, checkpointed", [(1, True), (1 << 30, False)])
def test_a_commit_leaving_the_log_past_the_threshold_is_checkpointed(tmp_path, gate_threshold, checkpointed):
    store = DuckDBStore(tmp_path)
    try:
        store.execute("SET checkpoint_threshold = '1GB'")  # DuckDB's own checkpoint never comes
        store._checkpoints.threshold_bytes = gate_threshold
        result = store.write_raw(_raw_batch(200), source="api")
        assert result.written == 200
        assert (_log_bytes(store) == 0) is checkpointed
        assert store._checkpoints.checkpoints == (1 if checkpointed else 0)
        assert store.execute("SELECT count(*) FROM events")[0][0] == 200
    finally:
        store.close()


class _RecordingConnection:
    """Stands in for the store's connection: records each statement and how many batches were
    being staged when it ran."""

    def __init__(self, gate: CheckpointGate) -> None:
        self.gate = gate
        self.statements: list[tuple[str, int]] = []

    def execute(self, sql: str) -> None:
        self.statements.append((sql, self.gate._staging))


def test_a_due_checkpoint_waits_for_staging_under_way_and_holds_new_staging_back(tmp_path):
    wal = tmp_path / "store.duckdb.wal"
    wal.write_bytes(b"x" * 100)
    gate = CheckpointGate(wal, threshold_bytes=10)
    con = _RecordingConnection(gate)
    first_in, release_first, second_in = threading.Event(), threading.Event(), threading.Event()

    def stage(entered: threading.Event, release: threading.Event | None) -> None:
        with gate.staging():
            entered.set()
            if release is not None:
                release.wait(10)

    first = threading.Thread(target=stage, args=(first_in, release_first))
    first.start()
    assert first_in.wait(10)
    committer = threading.Thread(target=gate.after_commit, args=(con,))
    committer.start()
    with gate._changed:
        assert gate._changed.wait_for(lambda: gate._due, timeout=10)
    second = threading.Thread(target=stage, args=(second_in, None))
    second.start()
    assert not second_in.wait(0.3)  # held back while the checkpoint is due
    assert con.statements == []  # and the checkpoint waits for the first batch's staging
    release_first.set()
    committer.join(10)
    assert con.statements == [("CHECKPOINT", 0)]
    assert second_in.wait(10)  # staging goes on once it is done
    first.join(10)
    second.join(10)
    assert gate.checkpoints == 1


def test_a_checkpoint_duckdb_refuses_waits_for_the_next_commit(tmp_path):
    wal = tmp_path / "store.duckdb.wal"
    wal.write_bytes(b"x" * 100)
    gate = CheckpointGate(wal, threshold_bytes=10)

    class Refusing:
        def execute(self, sql: str) -> None:
            raise duckdb.TransactionException("Cannot CHECKPOINT: there are other write transactions active")

    gate.after_commit(Refusing())
    assert gate.checkpoints == 0
    with gate.staging():  # not left holding staging back
        pass


def test_new_data_is_stored_in_row_groups_of_dashcams_size(tmp_path):
    store = DuckDBStore(tmp_path)
    try:
        rows = 2 * ROW_GROUP_SIZE + 100
        store.execute(f"CREATE TABLE numbers AS SELECT range AS n FROM range({rows})")
        store.execute("CHECKPOINT")
        groups = store.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('numbers')")[0][0]
        assert groups == 3
    finally:
        store.close()


def test_temp_files_go_beside_the_store_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = DuckDBStore(tmp_path / "data")
    try:
        assert store.execute("SELECT current_setting('temp_directory')")[0][0] == str(store.path) + ".tmp"
    finally:
        store.close()


def test_a_write_the_memory_limit_cannot_hold_names_the_setting_and_stores_nothing(tmp_path):
    store = DuckDBStore(tmp_path)
    batch = _raw_batch(20_000)
    try:
        store.execute("SET memory_limit = '16MB'")
        with pytest.raises(StoreError, match="DASHCAM_DUCKDB_MEMORY_LIMIT") as raised:
            store.write_raw(batch, source="api")
        assert "nothing from this batch was stored" in str(raised.value)
        assert store.execute("SELECT count(*) FROM events")[0][0] == 0
        store.execute("SET memory_limit = '1GB'")
        assert store.write_raw(batch, source="api").written == 20_000
    finally:
        store.close()
