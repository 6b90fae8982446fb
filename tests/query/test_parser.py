"""Tests for the Logs Insights parser: commands, operators, literals, positions and errors."""

from __future__ import annotations

import pytest

from dashcam.errors import QuerySyntaxError
from dashcam.query import ast
from dashcam.query.parser import MAX_NESTING, parse


def one(text: str):
    """The single command of ``text``."""
    (command,) = parse(text).commands
    return command


def expr(text: str) -> ast.Expr:
    """The expression of ``filter <text>``."""
    return one(f"filter {text}").condition


def f(*path: str) -> ast.FieldRef:
    return ast.FieldRef(tuple(path))


def lit(value) -> ast.Literal:
    return ast.Literal(value)


def binary(op, left, right) -> ast.Binary:
    return ast.Binary(op, left, right)


def error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    return info.value


# ---------------------------------------------------------------- commands


def test_fields_with_aliases():
    cmd = one("fields @timestamp, @message as msg, `foo-bar` as `my col`, a.b")
    assert isinstance(cmd, ast.Fields)
    assert [p.expr for p in cmd.items] == [f("@timestamp"), f("@message"), f("foo-bar"), f("a", "b")]
    assert [p.alias for p in cmd.items] == [None, "msg", "my col", None]
    assert [p.name for p in cmd.items] == ["@timestamp", "msg", "my col", "a.b"]


def test_display():
    cmd = one("display a, strlen(b) as n")
    assert isinstance(cmd, ast.Display)
    assert [p.name for p in cmd.items] == ["a", "n"]


def test_filter():
    cmd = one("filter a > 1")
    assert cmd == ast.Filter(binary(">", f("a"), lit(1)))


def test_stats_with_by_and_aliases():
    cmd = one("stats count(*) as n, avg(latency) by modelId, bin(5m) as period")
    assert isinstance(cmd, ast.Stats)
    assert [p.name for p in cmd.aggregates] == ["n", "avg(latency)"]
    assert [p.name for p in cmd.by] == ["modelId", "period"]
    assert cmd.aggregates[0].expr == ast.Call("count", (ast.Star(),))
    assert cmd.by[1].expr == ast.Call("bin", (ast.Duration(5, "m"),))


def test_stats_without_by():
    cmd = one("stats sum(x)")
    assert cmd.by == () and cmd.aggregates[0].expr == ast.Call("sum", (f("x"),))


def test_sort_directions():
    cmd = one("sort a desc, b asc, c, d DESC")
    assert isinstance(cmd, ast.Sort)
    assert [(k.expr, k.descending) for k in cmd.keys] == [
        (f("a"), True), (f("b"), False), (f("c"), None), (f("d"), True)]
    assert [k.text for k in cmd.keys] == ["a desc", "b asc", "c", "d DESC"]


def test_limit():
    assert one("limit 25") == ast.Limit(25)


def test_parse_glob():
    cmd = one('parse @message "[*] * The error was: *" as level, config, exception')
    assert cmd == ast.Parse(f("@message"), "[*] * The error was: *", False, ("level", "config", "exception"))


def test_parse_regex_names_in_order():
    cmd = one(r"parse @message /(?<level>\S+) (?P<code>\d+) (?<=x)(?<!y)\(?<no>\) [(?<nope>)] (?<msg>.*)/")
    assert cmd.is_regex and cmd.names == ("level", "code", "msg")
    assert cmd.pattern.startswith(r"(?<level>\S+)")


def test_parse_defaults_to_message_and_takes_backticked_field():
    assert one('parse "a=*" as a').source == f("@message")
    assert one("parse /(?<x>.)/").source == f("@message")
    assert one('parse `foo-bar` "a=*" as a').source == f("foo-bar")
    assert one("parse x.y /(?<z>.)/").source == f("x", "y")


def test_parse_regex_with_escaped_slash():
    cmd = one(r"parse @message /path \/(?<p>\w+)/")
    assert cmd.pattern == r"path /(?<p>\w+)" and cmd.names == ("p",)


def test_dedup():
    assert one("dedup a, `b.c`") == ast.Dedup((f("a"), f("b", "c")))


def test_unnest():
    assert one("unnest m.input into x") == ast.Unnest(f("m", "input"), "x")


def test_source_names_and_prefixes():
    assert one('SOURCE "group-a"') == ast.Source(names=("group-a",))
    assert one('SOURCE "a", \'b\'') == ast.Source(names=("a", "b"))
    assert one('SOURCE logGroups(namePrefix: ["/aws/a", "b"])') == ast.Source(prefixes=("/aws/a", "b"))
    assert one("source logGroups(namePrefix: 'x', class: STANDARD, logGroupClass: ['INFREQUENT_ACCESS'])") \
        == ast.Source(prefixes=("x",))
    assert one('SOURCE logGroups(), "n"') == ast.Source(names=("n",))


def test_command_keywords_ignore_case():
    query = parse("FIELDS a | Filter b | STATS count(*) BY c AS d | SORT d DESC | LIMIT 1")
    assert [type(c).__name__ for c in query.commands] == ["Fields", "Filter", "Stats", "Sort", "Limit"]
    assert query.commands[2].by[0].alias == "d"


def test_command_names_are_ordinary_field_names():
    cmd = one("fields source, limit, filter, stats.count")
    assert [p.expr for p in cmd.items] == [f("source"), f("limit"), f("filter"), f("stats", "count")]


def test_reserved_words_need_backticks():
    assert one("fields `desc`, `in`").items[0].expr == f("desc")
    assert "unexpected 'desc'" in str(error("fields desc"))


# ---------------------------------------------------------------- layout


def test_newlines_comments_and_pipes():
    query = parse(
        "# leading comment\n"
        "fields a, # trailing comment | not a pipe\n"
        "       b\n"
        "    # indented comment\n"
        "| filter a = '# not a comment' # another\n"
        "|\n"
        "  limit\n"
        "  5\n"
        "# last"
    )
    fields, filt, limit = query.commands
    assert [p.name for p in fields.items] == ["a", "b"]
    assert filt.condition.right == lit("# not a comment")
    assert limit == ast.Limit(5)


def test_query_node_keeps_whole_text():
    text = "fields a\n| limit 2\n"
    query = parse(text)
    assert query.text == text and (query.line, query.column) == (1, 1)


# ---------------------------------------------------------------- operators


def test_arithmetic_precedence():
    assert expr("a + b * c") == binary("+", f("a"), binary("*", f("b"), f("c")))
    assert expr("a * b + c") == binary("+", binary("*", f("a"), f("b")), f("c"))
    assert expr("a - b - c") == binary("-", binary("-", f("a"), f("b")), f("c"))
    assert expr("a / b / c") == binary("/", binary("/", f("a"), f("b")), f("c"))
    assert expr("a % b * c") == binary("*", binary("%", f("a"), f("b")), f("c"))
    assert expr("(a + b) * c") == binary("*", binary("+", f("a"), f("b")), f("c"))


def test_power_is_right_associative_and_below_unary_minus():
    assert expr("2 ^ 3 ^ 2") == binary("^", lit(2), binary("^", lit(3), lit(2)))
    assert expr("-2 ^ 2") == binary("^", ast.Unary("-", lit(2)), lit(2))
    assert expr("a * b ^ c") == binary("*", f("a"), binary("^", f("b"), f("c")))
    assert expr("2 ^ -1") == binary("^", lit(2), ast.Unary("-", lit(1)))


def test_boolean_precedence():
    assert expr("not a = b and c") == binary(
        "and", ast.Unary("not", binary("=", f("a"), f("b"))), f("c"))
    assert expr("a or b and c") == binary("or", f("a"), binary("and", f("b"), f("c")))
    assert expr("a = 1 + 2") == binary("=", f("a"), binary("+", lit(1), lit(2)))
    assert expr("!isPresent(x) or y") == binary(
        "or", ast.Unary("not", ast.Call("ispresent", (f("x"),))), f("y"))
    assert expr("not not a") == ast.Unary("not", ast.Unary("not", f("a")))


@pytest.mark.parametrize("written, op", [
    ("=", "="), ("==", "="), ("!=", "!="), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">="),
    ("like", "like"), ("LIKE", "like"), ("not like", "not_like"), ("NOT Like", "not_like"),
])
def test_comparisons(written, op):
    assert expr(f"a {written} b") == binary(op, f("a"), f("b"))


def test_regex_operators():
    assert expr("a =~ /x.*/") == binary("=~", f("a"), ast.Regex("x.*"))
    assert expr("a !~ /x/") == binary("not_like", f("a"), ast.Regex("x"))
    assert expr("a like /(?i)err/") == binary("like", f("a"), ast.Regex("(?i)err"))
    assert expr(r"a not like /\/v1\//") == binary("not_like", f("a"), ast.Regex("/v1/"))


def test_in_lists():
    assert expr('a in ["x", 2]') == ast.InList(f("a"), (lit("x"), lit(2)))
    assert expr("a not in [1]") == ast.InList(f("a"), (lit(1),), negated=True)
    assert expr("a IN [1] and b") == binary("and", ast.InList(f("a"), (lit(1),)), f("b"))


def test_keywords_ignore_case():
    assert expr("a AND b Or NOT c") == binary(
        "or", binary("and", f("a"), f("b")), ast.Unary("not", f("c")))


def test_division_is_not_a_regex():
    assert expr("a / 2 / b") == binary("/", binary("/", f("a"), lit(2)), f("b"))
    assert expr("(a)/(b)") == binary("/", f("a"), f("b"))
    assert expr("count(*)/2") == binary("/", ast.Call("count", (ast.Star(),)), lit(2))


# ---------------------------------------------------------------- literals


def test_numbers():
    assert expr("a = 42").right == lit(42) and isinstance(expr("a = 42").right.value, int)
    assert expr("a = 0.00000006").right == lit(0.00000006)
    assert expr("a = -3").right == ast.Unary("-", lit(3))
    assert expr("a = --3.5").right == ast.Unary("-", ast.Unary("-", lit(3.5)))


def test_strings_and_escapes():
    assert expr("a = 'x'").right == lit("x")
    assert expr('a = "x"').right == lit("x")
    assert expr(r'a = "q\"uo\'te \\ \n \t"').right == lit("q\"uo'te \\ \n \t")
    assert expr(r"a = 'it\'s'").right == lit("it's")
    assert expr(r'a = "a\.b"').right == lit(r"a\.b")  # unknown escapes keep their backslash
    assert expr('a = ""').right == lit("")


@pytest.mark.parametrize("written, unit", [
    (u, canonical)
    for canonical, spellings in {
        "ms": ["ms", "msec", "msecs", "millisecond", "milliseconds"],
        "s": ["s", "sec", "secs", "second", "seconds"],
        "m": ["m", "min", "mins", "minute", "minutes"],
        "h": ["h", "hr", "hrs", "hour", "hours"],
        "d": ["d", "day", "days"],
        "w": ["w", "week", "weeks"],
        "mo": ["mo", "mon", "month", "months"],
        "q": ["q", "qtr", "qtrs", "quarter", "quarters"],
        "y": ["y", "yr", "yrs", "year", "years"],
    }.items()
    for u in spellings
])
def test_duration_units(written, unit):
    node = one(f"stats count(*) by bin(3{written})").by[0].expr.args[0]
    assert node == ast.Duration(3, unit)
    assert node.text == f"3{written}"


def test_duration_amounts():
    assert one("stats count(*) by bin(1.5h)").by[0].expr.args[0] == ast.Duration(1.5, "h")
    assert one("stats count(*) by bin(86400s)").by[0].expr.args[0] == ast.Duration(86400, "s")
    assert one("stats count(*) by bin(100ms)").by[0].expr.args[0] == ast.Duration(100, "ms")


def test_regex_literal_anywhere():
    assert expr('replace(x, /a+/, "y") = "z"').left == ast.Call(
        "replace", (f("x"), ast.Regex("a+"), lit("y")))


# ---------------------------------------------------------------- field names


def test_field_names():
    assert expr("@timestamp").path == ("@timestamp",)
    for name in ["@message", "@logStream", "@log", "@ingestionTime", "@ptr", "$x", "a_b", "@@example.com"]:
        assert expr(name) == ast.FieldRef(tuple(name.split(".")))
    assert expr("input.inputBodyJson.messages.0.content.0.text").path == (
        "input", "inputBodyJson", "messages", "0", "content", "0", "text")


def test_backticked_names():
    node = expr("`identity.arn`")
    assert node.path == ("identity", "arn") and node.text == "identity.arn"
    assert expr("`foo-bar`").path == ("foo-bar",)
    assert expr("`foo-bar`.baz.0").path == ("foo-bar", "baz", "0")
    assert expr("a.`b c`.d").path == ("a", "b c", "d")
    assert expr("`a`.`b-c`").path == ("a", "b-c")


# ---------------------------------------------------------------- calls


def test_calls():
    assert expr("count()") == ast.Call("count", ())
    assert expr("isPresent(a)") == expr("ISPRESENT(a)") == ast.Call("ispresent", (f("a"),))
    assert expr("bin(@timestamp, 1h)") == ast.Call("bin", (f("@timestamp"), ast.Duration(1, "h")))
    assert expr('replace(replace(modelId, "a", ""), "b", "")') == ast.Call("replace", (
        ast.Call("replace", (f("modelId"), lit("a"), lit(""))), lit("b"), lit("")))
    assert expr("greatest(a, b + 1, -c)").args[2] == ast.Unary("-", f("c"))


def test_parser_does_not_check_function_names_or_arity():
    assert expr("nosuchfunction(1, 2, 3, 4)") == ast.Call("nosuchfunction", (lit(1), lit(2), lit(3), lit(4)))
    assert expr("count(a, b)").name == "count"


# ---------------------------------------------------------------- text and positions


def test_node_text_as_written():
    cmd = one("stats count(*) by bin(5m)")
    assert cmd.aggregates[0].expr.text == "count(*)"
    assert cmd.by[0].expr.text == "bin(5m)"
    cmd = one("stats COUNT( * ) ,  sum(a)+sum( b )   as t")
    assert cmd.aggregates[0].name == "COUNT( * )"
    assert cmd.aggregates[1].expr.text == "sum(a)+sum( b )"
    assert cmd.aggregates[1].text == "sum(a)+sum( b )   as t"
    assert cmd.aggregates[1].expr.right.text == "sum( b )"
    assert one("fields `identity.arn`").items[0].name == "identity.arn"
    assert one("fields replace(`identity.arn`, 'x', '')").items[0].name == "replace(`identity.arn`, 'x', '')"
    assert one("fields (sum(x) / count(*))").items[0].name == "(sum(x) / count(*))"
    assert one("filter a   not   like 'x'").condition.text == "a   not   like 'x'"


def test_positions_on_multi_line_query():
    query = parse(
        "fields @timestamp,\n"
        "   latency * 2 as doubled\n"
        "| stats avg(doubled)\n"
        "    by bin(1h)\n"
        "  | sort avg(doubled) desc"
    )
    fields, stats, sort = query.commands
    assert (fields.line, fields.column) == (1, 1)
    doubled = fields.items[1]
    assert (doubled.line, doubled.column) == (2, 4)
    assert (doubled.expr.right.line, doubled.expr.right.column) == (2, 14)
    assert (stats.line, stats.column) == (3, 3)
    assert (stats.aggregates[0].expr.args[0].line, stats.aggregates[0].expr.args[0].column) == (3, 13)
    binning = stats.by[0].expr
    assert (binning.line, binning.column) == (4, 8)
    assert (binning.args[0].line, binning.args[0].column) == (4, 12)
    assert stats.text == "stats avg(doubled)\n    by bin(1h)"
    assert (sort.line, sort.column) == (5, 5)
    assert sort.keys[0].text == "avg(doubled) desc"


def test_star_position():
    star = expr("count( * )").args[0]
    assert star == ast.Star() and (star.text, star.column) == ("*", 15)


# ---------------------------------------------------------------- features of published Bedrock queries (§4)


def test_bin_two_argument_form_and_alias():
    cmd = one("stats count(*) as invocations by bin(@timestamp, 1h), bin(15m) as period")
    assert cmd.by[0].expr == ast.Call("bin", (f("@timestamp"), ast.Duration(1, "h")))
    assert cmd.by[1].name == "period"


def test_bang_negation_and_function_case():
    assert one("filter !isPresent(errorCode)").condition == ast.Unary(
        "not", ast.Call("ispresent", (f("errorCode"),)))
    assert one("filter not ispresent(errorCode)").condition == one("filter !isPresent(errorCode)").condition


def test_summed_boolean():
    cmd = one('stats sum(stop_reason = "end_turn" or stop_reason = "tool_use") as stops')
    assert cmd.aggregates[0].expr == ast.Call("sum", (binary(
        "or", binary("=", f("stop_reason"), lit("end_turn")), binary("=", f("stop_reason"), lit("tool_use"))),))


def test_arithmetic_between_aggregates():
    cmd = one("stats sum(a) + sum(b) as total, (sum(x) / count(*)) as perCall")
    assert cmd.aggregates[0].expr == binary("+", ast.Call("sum", (f("a"),)), ast.Call("sum", (f("b"),)))
    assert cmd.aggregates[1].expr == binary("/", ast.Call("sum", (f("x"),)), ast.Call("count", (ast.Star(),)))
    assert [p.name for p in cmd.aggregates] == ["total", "perCall"]


def test_filter_and_sort_after_stats():
    query = parse("stats count(*) as n by modelId | filter n > 10 | sort n desc")
    assert [type(c).__name__ for c in query.commands] == ["Stats", "Filter", "Sort"]


def test_group_by_boolean_and_json_paths():
    cmd = one("stats count(*) by ispresent(errorCode) as isError, input.inputBodyJson.messages.0.content.0.text")
    assert cmd.by[0].name == "isError"
    assert cmd.by[1].name == "input.inputBodyJson.messages.0.content.0.text"


def test_cost_pattern():
    cmd = one(
        'stats sum(strcontains(modelId, "nova-lite") * 0.00000006 * coalesce('
        "output.outputBodyJson.usage.inputTokens, output.outputBodyJson.usage.prompt_tokens,\n"
        "  output.outputBodyJson.usage.input_tokens, input.inputTokenCount)\n"
        ' + strcontains(modelId, "nova-pro") * 0.0000008 * input.inputTokenCount) as cost by modelId'
    )
    total = cmd.aggregates[0].expr.args[0]
    assert total.op == "+"
    coalesce = total.left.right
    assert coalesce.name == "coalesce" and len(coalesce.args) == 4
    assert coalesce.args[3] == f("input", "inputTokenCount")


def test_nested_replace_and_backticked_argument():
    cmd = one('fields replace(replace(modelId, "arn:aws:bedrock:us-east-1:123:inference-profile/", ""),'
              ' "us.", "") as model, replace(`identity.arn`, "arn:aws:sts::", "") as who')
    assert cmd.items[0].expr.args[0].args[0] == f("modelId")
    assert cmd.items[1].expr.args[0] == f("identity", "arn")


def test_json_parse_and_unnest():
    query = parse("fields jsonParse(@message) as m | unnest m.input into x")
    assert query.commands[0].items[0].expr == ast.Call("jsonparse", (f("@message"),))
    assert query.commands[1] == ast.Unnest(f("m", "input"), "x")


def test_source_then_filter_on_log_stream():
    query = parse("SOURCE \"log-group-name\" | filter @logStream = 'aws/bedrock/modelinvocations' | stats count(*)")
    assert query.commands[0] == ast.Source(names=("log-group-name",))
    assert query.commands[1].condition == binary("=", f("@logStream"), lit("aws/bedrock/modelinvocations"))


def test_datefloor_and_day_bins():
    query = parse("fields datefloor(@timestamp, 1h) as hour | stats count(*) by bin(86400s) as day")
    assert query.commands[0].items[0].expr == ast.Call("datefloor", (f("@timestamp"), ast.Duration(1, "h")))
    assert query.commands[1].by[0].name == "day"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("text, line, column, message", [
    ("foo a", 1, 1, "unknown command 'foo'; expected a command (fields, display, filter, stats, sort, "
                    "limit, parse, dedup, unnest, SOURCE)"),
    ("fields a\n| stats by x", 2, 9, "unexpected 'by'; expected an expression"),
    ("stats count(*) by", 1, 18, "unexpected end of query; expected an expression"),
    ("filter | limit 1", 1, 8, "unexpected '|'; expected an expression"),
    ("filter (a = 1", 1, 14, "unexpected end of query; expected one of: ')', an operator"),
    ("filter a = 1)", 1, 13, "unexpected ')'; expected one of: '|', an operator, end of query"),
    ("fields a b", 1, 10, "unexpected 'b'; expected one of: ',', '|', 'as', an operator, end of query"),
    ("fields a as", 1, 12, "unexpected end of query; expected a field name"),
    ("fields a as 5", 1, 13, "unexpected '5'; expected a field name"),
    ("fields a\n| filter b = \"abc", 2, 14, 'unterminated string: no closing " on this line'),
    ("filter b = 'abc\n'", 1, 12, "unterminated string: no closing ' on this line"),
    ("fields `abc", 1, 8, "unterminated backticked name: no closing ` on this line"),
    ("filter a like /abc", 1, 15, "unterminated regex: no closing / on this line"),
    ("fields a |", 1, 11, "unexpected end of query after '|'; expected a command (fields, display, "
                          "filter, stats, sort, limit, parse, dedup, unnest, SOURCE)"),
    ("fields a | | b", 1, 12, "unexpected '|'; expected a command (fields, display, filter, stats, "
                              "sort, limit, parse, dedup, unnest, SOURCE)"),
    ('parse @message "* x *" as a', 1, 27, "the parse pattern has 2 '*' but 1 name follows 'as'; "
                                           "there must be one name per '*'"),
    ('parse @message "*" as a, b', 1, 23, "the parse pattern has 1 '*' but 2 names follow 'as'; "
                                          "there must be one name per '*'"),
    ('parse @message "a*"', 1, 16, "the parse pattern has 1 '*'; expected 'as' and 1 name after it"),
    ('parse @message "abc" as x', 1, 16, "the parse pattern has no '*' to capture"),
    ("parse @message /(abc)/", 1, 16, "the parse regex has no named group such as (?<name>...) to "
                                      "capture into a field"),
    ("limit 5.5", 1, 7, "limit needs a whole number of rows, not '5.5'"),
    ("limit ten", 1, 7, "unexpected 'ten'; expected a number"),
    ("fields a; b", 1, 9, "unexpected character ';'; expected one of: ',', '|', 'as', an operator, "
                          "end of query"),
    ("sort a asc desc", 1, 12, "unexpected 'desc'; expected one of: ',', '|', end of query"),
    ("filter a not b", 1, 14, "unexpected 'b'; expected one of: 'in', 'like'"),
    ("stats count(*, a)", 1, 14, "unexpected ','; expected ')'"),
    ("filter a in []", 1, 14, "unexpected ']'; expected an expression"),
    ("unnest a as b", 1, 10, "unexpected 'as'; expected one of: 'into', an operator"),
    ("SOURCE logGroups(prefix: 'x')", 1, 18, "unknown logGroups argument 'prefix'"),
    ("fields ``", 1, 8, "an empty name in backticks is not a valid field name"),
    ("parse /(?<a>x)(?<a>y)/", 1, 7, "parse names the field 'a' twice"),
    ("# only a comment\n   \n", 1, 1, "the query is empty; expected a command"),
    ("", 1, 1, "the query is empty; expected a command"),
])
def test_errors(text, line, column, message):
    err = error(text)
    assert (err.line, err.column, err.detail) == (line, column, message)
    assert str(err) == f"line {line}, column {column}: {message}"


def test_error_expected_tuple_is_readable():
    err = error("fields a b")
    assert err.expected == ("','", "'|'", "'as'", "an operator", "end of query")


def test_query_length_limit():
    ok = "fields a" + " " * (10_000 - len("fields a"))
    assert len(parse(ok).commands) == 1
    err = error(ok + " ")
    assert err.detail == "query is longer than 10,000 characters"
    assert (err.line, err.column) == (1, 10_001)


def test_many_comment_markers_are_fast():
    err = error("# " * 3000 + "\nx")
    assert (err.line, err.column, err.detail.split(";")[0]) == (2, 1, "unknown command 'x'")


def test_nesting_limit():
    assert parse("fields " + "(" * 50 + "a" + ")" * 50).commands[0].items[0].expr == f("a")
    err = error("fields " + "-" * 5000 + "a")
    assert "nested too deeply" in err.detail and err.line == 1
    assert "nested too deeply" in error("fields " + "+".join(["a"] * (MAX_NESTING + 5))).detail


# ---------------------------------------------------------------- grammar sanity


def test_every_terminal_has_a_readable_name():
    from dashcam.query import parser

    for terminal in parser._lark().terminals:
        if terminal.name not in {"WS", "COMMENT"}:
            assert terminal.name in parser._WORDS, terminal.name


def test_no_lexer_state_confuses_regex_and_division():
    from dashcam.query import parser

    # Lark internals: the LALR table, whose states drive the contextual lexer. If a Lark upgrade
    # moves it, this fails loudly rather than passing without checking anything.
    states = parser._lark().parser.parser.parser.parse_table.states
    assert states
    for actions in states.values():
        assert not {"REGEX", "SLASH"} <= set(actions)


def test_parser_is_built_once():
    from dashcam.query import parser

    assert parser._lark() is parser._lark()
