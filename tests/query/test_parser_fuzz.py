"""Property-based tests: the parser either returns a Query or raises QuerySyntaxError, always the
same way for the same text, with readable messages; generated valid queries keep their names."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashcam.errors import QuerySyntaxError
from dashcam.query import ast
from dashcam.query.parser import parse

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What an error's `expected` entries may be: readable words, never Lark's terminal names.
READABLE = re.compile(r"^(an? [a-z ,()]+.*|'[^']+'|end of query|namePrefix|class|logGroupClass|"
                      r"accountIdentifiers|a closing .)$")
INTERNAL = re.compile(r"\$END|__ANON|Token\(|Traceback|\b_[A-Z]+\b|\bRULE\b")


def outcome(text: str):
    """``("ok", query)`` or ``("error", message, expected)``; anything else propagates."""
    try:
        return ("ok", parse(text))
    except QuerySyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1
        assert exc.detail
        for leak in INTERNAL.finditer(exc.detail):  # only allowed when echoing the input
            assert leak.group() in text, exc.detail
        assert all(READABLE.match(word) for word in exc.expected), exc.expected
        return ("error", str(exc), exc.expected)


def check_deterministic(text: str) -> None:
    first, second = outcome(text), outcome(text)
    assert first == second
    if first[0] == "ok":
        assert [c.text for c in first[1].commands] == [c.text for c in second[1].commands]


@SETTINGS
@given(st.text(max_size=200))
def test_random_text(text):
    check_deterministic(text)


QUERY_CHARS = "abcxyz_@$.`'\"/\\|#,()[]*+-<>=!~^%: \n\t0123456789msh"


@SETTINGS
@given(st.text(alphabet=QUERY_CHARS, max_size=120))
def test_random_query_characters(text):
    check_deterministic(text)


TOKENS = [
    "fields", "display", "filter", "stats", "sort", "limit", "parse", "dedup", "unnest", "SOURCE",
    "logGroups", "namePrefix:", "by", "as", "asc", "desc", "into", "and", "or", "not", "in", "like",
    "|", ",", "(", ")", "[", "]", "*", "+", "-", "/", "%", "^", "=", "==", "!=", "<", "<=", ">", ">=",
    "=~", "!~", "!", "@timestamp", "@message", "modelId", "a.b.0.c", "`identity.arn`", "`x-y`",
    "count(*)", "count()", "bin(5m)", "sum(", "1", "2.5", "86400s", "1.5h", "'str'", '"s\\"q"',
    "/re/", "/(?<name>\\S+)/", '"* - *"', "# comment\n", "\n",
]


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", "", "\n  "]))
def test_random_token_soup(tokens, separator):
    check_deterministic(separator.join(tokens))


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_random_token_soup_after_a_command_start(tokens):
    check_deterministic("stats " + " ".join(tokens))
    check_deterministic("fields a | filter " + " ".join(tokens))


# ---------------------------------------------------------------- generated valid queries

NAMES = st.sampled_from(["a", "modelId", "@timestamp", "@message", "x.y.0.z", "$v", "in_x", "notes"])
BACKTICKED = st.sampled_from(["`foo-bar`", "`identity.arn`", "`a b`.c"])
OTHER_ATOMS = st.sampled_from(
    ["0", "17", "0.5", "1.25", "'s'", '"d q"', "5m", "1.5hours", "/re/", "count(*)", "count()"])

# Expressions as (text, simple): a simple one may be an operand anywhere, others get parentheses.
ATOMS = st.one_of(NAMES, BACKTICKED, OTHER_ATOMS).map(lambda text: (text, True))


def _operand(child) -> str:
    text, simple = child
    return text if simple else f"({text})"


def _combine(children):
    binary = st.tuples(children, st.sampled_from(
        [" + ", "-", " * ", " / ", "%", " ^ ", " = ", " != ", " < ", " >= ", " and ", " OR ",
         " like ", " not like ", " =~ ", " !~ "]), children).map(
        lambda t: (_operand(t[0]) + t[1] + _operand(t[2]), False))
    return st.one_of(
        binary,
        children.map(lambda c: (f"({c[0]})", True)),
        children.map(lambda c: ("-" + _operand(c), True)),
        children.map(lambda c: ("not " + _operand(c), False)),
        st.tuples(st.sampled_from(["sum", "isPresent", "COALESCE", "bin"]),
                  st.lists(children, min_size=1, max_size=3)).map(
            lambda t: (f"{t[0]}({', '.join(c[0] for c in t[1])})", True)),
        st.tuples(children, st.lists(children, min_size=1, max_size=3)).map(
            lambda t: (f"{_operand(t[0])} in [{', '.join(c[0] for c in t[1])}]", False)),
    )


EXPRESSIONS = st.recursive(ATOMS, _combine, max_leaves=12).map(lambda pair: pair[0])
ALIASES = st.one_of(st.none(), st.sampled_from(["n", "total", "`my col`", "per_call", "m.x"]))


def expected_name(written: str, alias: str | None) -> str:
    """CloudWatch's column name: the alias, else the text as written (a bare backticked field
    loses its backticks)."""
    if alias is not None:
        return alias.strip("`")
    return written.replace("`", "") if re.fullmatch(r"`[^`]*`(\.\w+)*", written) else written


def listing(items) -> str:
    return ",\n  ".join(e if a is None else f"{e} as {a}" for e, a in items)


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(row) + 1 for row in lines[: line - 1]) + column - 1


def check_projections(text, projections, items) -> None:
    assert [p.name for p in projections] == [expected_name(e, a) for e, a in items]
    for projection, (written, _alias) in zip(projections, items):
        if not isinstance(projection.expr, ast.FieldRef):
            assert projection.expr.text == written
        assert text[_offset(text, projection.line, projection.column):].startswith(projection.text)


@SETTINGS
@given(st.lists(st.tuples(EXPRESSIONS, ALIASES), min_size=1, max_size=4), st.sampled_from(["fields", "display"]))
def test_projection_names_round_trip(items, command):
    text = command + " " + listing(items)
    (cmd,) = parse(text).commands
    check_projections(text, cmd.items, items)


@SETTINGS
@given(st.lists(st.tuples(EXPRESSIONS, ALIASES), min_size=1, max_size=3),
       st.lists(st.tuples(EXPRESSIONS, ALIASES), max_size=3))
def test_stats_names_round_trip(aggregates, groups):
    text = "# generated\nstats " + listing(aggregates) + ("\n  by " + listing(groups) if groups else "")
    (cmd,) = parse(text).commands
    check_projections(text, cmd.aggregates, aggregates)
    check_projections(text, cmd.by, groups)
