"""The embedded store's write-ahead log is checkpointed even when DuckDB skips it (staging under way),
its row groups are dashcam's size, checkpoints leave row groups as they are except to give back a
deleted log group's space, and a write the memory limit cannot hold says what to change."""

from __future__ import annotations

import functools
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


def _group_lines(log_group: str, lines: list[bytes]):
    framed = frame_lines(b"".join(line + b"\n" for line in lines))
    return log_group, framed


def _write(store: DuckDBStore, *groups) -> None:
    builder = RawBatchBuilder()
    for log_group, framed in groups:
        builder.extend(log_group, "s", framed.array, framed.event_ids(log_group), "request", 0)
    store.write_raw(builder.build()[0], source="api")


def _row_groups_and_blocks(store: DuckDBStore) -> tuple[int, int]:
    groups = store.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('events')")[0][0]
    return groups, store.execute("SELECT used_blocks FROM pragma_database_size()")[0][0]


@functools.cache
def _lines() -> list[bytes]:
    """Six row groups' worth of records, in time order."""
    return [orjson.dumps(r) for r in generate_records(SampleSpec(records=6 * ROW_GROUP_SIZE, hours=6, seed=5))]


def test_a_checkpoint_leaves_the_short_row_groups_of_large_commits_unmerged(tmp_path):
    store = DuckDBStore(tmp_path)
    try:
        per_commit = ROW_GROUP_SIZE + ROW_GROUP_SIZE // 4  # a full row group and a short one each
        for start in range(0, 4 * per_commit, per_commit):
            _write(store, _group_lines("g", _lines()[start:start + per_commit]))
        assert _row_groups_and_blocks(store)[0] == 8
        store.execute("CHECKPOINT")
        assert _row_groups_and_blocks(store)[0] == 8  # merging them cost more than the writes saved
        assert store.execute("SELECT count(*) FROM events")[0][0] == 4 * per_commit
    finally:
        store.close()


def test_deleting_a_log_group_gives_back_the_space_of_its_events_among_others(tmp_path):
    store = DuckDBStore(tmp_path)
    try:
        lines = _lines()[:4 * ROW_GROUP_SIZE]
        chunks = [lines[start:start + 256] for start in range(0, len(lines), 256)]
        # The two groups' events alternate every 256 lines: every row group holds both.
        _write(store, *(_group_lines("/a" if i % 2 else "/b", chunk) for i, chunk in enumerate(chunks)))
        store.execute("CHECKPOINT")
        groups_before, blocks_before = _row_groups_and_blocks(store)
        store.delete_log_group("/a")
        groups_after, blocks_after = _row_groups_and_blocks(store)
        assert (groups_before, groups_after) == (4, 2)
        assert blocks_after < 0.7 * blocks_before
        assert store.execute("SELECT log_group, count(*) FROM events GROUP BY 1") == [("/b", 2 * ROW_GROUP_SIZE)]
    finally:
        store.close()


def test_expired_events_give_back_their_space_without_rewriting_row_groups(tmp_path):
    store = DuckDBStore(tmp_path)
    try:
        for start in range(0, 6 * ROW_GROUP_SIZE, 2 * ROW_GROUP_SIZE):
            _write(store, _group_lines("g", _lines()[start:start + 2 * ROW_GROUP_SIZE]))
        store.execute("CHECKPOINT")
        _, blocks_before = _row_groups_and_blocks(store)
        store.set_retention("g", 1)
        middle = store.execute(f"SELECT epoch_ms(ts) FROM events ORDER BY ts LIMIT 1 OFFSET {3 * ROW_GROUP_SIZE}")[0][0]
        older = store.execute(f"SELECT count(*) FROM events WHERE epoch_ms(ts) < {middle}")[0][0]
        assert store.delete_expired(middle + 86_400_000) == older  # the older half has expired
        store.execute("CHECKPOINT")
        assert _row_groups_and_blocks(store)[1] < 0.75 * blocks_before
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
