"""Each engine's bulk path (DuckDB: duckdb_ingest, ClickHouse: clickhouse_ingest) derives exactly
what records.normalize + records.hot_values (+ pricing) derive: the engine's rows are compared with
the rows the Python reference path (Store.write_raw of the base class) stores in the same engine."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dashcam.sources.lines import frame_lines
from dashcam.simulate.sample_logs import SampleSpec, generate_records
from dashcam.store.base import Store
from dashcam.store.batch import RawBatchBuilder
from dashcam.store.schema import EVENT_COLUMN_NAMES

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"

EDGE_CASES = [
    b'{"timestamp":1772460311,"modelId":{"x":1},"throttled":true,"latencyMs":"12.5",'
    b'"input":{"inputTokenCount":"31.9","cacheReadInputTokenCount":-2.7}}',
    b'{"timestamp":"1772460312","costUsd":"NaN","latencyMs":" 7 ","throttled":"1","status":"429"}',
    b'{"timestamp":1772460313000,"errorCode":"TooManyRequestsException","requestMetadata":{"user":"u1",'
    b'"session_id":"s9","service":"svc","traceId":"t1"},"userId":null}',
    b'{"timestamp":"2026-03-02T14:05:11.5+02:00","output":{"outputBodyJson":[{"stop_reason":"a"},'
    b'{"stopReason":"b"},{"amazon-bedrock-invocationMetrics":{"invocationLatency":"88"}}]}}',
    b'{"timestamp":"2026-03-02","output":{"outputBodyJson":{"results":[{"completionReason":""}],'
    b'"choices":[{"finish_reason":"length"}],"amazon-bedrock-invocationMetrics":{"firstByteLatency":3}}}}',
    b'{"timestamp":"2026-03-02T14:05:11Z","latencyMs":null,"provider":"openai","source":"sdk",'
    b'"output":{"outputBodyJson":{"metrics":{"latencyMs":1e3}}}}\r',
    b'{"timestamp":"2026-03-02T14:05:11Z","operation":"Converse","identity":{"arn":["a"]},"region":7}',
    # Arrays where objects belong read as missing (ClickHouse would fill a tuple from them by position).
    b'{"timestamp":"2026-03-02T14:05:12Z","identity":["a"],"input":[5,6],"output":{"outputBodyJson":'
    b'{"results":{"completionReason":"x"},"metrics":[7],"stop_reason":null}},"requestMetadata":["u"]}',
]
BAD_LINES = [b"{bad", b"[1,2]", b'{"a":1}', b'{"timestamp":"yesterday"}', b'{"timestamp":null}', b"", b"  "]


def _lines() -> list[bytes]:
    generated = [orjson.dumps(r) for r in generate_records(SampleSpec(records=3000, seed=11))]
    return SAMPLES.read_bytes().splitlines() + generated + EDGE_CASES + BAD_LINES


def _batch(lines: list[bytes]) -> tuple:
    builder = RawBatchBuilder()
    framed = frame_lines(b"\n".join(lines) + b"\n")
    builder.extend("group", "stream", framed.array, framed.event_ids("group"), "file", 1)
    return builder.build()[0], builder


def _rows(store: Store) -> list[tuple]:
    columns = ", ".join(f'"{c}"' for c in EVENT_COLUMN_NAMES if c != "ingestion_time")
    return store.execute(f"SELECT {columns} FROM events ORDER BY event_id")


@pytest.fixture(scope="module")
def both(module_engine, module_store_opener):
    table, builder = _batch(_lines())
    engine = module_store_opener(module_engine, "sql")
    python = module_store_opener(module_engine, "py")
    sql_result = engine.write_raw(table, source="bedrock-log")
    python_result = Store.write_raw(python, table, source="bedrock-log")  # the Python reference path
    return engine, python, sql_result, python_result, builder


def test_engine_and_python_store_identical_rows(both):
    engine, python, *_ = both
    engine_rows, python_rows = _rows(engine), _rows(python)
    assert len(engine_rows) == len(python_rows) == 6 + 3000 + len(EDGE_CASES)
    assert engine_rows == python_rows


def test_engine_and_python_refuse_the_same_lines_for_the_same_reasons(both):
    _, _, sql_result, python_result, builder = both
    assert sql_result.rejected == python_result.rejected
    refused = {builder.origin(row)[1]: reason for row, reason in sql_result.rejected}
    first_bad = 6 + 3000 + len(EDGE_CASES) + 1
    assert refused == {
        first_bad: "not valid JSON",
        first_bad + 1: "expected a JSON object, got array",
        first_bad + 2: "record has no 'timestamp'",
        first_bad + 3: 'timestamp "yesterday" is not an RFC 3339 date-time',
        first_bad + 4: "record has no 'timestamp'",
    }  # the two blank lines are passed over, not refused


def test_edge_case_derivations(both):
    engine, *_ = both
    rows = engine.execute(
        "SELECT model_id, input_tokens, cache_read_tokens, latency_ms, cost_usd, throttled, user_id, session_id,"
        " app, trace_id, stop_reason, ttft_ms, identity_arn, region, provider, source FROM events"
        " WHERE message NOT LIKE '%schemaType%' ORDER BY ts, message"
    )
    as_dicts = [dict(zip(["model", "in", "cache", "lat", "cost", "thr", "user", "sess", "app", "trace", "stop",
                          "ttft", "arn", "region", "provider", "source"], r)) for r in rows]
    by_latency = {d["lat"]: d for d in as_dicts}
    first = by_latency[12.5]
    assert (first["model"], first["in"], first["cache"], first["thr"]) == ('{"x":1}', 31, -2, None)
    second = by_latency[7.0]
    assert (second["cost"], second["thr"]) == (None, 1)
    stream = by_latency[88.0]
    assert stream["stop"] == "a"  # no chunk has delta.stop_reason; stop_reason is tried before stopReason
    assert by_latency[1000.0]["provider"] == "openai" and by_latency[1000.0]["source"] == "sdk"
    third = next(d for d in as_dicts if d["trace"] == "t1")
    assert (third["user"], third["sess"], third["app"], third["thr"]) == ("u1", "s9", "svc", 1)


def test_rewriting_the_same_batch_stores_nothing_twice(store_of):
    table, _ = _batch(SAMPLES.read_bytes().splitlines() * 2)
    with store_of() as store:
        first = store.write_raw(table, source="bedrock-log")
        second = store.write_raw(table, source="bedrock-log")
        assert (first.written, first.duplicates) == (6, 6)
        assert (second.written, second.duplicates) == (0, 12)
        assert store.execute("SELECT count(*) FROM events") == [(6,)]


def test_a_raw_write_lists_the_rows_it_stored_and_the_repeats_when_asked(store_of):
    """report_rows: the first of each new event is stored; later copies in the batch and events
    stored before are duplicates; refused and blank lines are neither."""
    store = store_of()
    lines = SAMPLES.read_bytes().splitlines()
    store.write_raw(_batch(lines[:2])[0], source="api")
    batch = [lines[0], lines[2], b"{bad", lines[3], b"", lines[2], lines[1], lines[4]]
    table, _ = _batch(batch)
    result = store.write_raw(table, source="api", report_rows=True)
    assert result.stored_rows == [1, 3, 7]
    assert result.duplicate_rows == [0, 5, 6]
    assert [row for row, _ in result.rejected] == [2]
    assert (result.written, result.duplicates) == (3, 3)
    assert store.write_raw(table, source="api").stored_rows is None


def test_batches_prepared_together_count_repeats_against_what_commits_first(store_of):
    """prepare_raw does no dedup against the store: two batches prepared before either commits,
    the second repeating part of the first, store each event once, whichever order they commit."""
    lines = SAMPLES.read_bytes().splitlines()
    for order in ("first, second", "second, first"):
        store = store_of(order)
        first = store.prepare_raw(_batch(lines[:4])[0], source="api")
        second = store.prepare_raw(_batch(lines[2:] + [b"{bad"])[0], source="api")
        results = ([store.commit_raw(first), store.commit_raw(second)] if order == "first, second"
                   else [store.commit_raw(second), store.commit_raw(first)][::-1])
        assert sum(r.written for r in results) == 6 and sum(r.duplicates for r in results) == 2
        assert results[1].rejected == [(4, "not valid JSON")]
        assert store.execute("SELECT count(*), count(DISTINCT event_id) FROM events") == [(6, 6)]


def test_a_discarded_preparation_stores_nothing_and_the_store_goes_on(store_of):
    lines = SAMPLES.read_bytes().splitlines()
    store = store_of()
    store.prepare_raw(_batch(lines)[0], source="api").discard()
    assert store.execute("SELECT count(*) FROM events") == [(0,)]
    result = store.commit_raw(store.prepare_raw(_batch(lines)[0], source="api"), report_rows=True)
    assert (result.written, result.stored_rows) == (6, [0, 1, 2, 3, 4, 5])
