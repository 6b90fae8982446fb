"""Compiler unit tests: static errors with positions, SQL shape, quoting, patterns, scope."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from dashcam.errors import QueryError, QuerySyntaxError
from dashcam.query import ast
from dashcam.query.compiler import (
    CompiledQuery, OutputColumn, QueryScope, compile_query, glob_to_regex, make_ptr, parse_ptr, translate_regex,
)
from dashcam.query.dialects import Dialect
from dashcam.query.parser import parse

CORE = {
    "throttles": 'filter errorCode = "ThrottlingException" | stats count(*) as throttles by bin(5m), modelId',
    "slowest": "fields @timestamp, modelId, latencyMs, input.inputTokenCount, output.outputTokenCount"
               " | sort latencyMs desc | limit 20",
    "per_minute": "stats count(*) as requests by bin(1m)",
    "tokens": "stats sum(input.inputTokenCount) as inputTokens, sum(output.outputTokenCount) as outputTokens by modelId",
}


def sql_of(text: str, scope: QueryScope = QueryScope()) -> str:
    return compile_query(parse(text), scope).sql


def error_of(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        compile_query(parse(text), QueryScope())
    return info.value


# ---------------------------------------------------------------------- static errors


@pytest.mark.parametrize("text,line,column,words", [
    ("fields nosuch(x)", 1, 8, "unknown function `nosuch`"),
    ("fields abs(1, 2)", 1, 8, "takes 1 argument, got 2"),
    ("fields substr(x)", 1, 8, "takes 2 to 3 arguments"),
    ("stats pct(latencyMs)", 1, 7, "takes 2 arguments"),
    ("fields coalesce()", 1, 8, "at least 1"),
    ("fields count(*)", 1, 8, "only be used in `stats`"),
    ("filter sum(latencyMs) > 1", 1, 8, "only be used in `stats`"),
    ("sort avg(latencyMs)", 1, 6, "only be used in `stats`"),
    ("stats count(*) by sum(latencyMs)", 1, 19, "only be used in `stats`"),
    ("stats sum(count(*))", 1, 11, "cannot be inside another aggregation"),
    ("stats modelId", 1, 7, "inside an aggregation"),
    ("stats latencyMs by modelId", 1, 7, "inside an aggregation"),
    ("stats sum(latencyMs) + latencyMs", 1, 24, "inside an aggregation"),
    ("stats 1 + 2", 1, 7, "is not an aggregation"),
    ("fields a | dedup a | sort b", 1, 22, "only `limit` may follow `dedup`"),
    ("dedup a | fields b", 1, 11, "only `limit` may follow `dedup`"),
    ("stats count(*) as a by x | stats count(*) as b by a | stats count(*)", 1, 55, "at most 2 `stats`"),
    ("fields a | SOURCE \"g\"", 1, 12, "SOURCE must be the first command"),
    ("stats count(*) as n by modelId | filter latencyMs > 1", 1, 41, "not a column of the `stats` output"),
    ("stats count(*) as n, sum(latencyMs) as n", 1, 22, "used twice"),
    ("stats count(*) as c by modelId | stats earliest(c)", 1, 40, "needs @timestamp"),
    ("stats count(*) as c by modelId | fields bin(5m)", 1, 41, "needs @timestamp"),
    ("filter modelId like /(/", 1, 21, "invalid regex"),
    ("filter modelId =~ /(?<=a)b/", 1, 19, "lookbehind"),
    ("filter modelId =~ /(a)\\1/", 1, 19, "backreferences"),
    ("filter modelId =~ latencyMs", 1, 19, "needs a regex"),
    ("stats pct(latencyMs, 101)", 1, 22, "from 0 to 100"),
    ("stats pct(latencyMs, latencyMs)", 1, 22, "from 0 to 100"),
    ("fields isIpInSubnet(ip, cidr)", 1, 25, "literal CIDR"),
    ("fields isIpInSubnet(ip, \"10.0.0.0/33\")", 1, 25, "not a CIDR"),
    ("fields isIpv4InSubnet(ip, \"::/0\")", 1, 27, "not an IPv4 subnet"),
    ("fields isIpv6InSubnet(ip, \"10.0.0.0/8\")", 1, 27, "not an IPv6 subnet"),
    ("fields 5m", 1, 8, "time period cannot be used here"),
    ("filter latencyMs = 5m", 1, 20, "time period cannot be used here"),
    ("fields bin(latencyMs)", 1, 12, "expected a time period"),
    ("fields bin(0m)", 1, 12, "must be positive"),
    ("fields bin(1.5mo)", 1, 12, "whole numbers"),
    ("stats sum(*)", 1, 11, "cannot be *"),
    ("fields /abc/", 1, 8, "regex cannot be used here"),
])
def test_static_errors_name_position_and_problem(text, line, column, words):
    err = error_of(text)
    assert (err.line, err.column) == (line, column), str(err)
    assert words in str(err)


def test_error_position_on_a_later_line():
    err = error_of("fields modelId\n| filter ispresent(errorCode)\n|   stats count(*) by nosuch(modelId)")
    assert (err.line, err.column) == (3, 23)
    assert "unknown function" in err.detail


def test_errors_are_query_errors():
    assert issubclass(QuerySyntaxError, QueryError)
    with pytest.raises(QueryError):
        compile_query(parse("fields a"), QueryScope(), dialect="oracle")


def test_parse_glob_needs_one_name_per_star():
    query = ast.Query(commands=(ast.Parse(source=ast.FieldRef(path=("@message",)), pattern="a * b *",
                                          is_regex=False, names=("x",), line=2, column=3),))
    with pytest.raises(QuerySyntaxError) as info:
        compile_query(query, QueryScope())
    assert (info.value.line, info.value.column) == (2, 3)
    assert "2 `*` but 1 names" in str(info.value)


def test_parse_regex_names_must_be_groups():
    query = ast.Query(commands=(ast.Parse(source=ast.FieldRef(path=("@message",)), pattern="(?<a>x)",
                                          is_regex=True, names=("b",)),))
    with pytest.raises(QuerySyntaxError, match="no named group 'b'"):
        compile_query(query, QueryScope())


def test_function_names_ignore_case():
    sql = sql_of("filter isPresent(errorCode) and ISPRESENT(modelId) | fields ToUpper(modelId)")
    assert "UPPER" in sql


def test_hand_built_ast_compiles_without_parser():
    query = ast.Query(commands=(
        ast.Filter(condition=ast.Binary(op="=", left=ast.FieldRef(path=("errorCode",), text="errorCode"),
                                        right=ast.Literal(value="ThrottlingException", text='"ThrottlingException"'))),
        ast.Stats(aggregates=(ast.Projection(expr=ast.Call(name="count", args=(ast.Star(text="*"),), text="count(*)"),
                                             alias="n"),),
                  by=(ast.Projection(expr=ast.FieldRef(path=("modelId",), text="modelId")),)),
    ))
    compiled = compile_query(query, QueryScope())
    assert isinstance(compiled, CompiledQuery) and compiled.dialect == "duckdb"
    assert compiled.columns == (OutputColumn("modelId", "value"), OutputColumn("n", "value"))
    assert "\"error_code\" = 'ThrottlingException'" in compiled.sql


# ---------------------------------------------------------------------- SQL shape


@pytest.mark.parametrize("name", sorted(CORE))
def test_core_questions_compile_to_one_flat_select_on_hot_columns(name):
    sql = sql_of(CORE[name])
    tree = sqlglot.parse_one(sql, read="duckdb")
    selects = list(tree.find_all(exp.Select))
    # One SELECT does the work; event results get one around it that only writes the kept rows'
    # timestamps as text (no WHERE, GROUP BY or LIMIT of its own).
    assert len(selects) == (2 if name == "slowest" else 1), sql
    if len(selects) == 2:
        assert not any(selects[0].args.get(k) for k in ("where", "group", "limit", "qualify")), sql
    assert "JSON" not in sql.upper()
    assert "message" not in sql


def test_bin_groups_on_the_integer_bucket():
    sql = sql_of(CORE["per_minute"])
    assert "GROUP BY EPOCH_US(\"ts\") // 60000000" in sql
    assert "MAKE_TIMESTAMP((EPOCH_US(\"ts\") // 60000000) * 60000000)" in sql


def test_columns_name_and_kind():
    compiled = compile_query(parse(CORE["throttles"]), QueryScope())
    # The engine formats timestamps itself, so they arrive as text like any other value.
    assert compiled.columns == (OutputColumn("bin(5m)", "value"), OutputColumn("modelId", "value"),
                                OutputColumn("throttles", "value"))
    compiled = compile_query(parse("fields `identity.arn`, output.outputBodyJson, @timestamp, strlen(modelId)"),
                             QueryScope())
    assert [(c.name, c.kind) for c in compiled.columns] == [
        ("identity.arn", "value"), ("output.outputBodyJson", "json"), ("@timestamp", "value"),
        ("strlen(modelId)", "value")]


def test_default_output_and_order():
    compiled = compile_query(parse("filter ispresent(errorCode)"), QueryScope())
    assert [c.name for c in compiled.columns] == ["@timestamp", "@message"]
    assert 'ORDER BY "ts" DESC LIMIT 10000)' in compiled.sql  # newest first, then written as text


def test_stats_without_sort_orders_by_keys():
    assert sql_of("stats count(*) by operation, modelId").endswith(
        'ORDER BY "operation" ASC, "model_id" ASC LIMIT 10000')


def test_nesting_only_where_needed(monkeypatch):
    # Stages only: the row-id choice of a top-N carrying messages (test_top_n_by_row_id) aside.
    monkeypatch.setattr(Dialect, "top_n_by_row_id", False)
    selects = lambda t: len(list(sqlglot.parse_one(sql_of(t), read="duckdb").find_all(exp.Select)))  # noqa: E731
    assert selects("fields a | filter b = 1 | sort c | limit 5 | fields d") == 1
    assert selects("stats count(*) as n by a | filter n > 1 | sort n | limit 3") == 1
    # Event results with timestamps (the default @timestamp, @message) get one SELECT around the
    # rest that writes the kept rows' timestamps as text.
    assert selects("limit 5 | filter b = 1") == 3
    assert selects("limit 5 | filter b = 1 | fields a") == 2
    assert selects("sort a | limit 5 | sort b") == 3
    assert selects("stats count(*) as n by a | stats sum(n)") == 2
    assert selects("dedup a | limit 3") == 2
    assert selects("fields a | dedup a | limit 3") == 1


def test_scope_goes_into_the_innermost_select():
    scope = QueryScope(log_groups=("g1", "g'2"), start_ms=0, end_ms=1_000, limit=7)
    tree = sqlglot.parse_one(sql_of("limit 5 | filter b = 1 | stats count(*) as n | stats sum(n)", scope), read="duckdb")
    innermost = [s for s in tree.find_all(exp.Select) if not list(s.find(exp.From).find_all(exp.Select))]
    assert len(innermost) == 1
    where = innermost[0].args["where"].sql(dialect="duckdb")
    assert "\"log_group\" IN ('g1', 'g''2')" in where
    assert "\"ts\" >= CAST('1970-01-01 00:00:00.000000' AS TIMESTAMP)" in where
    assert "\"ts\" <= CAST('1970-01-01 00:00:01.000000' AS TIMESTAMP)" in where
    assert tree.args["limit"].sql() == "LIMIT 7"


# ---------------------------------------------------------------------- no escape from literals and names


HOSTILE = [
    "x'; DROP TABLE events; --",
    'a"b',
    "back\\slash'",
    "semi;colon -- comment /* c */",
    "line\nbreak",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_user_text_stays_inside_literals_and_identifiers(value):
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    alias = value.replace("`", "")
    query = ast.Query(commands=(
        ast.Filter(condition=ast.Binary(op="=", left=ast.FieldRef(path=("modelId",), text="modelId"),
                                        right=ast.Literal(value=value, text=f'"{escaped}"'))),
        ast.Fields(items=(ast.Projection(expr=ast.FieldRef(path=(value, "x"), text="f"), alias=alias),
                          ast.Projection(expr=ast.Literal(value=value, text="lit"), alias="lit"))),
    ))
    compiled = compile_query(query, QueryScope(log_groups=(value,)))
    statements = sqlglot.parse(compiled.sql, read="duckdb")
    assert len(statements) == 1
    tree = statements[0]
    strings = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
    assert value in strings
    assert alias in {i.this for i in tree.find_all(exp.Identifier)}
    assert not list(tree.find_all(exp.Drop))


# ---------------------------------------------------------------------- patterns


def test_glob_to_regex():
    pattern, count = glob_to_regex("[*] * The error was: *")
    assert count == 3
    assert pattern == r"(?s)\[(.*?)\] (.*?) The error was: (.*)"
    m = re.search(pattern, "x [WARN] cfg The error was: boom. more")
    assert m.groups() == ("WARN", "cfg", "boom. more")


def test_glob_escapes_every_metacharacter():
    literal = r"a.b+c?(d)|[e]{f}^$\g"
    pattern, count = glob_to_regex(literal + "*")
    assert count == 1
    assert re.search(pattern, "zz" + literal + "TAIL").group(1) == "TAIL"


def test_translate_regex_named_groups_and_indexes():
    fail = lambda msg: pytest.fail(msg)  # noqa: E731
    pattern, groups = translate_regex(r"(x)(?:y)(?<a>\d+)[(](?i:(?P<b>z))\((?<c>.)", fail)
    assert pattern == r"(x)(?:y)(?P<a>\d+)[(](?i:(?P<b>z))\((?P<c>.)"
    assert groups == {"a": 2, "b": 3, "c": 4}
    m = re.search(pattern, "xy12(Z(q")
    assert [m.group(i) for i in (2, 3, 4)] == ["12", "Z", "q"]


def test_translate_regex_accepts_re2_only_syntax():
    fail = lambda msg: pytest.fail(msg)  # noqa: E731
    assert translate_regex(r"a(?i)b\z", fail)[0] == r"a(?i)b\z"
    assert translate_regex(r"(?U)a+", fail)[0] == r"(?U)a+"


@pytest.mark.parametrize("bad", [r"(?=a)", r"(?!a)", r"(?<!a)b", r"(?>a)", r"(a)\2", "(", "[a-"])
def test_translate_regex_rejects_what_re2_cannot_run(bad):
    messages = []

    def fail(msg):
        messages.append(msg)
        raise ValueError(msg)

    with pytest.raises(ValueError):
        translate_regex(bad, fail)
    assert messages


def test_escaped_parenthesis_is_not_lookahead():
    pattern, groups = translate_regex(r"\(?=x", lambda msg: pytest.fail(msg))
    assert pattern == r"\(?=x" and groups == {}


# ---------------------------------------------------------------------- @ptr


def test_ptr_round_trip():
    assert parse_ptr(make_ptr("/aws/bedrock/modelinvocations", -42)) == ("/aws/bedrock/modelinvocations", -42)
    with pytest.raises(ValueError):
        parse_ptr("nocolon")


def test_percentiles_of_one_value_are_one_sorted_aggregate():
    sql = sql_of("stats pct(latencyMs, 90) as p90, pct(latencyMs, 50) as p50, pct(latencyMs, 90) as again,"
                 " pct(timeToFirstTokenMs, 50) as t50 | sort p50")
    lists = set(re.findall(r'QUANTILE_DISC\("latency_ms", \[([^\]]*)\]\)', sql))
    assert lists == {"CAST(0.5 AS DOUBLE), CAST(0.9 AS DOUBLE)"}
    assert re.search(r'\]\)\[2\] AS "p90".*\]\)\[1\] AS "p50".*\]\)\[2\] AS "again"', sql)
    assert 'QUANTILE_DISC("ttft_ms", CAST(0.5 AS DOUBLE)) AS "t50"' in sql  # alone: left as it was


@pytest.mark.parametrize("end_ms", [2**60, -(2**60)])
def test_a_time_outside_the_calendar_is_a_query_error(end_ms):
    with pytest.raises(QueryError, match="outside the years 1 to 9999"):
        sql_of("fields @message", QueryScope(end_ms=end_ms))


def test_early_years_are_written_in_full():
    assert "CAST('0100-01-01 00:00:00.000000' AS TIMESTAMP)" in sql_of(
        "fields @message", QueryScope(start_ms=-59011459200000))
