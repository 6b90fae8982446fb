"""The metric table's counting rules, on both engines, from records whose facts the test sets."""

from __future__ import annotations

import pytest

from dashcam.errors import InputError
from dashcam.metrics.definitions import (
    DIMENSION_COLUMNS,
    ERROR_CLASSES,
    METRICS,
    OUTPUT_BURNDOWN,
    check_dimension_name,
    error_class,
    get_metric,
)
from dashcam.metrics.engine import MetricQuery, MetricStat, get_metric_data

T0 = 1_772_442_000_000
HOUR = 3_600_000
SONNET_4 = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"

# (errorCode, the class AWS's metrics put it in): the specification this file checks.
FAILURES = (
    ("ThrottlingException", "throttle"),
    ("ThrottlingException", "throttle"),
    ("429", "throttle"),
    ("ValidationException", "client"),
    ("ModelTimeoutException", "client"),
    ("AccessDeniedException", "client"),
    ("404", "client"),
    ("InternalServerException", "server"),
    ("ServiceUnavailableException", "server"),
    ("ModelStreamErrorException", "server"),
    ("503", "server"),
    ("SomethingNobodyDocumented", "server"),
)
SUCCESSES = 5


def totals(store, *names: str, stat: str = "Sum", dimensions=()) -> dict[str, float | None]:
    """Each metric's one value over the test hour (None when it has no datapoint)."""
    queries = [MetricQuery(f"q{i}", MetricStat(name, 3600, stat, dimensions)) for i, name in enumerate(names)]
    results = get_metric_data(store, queries, T0, T0 + HOUR)
    return {name: (r.values[0] if r.values else None) for name, r in zip(names, results)}


@pytest.fixture
def failures_store(store_of, invocation, write):
    store = store_of()
    records = [invocation(T0 + i, latency=100.0 + i, input_tokens=10, output_tokens=20) for i in range(SUCCESSES)]
    records += [invocation(T0 + 1000 + i, error=code, latency=5.0, input_tokens=7, output_tokens=3)
                for i, (code, _) in enumerate(FAILURES)]
    write(store, records)
    # An event that is not an invocation record (free text through PutLogEvents) counts nowhere.
    write(store, [{"timestamp": T0 + 5000, "message": "deploy finished"}])
    return store


def test_throttles_and_errors_are_not_invocations_and_each_failure_has_one_class(failures_store):
    got = totals(failures_store, "Invocations", "InvocationThrottles", "InvocationClientErrors",
                 "InvocationServerErrors", "InputTokenCount", "OutputTokenCount", "InvocationLatency")
    expected_by_class = {kind: sum(1 for _, k in FAILURES if k == kind) for kind in ("throttle", "client", "server")}
    assert got["Invocations"] == SUCCESSES
    assert got["InvocationThrottles"] == expected_by_class["throttle"]
    assert got["InvocationClientErrors"] == expected_by_class["client"]
    assert got["InvocationServerErrors"] == expected_by_class["server"]
    # Token and latency metrics come from successful requests only.
    assert got["InputTokenCount"] == SUCCESSES * 10
    assert got["OutputTokenCount"] == SUCCESSES * 20
    assert got["InvocationLatency"] == sum(100.0 + i for i in range(SUCCESSES))


def test_error_rate_is_the_percentage_of_failed_requests(failures_store):
    rate = totals(failures_store, "ErrorRate", stat="Average")["ErrorRate"]
    assert rate == pytest.approx(100 * len(FAILURES) / (len(FAILURES) + SUCCESSES))


@pytest.mark.parametrize("code, kind", FAILURES)
def test_the_python_classifier_agrees_with_the_table(code, kind):
    assert error_class(code, is_throttled=kind == "throttle") == kind
    assert error_class(None) is None


def test_the_error_table_lists_the_bedrock_runtime_exceptions():
    for code in ("ValidationException", "AccessDeniedException", "ResourceNotFoundException", "ModelTimeoutException",
                 "ModelNotReadyException", "ServiceQuotaExceededException", "ModelErrorException"):
        assert ERROR_CLASSES[code] == "client"
    for code in ("InternalServerException", "ServiceUnavailableException", "ModelStreamErrorException"):
        assert ERROR_CLASSES[code] == "server"
    assert ERROR_CLASSES["ThrottlingException"] == "throttle"


def test_time_to_first_token_comes_from_successful_streaming_requests_only(store_of, invocation, write):
    store = store_of()
    write(store, [
        invocation(T0, operation="ConverseStream", ttft=100.0, latency=900.0),
        invocation(T0 + 1, operation="InvokeModelWithResponseStream", ttft=300.0, latency=900.0),
        invocation(T0 + 2, operation="Converse", ttft=5000.0, latency=900.0),  # not streaming
        invocation(T0 + 3, operation="InvokeModel", ttft=7000.0, latency=900.0),  # not streaming
        invocation(T0 + 4, operation="ConverseStream", ttft=9000.0, error="ModelStreamErrorException"),
    ])
    got = totals(store, "TimeToFirstToken", stat="SampleCount")
    assert got["TimeToFirstToken"] == 2
    assert totals(store, "TimeToFirstToken", stat="Average")["TimeToFirstToken"] == 200.0


def test_estimated_quota_usage_adds_cache_writes_and_burns_output_at_the_models_rate(store_of, invocation, write):
    store = store_of()
    write(store, [
        invocation(T0, model=SONNET_4, input_tokens=100, cache_write=40, cache_read=1000, output_tokens=10),
        invocation(T0 + 1, model="amazon.nova-lite-v1:0", input_tokens=100, cache_write=40, cache_read=1000,
                   output_tokens=10),
        invocation(T0 + 2, model=SONNET_4, input_tokens=999, output_tokens=999, error="ThrottlingException"),
    ])
    claude = totals(store, "EstimatedTPMQuotaUsage", dimensions=(("ModelId", SONNET_4),))
    nova = totals(store, "EstimatedTPMQuotaUsage", dimensions=(("ModelId", "amazon.nova-lite-v1:0"),))
    # Cache reads do not count; Claude Sonnet 4's output burns 5x, Nova's 1x; throttled calls burn nothing.
    assert claude["EstimatedTPMQuotaUsage"] == 100 + 40 + 10 * 5
    assert nova["EstimatedTPMQuotaUsage"] == 100 + 40 + 10 * 1
    assert dict(OUTPUT_BURNDOWN)["claude-sonnet-4"] == 5


def test_dashcams_own_metrics(store_of, invocation, write):
    store = store_of()
    write(store, [
        invocation(T0, operation="ConverseStream", latency=1200.0, ttft=200.0, output_tokens=50, cost=0.25,
                   cache_read=300, cache_write=20),
        invocation(T0 + 1, operation="Converse", latency=500.0, output_tokens=100, cost=0.5, cache_read=0,
                   cache_write=0),
        invocation(T0 + 2, operation="Converse", latency=500.0, output_tokens=0),  # no output: no speed sample
        invocation(T0 + 3, model="example.image-model-v1", operation="InvokeModel", images=3),
        invocation(T0 + 4, model="example.image-model-v1", operation="InvokeModel", images=2,
                   error="ValidationException"),
    ])
    got = totals(store, "CostUSD", "CacheReadInputTokenCount", "CacheWriteInputTokenCount", "OutputImageCount")
    assert got == {"CostUSD": 0.75, "CacheReadInputTokenCount": 300, "CacheWriteInputTokenCount": 20,
                   "OutputImageCount": 3}
    # Unpriced successful calls give no sample (never $0); a failed call is priced at $0 at ingest.
    assert totals(store, "CostUSD", stat="SampleCount")["CostUSD"] == 3
    speed = get_metric_data(store, [MetricQuery("s", MetricStat("OutputTokensPerSecond", 3600, "Maximum")),
                                    MetricQuery("n", MetricStat("OutputTokensPerSecond", 3600, "SampleCount"))],
                            T0, T0 + HOUR)
    # Streaming: tokens over the time after the first token; otherwise over the whole latency.
    assert speed[0].values == [max(50 / (1.0 - 0.2), 100 / 0.5)]
    assert speed[1].values == [2]


def test_every_metric_has_a_unit_cloudwatch_knows():
    units = {"Count", "Milliseconds", "Percent", "None", "Count/Second"}
    assert all(m.unit in units for m in METRICS.values())
    assert {"Invocations", "InvocationLatency", "InvocationClientErrors", "InvocationServerErrors",
            "InvocationThrottles", "InputTokenCount", "OutputTokenCount", "TimeToFirstToken",
            "EstimatedTPMQuotaUsage", "OutputImageCount"} <= {m.name for m in METRICS.values() if m.origin == "AWS"}


def test_unknown_metrics_and_bad_dimension_names_are_input_errors():
    with pytest.raises(InputError, match="NoSuchMetric"):
        get_metric("NoSuchMetric")
    for name in DIMENSION_COLUMNS:
        assert check_dimension_name(name) == name
    assert check_dimension_name("team") == "team"
    for bad in ("", "x" * 300, "semi;colon", "quote'd", 7):
        with pytest.raises(InputError):
            check_dimension_name(bad)
