"""The scheduler (dashcam.alarms.scheduler) over a real store, with an injected clock.

Records are written to DuckDB (and ClickHouse through chDB) minute by minute; each round is run at
a chosen moment, and what the records say each alarm should be is worked out here from the
records themselves.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import orjson
import pytest

from dashcam.alarms.model import ALARM, INSUFFICIENT_DATA, OK
from dashcam.service import Dashcam

MINUTE = 60_000
T0 = int(datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc).timestamp() * 1000)
GROUP = "/aws/bedrock/modelinvocations"
MODEL = "amazon.nova-lite-v1:0"
# Throttled calls in each minute from T0; every minute also has 4 successful calls.
THROTTLES = [0, 0, 0, 1, 0, 3, 4, 5, 0, 0, 0, 0]


def records(minute: int) -> list[dict]:
    out = []
    for i in range(4 + THROTTLES[minute]):
        record = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": T0 + minute * MINUTE + i * 500,
                  "requestId": f"r-{minute}-{i}", "operation": "Converse", "modelId": MODEL,
                  "input": {"inputTokenCount": 100}}
        if i < THROTTLES[minute]:
            record["errorCode"] = "ThrottlingException"
        else:
            record["output"] = {"outputTokenCount": 20}
            record["latencyMs"] = 200.0 + minute
        out.append(record)
    return out


@pytest.fixture
def dashcam(store_of, tmp_path):
    service = Dashcam(store_of(), tmp_path / "data")
    yield service
    service.alarms.close()  # the store is closed by store_of


THROTTLE_ALARM = {"AlarmName": "throttles", "MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock",
                  "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 2,
                  "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
                  "Dimensions": [{"Name": "ModelId", "Value": MODEL}]}
QUERY_ALARM = {"AlarmName": "throttles-by-query", "EvaluationPeriods": 1, "Threshold": 3,
               "ComparisonOperator": "GreaterThanOrEqualToThreshold",
               "Metrics": [{"Id": "q", "Period": 60, "Expression":
                            f"SOURCE '{GROUP}' | filter errorCode = 'ThrottlingException' | stats count(*) as n"}]}


def expected_throttle_state(minute_now: int) -> str:
    """What CloudWatch's rules make of THROTTLE_ALARM at the start of ``minute_now``.

    A minute without throttles has no InvocationThrottles datapoint (a sample is a throttled
    request). The range is the 5 complete minutes before now: with 3 or more datapoints the newest
    3 are judged; with fewer, the shortfall is filled with good points (notBreaching).
    """
    in_range = [n for n in THROTTLES[max(0, minute_now - 5):minute_now] if n > 0]
    judged = in_range[-3:]
    return ALARM if sum(n >= 2 for n in judged) >= 2 else OK


def test_rounds_follow_the_records_and_act_on_changes(dashcam, receiver):
    dashcam.alarms.put({**THROTTLE_ALARM, "AlarmActions": [f"{receiver.url}/alarm"],
                        "OKActions": [f"{receiver.url}/ok"]})
    dashcam.alarms.put(QUERY_ALARM)
    scheduler = dashcam.alarm_scheduler()
    expected_changes = []
    state = INSUFFICIENT_DATA
    for minute in range(len(THROTTLES)):
        dashcam.store.write_records(GROUP, "s", records(minute), source="api")
        now = T0 + (minute + 1) * MINUTE + 10_000  # each round runs 10 s into the next minute
        report = scheduler.run_once(now)
        throttles = report.evaluations["throttles"]
        assert throttles.state == expected_throttle_state(minute + 1), minute
        if throttles.state != state:
            expected_changes.append(throttles.state)
            assert "throttles" in report.changed
        state = throttles.state
        query = report.evaluations["throttles-by-query"]
        assert query.state == (ALARM if THROTTLES[minute] >= 3 else OK), minute
        assert query.value == THROTTLES[minute]
    alarm = dashcam.alarms.get("throttles")
    assert alarm.state.value == state and alarm.state.last_evaluated_ms == now
    assert ALARM in expected_changes and expected_changes[-1] == OK  # the data went up and came back
    # One webhook per change, to the new state's action.
    sent = receiver.wait_for(len(expected_changes))
    assert dashcam.alarms.dispatcher.wait_idle(10)
    assert [r.path for r in sent] == [f"/{s.lower()}" for s in expected_changes]
    raised = orjson.loads(sent[expected_changes.index(ALARM)].body)
    assert (raised["AlarmName"], raised["OldStateValue"], raised["NewStateValue"]) == ("throttles", OK, ALARM)
    assert raised["Trigger"]["MetricName"] == "InvocationThrottles"
    assert all(v >= 2 for v in raised["NewStateReasonData"]["recentDatapoints"][-2:])
    # State changes are stamped with the round's (injected) time, deliveries with the wall clock.
    history = dashcam.alarms.history("throttles", ascending=True)
    assert len([h for h in history if h.item_type == "ConfigurationUpdate"]) == 1
    actions = [orjson.loads(h.data) for h in history if h.item_type == "Action"]
    assert [a["actionState"] for a in actions] == ["Succeeded"] * len(expected_changes)
    assert [a["notificationResource"].rsplit("/", 1)[1] for a in actions] == [s.lower() for s in expected_changes]
    assert [h.summary for h in history if h.item_type == "StateUpdate"] == [
        f"Alarm updated from {old} to {new}"
        for old, new in zip([INSUFFICIENT_DATA, *expected_changes], expected_changes)]


def test_a_broken_alarm_goes_to_insufficient_data_and_the_others_go_on(dashcam):
    dashcam.store.write_records(GROUP, "s", records(5), source="api")
    dashcam.alarms.put({**THROTTLE_ALARM, "AlarmName": "bad-metric", "MetricName": "NoSuchMetric"})
    dashcam.alarms.put({**QUERY_ALARM, "AlarmName": "two-numbers", "Metrics": [
        {"Id": "q", "Period": 60, "Expression": f"SOURCE '{GROUP}' | stats count(*), avg(latencyMs)"}]})
    dashcam.alarms.put({**QUERY_ALARM, "AlarmName": "many-rows", "Metrics": [
        {"Id": "q", "Period": 60, "Expression": f"SOURCE '{GROUP}' | fields requestId"}]})
    dashcam.alarms.put(QUERY_ALARM)
    dashcam.alarms.set_state("bad-metric", OK, "testing")
    report = dashcam.alarm_scheduler().run_once(T0 + 6 * MINUTE + 10_000)
    assert report.evaluations["bad-metric"].state == INSUFFICIENT_DATA
    assert "NoSuchMetric" in report.evaluations["bad-metric"].reason
    assert "bad-metric" in report.changed
    # A query alarm needs one number per period.
    two_numbers, many_rows = report.evaluations["two-numbers"], report.evaluations["many-rows"]
    assert two_numbers.state == INSUFFICIENT_DATA and "count(*), avg(latencyMs)" in two_numbers.reason
    assert many_rows.state == INSUFFICIENT_DATA
    assert f"the query gave {4 + THROTTLES[5]} rows for one period" in many_rows.reason
    assert report.evaluations["throttles-by-query"].state == ALARM


def test_set_alarm_state_is_undone_by_the_next_round(dashcam, receiver):
    dashcam.store.write_records(GROUP, "s", records(0), source="api")
    dashcam.alarms.put({**QUERY_ALARM, "AlarmActions": [f"{receiver.url}/alarm"],
                        "OKActions": [f"{receiver.url}/ok"]})
    scheduler = dashcam.alarm_scheduler()
    scheduler.run_once(T0 + MINUTE + 10_000)
    assert [r.path for r in receiver.wait_for(1)] == ["/ok"]  # INSUFFICIENT_DATA -> OK
    dashcam.alarms.set_state("throttles-by-query", ALARM, "testing the pager", '{"by": "test"}')
    alarm = dashcam.alarms.get("throttles-by-query")
    assert (alarm.state.value, alarm.state.reason, alarm.state.reason_data) == (
        ALARM, "testing the pager", '{"by": "test"}')
    assert [r.path for r in receiver.wait_for(2)] == ["/ok", "/alarm"]
    report = scheduler.run_once(T0 + MINUTE + 20_000)
    assert report.changed == ["throttles-by-query"]
    assert [r.path for r in receiver.wait_for(3)] == ["/ok", "/alarm", "/ok"]
    assert orjson.loads(receiver.requests[1].body)["NewStateReason"] == "testing the pager"


def test_disabled_actions_record_changes_without_running_them(dashcam, receiver):
    dashcam.store.write_records(GROUP, "s", records(7), source="api")
    dashcam.alarms.put({**QUERY_ALARM, "AlarmActions": [f"{receiver.url}/alarm"], "ActionsEnabled": False})
    report = dashcam.alarm_scheduler().run_once(T0 + 8 * MINUTE + 10_000)
    assert report.evaluations["throttles-by-query"].state == ALARM
    assert dashcam.alarms.dispatcher.wait_idle(5)
    assert receiver.requests == []
    assert sorted(h.item_type for h in dashcam.alarms.history("throttles-by-query")) == [
        "ConfigurationUpdate", "StateUpdate"]


def test_the_background_thread_runs_rounds_and_stops(dashcam):
    dashcam.alarms.put(QUERY_ALARM)
    ticks = iter(range(10**6))
    clock_lock = threading.Lock()

    def clock() -> float:  # every call is a second later: rounds come every 2 s of this clock
        with clock_lock:
            return (T0 + 2 * MINUTE) / 1000 + next(ticks)

    scheduler = dashcam.alarm_scheduler(interval_s=2, settle_s=0, clock=clock)
    scheduler.start()
    try:
        deadline = threading.Event()
        for _ in range(200):
            if scheduler.last_round is not None:
                break
            deadline.wait(0.05)
    finally:
        scheduler.stop()
    assert not scheduler.running
    assert scheduler.last_round is not None
    assert dashcam.alarms.get("throttles-by-query").state.value == OK


def hourly_records(start_ms: int, hours: int, seed: int, spike_hour: int | None = None) -> tuple[list[dict], list[int]]:
    """Successful calls with a daily cycle (about 10 to 30 an hour, noisy), and their counts per hour."""
    import math
    import random

    rng = random.Random(seed)
    out, counts = [], []
    for hour in range(hours):
        t = start_ms + hour * 3_600_000
        count = round(20 + 10 * math.sin(2 * math.pi * ((t // 3_600_000) % 24) / 24) + rng.gauss(0, 1.5))
        if hour == spike_hour:
            count *= 4
        counts.append(count)
        for i in range(count):
            out.append({"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": t + i * (3_600_000 // (count + 1)),
                        "requestId": f"h-{seed}-{hour}-{i}", "operation": "Converse", "modelId": MODEL,
                        "input": {"inputTokenCount": 10}, "output": {"outputTokenCount": 5}})
    return out, counts


def test_an_anomaly_alarm_on_stored_traffic_rides_the_daily_cycle_and_catches_a_spike(dashcam):
    hour = 3_600_000
    start = T0 - 15 * 86_400_000
    days = 16
    spike = (days - 1) * 24 + 13  # 13:00 on the last day
    batch, counts = hourly_records(start, days * 24, seed=11, spike_hour=spike)
    dashcam.store.write_records(GROUP, "s", batch, source="api")
    dashcam.alarms.put({"AlarmName": "traffic", "EvaluationPeriods": 1, "ThresholdMetricId": "band",
                        "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "Metrics": [
                            {"Id": "calls", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock",
                                                                      "MetricName": "Invocations"},
                                                           "Period": 3600, "Stat": "Sum"}},
                            {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(calls, 3)"}]})
    scheduler = dashcam.alarm_scheduler()
    states = {}
    for h in range((days - 2) * 24, days * 24):  # the last two days, judged hour by hour
        report = scheduler.run_once(start + (h + 1) * hour + 10_000)
        evaluation = report.evaluations["traffic"]
        states[h] = evaluation.state
        if evaluation.value is not None:
            assert evaluation.value == counts[h]
    assert states[spike] == ALARM
    assert all(state == OK for h, state in states.items() if h != spike), {
        h: counts[h] for h, state in states.items() if state != OK}


def test_dashcam_serve_runs_the_scheduler(tmp_path, receiver):
    import signal
    import socket
    import subprocess
    import sys
    import time

    import boto3

    data = tmp_path / "served"
    definition = tmp_path / "alarm.json"
    # A query alarm that is in ALARM whenever the last minute had no slow calls at all: a canary.
    definition.write_bytes(orjson.dumps({**QUERY_ALARM, "AlarmName": "canary", "Threshold": 0,
                                         "ComparisonOperator": "LessThanOrEqualToThreshold",
                                         "AlarmActions": [f"{receiver.url}/canary"]}))
    cli = [sys.executable, "-m", "dashcam.cli", "--data", str(data)]
    subprocess.run([*cli, "alarms", "put", "--file", str(definition)], check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([*cli, "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        [sent] = receiver.wait_for(1, timeout=60)  # the first round runs as the server starts
        assert orjson.loads(sent.body)["NewStateValue"] == ALARM
        client = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x")
        deadline = time.monotonic() + 20
        while client.describe_alarm_history(AlarmName="canary", HistoryItemType="Action")["AlarmHistoryItems"] == []:
            assert time.monotonic() < deadline, "the delivery was never recorded"
            time.sleep(0.1)
        assert client.describe_alarms(AlarmNames=["canary"])["MetricAlarms"][0]["StateValue"] == ALARM
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0, process.stderr.read()
