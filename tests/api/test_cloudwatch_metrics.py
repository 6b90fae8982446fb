"""The CloudWatch API (metrics), driven by the real boto3 ``cloudwatch`` client over real HTTP."""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import boto3
import httpx
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dashcam.records import THROTTLING_CODES, normalize, timestamp_ms
from dashcam.simulate.sample_logs import SampleSpec, generate_records

GROUP = "/aws/bedrock/modelinvocations"
STREAM = "aws/bedrock/modelinvocations"
START = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
END = START + timedelta(hours=6)
HOUR_MS = 3_600_000


def cloudwatch(server, key_id: str = "AKIDEXAMPLE", secret: str = "not-checked"):
    """boto3's CloudWatch client pointed at dashcam (no retries, so errors show at once)."""
    return boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response["Error"]["Code"]


def metric(name: str, stat: str, period: int = 3600, **dimensions: str) -> dict:
    return {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": name,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
            "Period": period, "Stat": stat}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(generate_records(SampleSpec(records=3000, seed=5, start=START, hours=6)))


@pytest.fixture
def loaded(server, records):
    server.dashcam.store.write_records(GROUP, STREAM, copy.deepcopy(records), source="bedrock-log")
    return server


def by_hour(records, keep, value=lambda r: 1) -> dict[int, list[float]]:
    """Per-hour samples computed in Python from the same records, independently of the engine."""
    out: dict[int, list[float]] = defaultdict(list)
    for raw in records:
        record = normalize(copy.deepcopy(raw), source="bedrock-log")
        if keep(record) and value(record) is not None:
            out[timestamp_ms(record["timestamp"]) // HOUR_MS * HOUR_MS].append(value(record))
    return dict(out)


def succeeded(record) -> bool:
    return record.get("errorCode") is None and not record["throttled"]


def seconds(timestamps) -> list[int]:
    return [int(t.timestamp() * 1000) for t in timestamps]


# ---------------------------------------------------------------------- GetMetricData


def test_get_metric_data_counts_invocations_and_throttles_per_hour_with_math(loaded, records):
    cw = cloudwatch(loaded)
    response = cw.get_metric_data(MetricDataQueries=[
        {"Id": "ok", "MetricStat": metric("Invocations", "Sum")},
        {"Id": "thr", "MetricStat": metric("InvocationThrottles", "Sum"), "Label": "throttles"},
        {"Id": "pct", "Expression": "100 * thr / (ok + thr)", "Label": "throttled %"},
    ], StartTime=START, EndTime=END)
    ok, thr, pct = response["MetricDataResults"]
    expected_ok = {t: len(v) for t, v in by_hour(records, succeeded).items()}
    expected_thr = {t: len(v) for t, v in by_hour(records, lambda r: r.get("errorCode") in THROTTLING_CODES).items()}
    assert (ok["Label"], thr["Label"], pct["Label"]) == ("Invocations", "throttles", "throttled %")
    # ScanBy defaults to TimestampDescending, as in CloudWatch.
    assert seconds(ok["Timestamps"]) == sorted(expected_ok, reverse=True)
    assert dict(zip(seconds(ok["Timestamps"]), ok["Values"])) == expected_ok
    assert dict(zip(seconds(thr["Timestamps"]), thr["Values"])) == expected_thr
    expected_pct = {t: 100 * n / (expected_ok[t] + n) for t, n in expected_thr.items() if t in expected_ok}
    assert dict(zip(seconds(pct["Timestamps"]), pct["Values"])) == pytest.approx(expected_pct)
    assert all(r["StatusCode"] == "Complete" for r in response["MetricDataResults"])
    assert "NextToken" not in response


def test_get_metric_data_by_model_with_a_percentile(loaded, records):
    model = "amazon.nova-lite-v1:0"
    [p99] = cloudwatch(loaded).get_metric_data(
        MetricDataQueries=[{"Id": "p", "MetricStat": metric("InvocationLatency", "p99", ModelId=model)}],
        StartTime=START, EndTime=END, ScanBy="TimestampAscending")["MetricDataResults"]
    samples = by_hour(records, lambda r: succeeded(r) and r["modelId"] == model, lambda r: r["latencyMs"])
    expected = {t: sorted(v)[max(1, math.ceil(0.99 * len(v))) - 1] for t, v in samples.items()}
    assert seconds(p99["Timestamps"]) == sorted(expected)
    assert p99["Values"] == [expected[t] for t in sorted(expected)]


def test_max_datapoints_pages_across_results_with_next_token(loaded):
    cw = cloudwatch(loaded)
    queries = [{"Id": "a", "MetricStat": metric("Invocations", "Sum", 1800)},
               {"Id": "b", "MetricStat": metric("InputTokenCount", "Sum", 1800)}]
    whole = cw.get_metric_data(MetricDataQueries=queries, StartTime=START, EndTime=END)["MetricDataResults"]
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = cw.get_metric_data(MetricDataQueries=queries, StartTime=START, EndTime=END, MaxDatapoints=5, **kwargs)
        assert sum(len(r["Values"]) for r in page["MetricDataResults"]) <= 5
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    assert len(pages) == math.ceil(sum(len(r["Values"]) for r in whole) / 5)
    assert pages[0]["MetricDataResults"][0]["StatusCode"] == "PartialData"
    for i, result in enumerate(whole):
        assert [v for p in pages for v in p["MetricDataResults"][i]["Values"]] == result["Values"]
    assert error_code(cw.get_metric_data, MetricDataQueries=queries[:1], StartTime=START, EndTime=END,
                      NextToken=pages[0]["NextToken"]) == "InvalidNextToken"  # a token belongs to its request


@pytest.mark.parametrize("change, code", [
    ({"Period": 61}, "InvalidParameterValue"),
    ({"Period": 30}, "InvalidParameterValue"),
    ({"Stat": "p101"}, "InvalidParameterValue"),
    ({"Stat": "Median"}, "InvalidParameterValue"),
    ({"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "NoSuchMetric"}}, "InvalidParameterValue"),
])
def test_get_metric_data_refuses_bad_queries_with_cloudwatch_codes(loaded, change, code):
    cw = cloudwatch(loaded)
    stat = {**metric("Invocations", "Sum", 60), **change}
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as caught:
        cw.get_metric_data(MetricDataQueries=[{"Id": "m1", "MetricStat": stat}], StartTime=START, EndTime=END)
    assert caught.value.response["Error"]["Code"] == code
    shown = str(change.get("Period", change.get("Stat", "NoSuchMetric")))
    assert shown in caught.value.response["Error"]["Message"]


def test_get_metric_data_refuses_bad_expressions_and_ranges(loaded):
    cw = cloudwatch(loaded)
    base = {"Id": "m1", "MetricStat": metric("Invocations", "Sum")}
    assert error_code(cw.get_metric_data, MetricDataQueries=[base, {"Id": "e1", "Expression": "m9 * 2"}],
                      StartTime=START, EndTime=END) == "InvalidParameterValue"
    assert error_code(cw.get_metric_data, MetricDataQueries=[{**base, "Expression": "m1"}],
                      StartTime=START, EndTime=END) == "InvalidParameterCombination"
    assert error_code(cw.get_metric_data, MetricDataQueries=[base], StartTime=END, EndTime=START) == \
        "InvalidParameterValue"


# ---------------------------------------------------------------------- GetMetricStatistics


def test_get_metric_statistics_basic_and_extended(loaded, records):
    cw = cloudwatch(loaded)
    samples = by_hour(records, succeeded, lambda r: r["latencyMs"])
    basic = cw.get_metric_statistics(Namespace="AWS/Bedrock", MetricName="InvocationLatency", StartTime=START,
                                     EndTime=END, Period=3600, Statistics=["Average", "SampleCount", "Maximum"])
    assert basic["Label"] == "InvocationLatency"
    got = {int(p["Timestamp"].timestamp() * 1000): p for p in basic["Datapoints"]}
    assert got.keys() == samples.keys()
    for t, values in samples.items():
        assert got[t]["Average"] == pytest.approx(sum(values) / len(values))
        assert (got[t]["SampleCount"], got[t]["Maximum"], got[t]["Unit"]) == (len(values), max(values), "Milliseconds")
    extended = cw.get_metric_statistics(Namespace="AWS/Bedrock", MetricName="InvocationLatency", StartTime=START,
                                        EndTime=END, Period=3600, ExtendedStatistics=["p50"])
    for point in extended["Datapoints"]:
        values = sorted(samples[int(point["Timestamp"].timestamp() * 1000)])
        assert point["ExtendedStatistics"] == {"p50": values[math.ceil(0.5 * len(values)) - 1]}


def test_get_metric_statistics_errors(loaded):
    cw = cloudwatch(loaded)
    common = {"Namespace": "AWS/Bedrock", "MetricName": "InvocationLatency", "StartTime": START, "EndTime": END}
    assert error_code(cw.get_metric_statistics, Period=3600, Statistics=["Sum"], ExtendedStatistics=["p99"],
                      **common) == "InvalidParameterCombination"
    # Six hours at one minute is 360 datapoints; a day at one minute would be 1,440 plus one.
    assert error_code(cw.get_metric_statistics, Period=60, Statistics=["Sum"],
                      **{**common, "EndTime": START + timedelta(days=1, minutes=1)}) == "InvalidParameterCombination"
    assert error_code(cw.get_metric_statistics, Period=90, Statistics=["Sum"], **common) == "InvalidParameterValue"
    assert error_code(cw.get_metric_statistics, Period=60, ExtendedStatistics=["p1000"], **common) == \
        "InvalidParameterValue"


# ---------------------------------------------------------------------- ListMetrics


def test_list_metrics_by_model_and_caller(loaded, records):
    cw = cloudwatch(loaded)
    models = {r["modelId"] for r in records}
    listed = cw.list_metrics(Namespace="AWS/Bedrock", MetricName="Invocations")["Metrics"]
    by_model = {d[0]["Value"] for d in (m["Dimensions"] for m in listed) if d and d[0]["Name"] == "ModelId"}
    assert by_model == models
    assert any(m["Dimensions"] == [] for m in listed)
    callers = cw.list_metrics(MetricName="Invocations", Dimensions=[{"Name": "Caller"}])["Metrics"]
    assert {m["Dimensions"][0]["Value"] for m in callers} == {r["identity"]["arn"] for r in records
                                                              if succeeded(normalize(copy.deepcopy(r), source="x"))}
    assert cw.list_metrics(Namespace="AWS/EC2")["Metrics"] == []


def test_list_metrics_pages_of_500(loaded):
    cw = cloudwatch(loaded)
    pages = list(cw.get_paginator("list_metrics").paginate(Dimensions=[{"Name": "UserId"}]))
    listed = [m for page in pages for m in page["Metrics"]]
    assert len(pages) > 1 and all(len(p["Metrics"]) <= 500 for p in pages)
    assert len({orjson.dumps(m, option=orjson.OPT_SORT_KEYS) for m in listed}) == len(listed)
    assert all(m["Dimensions"][0]["Name"] == "UserId" for m in listed)


# ---------------------------------------------------------------------- wire and auth


def post(server, target: str, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/", content=orjson.dumps(body), headers={
        "content-type": "application/x-amz-json-1.0", "x-amz-target": target, **headers})


def test_missing_members_and_unknown_operations_on_the_wire(loaded):
    response = post(loaded, "GraniteServiceVersion20100801.GetMetricData",
                    {"MetricDataQueries": [{"Id": "m1", "MetricStat": metric("Invocations", "Sum")}], "EndTime": 1})
    assert response.status_code == 400
    error = response.json()
    assert error["__type"] == "MissingRequiredParameterException" and "StartTime" in error["message"]
    assert response.headers["x-amzn-query-error"] == "MissingParameter;Sender"
    unknown = post(loaded, "GraniteServiceVersion20100801.PutMetricData", {})
    assert unknown.json()["__type"] == "UnknownOperationException" and "PutMetricData" in unknown.json()["message"]


def test_cloudwatch_and_cloudwatch_logs_share_post_root(loaded):
    logs = boto3.client("logs", endpoint_url=loaded.url, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="not-checked")
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == [GROUP]
    assert cloudwatch(loaded).list_metrics(MetricName="InvocationThrottles")["Metrics"]


def test_metrics_need_a_read_key_and_cover_only_readable_log_groups(secured_server, invocation_pair):
    keys = secured_server.keys
    reader, ingester, limited = keys.create("read"), keys.create("ingest"), keys.create("read", log_groups="/team/a")
    secured_server.dashcam.store.write_records("/team/a", "s", invocation_pair[:1], source="api")
    secured_server.dashcam.store.write_records("/team/b", "s", invocation_pair[1:], source="api")
    query = dict(MetricDataQueries=[{"Id": "m1", "MetricStat": metric("Invocations", "Sum")}],
                 StartTime=START, EndTime=END)
    assert cloudwatch(secured_server, reader.key_id, reader.secret).get_metric_data(
        **query)["MetricDataResults"][0]["Values"] == [2.0]
    assert cloudwatch(secured_server, limited.key_id, limited.secret).get_metric_data(
        **query)["MetricDataResults"][0]["Values"] == [1.0]
    assert error_code(cloudwatch(secured_server, ingester.key_id, ingester.secret).get_metric_data,
                      **query) == "AccessDeniedException"
    assert error_code(cloudwatch(secured_server, reader.key_id, "wrong").get_metric_data,
                      **query) == "InvalidSignatureException"


@pytest.fixture
def invocation_pair() -> list[dict]:
    base = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "operation": "Converse",
            "modelId": "model-a", "input": {"inputTokenCount": 3}, "output": {"outputTokenCount": 4}}
    return [{**base, "timestamp": "2026-03-02T09:10:00Z", "requestId": "r1"},
            {**base, "timestamp": "2026-03-02T09:20:00Z", "requestId": "r2"}]
