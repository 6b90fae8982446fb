"""Which archived files a statement reads: the log groups and time range of its reads of
``events``, taken from the SQL the query compiler and the metrics engine produce for each
engine's dialect."""

from __future__ import annotations

import pytest

from dashcam.query.compiler import QueryScope, compile_query
from dashcam.query.parser import parse
from dashcam.store.archive.store import statement_scope

DAY = 86_400_000
T0 = 1_772_409_600_000   # 2026-03-02T00:00:00Z
DIALECTS = ("duckdb", "clickhouse")


def scope_of(text: str, scope: QueryScope, dialect: str) -> tuple:
    return statement_scope(compile_query(parse(text), scope, dialect).sql, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_query_scope_is_read_back_from_its_sql(dialect):
    assert scope_of("stats count(*) by bin(1h)", QueryScope(("/a", "/b"), T0, T0 + DAY - 1), dialect) == (
        {"/a", "/b"}, T0, T0 + DAY - 1)
    assert scope_of("fields @message | sort @timestamp | limit 3", QueryScope(), dialect) == (None, None, None)
    assert scope_of("filter x > 1 | stats count(*) as n | filter n > 0", QueryScope(None, T0, None), dialect) == (
        None, T0, None)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_metrics_engine_time_range_is_read_back(dialect):
    from dashcam.metrics.engine import data_range

    seen = []

    class Recorder:
        def execute(self, sql):
            seen.append(statement_scope(sql, dialect))
            return [(None, None)]

    recorder = Recorder()
    recorder.dialect = dialect
    data_range(recorder, log_groups=["/g"])
    assert seen == [({"/g"}, None, None)]


def test_statements_not_over_events_are_left_alone():
    assert statement_scope("SELECT name, retention_days FROM log_groups") is None
    assert statement_scope("this is not SQL (") == (None, None, None)   # unreadable: every file, never fewer
    assert statement_scope("SELECT name FROM log_groups", "clickhouse") is None


def test_only_utc_clickhouse_timestamps_bound_the_scope():
    local = "SELECT 1 FROM events WHERE ts >= toDateTime64('2026-03-02 00:00:00.000000', 3, 'Europe/Paris')"
    assert statement_scope(local, "clickhouse") == (None, None, None)
    utc = local.replace("Europe/Paris", "UTC")
    assert statement_scope(utc, "clickhouse") == (None, T0, None)
