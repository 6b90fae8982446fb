"""A top-N whose result carries raw messages picks its rows by row id first (DuckDB): the answer
must be the one the plain top-N gives, and the plain shape must stay for everything else."""

from __future__ import annotations

import pytest

from dashcam.query import dialects
from dashcam.query.compiler import QueryScope, compile_query
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.simulate.sample_logs import SampleSpec, generate_records
from dashcam.store.duckdb import DuckDBStore

pytestmark = pytest.mark.usefixtures("embedded_store")

# Sort keys are unique (requestId) or compared by key only, where ties let either plan keep
# either of the tied rows.
CASES = [
    ("fields @timestamp, requestId, @message | sort requestId desc | limit 700", "requestId", True),
    ("fields requestId, latencyMs, @message | filter latencyMs > 1000 | sort requestId asc", "requestId", True),
    ("fields requestId, output.outputBodyJson.stopReason as stop | filter ispresent(stop) | sort requestId desc "
     "| limit 300", "requestId", True),
    ("fields @timestamp, latencyMs, @message | sort latencyMs desc | limit 900", "latencyMs", False),
    ("fields @timestamp, @message | filter modelId like /claude/", "@timestamp", False),
    ("fields @timestamp, @ptr, requestId, @message | sort @timestamp asc | limit 250", "@timestamp", False),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    opened = DuckDBStore(tmp_path_factory.mktemp("top-n"))
    opened.write_records("g", "s", list(generate_records(SampleSpec(records=3000, hours=2, seed=11))), source="api")
    yield opened
    opened.close()


def _answer(store: DuckDBStore, query: str, by_row_id: bool, monkeypatch) -> tuple[str, list[dict]]:
    monkeypatch.setattr(dialects.Dialect, "top_n_by_row_id", by_row_id)
    compiled = compile_query(parse(query), QueryScope(), "duckdb")
    return compiled.sql, decode_rows(compiled, store.execute(compiled.sql))


@pytest.mark.parametrize("query, key, unique", CASES)
def test_rows_chosen_by_row_id_are_the_rows_of_the_plain_top_n(store, monkeypatch, query, key, unique):
    plain_sql, plain = _answer(store, query, False, monkeypatch)
    sql, rows = _answer(store, query, True, monkeypatch)
    assert "rowid" not in plain_sql and '"rowid" IN (SELECT "rowid" FROM events' in sql
    assert len(rows) == len(plain) > 0
    assert [row[key] for row in rows] == [row[key] for row in plain]
    if unique:
        assert rows == plain


@pytest.mark.parametrize("query", [
    "fields @timestamp, requestId | sort latencyMs desc | limit 50",  # no message: the plain top-N is cheap
    "stats count(*) by modelId",  # aggregates
    "fields requestId, @message | dedup modelId",  # the window sees every row
    "stats count(*) as n by modelId | fields n, modelId | sort n desc",  # over a subquery
])
def test_other_queries_keep_the_plain_shape(query, monkeypatch):
    monkeypatch.setattr(dialects.Dialect, "top_n_by_row_id", True)
    assert "rowid" not in compile_query(parse(query), QueryScope(), "duckdb").sql


def test_clickhouse_keeps_the_plain_top_n():
    query = "fields @timestamp, latencyMs, @message | sort latencyMs desc"
    assert "rowid" not in compile_query(parse(query), QueryScope(), "clickhouse").sql.lower()
