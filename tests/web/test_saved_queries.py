"""The shipped saved queries: each one runs, and the core questions come first."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashcam.query.library import CORE_QUESTIONS
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout
from dashcam.web.saved_queries import BEDROCK_ANALYSES, saved_queries


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Dashcam:
    root: Path = tmp_path_factory.mktemp("saved")
    write_bedrock_layout(SampleSpec(records=2000), root / "logs")
    dashcam = Dashcam.open(root / "data")
    dashcam.import_logs([root / "logs"])
    yield dashcam
    dashcam.close()


def test_core_questions_first_then_the_analyses():
    listed = saved_queries()
    assert [q["key"] for q in listed] == [q.key for q in CORE_QUESTIONS] + [q.key for q in BEDROCK_ANALYSES]
    assert {q["group"] for q in listed[:len(CORE_QUESTIONS)]} == {"Core questions"}
    assert len({q["key"] for q in listed}) == len(listed)


@pytest.mark.parametrize("saved", BEDROCK_ANALYSES, ids=lambda q: q.key)
def test_every_analysis_runs_and_answers(sample, saved):
    result = sample.query(saved.text)
    assert result.rows, f"{saved.key} found nothing in the sample logs"
