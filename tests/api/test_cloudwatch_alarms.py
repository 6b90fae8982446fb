"""CloudWatch alarm operations (dashcam.api.cloudwatch_alarms) with the real boto3 client over real HTTP."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dashcam.alarms.model import parse_definition

THROTTLES = {"AlarmName": "bedrock-throttles", "AlarmDescription": "Throttling on Nova Lite",
             "MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock", "Statistic": "Sum", "Period": 300,
             "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 5.0,
             "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
             "Dimensions": [{"Name": "ModelId", "Value": "amazon.nova-lite-v1:0"}],
             "AlarmActions": ["https://hooks.example.com/bedrock#secret=ops"],
             "OKActions": ["slack+https://hooks.slack.com/services/T/B/C"]}
LATENCY = {"AlarmName": "latency-p99", "MetricName": "InvocationLatency", "Namespace": "AWS/Bedrock",
           "ExtendedStatistic": "p99", "Period": 60, "EvaluationPeriods": 5, "Threshold": 8000.0,
           "ComparisonOperator": "GreaterThanThreshold", "EvaluateLowSampleCountPercentile": "ignore",
           "AlarmActions": ["exec:page-oncall"]}
TRAFFIC = {"AlarmName": "traffic-anomaly", "EvaluationPeriods": 3, "ThresholdMetricId": "band",
           "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "Metrics": [
               {"Id": "calls", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations",
                                                         "Dimensions": []}, "Period": 300, "Stat": "Sum"},
                "ReturnData": True},
               {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(calls, 2)", "Label": "expected",
                "ReturnData": True}]}
SLOW = {"AlarmName": "slow-requests", "EvaluationPeriods": 1, "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Metrics": [
            {"Id": "slow", "Period": 300, "ReturnData": True, "Expression":
             "SOURCE '/aws/bedrock/modelinvocations' | filter latencyMs > 5000 | stats count(*)"}]}


def quiet(alarm: dict, **members) -> dict:
    """The alarm with its actions switched off: tests never reach for hooks.example.com."""
    return {**alarm, "ActionsEnabled": False, **members}


def cloudwatch(server, key_id: str = "AKIDEXAMPLE", secret: str = "not-checked"):
    """boto3's CloudWatch client pointed at dashcam (no retries, so errors show at once)."""
    return boto3.client("cloudwatch", endpoint_url=server.url, region_name="eu-west-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def error_of(call, **params) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@pytest.mark.parametrize("alarm", [THROTTLES, LATENCY, TRAFFIC, SLOW], ids=lambda a: a["AlarmName"])
def test_put_then_describe_gives_the_definition_back(server, alarm):
    client = cloudwatch(server)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    client.put_metric_alarm(**alarm)
    [described] = client.describe_alarms(AlarmNames=[alarm["AlarmName"]])["MetricAlarms"]
    expected = parse_definition(alarm).to_params()
    for member, value in expected.items():
        if member != "Tags":
            assert described[member] == value, member
    assert described["AlarmArn"] == f"arn:aws:cloudwatch:eu-west-1:000000000000:alarm:{alarm['AlarmName']}"
    assert described["StateValue"] == "INSUFFICIENT_DATA"
    assert described["StateReason"] == "Unchecked: Initial alarm creation"
    for stamp in ("AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp", "StateTransitionedTimestamp"):
        assert before <= described[stamp] <= datetime.now(timezone.utc)


def test_bad_definitions_are_refused_with_the_reason(server):
    client = cloudwatch(server)
    code, message = error_of(client.put_metric_alarm, **{**THROTTLES, "DatapointsToAlarm": 4})
    assert code == "InvalidParameterValue" and "DatapointsToAlarm (4)" in message
    code, message = error_of(client.put_metric_alarm, **{**THROTTLES, "AlarmActions": ["mailto:ops@example.com"]})
    assert code == "InvalidParameterValue" and "mailto:ops@example.com" in message
    code, _ = error_of(client.put_metric_alarm, **{**THROTTLES, "ComparisonOperator": "GreaterThanUpperThreshold"})
    assert code == "InvalidParameterValue"
    missing = {k: v for k, v in THROTTLES.items() if k != "EvaluationPeriods"}
    unchecked = boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1",
                             aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x",
                             config=Config(retries={"max_attempts": 1}, parameter_validation=False))
    assert error_of(unchecked.put_metric_alarm, **missing)[0] == "MissingParameter"
    assert error_of(unchecked.put_metric_alarm, **{**THROTTLES, "EvaluationPeriods": 0})[0] == "InvalidParameterValue"
    assert client.describe_alarms()["MetricAlarms"] == []
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.put_metric_alarm(**{**SLOW, "Metrics": [{**SLOW["Metrics"][0], "Period": 90}]})


def test_describe_filters_and_pages(server):
    client = cloudwatch(server)
    for i in range(7):
        client.put_metric_alarm(**quiet(THROTTLES, AlarmName=f"team-a-{i}",
                                        AlarmActions=[f"https://hooks.example.com/{'pager' if i % 2 else 'chat'}"]))
    client.put_metric_alarm(**{**LATENCY, "AlarmName": "team-b-latency"})
    client.set_alarm_state(AlarmName="team-a-3", StateValue="ALARM", StateReason="test")
    names = lambda response: [a["AlarmName"] for a in response["MetricAlarms"]]  # noqa: E731
    assert names(client.describe_alarms(AlarmNamePrefix="team-b")) == ["team-b-latency"]
    assert names(client.describe_alarms(StateValue="ALARM")) == ["team-a-3"]
    assert names(client.describe_alarms(AlarmNames=["team-a-6", "nope", "team-a-0"])) == ["team-a-0", "team-a-6"]
    assert names(client.describe_alarms(ActionPrefix="https://hooks.example.com/pager")) == [
        "team-a-1", "team-a-3", "team-a-5"]
    assert names(client.describe_alarms(AlarmTypes=["CompositeAlarm"])) == []
    pages = list(client.get_paginator("describe_alarms").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["MetricAlarms"]) for p in pages] == [3, 3, 2]
    assert [n for p in pages for n in names(p)] == sorted([f"team-a-{i}" for i in range(7)] + ["team-b-latency"])
    code, _ = error_of(client.describe_alarms, AlarmNames=["a"], AlarmNamePrefix="a")
    assert code == "InvalidParameterCombination"
    code, _ = error_of(client.describe_alarms, NextToken="garbage")
    assert code == "InvalidNextToken"


def test_alarms_for_a_metric(server):
    client = cloudwatch(server)
    for alarm in (THROTTLES, LATENCY, TRAFFIC, SLOW):
        client.put_metric_alarm(**alarm)
    client.put_metric_alarm(**{**THROTTLES, "AlarmName": "all-models", "Dimensions": []})
    found = client.describe_alarms_for_metric(MetricName="InvocationThrottles", Namespace="AWS/Bedrock")
    assert sorted(a["AlarmName"] for a in found["MetricAlarms"]) == ["all-models", "bedrock-throttles"]
    narrowed = client.describe_alarms_for_metric(
        MetricName="InvocationThrottles", Namespace="AWS/Bedrock", Statistic="Sum", Period=300,
        Dimensions=[{"Name": "ModelId", "Value": "amazon.nova-lite-v1:0"}])
    assert [a["AlarmName"] for a in narrowed["MetricAlarms"]] == ["bedrock-throttles"]
    inside_metrics = client.describe_alarms_for_metric(MetricName="Invocations", Namespace="AWS/Bedrock")
    assert [a["AlarmName"] for a in inside_metrics["MetricAlarms"]] == ["traffic-anomaly"]
    assert client.describe_alarms_for_metric(MetricName="InvocationLatency", Namespace="AWS/Bedrock",
                                             ExtendedStatistic="p50")["MetricAlarms"] == []


class Hook:
    """A webhook receiver on 127.0.0.1 that records the bodies it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.arrived = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(204)
                self.end_headers()
                with hook.arrived:
                    hook.bodies.append(orjson.loads(body))
                    hook.arrived.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[dict]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.bodies) >= count, 10)
            return list(self.bodies)


@pytest.fixture
def hook():
    running = Hook()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_set_alarm_state_runs_actions_and_is_in_the_history(server, hook):
    client = cloudwatch(server)
    client.put_metric_alarm(**{**THROTTLES, "AlarmActions": [hook.url], "OKActions": []})
    client.set_alarm_state(AlarmName="bedrock-throttles", StateValue="ALARM", StateReason="Testing the pager",
                           StateReasonData='{"source": "test"}')
    [alarm] = client.describe_alarms(AlarmNames=["bedrock-throttles"])["MetricAlarms"]
    assert (alarm["StateValue"], alarm["StateReason"], alarm["StateReasonData"]) == (
        "ALARM", "Testing the pager", '{"source": "test"}')
    [message] = hook.wait_for(1)
    assert (message["AlarmName"], message["OldStateValue"], message["NewStateValue"], message["NewStateReason"]) == (
        "bedrock-throttles", "INSUFFICIENT_DATA", "ALARM", "Testing the pager")
    assert message["AlarmDescription"] == THROTTLES["AlarmDescription"]
    assert server.dashcam.alarms.dispatcher.wait_idle(10)

    history = client.describe_alarm_history(AlarmName="bedrock-throttles")["AlarmHistoryItems"]
    kinds = [item["HistoryItemType"] for item in history]
    assert sorted(kinds) == ["Action", "ConfigurationUpdate", "StateUpdate"]
    state = next(item for item in history if item["HistoryItemType"] == "StateUpdate")
    assert state["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert orjson.loads(state["HistoryData"])["newState"]["stateReasonData"] == {"source": "test"}
    action = next(item for item in history if item["HistoryItemType"] == "Action")
    assert action["HistorySummary"] == f"Successfully executed action {hook.url}"
    only = client.describe_alarm_history(AlarmName="bedrock-throttles", HistoryItemType="StateUpdate")
    assert [i["HistoryItemType"] for i in only["AlarmHistoryItems"]] == ["StateUpdate"]

    assert error_of(client.set_alarm_state, AlarmName="nope", StateValue="OK", StateReason="x")[0] == "ResourceNotFound"
    assert error_of(client.set_alarm_state, AlarmName="bedrock-throttles", StateValue="OK", StateReason="x",
                    StateReasonData="{not json")[0] == "InvalidFormat"


def test_disabled_actions_do_not_run(server, hook):
    client = cloudwatch(server)
    client.put_metric_alarm(**{**THROTTLES, "AlarmActions": [hook.url], "OKActions": [hook.url]})
    client.disable_alarm_actions(AlarmNames=["bedrock-throttles", "not-there"])
    assert client.describe_alarms()["MetricAlarms"][0]["ActionsEnabled"] is False
    client.set_alarm_state(AlarmName="bedrock-throttles", StateValue="ALARM", StateReason="quiet")
    assert server.dashcam.alarms.dispatcher.wait_idle(10)
    assert hook.bodies == []
    client.enable_alarm_actions(AlarmNames=["bedrock-throttles"])
    assert client.describe_alarms()["MetricAlarms"][0]["ActionsEnabled"] is True
    client.set_alarm_state(AlarmName="bedrock-throttles", StateValue="OK", StateReason="loud")
    assert [m["NewStateValue"] for m in hook.wait_for(1)] == ["OK"]


def test_history_pages_and_time_ranges(server):
    client = cloudwatch(server)
    client.put_metric_alarm(**quiet(THROTTLES))
    for i in range(6):
        client.set_alarm_state(AlarmName="bedrock-throttles", StateValue=("ALARM", "OK")[i % 2], StateReason=f"flip {i}")
    items = [i for p in client.get_paginator("describe_alarm_history").paginate(
        AlarmName="bedrock-throttles", HistoryItemType="StateUpdate", PaginationConfig={"PageSize": 4})
        for i in p["AlarmHistoryItems"]]
    assert len(items) == 6
    assert [orjson.loads(i["HistoryData"])["newState"]["stateReason"] for i in items] == [
        f"flip {i}" for i in reversed(range(6))]
    ascending = client.describe_alarm_history(AlarmName="bedrock-throttles", HistoryItemType="StateUpdate",
                                              ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert ascending == list(reversed(items))
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert client.describe_alarm_history(AlarmName="bedrock-throttles", StartDate=later)["AlarmHistoryItems"] == []
    everything = client.describe_alarm_history(AlarmName="bedrock-throttles", EndDate=later)["AlarmHistoryItems"]
    assert len(everything) == 7


def test_delete_is_all_or_nothing_and_keeps_history(server):
    client = cloudwatch(server)
    client.put_metric_alarm(**THROTTLES)
    client.put_metric_alarm(**LATENCY)
    assert error_of(client.delete_alarms, AlarmNames=["latency-p99", "nope"])[0] == "ResourceNotFound"
    assert len(client.describe_alarms()["MetricAlarms"]) == 2
    client.delete_alarms(AlarmNames=["latency-p99", "bedrock-throttles"])
    assert client.describe_alarms()["MetricAlarms"] == []
    summaries = [i["HistorySummary"] for i in client.describe_alarm_history(AlarmName="latency-p99")["AlarmHistoryItems"]]
    assert summaries == ['Alarm "latency-p99" deleted', 'Alarm "latency-p99" created']


def test_an_alarm_put_through_boto3_is_evaluated_on_stored_records(server):
    now = datetime(2026, 3, 2, 14, 0, 20, tzinfo=timezone.utc)
    minute = int(now.timestamp() * 1000) // 60_000 * 60_000 - 60_000
    records = [{"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": minute + i * 1000,
                "requestId": f"r{i}", "operation": "Converse", "modelId": "amazon.nova-lite-v1:0",
                "errorCode": "ThrottlingException", "input": {"inputTokenCount": 5}} for i in range(6)]
    server.dashcam.store.write_records("/aws/bedrock/modelinvocations", "s", records, source="api")
    client = cloudwatch(server)
    client.put_metric_alarm(**{**THROTTLES, "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1,
                               "AlarmActions": [], "OKActions": []})
    server.dashcam.alarm_scheduler().run_once(int(now.timestamp() * 1000))
    [alarm] = client.describe_alarms()["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [6.0 (02/03/26 13:59:00)]")
    assert orjson.loads(alarm["StateReasonData"])["recentDatapoints"] == [6.0]


def test_changing_alarms_needs_an_admin_key(secured_server):
    keys = secured_server.keys
    reader, admin = keys.create("read"), keys.create("admin")
    as_reader = cloudwatch(secured_server, reader.key_id, reader.secret)
    as_admin = cloudwatch(secured_server, admin.key_id, admin.secret)
    assert error_of(as_reader.put_metric_alarm, **THROTTLES)[0] == "AccessDeniedException"
    as_admin.put_metric_alarm(**THROTTLES)
    assert [a["AlarmName"] for a in as_reader.describe_alarms()["MetricAlarms"]] == ["bedrock-throttles"]
    assert len(as_reader.describe_alarm_history(AlarmName="bedrock-throttles")["AlarmHistoryItems"]) == 1
    for call, params in ((as_reader.delete_alarms, {"AlarmNames": ["bedrock-throttles"]}),
                         (as_reader.set_alarm_state, {"AlarmName": "bedrock-throttles", "StateValue": "OK",
                                                      "StateReason": "x"}),
                         (as_reader.disable_alarm_actions, {"AlarmNames": ["bedrock-throttles"]})):
        assert error_of(call, **params)[0] == "AccessDeniedException"
    # Alarms see every log group: a key for some groups only may not even read them.
    limited = keys.create("admin", log_groups="/team/a/*")
    as_limited = cloudwatch(secured_server, limited.key_id, limited.secret)
    code, message = error_of(as_limited.describe_alarms)
    assert code == "AccessDeniedException" and "/team/a/*" in message
    assert error_of(as_limited.set_alarm_state, AlarmName="bedrock-throttles", StateValue="OK",
                    StateReason="x")[0] == "AccessDeniedException"
