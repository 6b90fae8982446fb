"""The archive tests run on both store engines: DuckDB in the data directory, and ClickHouse
through chDB (a fresh database in this process's chDB directory)."""

from __future__ import annotations

import pytest


@pytest.fixture
def on_engine(engine, monkeypatch, chdb_url) -> str:
    """``Dashcam.open`` in this test opens the test's engine: DuckDB (``DASHCAM_STORE`` unset,
    whatever the suite's setting), or one chDB database kept for the whole test."""
    if engine == "duckdb":
        monkeypatch.delenv("DASHCAM_STORE", raising=False)
    else:
        monkeypatch.setenv("DASHCAM_STORE", chdb_url())
    return engine

