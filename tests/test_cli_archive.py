"""``dashcam archive configure | run | status`` on a data directory, with either store engine."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, generate_records

from .store.archive.test_archiver import BEDROCK, START


@pytest.fixture
def store_setting(engine, monkeypatch, chdb_url) -> None:
    """The commands and Dashcam.open use the test's engine: DuckDB in --data, or one chDB database."""
    if engine == "duckdb":
        monkeypatch.delenv("DASHCAM_STORE", raising=False)
    else:
        monkeypatch.setenv("DASHCAM_STORE", chdb_url())


@pytest.mark.usefixtures("store_setting")
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


def test_a_clickhouse_server_is_configured_only_for_archives_it_can_read(tmp_path):
    # configure reads the URL only (nothing listens there): the server must read the archive itself.
    server = "clickhouse://dashcam@127.0.0.1:9/dashcam"
    data = tmp_path / "data"
    for destination, extra, reason in (
            (str(tmp_path / "archive"), [], "cannot see this machine's directory"),
            ("s3://acme-archive/dashcam", ["--encrypt-key-file", str(tmp_path / "k")], "decrypted only into")):
        result = CliRunner().invoke(main, ["--data", str(data), "--store", server, "archive", "configure",
                                           "--hot-days", "1", "--to", destination, *extra])
        assert result.exit_code == 2 and reason in result.output, result.output
        assert not (data / "archive.json").exists() and not (tmp_path / "k").exists()
    result = CliRunner().invoke(main, ["--data", str(data), "--store", server, "archive", "configure",
                                       "--hot-days", "1", "--to", "s3://acme-archive/dashcam"])
    assert result.exit_code == 0, result.output
    assert orjson.loads((data / "archive.json").read_bytes())["destination"] == "s3://acme-archive/dashcam"
