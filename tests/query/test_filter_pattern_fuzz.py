"""Fuzzing CloudWatch filter patterns (outside input: FilterLogEvents, metric filters): any text
either parses or raises dashcam's InputError (FilterPatternError) — nothing else — and a parsed
pattern both evaluates in Python and runs as SQL on DuckDB without failing. Seeds: the files in
tests/fuzz-corpus/filter-patterns, replayed and mutated."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from dashcam.errors import InputError
from dashcam.query.dialects import get_dialect
from dashcam.query.filter_pattern import parse_filter_pattern
from dashcam.store.batch import EventBatchBuilder
from dashcam.store.duckdb import DuckDBStore

CORPUS = Path(__file__).resolve().parents[1] / "fuzz-corpus" / "filter-patterns"
SEEDS = [path.read_text(encoding="utf-8").rstrip("\n") for path in sorted(CORPUS.iterdir())]
DIALECT = get_dialect("duckdb")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGES = [orjson.dumps({"latencyMs": 1843, "modelId": "amazon.nova", "a": [1, {"b": None}], "ok": True}).decode(),
            "ERROR timeout after 30s", "{not json", "", "42", orjson.dumps([1, 2]).decode()]
PATTERN_CHARS = '{}[]()$.=!<>&|"%*?-_ \\/0123456789aAbeExz:,;~^+\t\n'
PATTERN_TOKENS = ["{", "}", "(", ")", "[", "]", "$", ".", "$.a", "$.a[0]", "$.a[0].b", "&&", "||", "=", "!=", "<", ">=",
                  "IS", "NOT", "NULL", "EXISTS", "TRUE", "false", '"x"', '"', "%re+%", "%", "*", "1", "-2.5e3", "1e999",
                  "?", "-", "ERROR", " ", "..."]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = DuckDBStore(tmp_path_factory.mktemp("fp-fuzz"))
    builder = EventBatchBuilder()
    for i, message in enumerate(MESSAGES):
        builder.add("g", "s", 1_700_000_000_000 + i, message, {})
    store.write_batch(builder.build())
    yield store
    store.close()


def check(store, text: str) -> None:
    """Parse ``text``; if it parses, evaluate it both ways. Anything but InputError propagates."""
    try:
        pattern = parse_filter_pattern(text)
    except InputError as exc:
        assert str(exc)
        return
    for message in MESSAGES:
        pattern.matches(message)
    condition = pattern.to_sql(DIALECT)
    select = exp.select("count(*)").from_("events")
    if condition is not None:
        select = select.where(condition)
    store.execute(DIALECT.sql(select))


@pytest.mark.parametrize("seed", SEEDS)
def test_corpus_seeds(store, seed):
    check(store, seed)


@SETTINGS
@given(st.text(max_size=120))
def test_random_text(store, text):
    check(store, text)


@SETTINGS
@given(st.text(alphabet=PATTERN_CHARS, max_size=80))
def test_random_pattern_characters(store, text):
    check(store, text)


@SETTINGS
@given(st.lists(st.sampled_from(PATTERN_TOKENS), max_size=20), st.sampled_from(["", " "]))
def test_random_token_soup(store, tokens, separator):
    check(store, separator.join(tokens))


@SETTINGS
@given(st.sampled_from(SEEDS), st.integers(0, 200), st.integers(0, 200), st.text(alphabet=PATTERN_CHARS, max_size=6))
def test_mutated_seeds(store, seed, start, length, insert):
    start = min(start, len(seed))
    check(store, seed[:start] + insert + seed[start + length % 8:])
