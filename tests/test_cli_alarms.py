"""``dashcam alarms list | history | put | delete`` (dashcam.cli_alarms), in-process through click."""

from __future__ import annotations

import boto3
import orjson
import pytest
from click.testing import CliRunner

from dashcam.cli import main

THROTTLES = {"AlarmName": "throttles", "MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock",
             "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 5,
             "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching"}
SLOW = {"AlarmName": "slow", "EvaluationPeriods": 1, "Threshold": 10, "ComparisonOperator": "GreaterThanThreshold",
        "ActionsEnabled": False, "Metrics": [{"Id": "q", "Period": 300, "Expression":
                                              "SOURCE '/aws/bedrock/modelinvocations' | filter latencyMs > 5000 "
                                              "| stats count(*)"}]}


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def data(tmp_path) -> str:
    return str(tmp_path / "dashcam-data")


def test_put_list_history_delete(data, tmp_path):
    spec = tmp_path / "alarms.json"
    spec.write_bytes(orjson.dumps([THROTTLES, SLOW]))
    put = run("--data", data, "alarms", "put", "--file", str(spec))
    assert put.exit_code == 0
    assert put.stderr.splitlines() == ["created alarm throttles (static, INSUFFICIENT_DATA)",
                                       "created alarm slow (query, INSUFFICIENT_DATA)"]
    listed = run("--data", data, "alarms", "list", "--format", "json")
    rows = orjson.loads(listed.stdout)
    assert [(r["name"], r["kind"], r["state"], r["actions"]) for r in rows] == [
        ("slow", "query", "INSUFFICIENT_DATA", "off"), ("throttles", "static", "INSUFFICIENT_DATA", "on")]
    table = run("--data", data, "alarms", "list").stdout
    assert table.splitlines()[0].split() == ["name", "kind", "state", "since", "actions", "reason"]
    assert "Unchecked: Initial alarm creation" in table

    again = run("--data", data, "alarms", "put", "--file", "-", input=orjson.dumps({**THROTTLES, "Threshold": 9}).decode())
    assert again.stderr.strip() == "updated alarm throttles (static, INSUFFICIENT_DATA)"
    history = orjson.loads(run("--data", data, "alarms", "history", "throttles", "--format", "json").stdout)
    assert [h["summary"] for h in history] == ['Alarm "throttles" updated', 'Alarm "throttles" created']
    assert history[0]["data"]["updatedAlarm"]["Threshold"] == 9

    assert run("--data", data, "alarms", "list", "--state", "ALARM", "--format", "json").stdout.strip() == "[]"
    deleted = run("--data", data, "alarms", "delete", "throttles", "slow")
    assert deleted.exit_code == 0 and deleted.stderr.strip() == "deleted throttles, slow"
    assert orjson.loads(run("--data", data, "alarms", "list", "--format", "json").stdout) == []


def test_mistakes_exit_with_the_reason(data, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({**THROTTLES, "Period": 45}))
    result = run("--data", data, "alarms", "put", "--file", str(bad))
    assert result.exit_code == 2 and "Period 45 is not a multiple of 60" in result.stderr
    bad.write_text("{not json")
    assert run("--data", data, "alarms", "put", "--file", str(bad)).exit_code == 2
    missing = run("--data", data, "alarms", "put", "--file", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
    gone = run("--data", data, "alarms", "delete", "nothing-here")
    assert gone.exit_code == 1 and "'nothing-here'" in gone.stderr


def test_alarms_put_by_the_cli_reach_a_running_server(server, tmp_path):
    spec = tmp_path / "alarm.json"
    spec.write_bytes(orjson.dumps(THROTTLES))
    assert run("--data", str(server.dashcam.data_dir), "alarms", "put", "--file", str(spec)).exit_code == 0
    client = boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x")
    assert [a["AlarmName"] for a in client.describe_alarms()["MetricAlarms"]] == ["throttles"]
    client.put_metric_alarm(**SLOW)
    names = [r["name"] for r in orjson.loads(run("--data", str(server.dashcam.data_dir), "alarms", "list",
                                                 "--format", "json").stdout)]
    assert names == ["slow", "throttles"]
