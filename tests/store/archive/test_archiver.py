"""Archiving with an injected clock, on both store engines (DuckDB; ClickHouse through chDB):
events older than the hot window move to Parquet files, the store lets them go, every query
answers as before; re-runs, crashes, re-deliveries and retention never duplicate or lose an
event; and the two engines write one archive format, each reading the other's files."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dashcam.errors import StoreError
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, generate_records
from dashcam.store.archive import Archiver, archive_once, configure
from dashcam.store.archive.archiver import Archive
from dashcam.store.archive.manifest import DAY_MS, Manifest, day_of
from dashcam.store.migrate import migrate
from dashcam.store.retention import wall_clock_ms
from dashcam.store.schema import EVENT_COLUMNS

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
START_MS = int(START.timestamp() * 1000)
BEDROCK, APP = "/aws/bedrock/modelinvocations", "/app/it's-another"
NOW = START_MS + 4 * DAY_MS + 12 * 3_600_000     # day 5, noon: with 2 hot days, days 1-2 are due
CUTOFF = START_MS + 2 * DAY_MS

QUERIES = [
    "stats count(*) as calls, sum(inputTokenCount) as tokens, avg(latencyMs) as latency by bin(6h)",
    "stats count(*) as calls by modelId, @log | sort calls desc, modelId",
    "fields @timestamp, requestId, @ptr | sort @timestamp desc | limit 25",
    "fields @timestamp, requestId | sort @timestamp asc | limit 7",
    "filter modelId like /claude/ and inputTokenCount > 100 | stats count(*) as n, max(outputTokenCount) as m",
    "filter ispresent(errorCode) | fields @timestamp, errorCode, modelId | sort @timestamp desc",
    "fields modelId, operation | sort modelId, operation | dedup modelId, operation",
    "stats pct(latencyMs, 90) as p90, count_distinct(modelId) as models",
]
SCOPES = [dict(), dict(log_groups=[APP]),
          dict(start_ms=START_MS + DAY_MS + 3_600_000, end_ms=START_MS + 3 * DAY_MS),
          dict(log_groups=[BEDROCK], start_ms=START_MS, end_ms=START_MS + DAY_MS - 1)]


def records(seed: int) -> list[dict]:
    return list(generate_records(SampleSpec(records=1200, hours=24 * 4, seed=seed, start=START)))


@pytest.fixture
def data_dir(tmp_path, on_engine) -> Path:
    """A data directory whose store (the test's engine, see conftest) holds two groups' events."""
    with Dashcam.open(tmp_path / "data") as dashcam:
        dashcam.store.write_records(BEDROCK, "aws/bedrock/modelinvocations", records(1), source="bedrock-log")
        dashcam.store.write_records(APP, "app", records(2), source="bedrock-log")
    return tmp_path / "data"


def answers(dashcam: Dashcam) -> list:
    return [dashcam.query(text, **scope).rows for scope in SCOPES for text in QUERIES]


def older_than(dashcam: Dashcam, ms: int) -> str:
    """SQL for events earlier than epoch ms ``ms``, in the store's dialect."""
    if dashcam.store.dialect == "duckdb":
        return f"ts < epoch_ms({int(ms)})"
    return f"ts < fromUnixTimestamp64Milli({int(ms)}, 'UTC')"


def live_count(dashcam: Dashcam, where: str = "true") -> int:
    return dashcam.store.inner.execute(f"SELECT count(*) FROM events WHERE {where}")[0][0]


def event_ids(dashcam: Dashcam, where: str) -> set[tuple[str, int]]:
    return set(dashcam.store.inner.execute(f"SELECT log_group, event_id FROM events WHERE {where}"))


def archived_tables(root: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(root.rglob("*.parquet")))


def test_old_events_move_to_parquet_and_queries_answer_as_before(data_dir, tmp_path):
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        due = event_ids(dashcam, older_than(dashcam, CUTOFF))
        kept = event_ids(dashcam, f"NOT ({older_than(dashcam, CUTOFF)})")
        assert due and kept
        configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
        run = archive_once(dashcam.store, NOW)

        assert run.rows_archived == run.rows_deleted == len(due)
        assert event_ids(dashcam, "true") == kept       # the store let go of exactly the due events
        table = archived_tables(tmp_path / "archive")
        assert set(zip(table["log_group"].to_pylist(), table["event_id"].to_pylist())) == due
        assert table.num_rows == len(due)
        assert max(table["ts"].to_pylist()) < datetime.fromtimestamp(CUTOFF / 1000)
        keys = {p.relative_to(tmp_path / "archive").as_posix() for p in (tmp_path / "archive").rglob("*.parquet")}
        assert keys == {f"log_group={g}/date=2026-03-0{d}/part-0.parquet"
                        for g in ("%2Faws%2Fbedrock%2Fmodelinvocations", "%2Fapp%2Fit%27s-another") for d in (1, 2)}
        assert answers(dashcam) == before
        assert sum(g.events for g in dashcam.log_groups()) == len(due) + len(kept)
        metrics = dashcam.metric_statistics("Invocations", ["SampleCount"], START_MS, START_MS + 4 * DAY_MS, 86400)

    with Dashcam.open(data_dir) as reopened:   # the manifest is on disk: a new process sees the same
        assert answers(reopened) == before
        assert reopened.metric_statistics("Invocations", ["SampleCount"], START_MS, START_MS + 4 * DAY_MS,
                                          86400) == metrics


def test_rerunning_is_idempotent_and_later_days_follow(data_dir, tmp_path):
    configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        first = archive_once(dashcam.store, NOW)
        again = archive_once(dashcam.store, NOW)
        assert first.files and again.files == [] and again.rows_archived == again.rows_deleted == 0
        later = archive_once(dashcam.store, NOW + DAY_MS)   # a day on, one more day per group
        assert len(later.files) == 2
        assert live_count(dashcam, older_than(dashcam, CUTOFF + DAY_MS)) == 0
        assert answers(dashcam) == before
    assert archived_tables(tmp_path / "archive").num_rows == first.rows_archived + later.rows_archived


def test_a_crash_between_writing_and_deleting_counts_nothing_twice(data_dir, tmp_path, monkeypatch):
    configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        total = live_count(dashcam)

        def crash(*args, **kwargs):
            raise StoreError("killed before the delete")

        with monkeypatch.context() as patched:  # undoes the crash only, not the test's environment
            patched.setattr(Archive, "_delete_archived_rows", crash)
            with pytest.raises(StoreError):
                archive_once(dashcam.store, NOW)
        assert len(dashcam.archive.manifest.files) == 1 and live_count(dashcam) == total  # in both places
        assert answers(dashcam) == before

    with Dashcam.open(data_dir) as restarted:
        assert answers(restarted) == before
        run = archive_once(restarted.store, NOW)
        assert answers(restarted) == before
        assert all(f.live_deleted for f in restarted.archive.manifest.files)
        archived = archived_tables(tmp_path / "archive")
        assert archived.num_rows == len(set(zip(archived["log_group"].to_pylist(), archived["event_id"].to_pylist())))
        assert archived.num_rows + live_count(restarted) == total
        assert run.rows_deleted == archived.num_rows


def test_a_crash_before_the_manifest_leaves_nothing_read(data_dir, tmp_path, monkeypatch):
    configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        with monkeypatch.context() as patched:  # undoes the crash only, not the test's environment
            patched.setattr(Manifest, "add", lambda self, entry: (_ for _ in ()).throw(StoreError("killed")))
            with pytest.raises(StoreError):
                archive_once(dashcam.store, NOW)
        assert list((tmp_path / "archive").rglob("*.parquet"))    # written, but listed nowhere
        assert answers(dashcam) == before
        run = archive_once(dashcam.store, NOW)
        assert answers(dashcam) == before
        assert archived_tables(tmp_path / "archive").num_rows == run.rows_archived   # the orphan was overwritten


def test_a_redelivered_archived_event_is_counted_once_and_not_archived_again(data_dir, tmp_path):
    configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        archive_once(dashcam.store, NOW)
        old = [r for r in records(1) if r["timestamp"] < "2026-03-02"][:5]
        result = dashcam.store.write_records(BEDROCK, "aws/bedrock/modelinvocations", old, source="bedrock-log")
        assert result.written == 5            # the store no longer knows them ...
        assert answers(dashcam) == before     # ... but queries count them once
        run = archive_once(dashcam.store, NOW)
        assert run.rows_archived == 0 and run.rows_deleted == 5
        assert answers(dashcam) == before


def test_retention_deletes_archived_days(tmp_path, on_engine):
    # Days ending yesterday by the real clock: ClickHouse's retention TTL expires rows by the real
    # clock whatever clock the sweep is given, so the live days must be recent for it too.
    start_ms = (wall_clock_ms() // DAY_MS - 4) * DAY_MS
    start = datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc)
    bedrock, app = (list(generate_records(SampleSpec(records=1200, hours=24 * 4, seed=seed, start=start)))
                    for seed in (1, 2))
    data = tmp_path / "data"
    with Dashcam.open(data) as dashcam:
        dashcam.store.write_records(BEDROCK, "aws/bedrock/modelinvocations", bedrock, source="bedrock-log")
        dashcam.store.write_records(APP, "app", app, source="bedrock-log")
    configure(data, hot_days=1, destination=str(tmp_path / "archive"))
    day3 = day_of(start_ms + 2 * DAY_MS)
    with Dashcam.open(data) as dashcam:
        archive_once(dashcam.store, start_ms + 4 * DAY_MS + 12 * 3_600_000)   # days 1-3 archived, day 4 live
        dashcam.store.set_retention(BEDROCK, 3)
        now = start_ms + 5 * DAY_MS           # midnight: retention reaches back to day 3's start
        expected_bedrock = sum(1 for r in bedrock if r["timestamp"] >= day3)
        dashcam.store.delete_expired(now)
        counts = {r["@log"]: r["n"] for r in dashcam.query("stats count(*) as n by @log").rows}
        assert counts == {APP: len(app), BEDROCK: expected_bedrock}
        left = {p.parent.name for p in (tmp_path / "archive").rglob("*.parquet") if "bedrock" in str(p)}
        assert left == {f"date={day3}"}
        assert {f.day for f in dashcam.archive.manifest.files if f.log_group == BEDROCK} == {day3}
        dashcam.store.delete_log_group(APP)
        assert not [p for p in (tmp_path / "archive").rglob("*.parquet") if "app" in str(p)]
        assert dashcam.query("stats count(*) as n").rows == [{"n": expected_bedrock}]


def test_the_scheduled_archiver_uses_its_clock(data_dir, tmp_path):
    with Dashcam.open(data_dir) as dashcam:
        archiver = Archiver(dashcam.store, clock=lambda: NOW)
        assert archiver.run_once().files == []           # not configured: nothing happens
        configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
        assert len(archiver.run_once().files) == 4
        assert live_count(dashcam, older_than(dashcam, CUTOFF)) == 0


def test_both_engines_write_one_archive_format(data_dir, tmp_path, engine, chdb_url, monkeypatch):
    """An archive written on one engine answers queries on the other: the store's hot events
    migrated there, the data directory's archive (files and manifest) as it is."""
    configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
    with Dashcam.open(data_dir) as dashcam:
        before_archiving = answers(dashcam)
        archive_once(dashcam.store, NOW)
        written_on = dashcam.store.dialect
        schema = pq.read_schema(next((tmp_path / "archive").rglob("*.parquet")))
        other = {"duckdb": "clickhouse", "clickhouse": "duckdb"}[engine]
        with monkeypatch.context() as env:
            if other == "duckdb":
                env.delenv("DASHCAM_STORE")
            else:
                env.setenv("DASHCAM_STORE", chdb_url())
            with Dashcam.open(tmp_path / "other") as target:   # the other engine, nothing in it yet
                migrate(dashcam.store.inner, target.store.inner)
                assert target.store.dialect != written_on
                reading = Dashcam(target.store.inner, data_dir).archived()   # the first engine's archive
                assert answers(reading) == before_archiving

    # The same Parquet types whichever engine wrote them: the store's columns as DuckDB's COPY
    # writes them (timestamps in microseconds, without a zone).
    types = {"int": pa.int64(), "float": pa.float64(), "string": pa.string(), "timestamp": pa.timestamp("us")}
    assert [(f.name, f.type) for f in schema] == [(name, types[kind]) for name, kind in EVENT_COLUMNS]
