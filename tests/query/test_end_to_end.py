"""Query text -> parser -> compiler -> a real store -> result rows, on each engine (DuckDB, and
ClickHouse through chDB): every answer must be the same on both.

The answers to the four core questions (and the aggregations behind them) are cross-checked
against the same computation done in Python over the fixture records.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from dashcam.errors import QueryError, QueryExecutionError
from dashcam.query.compiler import QueryScope, compile_query, parse_ptr
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.records import normalize, timestamp_ms
from dashcam.store.batch import EventBatchBuilder

FIXTURE = Path(__file__).with_name("golden") / "fixture.jsonl"
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"


def fixture_items() -> list[dict]:
    return [orjson.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def store(module_engine, module_store_opener):
    s = module_store_opener(module_engine, "e2e")
    batches: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for item in fixture_items():
        batches[(item["log_group"], item["log_stream"])].append(item["record"])
    for (group, stream), records in batches.items():
        s.write_records(group, stream, records, source="bedrock-log")
    return s


@pytest.fixture(scope="module")
def records() -> list[dict]:
    """The fixture records as the store sees them: normalized, with their ms timestamp."""
    out = []
    for item in fixture_items():
        rec = normalize(copy.deepcopy(item["record"]), source="bedrock-log")
        rec["_ms"] = timestamp_ms(rec["timestamp"])
        rec["_group"] = item["log_group"]
        out.append(rec)
    return out


def run(store, text: str, scope: QueryScope = QueryScope()) -> list[dict]:
    compiled = compile_query(parse(text), scope, store.dialect)
    return decode_rows(compiled, store.execute(compiled.sql))


def label(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


# ---------------------------------------------------------------------- the four questions


def test_throttles_per_five_minutes_by_model(store, records):
    rows = run(store, 'filter errorCode = "ThrottlingException" | stats count(*) as throttles by bin(5m), modelId')
    expected = Counter((r["_ms"] // 300_000 * 300_000, r.get("modelId")) for r in records
                       if r.get("errorCode") == "ThrottlingException")
    assert rows == [{"bin(5m)": label(b), "modelId": m, "throttles": n} for (b, m), n in sorted(expected.items())]


def test_slowest_requests(store, records):
    rows = run(store, "fields @timestamp, modelId, latencyMs, input.inputTokenCount, output.outputTokenCount"
                      " | sort latencyMs desc | limit 10")
    timed = sorted((r for r in records if r["latencyMs"] is not None), key=lambda r: -r["latencyMs"])[:10]
    assert rows == [{"@timestamp": label(r["_ms"]), "modelId": r.get("modelId"), "latencyMs": r["latencyMs"],
                     "input.inputTokenCount": r["input"].get("inputTokenCount"),
                     "output.outputTokenCount": (r.get("output") or {}).get("outputTokenCount")} for r in timed]


def test_requests_per_minute(store, records):
    rows = run(store, "stats count(*) as requests by bin(1m)")
    expected = Counter(r["_ms"] // 60_000 * 60_000 for r in records)
    assert rows == [{"bin(1m)": label(b), "requests": n} for b, n in sorted(expected.items())]
    assert sum(r["requests"] for r in rows) == len(records) == 30


def test_tokens_by_model(store, records):
    rows = run(store, "stats sum(input.inputTokenCount) as inputTokens, sum(output.outputTokenCount) as outputTokens"
                      " by modelId")
    sums: dict = defaultdict(lambda: [None, None])
    for r in records:
        pair = sums[r.get("modelId")]
        for i, value in enumerate((r["input"].get("inputTokenCount"), (r.get("output") or {}).get("outputTokenCount"))):
            if value is not None:
                pair[i] = (pair[i] or 0) + value
    keys = sorted(sums, key=lambda k: (k is None, k or ""))
    assert rows == [{"modelId": k, "inputTokens": sums[k][0], "outputTokens": sums[k][1]} for k in keys]


def test_latency_aggregates_match_python(store, records):
    values = [r["latencyMs"] for r in records if r["latencyMs"] is not None]
    row = run(store, "stats avg(latencyMs) as a, stddev(latencyMs) as sd, pct(latencyMs, 90) as p90, "
                     "pct(latencyMs, 50) as p50, min(latencyMs) as lo, max(latencyMs) as hi, count(latencyMs) as n, "
                     "count_distinct(modelId) as models")[0]
    assert row["a"] == pytest.approx(statistics.mean(values))
    assert row["sd"] == pytest.approx(statistics.stdev(values))
    assert row["p90"] == nearest_rank(values, 90) and row["p50"] == nearest_rank(values, 50)
    assert (row["lo"], row["hi"], row["n"]) == (min(values), max(values), len(values))
    assert row["models"] == len({r.get("modelId") for r in records} - {None})


def test_earliest_and_latest_match_python(store, records):
    rows = run(store, "stats earliest(requestId) as first, latest(requestId) as last by @log")
    for row in rows:
        group = sorted((r for r in records if r["_group"] == row["@log"]), key=lambda r: r["_ms"])
        assert (row["first"], row["last"]) == (group[0]["requestId"], group[-1]["requestId"])


def test_ptr_points_at_the_event(store):
    row = run(store, 'filter requestId = "req-007" | fields @ptr, @log')[0]
    group, event_id = parse_ptr(row["@ptr"])
    assert group == row["@log"]
    assert store.execute(f"SELECT request_id FROM events WHERE event_id = {int(event_id)}") == [("req-007",)]


# ---------------------------------------------------------------------- safety


def test_hostile_text_cannot_escape(store):
    text = ('fields \'x\\\'; DROP TABLE events; --\' as `a"; DROP TABLE events; --`, '
            '"semi;colon -- /* */ \\" quote" as q, `weird"name` '
            '| filter modelId != "\'); DELETE FROM events; --" and not modelId like /\'; --/ '
            '| limit 1')
    rows = run(store, text)
    assert rows == [{'a"; DROP TABLE events; --': "x'; DROP TABLE events; --",
                     "q": 'semi;colon -- /* */ " quote', 'weird"name': None}]
    assert store.execute("SELECT count(*) FROM events") == [(30,)]


def test_scope_is_inclusive_and_limits(store, records):
    first = min(r["_ms"] for r in records if r["_group"] == "/aws/bedrock/modelinvocations")
    scope = QueryScope(log_groups=("/aws/bedrock/modelinvocations",), start_ms=first, end_ms=first, limit=5)
    assert run(store, "fields requestId", scope) == [{"requestId": "req-001"}]
    assert len(run(store, "fields requestId", QueryScope(limit=5))) == 5


def test_engine_errors_become_query_errors(store):
    # Python's re accepts possessive quantifiers, RE2 does not: the engine reports it at run time.
    with pytest.raises(QueryExecutionError) as info:
        run(store, "filter modelId =~ /a*+/")
    assert isinstance(info.value, QueryError)


def test_events_that_are_not_json(open_engine_store, engine):
    with open_engine_store(engine, "text") as s:
        builder = EventBatchBuilder()
        builder.add("app", "web", 1_772_460_000_000, "GET /health 200 3ms", {})
        builder.add("app", "web", 1_772_460_001_000, '{"status": 500, "path": "/checkout"}', {"status": 500})
        s.write_batch(builder.build())
        run_ = lambda t: run(s, t)  # noqa: E731
        assert run_("fields status, path | sort @timestamp asc") == [
            {"status": None, "path": None}, {"status": 500, "path": "/checkout"}]
        assert run_('parse @message "GET * * *" as path, code, took | filter ispresent(path) | fields path, code + 0') \
            == [{"path": "/health", "code + 0": 200, "code": "200", "took": "3ms"}]
        assert run_("fields jsonParse(@message) as m | fields m.path") == [
            {"m": '{"status":500,"path":"/checkout"}', "m.path": "/checkout"}, {"m": None, "m.path": None}]


# ---------------------------------------------------------------------- published shapes on the shared samples


@pytest.fixture(scope="module")
def samples(module_engine, module_store_opener):
    s = module_store_opener(module_engine, "samples")
    records = [orjson.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    s.write_records("/aws/bedrock/modelinvocations", "aws/bedrock/modelinvocations", records, source="bedrock-log")
    return s


def test_published_queries_on_sample_logs(samples):
    rows = run(samples, "SOURCE \"/aws/bedrock/modelinvocations\" "
                        "| filter @logStream = 'aws/bedrock/modelinvocations' "
                        "| stats count(*) as calls, sum(ispresent(errorCode)) as errors by bin(1h)")
    assert rows == [{"bin(1h)": "2026-03-02 14:00:00.000", "calls": 6, "errors": 2}]
    rows = run(samples, "filter !isPresent(errorCode) "
                        "| fields coalesce(output.outputBodyJson.usage.inputTokens, output.outputBodyJson.usage.input_tokens,"
                        " input.inputTokenCount) as inTok "
                        "| stats sum(inTok) as tokens, count(*) as calls")
    assert rows == [{"tokens": 31 + 42 + 8 + 11, "calls": 4}]
    rows = run(samples, "fields replace(modelId, \"arn:aws:bedrock:us-east-1:123456789012:inference-profile/\", \"\") as m"
                        " | filter ispresent(output.outputBodyJson.metrics.latencyMs)"
                        " | fields m, output.outputBodyJson.metrics.latencyMs as latency | sort latency desc")
    assert rows == [{"m": "us.anthropic.claude-sonnet-4-20250514-v1:0", "latency": 1843},
                    {"m": "amazon.nova-lite-v1:0", "latency": 611}]
    rows = run(samples, "filter errorCode = \"ThrottlingException\" | stats count(*) as throttles by modelId")
    assert rows == [{"modelId": "anthropic.claude-3-5-haiku-20241022-v1:0", "throttles": 1}]


def test_output_names_that_shadow_columns_do_not_change_the_order(store):
    rows = run(store, 'filter @log = "bedrock-model-invocation-logging" | fields latencyMs as ts, requestId as TS2,'
                      ' modelId as model_id')
    assert [r["TS2"] for r in rows] == ["req-025", "req-024", "req-026", "req-027"]  # newest first
    rows = run(store, "stats count(*) as ts by modelId as model_id | sort ts desc | limit 2")
    assert [r["ts"] for r in rows] == [13, 8]
    rows = run(store, 'filter @log = "bedrock-model-invocation-logging" | fields requestId as latency_ms'
                      ' | sort latencyMs desc | limit 1')
    assert rows == [{"latency_ms": "req-024"}]
    rows = run(store, "limit 3 | fields requestId as _o1, latencyMs as _x1")
    assert [r["_o1"] for r in rows] == ["req-023", "req-022", "req-021"]


def test_saved_core_questions_run(store):
    from dashcam.query.library import CORE_QUESTIONS

    answers = {q.key: run(store, q.text) for q in CORE_QUESTIONS}
    assert sum(r["throttles"] for r in answers["throttles"]) == 7
    assert [r["latencyMs"] for r in answers["slowest"][:3]] == [20000, 12000, 8000]
    assert len(answers["slowest"]) == 19  # every event with a latency, none without
    assert sum(r["requests"] for r in answers["traffic"]) == 30
    assert answers["tokens"][0]["modelId"].endswith("claude-sonnet-4-20250514-v1:0")


def test_a_presence_test_carried_through_a_subquery_renders(open_engine_store, engine):
    # Found by the pipeline fuzz test: `limit` then `filter` nests the query, and the carried
    # expression holds dashcam's own IS NOT NULL node, which only dashcam's dialects can write.
    s = open_engine_store(engine, "x")
    s.write_records("g", "s", [{"timestamp": "2026-03-02T10:00:00Z", "errorCode": "E"}], source="api")
    assert run(s, "fields ispresent(errorCode) as e | limit 5 | filter e = 1") == [{"e": 1}]


def test_numeric_path_segments_and_whole_rank_percentiles(open_engine_store, engine):
    # `a.0` is an array index where `a` is a list and a key where it is an object (ClickHouse
    # indexes from 1 and decides per row); pct is the nearest rank also when p * n is whole.
    s = open_engine_store(engine, "paths")
    s.write_records("g", "s", [
        {"timestamp": "2026-03-02T10:00:00Z", "a": {"0": "key"}, "n": 1},
        {"timestamp": "2026-03-02T10:00:01Z", "a": ["first", "second"], "n": 2},
        {"timestamp": "2026-03-02T10:00:02Z", "a": "text", "n": 3},
    ] + [{"timestamp": f"2026-03-02T10:01:{i:02d}Z", "n": i} for i in range(4, 21)], source="api")
    rows = run(s, "filter ispresent(a) | fields a.0, a.1 | sort @timestamp asc")
    assert rows == [{"a.0": "key", "a.1": None}, {"a.0": "first", "a.1": "second"}, {"a.0": None, "a.1": None}]
    assert run(s, "stats pct(n, 50) as p50, pct(n, 95) as p95, pct(n, 5) as p5, pct(n, 100) as top") == [
        {"p50": 10, "p95": 19, "p5": 1, "top": 20}]


def test_percentiles_of_one_value_share_an_aggregate_and_give_the_same_rows(store, monkeypatch):
    text = ("stats pct(latencyMs, 50) as p50, pct(latencyMs, 90) as p90, pct(latencyMs, 50) as again, "
            "pct(latencyMs, 99.9) as p999, pct(timeToFirstTokenMs, 10) as t10, pct(timeToFirstTokenMs, 90) as t90, "
            "count(*) as n by modelId | sort p90 desc, modelId")
    shared = run(store, text)
    from dashcam.query.dialects import Dialect

    monkeypatch.setattr(Dialect, "share_quantiles", lambda self, tree: tree)
    separate = run(store, text)
    assert shared == separate and any(row["p90"] is not None for row in shared)


def test_a_nul_character_in_query_text_is_matched_not_a_parse_error(store):
    # The engine never sees a NUL byte inside a quoted string (DuckDB 1.5's parser ends one there).
    compiled = compile_query(parse('fields requestId | filter @message like "a\x00b" or requestId = "req-001"'),
                             QueryScope(), store.dialect)
    assert "\x00" not in compiled.sql
    assert decode_rows(compiled, store.execute(compiled.sql)) == [{"requestId": "req-001"}]
