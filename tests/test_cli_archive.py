"""``dashcam archive configure | run | status`` on a data directory."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, generate_records

from .store.archive.test_archiver import BEDROCK, START


# The Parquet archive is built for the embedded store: DuckDB whatever DASHCAM_STORE says.
@pytest.mark.usefixtures("embedded_store")
def test_configure_run_and_status(tmp_path):
    data = tmp_path / "data"
    records = list(generate_records(SampleSpec(records=300, hours=72, seed=4, start=START)))
    with Dashcam.open(data) as dashcam:
        dashcam.store.write_records(BEDROCK, "s", records, source="bedrock-log")
        before = dashcam.query("stats count(*) as n by bin(1d)").rows
    runner = CliRunner()

    result = runner.invoke(main, ["--data", str(data), "archive", "run"])
    assert result.exit_code != 0 and "not configured" in result.output
    result = runner.invoke(main, ["--data", str(data), "archive", "configure", "--hot-days", "1",
                                  "--to", str(tmp_path / "archive")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["--data", str(data), "archive", "run", "--now", "2026-03-04T06:00:00Z"])
    assert result.exit_code == 0, result.output
    written = [line for line in result.stdout.splitlines() if line.endswith(".parquet")]
    assert written == [f"log_group=%2Faws%2Fbedrock%2Fmodelinvocations/date=2026-03-0{d}/part-0.parquet" for d in (1, 2)]
    assert all((tmp_path / "archive" / key).exists() for key in written)

    result = runner.invoke(main, ["--data", str(data), "archive", "status", "--format", "json"])
    status = orjson.loads(result.stdout)
    expected = sum(1 for r in records if r["timestamp"] < "2026-03-03")
    assert status["config"]["hotDays"] == 1
    assert [(g["logGroup"], g["files"], g["events"]) for g in status["groups"]] == [(BEDROCK, 2, expected)]
    with Dashcam.open(data) as dashcam:
        assert dashcam.query("stats count(*) as n by bin(1d)").rows == before


def test_a_clickhouse_store_cannot_be_configured_to_archive(tmp_path, chdb_url):
    result = CliRunner().invoke(main, ["--data", str(tmp_path / "data"), "--store", chdb_url(), "archive",
                                       "configure", "--hot-days", "1", "--to", str(tmp_path / "archive")])
    assert result.exit_code == 2 and "archiving needs the embedded DuckDB store" in result.output, result.output
    assert not (tmp_path / "data" / "archive.json").exists()
