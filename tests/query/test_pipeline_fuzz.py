"""Random query text through the whole path — parse, compile, run on DuckDB, decode — fails only
with dashcam's own QueryError, never with anything else (a compiler bug, an engine error that
escaped translation, a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashcam.errors import QueryError
from dashcam.service import Dashcam

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"

FIELDS = ["@timestamp", "@message", "@logStream", "@log", "@ptr", "modelId", "latencyMs", "errorCode",
          "input.inputTokenCount", "output.outputBodyJson.usage.inputTokens", "identity.arn",
          "input.inputBodyJson.messages.0.content.0.text", "`identity.arn`", "requestMetadata.app", "nope",
          "m", "m.input", "x", "throttled"]
LITERALS = ['"ThrottlingException"', "'a'", "0", "1", "2.5", "-3", '""', '"2026-03-02"', "/Thr.*/", "/(?i)nova/",
            "5m", "1h", "1d", "1mo", "[1, 2]", '["a", "b"]']
FUNCTIONS = ["abs", "ceil", "floor", "greatest", "least", "log", "sqrt", "ispresent", "coalesce", "isempty",
             "isblank", "concat", "trim", "ltrim", "rtrim", "strlen", "toupper", "tolower", "substr", "replace",
             "strcontains", "bin", "datefloor", "dateceil", "fromMillis", "toMillis", "isValidIp",
             "isIpInSubnet", "jsonParse", "jsonStringify", "unknownfn"]
AGGREGATES = ["avg", "count", "count_distinct", "max", "min", "pct", "stddev", "sum", "earliest", "latest",
              "sortsFirst", "sortsLast"]
OPERATORS = ["+", "-", "*", "/", "%", "^", "=", "!=", "<", ">=", "and", "or", "like", "=~", "in", "not in"]


def expressions(depth: int = 2) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(FIELDS + LITERALS)
    if depth == 0:
        return leaf
    inner = expressions(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda f, args: f"{f}({', '.join(args)})", st.sampled_from(FUNCTIONS), st.lists(inner, max_size=3)),
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from(OPERATORS), inner),
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"({a})", inner),
    )


def aggregate_calls() -> st.SearchStrategy[str]:
    arg = expressions(1)
    return st.one_of(
        st.just("count(*)"),
        st.builds(lambda f, args: f"{f}({', '.join(args)})", st.sampled_from(AGGREGATES), st.lists(arg, max_size=2)),
        st.builds(lambda a, op, b: f"{a} {op} {b}", st.just("sum(latencyMs)"), st.sampled_from(["+", "/", "-"]),
                  st.just("count(*)")),
    )


def commands() -> st.SearchStrategy[str]:
    expr = expressions()
    alias = st.sampled_from(["", " as x", " as m", " as `a b`", " as n"])
    projection = st.builds(lambda e, a: e + a, expr, alias)
    return st.one_of(
        st.builds(lambda items: "fields " + ", ".join(items), st.lists(projection, min_size=1, max_size=3)),
        st.builds(lambda items: "display " + ", ".join(items), st.lists(projection, min_size=1, max_size=2)),
        st.builds(lambda e: "filter " + e, expr),
        st.builds(
            lambda aggs, by: "stats " + ", ".join(aggs) + (" by " + ", ".join(by) if by else ""),
            st.lists(st.builds(lambda a, al: a + al, aggregate_calls(), alias), min_size=1, max_size=2),
            st.lists(st.one_of(st.sampled_from(["bin(5m)", "modelId", "bin(@timestamp, 1h) as h"]), expr),
                     max_size=2),
        ),
        st.builds(lambda e, d: f"sort {e}{d}", expr, st.sampled_from(["", " asc", " desc"])),
        st.builds(lambda n: f"limit {n}", st.integers(0, 50)),
        st.sampled_from([
            'parse @message "\\"modelId\\":\\"*\\"" as pm',
            'parse @message /"operation":"(?<op>[A-Za-z]+)"/',
            "dedup modelId",
            "dedup modelId, errorCode",
            "unnest m.input into u",
            "unnest jsonParse(@message) into u",
            'SOURCE "/aws/bedrock/modelinvocations"',
            "SOURCE logGroups(namePrefix: [\"/aws\"])",
        ]),
    )


@pytest.fixture(scope="module")
def dashcam(tmp_path_factory):
    with Dashcam.open(tmp_path_factory.mktemp("fuzz")) as dc:
        dc.import_logs([SAMPLES])
        yield dc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.lists(commands(), min_size=1, max_size=5))
def test_random_pipelines_answer_or_raise_a_query_error(dashcam, pipeline):
    text = " | ".join(pipeline)
    try:
        result = dashcam.query(text)
    except QueryError:
        return
    assert all(list(row) == result.columns for row in result.rows), text
