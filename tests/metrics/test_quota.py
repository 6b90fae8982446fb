"""Quota headroom (dashcam.metrics.quota): QuotaHeadroomPct and QuotaMinutesToExhaustion.

Records are written minute by minute with known timestamps to both engines; the expected values
are worked out here from the generated calls (plain loops and numpy's least squares), not from
the module under test.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import datetime, timedelta, timezone

import boto3
import numpy as np
import pytest
from botocore.config import Config
from click.testing import CliRunner

from dashcam.alarms.model import ALARM, OK
from dashcam.cli import main
from dashcam.errors import ConfigError, InputError
from dashcam.metrics import quota
from dashcam.metrics.engine import MetricQuery, MetricStat, get_metric_data, list_metrics
from dashcam.service import Dashcam

MINUTE = 60_000
T0 = int(datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc).timestamp() * 1000)
GROUP = "/aws/bedrock/modelinvocations"
NOVA = "amazon.nova-lite-v1:0"            # quota set under its own id
PRO_PROFILE = "us.amazon.nova-pro-v1:0"   # quota set on amazon.nova-pro-v1:0 (geo prefix stripped)
UNQUOTED = "meta.llama3-8b-instruct-v1:0"
QUOTAS = [{"model": NOVA, "rpm": 10, "tpm": 3_000}, {"model": "amazon.nova-pro-v1:0", "tpm": 30_000}]
MINUTES = 40


@pytest.fixture(autouse=True)
def _no_quota_directory():
    yield
    quota.use_directory(None)


def generate(seed: int = 3) -> list[tuple[int, str, int, int, int, bool]]:
    """Calls (timestamp ms, model, input, cache-write, output tokens, throttled), rising over time."""
    rng = random.Random(seed)
    calls = []
    for minute in range(MINUTES):
        for model in (NOVA, PRO_PROFILE, UNQUOTED):
            for i in range(rng.randint(0, 3) + minute // 4):
                calls.append((T0 + minute * MINUTE + i * 700 + 11, model, rng.randint(50, 400), rng.choice((0, 0, 64)),
                              rng.randint(10, 300), rng.random() < 0.15))
    return calls


def as_record(call: tuple) -> dict:
    ts, model, tokens_in, cache_write, tokens_out, throttled = call
    body = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts, "operation": "Converse",
            "modelId": model, "requestId": f"{model}-{ts}",
            "input": {"inputTokenCount": tokens_in, "cacheWriteInputTokenCount": cache_write}}
    if throttled:
        return {**body, "errorCode": "ThrottlingException"}
    return {**body, "output": {"outputTokenCount": tokens_out}}


def expected_usage(calls, model: str, rpm: float | None, tpm: float | None, period: int) -> dict[int, float]:
    """Peak-minute fraction of the quota per period, counted independently from the calls."""
    requests: dict[int, int] = {}
    tokens: dict[int, int] = {}
    for ts, m, tokens_in, cache_write, tokens_out, throttled in calls:
        if m != model:
            continue
        minute = ts // MINUTE * MINUTE
        requests[minute] = requests.get(minute, 0) + 1  # throttled attempts count against the RPM quota
        if not throttled:  # burndown 1 for Nova models
            tokens[minute] = tokens.get(minute, 0) + tokens_in + cache_write + tokens_out
    peaks: dict[int, float] = {}
    for minute, count in requests.items():
        shares = ([count / rpm] if rpm else []) + ([tokens.get(minute, 0) / tpm] if tpm else [])
        bucket = minute - minute % (period * 1000)
        peaks[bucket] = max(peaks.get(bucket, 0.0), max(shares))
    return peaks


def expected_minutes(usage: dict[int, float], period: int) -> dict[int, float]:
    out = {}
    times = sorted(usage)
    for now in times:
        window = [t for t in times if now - quota.TREND_PERIODS * period * 1000 < t <= now]
        if len(window) < 2:
            continue
        slope, intercept = np.polyfit([t / MINUTE for t in window], [usage[t] for t in window], 1)
        if slope > 1e-12:
            out[now] = max(0.0, (1 - intercept) / slope - now / MINUTE)
    return out


@pytest.fixture
def loaded(store_of, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / quota.QUOTAS_FILE).write_text(json.dumps(QUOTAS))
    quota.use_directory(data)
    calls = generate()
    store = store_of()
    store.write_records(GROUP, "s", [as_record(c) for c in calls], source="api")
    return store, calls


def fetch(store, metric: str, period: int, stat: str = "Minimum", model: str | None = None):
    dims = (("ModelId", model),) if model else ()
    [series] = get_metric_data(store, [MetricQuery("q", MetricStat(metric, period, stat, dims))],
                               T0, T0 + MINUTES * MINUTE)
    return dict(zip(series.timestamps, series.values))


@pytest.mark.parametrize("period", [60, 300])
def test_headroom_per_model_and_overall(loaded, period):
    store, calls = loaded
    nova = expected_usage(calls, NOVA, 10, 3_000, period)
    pro = expected_usage(calls, PRO_PROFILE, None, 30_000, period)
    assert max(nova.values()) > 1 > min(nova.values())  # the data really crosses the quota
    for model, usage in ((NOVA, nova), (PRO_PROFILE, pro)):
        got = fetch(store, quota.HEADROOM, period, model=model)
        assert got.keys() == usage.keys()
        for t, used in usage.items():
            assert got[t] == pytest.approx(100 * (1 - used))
    overall = fetch(store, quota.HEADROOM, period)
    assert overall == pytest.approx({t: 100 * (1 - max(nova.get(t, -1), pro.get(t, -1))) for t in nova | pro})
    assert fetch(store, quota.HEADROOM, period, model=UNQUOTED) == {}  # no quota, no datapoints
    assert fetch(store, quota.HEADROOM, period, "SampleCount", NOVA) == {t: 1.0 for t in nova}


@pytest.mark.parametrize("period", [60, 300])
def test_minutes_to_exhaustion_follows_the_trend(loaded, period):
    store, calls = loaded
    usage = expected_usage(calls, NOVA, 10, 3_000, period)
    expected = expected_minutes(usage, period)
    got = fetch(store, quota.MINUTES_TO_EXHAUSTION, period, model=NOVA)
    assert expected and got.keys() == expected.keys()
    for t, minutes in expected.items():
        assert got[t] == pytest.approx(minutes, rel=1e-6, abs=1e-6)


def test_a_falling_trend_has_no_datapoint():
    falling = {T0 + i * MINUTE: 0.9 - 0.1 * i for i in range(5)}
    assert quota.minutes_to_exhaustion(falling, 60) == {}
    flat = {T0 + i * MINUTE: 0.5 for i in range(5)}
    assert quota.minutes_to_exhaustion(flat, 60) == {}
    rising = {T0 + i * MINUTE: 0.1 * i for i in range(5)}  # +0.1 a minute: 0.4 at minute 4 -> 6 minutes left
    assert quota.minutes_to_exhaustion(rising, 60)[T0 + 4 * MINUTE] == pytest.approx(6.0)


def test_one_scan_serves_a_request_with_other_metrics(loaded):
    store, calls = loaded
    queries = [MetricQuery("h", MetricStat(quota.HEADROOM, 300, "Minimum", (("ModelId", NOVA),))),
               MetricQuery("n", MetricStat("Invocations", 300, "Sum", (("ModelId", NOVA),))),
               MetricQuery("low", expression="100 - h", label="used %")]
    results = {s.id: s for s in get_metric_data(store, queries, T0, T0 + MINUTES * MINUTE)}
    usage = expected_usage(calls, NOVA, 10, 3_000, 300)
    assert dict(zip(results["low"].timestamps, results["low"].values)) == pytest.approx(
        {t: 100 * u for t, u in usage.items()})
    assert sum(results["n"].values) == sum(1 for c in calls if c[1] == NOVA and not c[5])


def test_bad_statistics_and_dimensions_are_refused(loaded):
    store, _ = loaded
    with pytest.raises(InputError, match="p99.*one value per period"):
        fetch(store, quota.HEADROOM, 60, "p99", NOVA)
    with pytest.raises(InputError, match="ModelId or none.*App"):
        get_metric_data(store, [MetricQuery("q", MetricStat(quota.HEADROOM, 60, "Minimum", (("App", "x"),)))],
                        T0, T0 + MINUTE)


def test_list_metrics_names_the_models_with_quotas(loaded):
    store, _ = loaded
    listed = {d for m, d in list_metrics(store, quota.HEADROOM, [("ModelId", None)])}
    assert listed == {(("ModelId", NOVA),), (("ModelId", PRO_PROFILE),)}


def test_every_combination_list_metrics_lists_over_the_api_can_be_fetched(server, invocation):
    """ListMetrics lists a metric only under dimensions GetMetricData takes for it: quota metrics
    by ModelId (models with a quota) or none, whatever filter ListMetrics is given."""
    quota.set_quota(server.dashcam.data_dir, NOVA, rpm=10, tpm=3_000)
    quota.set_quota(server.dashcam.data_dir, "amazon.nova-pro-v1:0", rpm=None, tpm=30_000)
    combos = itertools.product((NOVA, PRO_PROFILE, UNQUOTED), ("Converse", "ConverseStream"), ("alice", "bob"),
                               ("shop", "chat"))
    records = [invocation(T0 + i * 7_000, model=model, operation=operation, caller=f"arn:aws:iam::1:user/{who}",
                          error="ThrottlingException" if i % 5 == 0 else None, latency=900, input_tokens=100,
                          output_tokens=20, ttft=200 if operation == "ConverseStream" else None,
                          metadata={"user": who, "app": app, "team": f"{app}-team"})
               for i, (model, operation, who, app) in enumerate(combos)]
    server.dashcam.store.write_records(GROUP, "s", records, source="api")
    cw = boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                      aws_secret_access_key="not-checked", config=Config(retries={"max_attempts": 1}))
    filters = [[], [{"Name": "ModelId"}], [{"Name": "Operation"}], [{"Name": "Caller"}], [{"Name": "UserId"}],
               [{"Name": "team"}], [{"Name": "ModelId"}, {"Name": "App"}], [{"Name": "ModelId", "Value": NOVA}]]
    listed = set()
    for dimensions in filters:
        for page in cw.get_paginator("list_metrics").paginate(Namespace="AWS/Bedrock", Dimensions=dimensions):
            listed |= {(m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"]))
                       for m in page["Metrics"]}
    for name in quota.QUOTA_METRICS:
        assert {dims for metric, dims in listed if metric == name} == {(), (("ModelId", NOVA),),
                                                                      (("ModelId", PRO_PROFILE),)}
    assert {tuple(n for n, _ in dims) for metric, dims in listed if metric == "Invocations"} == {
        (), ("ModelId",), ("Operation",), ("Caller",), ("App",), ("UserId",), ("team",), ("App", "ModelId")}

    pairs = sorted(listed)
    start = datetime.fromtimestamp(T0 / 1000, tz=timezone.utc)
    for at in range(0, len(pairs), 500):  # GetMetricData takes 500 queries a request
        chunk = pairs[at:at + 500]
        queries = [{"Id": f"q{at + i}", "MetricStat": {
            "Metric": {"Namespace": "AWS/Bedrock", "MetricName": metric,
                       "Dimensions": [{"Name": n, "Value": v} for n, v in dims]},
            "Period": 300, "Stat": "Maximum"}} for i, (metric, dims) in enumerate(chunk)]
        results = cw.get_metric_data(MetricDataQueries=queries, StartTime=start - timedelta(hours=1),
                                     EndTime=start + timedelta(hours=1))["MetricDataResults"]
        assert [r["Id"] for r in results] == [q["Id"] for q in queries]
        for (metric, dims), result in zip(chunk, results):
            # A listed combination has samples, so it has datapoints (a quota trend may not exist yet).
            assert result["Values"] or metric == quota.MINUTES_TO_EXHAUSTION, (metric, dims)


def test_model_ids_match_exactly_then_without_geo_or_arn_prefix():
    table = quota.parse_quotas([{"model": "anthropic.claude-x", "rpm": 10},
                                {"model": "eu.anthropic.claude-x", "rpm": 5}], source="t")
    assert table.lookup("anthropic.claude-x").rpm == 10
    assert table.lookup("us.anthropic.claude-x").rpm == 10       # geo prefix stripped
    assert table.lookup("eu.anthropic.claude-x").rpm == 5        # the profile's own quota wins
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/apac.anthropic.claude-x"
    assert table.lookup(arn).rpm == 10
    assert table.lookup("anthropic.claude-y") is None
    assert table.lookup("xus.anthropic.claude-x") is None


def test_quotas_json_loads_and_is_reread_when_it_changes(tmp_path):
    assert quota.load(tmp_path).quotas == {}
    (tmp_path / "quotas.json").write_text(json.dumps({"quotas": [{"model": "m", "rpm": 300, "tpm": 200000}]}))
    quota.use_directory(tmp_path)
    assert quota.current().lookup("m") == quota.Quota("m", 300, 200000)
    quota.set_quota(tmp_path, "n", rpm=None, tpm=5)
    assert sorted(quota.current().quotas) == ["m", "n"]
    quota.remove_quota(tmp_path, "m")
    assert sorted(quota.current().quotas) == ["n"]


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "is not valid JSON"),
    ('{"model": "m", "rpm": 1}', "must hold a list of quotas"),
    ('[{"rpm": 1}]', "entry 0: each quota needs a \"model\" id"),
    ('[{"model": "m", "rpm": -5}]', "entry 0 \\(m\\): \"rpm\" must be a number > 0, got -5"),
    ('[{"model": "m", "tpm": "lots"}]', "\"tpm\" must be a number > 0"),
    ('[{"model": "m"}]', "give \"rpm\", \"tpm\" or both"),
    ('[{"model": "m", "rpm": 1}, {"model": "m", "rpm": 2}]', "entry 1: model m is listed twice"),
    ('[{"model": "m", "rmp": 1}]', "unknown field\\(s\\) rmp"),
])
def test_bad_quota_files_name_the_problem(tmp_path, content, problem):
    (tmp_path / "quotas.json").write_text(content)
    with pytest.raises(ConfigError, match=problem) as caught:
        quota.load(tmp_path)
    assert str(tmp_path / "quotas.json") in str(caught.value)


def test_an_alarm_on_headroom_goes_to_alarm_as_usage_nears_the_quota(store_of, tmp_path):
    data = tmp_path / "data"
    quota.use_directory(data)
    quota.set_quota(data, NOVA, rpm=50, tpm=None)
    service = Dashcam(store_of(), data)
    try:
        service.alarms.put({"AlarmName": "nova-headroom", "Namespace": "AWS/Bedrock", "MetricName": quota.HEADROOM,
                            "Dimensions": [{"Name": "ModelId", "Value": NOVA}], "Statistic": "Minimum",
                            "Period": 60, "EvaluationPeriods": 1, "Threshold": 20,
                            "ComparisonOperator": "LessThanThreshold"})
        scheduler = service.alarm_scheduler()
        states = []
        for minute, calls in enumerate([10, 20, 30, 38, 45, 48]):  # 45 of 50 leaves 10% headroom
            service.store.write_records(GROUP, "s", [as_record((T0 + minute * MINUTE + i * 100, NOVA, 10, 0, 5,
                                                                i % 5 == 0)) for i in range(calls)], source="api")
            evaluation = scheduler.run_once(T0 + (minute + 1) * MINUTE + 10_000).evaluations["nova-headroom"]
            states.append(evaluation.state)
            if minute == 4:
                assert evaluation.value == pytest.approx(100 * (1 - 45 / 50))
        assert states == [OK, OK, OK, OK, ALARM, ALARM]
    finally:
        service.alarms.close()


def test_cli_sets_lists_and_removes_quotas_and_shows_headroom(tmp_path):
    data = tmp_path / "data"
    calls = [c for c in generate() if c[1] == NOVA]
    with Dashcam.open(data) as service:
        service.store.write_records(GROUP, "s", [as_record(c) for c in calls], source="api")
    runner = CliRunner()
    base = ["--data", str(data), "quotas"]
    assert runner.invoke(main, [*base, "set", NOVA, "--rpm", "10", "--tpm", "3000"]).exit_code == 0
    assert runner.invoke(main, [*base, "set", "other", "--tpm", "5"]).exit_code == 0
    listed = runner.invoke(main, [*base, "list", "--format", "json"])
    assert json.loads(listed.stdout) == [{"model": NOVA, "rpm": 10, "tpm": 3000},
                                         {"model": "other", "rpm": None, "tpm": 5}]
    shown = runner.invoke(main, ["--data", str(data), "metrics", "--metric", quota.HEADROOM, "--model", NOVA,
                                 "--period", "300", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    usage = expected_usage(calls, NOVA, 10, 3_000, 300)
    assert [r[f"{quota.HEADROOM} Average"] for r in rows] == pytest.approx(
        [100 * (1 - usage[t]) for t in sorted(usage)])
    assert runner.invoke(main, [*base, "remove", "other"]).exit_code == 0
    missing = runner.invoke(main, [*base, "remove", "other"])
    assert missing.exit_code == 2 and "no quota is set for 'other'" in missing.stderr
    neither = runner.invoke(main, [*base, "set", "x"])
    assert neither.exit_code == 2 and "--rpm, --tpm or both" in neither.stderr
