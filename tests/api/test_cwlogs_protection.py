"""Put/Get/DeleteDataProtectionPolicy with the real boto3 ``logs`` client, and what a policy then
does to PutLogEvents; only admin keys may set or remove a policy."""

from __future__ import annotations

import time

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ARN = "arn:aws:dataprotection::aws:data-identifier/"


def logs(server, key_id: str = "AKIDEXAMPLE", secret: str = "x"):
    return boto3.client("logs", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def document(*identifiers: str, custom: dict | None = None, dashcam: dict | None = None) -> str:
    statements = [
        {"Sid": "audit", "DataIdentifier": list(identifiers), "Operation": {"Audit": {"FindingsDestination": {}}}},
        {"Sid": "redact", "DataIdentifier": list(identifiers), "Operation": {"Deidentify": {"MaskConfig": {}}}},
    ]
    configuration: dict = {}
    if custom:
        configuration["CustomDataIdentifier"] = [{"Name": k, "Regex": v} for k, v in custom.items()]
    if dashcam:
        configuration["dashcam"] = dashcam
    return orjson.dumps({"Name": "p", "Version": "2021-06-01", "Statement": statements,
                         "Configuration": configuration}).decode()


def code(call, **kwargs) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"]


def test_a_policy_put_with_boto3_masks_the_events_put_after_it(server):
    client = logs(server)
    client.create_log_group(logGroupName="/app")
    client.create_log_stream(logGroupName="/app", logStreamName="s")
    assert client.get_data_protection_policy(logGroupIdentifier="/app").get("policyDocument") is None
    put = client.put_data_protection_policy(
        logGroupIdentifier="/app", policyDocument=document(ARN + "EmailAddress", "TicketId", custom={"TicketId": r"TCK-\d{5}"}))
    assert put["lastUpdatedTime"] > 0
    got = client.get_data_protection_policy(logGroupIdentifier="arn:aws:logs:us-east-1:000000000000:log-group:/app")
    statement = next(s for s in orjson.loads(got["policyDocument"])["Statement"] if "Deidentify" in s["Operation"])
    assert statement["DataIdentifier"] == [ARN + "EmailAddress", "TicketId"]
    now = int(time.time() * 1000)
    client.put_log_events(logGroupName="/app", logStreamName="s", logEvents=[
        {"timestamp": now, "message": "ticket TCK-12345 from lee@example.com"}])
    events = client.get_log_events(logGroupName="/app", logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["ticket **** from ****"]

    client.delete_data_protection_policy(logGroupIdentifier="/app")
    assert code(client.delete_data_protection_policy, logGroupIdentifier="/app") == "ResourceNotFoundException"
    client.put_log_events(logGroupName="/app", logStreamName="s", logEvents=[
        {"timestamp": now + 1, "message": "ticket TCK-54321 from lee@example.com"}])
    events = client.get_log_events(logGroupName="/app", logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["ticket **** from ****", "ticket TCK-54321 from lee@example.com"]


def test_documents_dashcam_cannot_apply_and_missing_groups_are_refused(server):
    client = logs(server)
    client.create_log_group(logGroupName="/app")
    assert code(client.put_data_protection_policy, logGroupIdentifier="/none",
                policyDocument=document(ARN + "EmailAddress")) == "ResourceNotFoundException"
    assert code(client.put_data_protection_policy, logGroupIdentifier="/app",
                policyDocument=document(ARN + "DriversLicense-US")) == "InvalidParameterException"
    assert code(client.put_data_protection_policy, logGroupIdentifier="/app",
                policyDocument="{}") == "InvalidParameterException"
    assert code(client.get_data_protection_policy, logGroupIdentifier="/none") == "ResourceNotFoundException"


def test_dashcam_extras_in_the_document_switch_bodies_off(server):
    client = logs(server)
    client.create_log_group(logGroupName="/app")
    client.create_log_stream(logGroupName="/app", logStreamName="s")
    client.put_data_protection_policy(logGroupIdentifier="/app", policyDocument=document(
        dashcam={"textDataDeliveryEnabled": False}))
    record = {"timestamp": "2026-03-02T10:00:00Z", "operation": "Converse", "modelId": "m",
              "input": {"inputTokenCount": 7, "inputBodyJson": {"messages": []}},
              "output": {"outputTokenCount": 2, "outputBodyJson": {"metrics": {"latencyMs": 42}}}}
    client.put_log_events(logGroupName="/app", logStreamName="s", logEvents=[
        {"timestamp": int(time.time() * 1000), "message": orjson.dumps(record).decode()}])
    stored = orjson.loads(client.get_log_events(logGroupName="/app", logStreamName="s")["events"][0]["message"])
    assert stored["input"] == {"inputTokenCount": 7} and stored["latencyMs"] == 42
    assert server.dashcam.query("fields latencyMs, input.inputTokenCount").rows == [
        {"latencyMs": 42, "input.inputTokenCount": 7}]


def test_only_admin_keys_set_or_remove_policies(secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    as_admin, as_reader = logs(secured_server, admin.key_id, admin.secret), logs(secured_server, reader.key_id, reader.secret)
    as_admin.create_log_group(logGroupName="/app")
    assert code(as_reader.put_data_protection_policy, logGroupIdentifier="/app",
                policyDocument=document(ARN + "EmailAddress")) == "AccessDeniedException"
    as_admin.put_data_protection_policy(logGroupIdentifier="/app", policyDocument=document(ARN + "EmailAddress"))
    assert "policyDocument" in as_reader.get_data_protection_policy(logGroupIdentifier="/app")
    assert code(as_reader.delete_data_protection_policy, logGroupIdentifier="/app") == "AccessDeniedException"
    as_admin.delete_data_protection_policy(logGroupIdentifier="/app")
