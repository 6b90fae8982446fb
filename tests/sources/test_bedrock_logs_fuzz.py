"""Fuzzing Bedrock invocation-log lines through a real import: random text, random JSON and
mutated real records (seeds in tests/fuzz-corpus/bedrock-lines) never make the import fail, and
every non-blank line is either stored or reported as a problem with its line number."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashcam.service import Dashcam

CORPUS = Path(__file__).resolve().parents[1] / "fuzz-corpus" / "bedrock-lines"
SEED_FILES = sorted(CORPUS.iterdir())
SEED_RECORDS = [orjson.loads(line) for path in SEED_FILES for line in path.read_bytes().splitlines()
                if line.strip().startswith(b"{") and line.strip().endswith(b"}")]
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8)


def dump(value) -> bytes:
    """JSON bytes; the standard library writes integers of any size (as senders may)."""
    return json.dumps(value).encode()


@st.composite
def mutated_record(draw) -> bytes:
    """A real record with top-level or nested members replaced by random JSON or removed."""
    record = dict(draw(st.sampled_from(SEED_RECORDS)))
    for name in draw(st.lists(st.sampled_from(sorted(record)), min_size=1, max_size=3)):
        if draw(st.booleans()):
            record[name] = draw(JSON_VALUES)
        else:
            record.pop(name, None)
    return dump(record)


LINES = st.one_of(
    mutated_record(),
    mutated_record().map(lambda line: line[: len(line) // 2]),  # cut off mid-record
    JSON_VALUES.map(dump),
    st.text(max_size=60).map(lambda text: text.replace("\n", " ").encode()),
    st.binary(max_size=40).map(lambda data: data.replace(b"\n", b" ")),
)


def non_blank(content: bytes) -> list[int]:
    """1-based numbers of the lines that hold anything but JSON's whitespace (space, tab, CR, LF:
    a form feed or vertical tab is not blank, and is reported as not JSON). A byte-order mark that
    opens the file is not content: the importer drops it, as Windows tools write one."""
    content = content.removeprefix(b"\xef\xbb\xbf")
    return [i for i, line in enumerate(content.split(b"\n"), 1) if line.strip(b" \t\r\n")]


def check_accounting(summary, content: bytes) -> None:
    """Every non-blank line stored or reported once, by its number; a file that cannot be read on
    (a gzip header over plain text) is reported at the line where reading stopped."""
    lines_with_content = non_blank(content)
    reported = [problem.line for problem in summary.problems]
    assert len(set(reported)) == len(reported) and set(reported) <= set(lines_with_content) | {1}
    assert all(problem.message for problem in summary.problems)
    if any("rest of file skipped" in problem.message for problem in summary.problems):
        assert summary.records + summary.skipped <= len(lines_with_content), summary.problems
    else:
        assert summary.records + summary.skipped == len(lines_with_content), summary.problems


@pytest.fixture
def dashcam(tmp_path):
    with Dashcam.open(tmp_path / "data") as opened:
        yield opened


@pytest.mark.parametrize("seed", SEED_FILES, ids=lambda p: p.name)
def test_corpus_seeds(dashcam, seed):
    summary = dashcam.import_logs([seed], log_group="/fuzz/seed")
    check_accounting(summary, seed.read_bytes())


def test_random_lines_never_fail_an_import_and_bad_ones_are_reported(dashcam, tmp_path):
    counter = itertools.count()

    @SETTINGS
    @given(st.lists(LINES, min_size=1, max_size=8))
    def one(lines):
        path = tmp_path / f"fuzz-{next(counter)}.jsonl"
        content = b"\n".join(lines)
        path.write_bytes(content)
        check_accounting(dashcam.import_logs([path], log_group="/fuzz/random"), content)

    one()


def test_form_feeds_and_vertical_tabs_are_not_blank(dashcam, tmp_path):
    path = tmp_path / "odd-whitespace.jsonl"
    content = b'{"timestamp": "2026-03-02T14:05:11Z", "requestId": "a"}\n\x0c\n\x0b\n \t\n'
    path.write_bytes(content)
    summary = dashcam.import_logs([path], log_group="/fuzz/whitespace")
    assert [(p.line, p.message) for p in summary.problems] == [(2, "not valid JSON"), (3, "not valid JSON")]
    check_accounting(summary, content)
