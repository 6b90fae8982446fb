"""``dashcam migrate``: every log group, stream and event moves between stores, DuckDB -> ClickHouse
(chDB) and back, exactly; running it again stores nothing twice."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.errors import ConfigError
from dashcam.store import open_store
from dashcam.store.migrate import migrate
from dashcam.store.schema import EVENT_COLUMN_NAMES

FIXTURE = Path(__file__).resolve().parents[1] / "query" / "golden" / "fixture.jsonl"
COLUMNS = ", ".join(f'"{c}"' for c in EVENT_COLUMN_NAMES)


def _load(store) -> None:
    batches: dict[tuple[str, str], list[dict]] = {}
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        item = orjson.loads(line)
        batches.setdefault((item["log_group"], item["log_stream"]), []).append(item["record"])
    for (group, stream), records in batches.items():
        store.write_records(group, stream, records, source="bedrock-log")
    store.create_log_group("empty")
    store.set_retention("/aws/bedrock/modelinvocations", 3653)


def _everything(store) -> tuple:
    events = store.execute(f"SELECT {COLUMNS} FROM events ORDER BY log_group, event_id")
    streams = [(g.name, store.list_log_streams(g.name)) for g in store.list_log_groups()]
    return store.list_log_groups(), streams, events


def test_duckdb_to_chdb_and_back_moves_everything(tmp_path, chdb_url):
    with open_store(tmp_path / "first") as first:
        _load(first)
        expected = _everything(first)
        with open_store(chdb_url()) as middle:
            calls: list[int] = []
            summary = migrate(first, middle, batch_rows=7, start=calls.append, advance=calls.append)
            assert (summary.log_groups, summary.log_streams, summary.events, summary.written) == (4, 3, 30, 30)
            assert calls[0] == 30 and sum(calls[1:]) == 30 and max(calls[1:]) == 7
            assert _everything(middle) == expected
            again = migrate(first, middle)
            assert (again.written, again.duplicates) == (0, 30)
            with open_store(tmp_path / "back") as back:
                migrate(middle, back)
                assert _everything(back) == expected


def test_a_store_cannot_migrate_into_itself(tmp_path):
    with open_store(tmp_path) as store, pytest.raises(ConfigError):
        migrate(store, store)


def test_the_cli_shows_a_summary(tmp_path, chdb_url):
    with open_store(tmp_path / "data") as store:
        _load(store)
    url = chdb_url()
    result = CliRunner().invoke(main, ["migrate", "--from", str(tmp_path / "data"), "--to", url])
    assert result.exit_code == 0, result.stderr
    assert "migrated 4 log groups, 3 streams and 30 events" in result.stderr
    assert "30 new, 0 already there" in result.stderr
    queried = CliRunner().invoke(main, ["--store", url, "query", "--format", "json", "stats count(*) as n"])
    assert queried.exit_code == 0, queried.stderr
    assert orjson.loads(queried.stdout) == [{"n": 30}]
    same = CliRunner().invoke(main, ["migrate", "--from", url, "--to", url])
    assert same.exit_code == 2 and "same store" in same.stderr
