"""SEARCH() expressions: the schema, terms, OR/AND/NOT, and which metrics they find."""

from __future__ import annotations

import pytest

from dashcam.dashboards.search import default_label, find_searches
from dashcam.errors import InputError

HAIKU = (("ModelId", "anthropic.claude-3-5-haiku-20241022-v1:0"),)
NOVA = (("ModelId", "amazon.nova-pro-v1:0"),)
CONVERSE = (("Operation", "Converse"),)
CANDIDATES = [
    ("Invocations", ()), ("Invocations", HAIKU), ("Invocations", NOVA), ("Invocations", CONVERSE),
    ("InvocationClientErrors", HAIKU), ("InvocationServerErrors", NOVA), ("InvocationThrottles", HAIKU),
    ("OutputTokenCount", HAIKU),
]


def found(expression: str) -> list[tuple[str, tuple]]:
    (search,) = find_searches(expression)
    return [(name, dims) for name, dims in CANDIDATES if search.matches(name, dims)]


def test_the_call_is_found_with_its_statistic_and_period():
    expression = "SUM(SEARCH('{AWS/Bedrock,ModelId} MetricName=\"Invocations\"', 'Sum', 300)) * 2"
    (search,) = find_searches(expression)
    assert (search.namespace, search.dimension_names, search.stat, search.period) == (
        "AWS/Bedrock", ("ModelId",), "Sum", 300)
    assert expression[search.span[0]:search.span[1]].startswith("SEARCH(") and expression[search.span[1]:] == ") * 2"


def test_the_schema_demands_exactly_those_dimensions():
    assert found("SEARCH('{AWS/Bedrock,ModelId} MetricName=\"Invocations\"', 'Sum', 60)") == [
        ("Invocations", HAIKU), ("Invocations", NOVA)]
    assert found("SEARCH('{AWS/Bedrock} MetricName=\"Invocations\"', 'Sum', 60)") == [("Invocations", ())]
    assert found("SEARCH('{AWS/EC2,InstanceId} CPUUtilization', 'Average', 60)") == []


def test_without_a_schema_terms_match_any_dimensions():
    assert found("SEARCH('MetricName=\"Invocations\" Converse', 'Sum', 60)") == [("Invocations", CONVERSE)]


def test_or_and_not_and_parentheses():
    assert found("SEARCH('{AWS/Bedrock,ModelId} MetricName=\"InvocationClientErrors\" OR "
                 "MetricName=\"InvocationServerErrors\"', 'Sum', 60)") == [
        ("InvocationClientErrors", HAIKU), ("InvocationServerErrors", NOVA)]
    assert found("SEARCH('{AWS/Bedrock,ModelId} haiku AND NOT (MetricName=\"Invocations\" OR OutputTokenCount)', "
                 "'Sum', 60)") == [("InvocationClientErrors", HAIKU), ("InvocationThrottles", HAIKU)]


def test_quoted_values_match_exactly_and_bare_ones_in_part():
    assert found("SEARCH('{AWS/Bedrock,ModelId} MetricName=\"Invocation\"', 'Sum', 60)") == []
    assert found("SEARCH('{AWS/Bedrock,ModelId} MetricName=invocation ModelId=nova', 'Sum', 60)") == [
        ("Invocations", NOVA), ("InvocationServerErrors", NOVA)]


@pytest.mark.parametrize("expression", [
    "SEARCH('{AWS/Bedrock,ModelId} (Invocations', 'Sum', 60)",
    "SEARCH('{AWS/Bedrock,ModelId} Invocations OR', 'Sum', 60)",
    "SEARCH('{} Invocations', 'Sum', 60)",
    "SEARCH(Invocations)",
])
def test_malformed_searches_say_so(expression):
    with pytest.raises(InputError, match="SEARCH"):
        find_searches(expression)


def test_plain_metric_math_has_no_search():
    assert find_searches("m1 / m2 * 100") == []


def test_labels_name_the_dimension_values():
    assert default_label("Invocations", NOVA, several_metrics=False) == "amazon.nova-pro-v1:0"
    assert default_label("Invocations", NOVA, several_metrics=True) == "amazon.nova-pro-v1:0 Invocations"
    assert default_label("Invocations", (), several_metrics=False) == "Invocations"


@pytest.mark.parametrize(("text", "names"), [
    ('{AWS/Bedrock,ModelId} MetricName="Invocations"', ("Invocations",)),
    ('{AWS/Bedrock,ModelId} MetricName="Invocations" AND claude', ("Invocations",)),
    ('MetricName="InputTokenCount" OR MetricName="OutputTokenCount"', ("InputTokenCount", "OutputTokenCount")),
    ('MetricName="InputTokenCount" OR claude', None),
    ("{AWS/Bedrock,ModelId} MetricName=Invocations", None),  # a partial match may find several
    ("{AWS/Bedrock,ModelId}", None),
    ('NOT MetricName="Invocations"', None),
])
def test_a_search_names_the_only_metrics_it_can_find(text, names):
    (search,) = find_searches(f"SEARCH('{text}', 'Sum', 300)")
    assert search.metric_names() == names
