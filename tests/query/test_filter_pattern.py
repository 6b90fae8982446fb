"""CloudWatch filter patterns: parsing, errors, and SQL results equal to a Python evaluation."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from dashcam.errors import InputError
from dashcam.query.dialects import get_dialect
from dashcam.query.filter_pattern import (
    Check, Compare, FilterPatternError, JsonPattern, Logical, MessageRegex, Terms, Wildcard, parse_filter_pattern,
)
from dashcam.store.batch import EventBatchBuilder
from dashcam.store.duckdb import DuckDBStore

DIALECT = get_dialect("duckdb")

JSON_EVENTS = [
    {"level": "ERROR", "latencyMs": 1843, "modelId": "anthropic.claude-3-haiku", "user": {"id": 1, "name": "ann"}},
    {"level": "INFO", "latencyMs": 12.5, "modelId": "amazon.nova-lite-v1:0", "user": {"id": 2}},
    {"level": "WARN", "latencyMs": "1843", "modelId": "meta.llama3", "errorCode": None, "flag": True},
    {"level": "error", "latencyMs": -3, "errorCode": "ThrottlingException", "flag": False, "tags": ["a", "b"]},
    {"items": [{"id": 7, "ok": True}, {"id": 8}], "latencyMs": 5e3, "modelId": "anthropic.claude-v2"},
    {"modelId": "x*y", "latencyMs": 0, "note": 'say "hi"', "path": "a/b~c"},
    {"nested": {"deep": {"value": 42}}, "modelId": "", "üñí": "çödé"},
]
TEXT_EVENTS = [
    "ERROR something failed",
    "[ERROR] Failed to process request 42",
    "WARN disk almost full",
    "INFO all good",
    "error lowercase is not ERROR",  # contains both spellings
    "Exception in thread main ERROR",
    "plain text with \"quotes\" inside",
    "{not json at all",
    "[1, 2, 3]",
    "42",
]
CORPUS = [orjson.dumps(e).decode() for e in JSON_EVENTS] + TEXT_EVENTS


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = DuckDBStore(tmp_path_factory.mktemp("fp"))
    builder = EventBatchBuilder()
    for i, message in enumerate(CORPUS):
        builder.add("g", "s", 1_700_000_000_000 + i, message, {})
    store.write_batch(builder.build())
    yield store
    store.close()


def sql_matches(store, text: str) -> set[str]:
    """Messages the compiled SQL selects."""
    condition = parse_filter_pattern(text).to_sql(DIALECT)
    select = exp.select("message").from_("events")
    if condition is not None:
        select = select.where(condition)
    return {row[0] for row in store.execute(DIALECT.sql(select))}


def python_matches(text: str) -> set[str]:
    pattern = parse_filter_pattern(text)
    return {m for m in CORPUS if pattern.matches(m)}


def ev(i: int) -> str:
    return CORPUS[i]


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text, root", [
    ("", None),
    ("   ", None),
    ("ERROR", Terms(("ERROR",))),
    ("ERROR Exception", Terms(("ERROR", "Exception"))),
    ('"Failed to process"', Terms(("Failed to process",))),
    ('"say \\"hi\\""', Terms(('say "hi"',))),
    ("?ERROR ?WARN", Terms((), ("ERROR", "WARN"))),
    ('ERROR -"thread main" -Exception', Terms(("ERROR",), (), ("thread main", "Exception"))),
    ("%ERR(OR)?%", MessageRegex("ERR(OR)?", "ERR(OR)?")),
    ("{ $.level = \"ERROR\" }", JsonPattern(Compare(("level",), "=", "ERROR"))),
    ("{$.level=ERROR}", JsonPattern(Compare(("level",), "=", "ERROR"))),
    ("{ $.latencyMs >= 1e3 }", JsonPattern(Compare(("latencyMs",), ">=", 1000.0))),
    ("{ $.items[1].id != -8.5 }", JsonPattern(Compare(("items", 1, "id"), "!=", -8.5))),
    ('{ $.modelId = "anthropic.*" }', JsonPattern(Compare(("modelId",), "=", Wildcard(("anthropic.", ""))))),
    ("{ $.modelId = %^meta% }", JsonPattern(Compare(("modelId",), "=", MessageRegex("^meta", "^meta")))),
    ("{ $.errorCode IS NULL }", JsonPattern(Check(("errorCode",), "null"))),
    ("{ $.flag is true }", JsonPattern(Check(("flag",), "true"))),
    ("{ $.flag IS FALSE }", JsonPattern(Check(("flag",), "false"))),
    ("{ $.user EXISTS }", JsonPattern(Check(("user",), "exists"))),
    ("{ $.user NOT EXISTS }", JsonPattern(Check(("user",), "not_exists"))),
    ("{ $.a = 1 && $.b = 2 || $.c = 3 }", JsonPattern(Logical("or", (
        Logical("and", (Compare(("a",), "=", 1.0), Compare(("b",), "=", 2.0))), Compare(("c",), "=", 3.0))))),
    ("{ $.a = 1 && ($.b = 2 || $.c = 3) }", JsonPattern(Logical("and", (
        Compare(("a",), "=", 1.0), Logical("or", (Compare(("b",), "=", 2.0), Compare(("c",), "=", 3.0))))))),
])
def test_every_form_parses_to_its_tree(text, root):
    assert parse_filter_pattern(text).root == root


@pytest.mark.parametrize("text, column, words", [
    ('"unclosed', 1, "not closed"),
    ("? ERROR", 1, "followed by a term"),
    ('ERROR ""', 7, "empty quoted term"),
    ("{ }", 3, "empty JSON pattern"),
    ("{ level = 1 }", 3, "selector"),
    ("{ $. = 1 }", 5, "field name"),
    ("{ $.a[x] = 1 }", 7, "array index"),
    ("{ $.a = }", 9, "expected a value"),
    ("{ $.a < \"x\" }", 9, "compares numbers"),
    ("{ $.a > %re% }", 9, "compares numbers"),
    ("{ $.a IS MAYBE }", 7, "IS NULL"),
    ("{ $.a = 1 ", 11, "`}`"),
    ("{ $.a = 1 } trailing", 13, "after the closing"),
    ("{ ($.a = 1 }", 12, "`)`"),
    ("{ $.a ~ 1 }", 7, "operator"),
    ("{ $.* = 1 }", 5, "wildcard selectors"),
    ("[ip, user]", 1, "space-delimited"),
    ("%(?<=a)b%", 2, "lookbehind"),
    ("%a(b%", 2, "invalid regex"),
    ("{ $.a = 1e999 }", 9, "out of range"),
    ("x" * 1025, 1025, "at most 1024"),
])
def test_malformed_patterns_name_the_column_and_the_problem(text, column, words):
    with pytest.raises(FilterPatternError) as caught:
        parse_filter_pattern(text)
    assert caught.value.column == column
    assert words in str(caught.value) and f"column {column}" in str(caught.value)
    assert isinstance(caught.value, InputError)  # the API turns it into InvalidParameterException


# ---------------------------------------------------------------------- results


@pytest.mark.parametrize("text, expected", [
    ("", set(CORPUS)),
    ("ERROR", {ev(0), *[m for m in TEXT_EVENTS if "ERROR" in m]}),
    ("ERROR Exception", {"Exception in thread main ERROR"}),
    ('"Failed to process"', {"[ERROR] Failed to process request 42"}),
    ("?WARN ?disk", {orjson.dumps(JSON_EVENTS[2]).decode(), "WARN disk almost full"}),
    ("ERROR -Exception -level", {"ERROR something failed", "[ERROR] Failed to process request 42",
                                 "error lowercase is not ERROR"}),
    ("%^\\[?ERROR%", {"ERROR something failed", "[ERROR] Failed to process request 42"}),
    ('{ $.level = "ERROR" }', {ev(0)}),
    ("{ $.level = ERROR }", {ev(0)}),
    ('{ $.level != "ERROR" }', {ev(1), ev(2), ev(3)}),
    ("{ $.latencyMs = 1843 }", {ev(0)}),  # the string "1843" is not the number 1843
    ('{ $.latencyMs = "1843" }', {ev(2)}),
    ("{ $.latencyMs > 100 }", {ev(0), ev(4)}),
    ("{ $.latencyMs <= 0 }", {ev(3), ev(5)}),
    ("{ $.latencyMs != 1843 }", {ev(1), ev(3), ev(4), ev(5)}),
    ('{ $.modelId = "anthropic.*" }', {ev(0), ev(4)}),
    ('{ $.modelId = "*nova*" }', {ev(1)}),
    ('{ $.modelId = "*" }', {ev(i) for i in (0, 1, 2, 4, 5, 6)}),
    ('{ $.modelId = "" }', {ev(6)}),
    ('{ $.modelId != "anthropic*" }', {ev(1), ev(2), ev(5), ev(6)}),
    ("{ $.modelId = %llama|nova% }", {ev(1), ev(2)}),
    ('{ $.note = "say \\"hi\\"" }', {ev(5)}),
    ('{ $.path = "a/b~c" }', {ev(5)}),
    ("{ $.user.id = 2 }", {ev(1)}),
    ("{ $.items[1].id = 8 }", {ev(4)}),
    ("{ $.items[0].ok IS TRUE }", {ev(4)}),
    ("{ $.tags[1] = b }", {ev(3)}),
    ("{ $.nested.deep.value >= 42 }", {ev(6)}),
    ('{ $.üñí = "çödé" }', {ev(6)}),
    ("{ $.errorCode IS NULL }", {ev(2)}),
    ("{ $.flag IS TRUE }", {ev(2)}),
    ("{ $.flag IS FALSE }", {ev(3)}),
    ("{ $.errorCode EXISTS }", {ev(2), ev(3)}),
    ("{ $.modelId NOT EXISTS }", {ev(3)} | {m for m in TEXT_EVENTS if m in ("[1, 2, 3]", "42")}),
    ('{ $.level = "ERROR" || $.level = "WARN" && $.flag IS TRUE }', {ev(0), ev(2)}),
    ('{ ($.level = "ERROR" || $.level = "INFO") && $.user.id > 1 }', {ev(1)}),
    ("{ $.user.name = ann && $.latencyMs > 1000 }", {ev(0)}),
])
def test_sql_and_python_select_exactly_the_expected_events(store, text, expected):
    assert sql_matches(store, text) == expected
    assert python_matches(text) == expected


TERM_WORDS = ["ERROR", "WARN", "error", "disk", "42", "main", "Failed to", "[ERROR]", "\"quotes\"", "zzz"]


@st.composite
def term_patterns(draw):
    """A random term pattern and its meaning, built independently of the parser."""
    terms = draw(st.lists(st.tuples(st.sampled_from(["", "?", "-"]), st.sampled_from(TERM_WORDS)),
                          min_size=1, max_size=4))
    parts = []
    for prefix, word in terms:
        # CloudWatch wants terms with anything but letters and digits quoted (`[` starts another syntax).
        quoted = not word.isalnum() or draw(st.booleans())
        shown = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"' if quoted else word
        parts.append(prefix + shown)
    return " ".join(parts), terms


def oracle(terms, message: str) -> bool:
    required = [w for p, w in terms if p == ""]
    optional = [w for p, w in terms if p == "?"]
    excluded = [w for p, w in terms if p == "-"]
    return (all(w in message for w in required) and (not optional or any(w in message for w in optional))
            and not any(w in message for w in excluded))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(term_patterns())
def test_random_term_patterns_agree_with_an_independent_evaluation(store, case):
    text, terms = case
    expected = {m for m in CORPUS if oracle(terms, m)}
    assert sql_matches(store, text) == expected
    assert python_matches(text) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["latencyMs", "user.id", "items[0].id", "nested.deep.value", "modelId"]),
       st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
       st.sampled_from([-3, 0, 2, 12.5, 42, 1843, 5000]))
def test_random_numeric_comparisons_agree_in_sql_and_python(store, field, op, number):
    text = f"{{ $.{field} {op} {number} }}"
    assert sql_matches(store, text) == python_matches(text)
