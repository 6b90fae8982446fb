"""The alarm operations (dashcam.alarms.manager): state changes, actions, messages, history of attempts."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from dashcam.alarms.evaluate import Datapoint, evaluate
from dashcam.alarms.manager import AlarmManager, alarm_arn
from dashcam.alarms.model import ALARM, INSUFFICIENT_DATA, OK
from dashcam.errors import InputError, NotFoundError

NOW = int(datetime(2026, 3, 2, 14, 5, 20, tzinfo=timezone.utc).timestamp() * 1000)
LAST = NOW // 60_000 * 60_000 - 60_000


def params(receiver, **members):
    return {"AlarmName": "p99", "AlarmDescription": "slow answers", "MetricName": "InvocationLatency",
            "Namespace": "AWS/Bedrock", "ExtendedStatistic": "p99", "Period": 60, "EvaluationPeriods": 1,
            "Threshold": 5000, "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": [{"Name": "ModelId", "Value": "m"}],
            "AlarmActions": [f"{receiver.url}/alarm"], "OKActions": [f"{receiver.url}/ok"], **members}


@pytest.fixture
def manager(tmp_path):
    opened = AlarmManager.open(tmp_path, clock=lambda: NOW / 1000)
    yield opened
    opened.close()


def test_an_evaluation_applies_once_and_sends_cloudwatchs_message(manager, receiver):
    alarm = manager.put(params(receiver))
    evaluation = evaluate(alarm.definition, [Datapoint(LAST, 7200.0)], alarm.state.value, NOW)
    assert manager.apply(alarm, evaluation)
    assert not manager.apply(alarm, evaluation)  # the state it started from is gone: nothing twice
    [sent] = receiver.wait_for(1)
    message = orjson.loads(sent.body)
    assert message["AlarmArn"] == alarm_arn("p99") == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:p99"
    assert (message["OldStateValue"], message["NewStateValue"]) == (INSUFFICIENT_DATA, ALARM)
    assert message["NewStateReason"] == evaluation.reason
    assert message["StateChangeTime"] == "2026-03-02T14:05:20.000+0000"
    assert message["Trigger"] == {
        "MetricName": "InvocationLatency", "Namespace": "AWS/Bedrock", "StatisticType": "ExtendedStatistic",
        "ExtendedStatistic": "p99", "Unit": None, "Dimensions": [{"value": "m", "name": "ModelId"}], "Period": 60,
        "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "missing", "EvaluateLowSampleCountPercentile": "", "Threshold": 5000.0}
    assert manager.dispatcher.wait_idle(10)
    [action] = manager.history("p99", item_type="Action")
    data = orjson.loads(action.data)
    assert action.summary == f"Successfully executed action {receiver.url}/alarm"
    assert (data["actionState"], data["stateUpdateTimestamp"], data["attempt"]) == ("Succeeded", NOW, 1)


def test_a_changed_definition_voids_an_evaluation_in_flight(manager, receiver):
    alarm = manager.put(params(receiver))
    evaluation = evaluate(alarm.definition, [Datapoint(LAST, 7200.0)], alarm.state.value, NOW)
    manager.put(params(receiver, Threshold=9000))  # edited while the round ran
    assert not manager.apply(alarm, evaluation)
    assert manager.get("p99").state.value == INSUFFICIENT_DATA
    assert manager.dispatcher.wait_idle(5) and receiver.requests == []


def test_set_state_checks_its_input_and_acts_only_on_a_change(manager, receiver):
    manager.put(params(receiver))
    with pytest.raises(InputError, match="StateValue 'RED'"):
        manager.set_state("p99", "RED", "x")
    with pytest.raises(InputError, match="StateReasonData must be JSON"):
        manager.set_state("p99", OK, "x", "{")
    with pytest.raises(NotFoundError):
        manager.set_state("nope", OK, "x")
    manager.set_state("p99", OK, "first")
    manager.set_state("p99", OK, "same state, new reason")
    assert manager.get("p99").state.reason == "same state, new reason"
    assert [r.path for r in receiver.wait_for(1)] == ["/ok"]
    assert manager.dispatcher.wait_idle(10)
    assert len(receiver.requests) == 1


def test_metric_math_messages_carry_the_metrics(manager):
    alarm = manager.put({"AlarmName": "rate", "EvaluationPeriods": 1, "Threshold": 5,
                         "ComparisonOperator": "GreaterThanThreshold", "Metrics": [
                             {"Id": "a", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                                        "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                             {"Id": "e", "Expression": "a / 60"}]})
    trigger = manager.message(alarm, OK)["Trigger"]
    assert [m["Id"] for m in trigger["Metrics"]] == ["a", "e"] and trigger["Threshold"] == 5.0
    assert "MetricName" not in trigger
