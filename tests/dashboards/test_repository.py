"""Dashboards in dashboards.sqlite: stored unchanged, listed by prefix, deleted all or nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dashcam.dashboards.body import check_body
from dashcam.dashboards.repository import (
    DashboardRepository,
    check_dashboard_name,
    dashboard_arn,
    example_body,
    example_names,
)
from dashcam.errors import InputError, NotFoundError

AWS_EXPORT = Path(__file__).with_name("aws_exported_dashboard.json")
SIMPLE = json.dumps({"widgets": [{"type": "text", "properties": {"markdown": "hello"}}]})


@pytest.fixture
def repository(tmp_path):
    return DashboardRepository.in_directory(tmp_path / "data")


def test_a_body_comes_back_exactly_as_it_was_put(repository):
    text = AWS_EXPORT.read_text()
    stored, warnings = repository.put("genai-prod", text, now_ms=1_772_442_000_000)
    again = repository.require("genai-prod")
    assert again.body == text  # byte for byte: spacing, key order and unknown members kept
    assert again.size == len(text.encode()) == stored.size
    assert again.last_modified_ms == 1_772_442_000_000
    assert again.arn == dashboard_arn("genai-prod") == "arn:aws:cloudwatch::000000000000:dashboard/genai-prod"
    assert warnings == check_body(text).warnings and warnings


def test_put_replaces_and_moves_last_modified(repository):
    repository.put("d", SIMPLE, now_ms=1000)
    other = json.dumps({"widgets": []})
    repository.put("d", other, now_ms=2000)
    found = repository.require("d")
    assert (found.body, found.last_modified_ms, found.size) == (other, 2000, len(other))
    assert [d.name for d in repository.list()] == ["d"]


def test_bad_bodies_and_names_store_nothing(repository):
    with pytest.raises(InputError, match="/widgets/0/properties"):
        repository.put("d", json.dumps({"widgets": [{"type": "metric", "properties": {}}]}))
    for name in ("", "has space", "slash/name", "dots.are.not.allowed", "x" * 256, "ünïcode"):
        with pytest.raises(InputError, match="letters, digits, '-' and '_'"):
            repository.put(name, SIMPLE)
    assert repository.list() == []
    assert check_dashboard_name("Ok_name-2" + "x" * 246) == "Ok_name-2" + "x" * 246


def test_list_by_prefix_in_name_order_with_paging(repository):
    for name in ("prod-b", "dev", "prod-a", "prod_c", "Prod-z"):
        repository.put(name, SIMPLE)
    assert [d.name for d in repository.list()] == ["Prod-z", "dev", "prod-a", "prod-b", "prod_c"]
    assert [d.name for d in repository.list("prod-")] == ["prod-a", "prod-b"]
    assert [d.name for d in repository.list("prod", after="prod-a", limit=1)] == ["prod-b"]
    assert repository.list("nothing") == []
    with pytest.raises(InputError, match="prefix"):
        repository.list("bad prefix")


def test_delete_is_all_or_nothing(repository):
    repository.put("a", SIMPLE)
    repository.put("b", SIMPLE)
    with pytest.raises(NotFoundError, match="missing-one"):
        repository.delete(["a", "missing-one", "b"])
    assert [d.name for d in repository.list()] == ["a", "b"]
    repository.delete(["a", "b", "a"])
    assert repository.list() == [] and repository.get("a") is None
    with pytest.raises(NotFoundError, match="Dashboard a does not exist"):
        repository.require("a")
    with pytest.raises(InputError):
        repository.delete([])


def test_another_process_shares_the_same_dashboards(tmp_path):
    directory = tmp_path / "shared"
    repository = DashboardRepository.in_directory(directory)
    repository.put("here", SIMPLE)
    code = ("import sys; from dashcam.dashboards.repository import DashboardRepository; "
            "DashboardRepository.in_directory(sys.argv[1]).put('there', sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(directory), SIMPLE], check=True, timeout=120)
    assert [d.name for d in repository.list()] == ["here", "there"]
    assert repository.require("there").body == SIMPLE


def test_the_shipped_examples_are_valid_dashboards(repository):
    assert example_names() == ["bedrock-logs-insights", "bedrock-overview"]
    for name in example_names():
        check = check_body(example_body(name))
        assert check.errors == [] and check.warnings == [], (name, check.messages)
        repository.put(name, check)
    assert [d.name for d in repository.list()] == example_names()
    with pytest.raises(NotFoundError, match="bedrock-overview"):
        example_body("nope")
