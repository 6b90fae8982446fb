"""``unmask: true`` on GetLogEvents / FilterLogEvents / GetLogRecord, ``unmask()`` through
StartQuery / GetQueryResults, and ``dataProtectionStatus`` in DescribeLogGroups — with the real
boto3 ``logs`` client: admins get the kept originals, readers are refused, events without an
original stay masked, and every attempt is audited."""

from __future__ import annotations

import time

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dashcam.audit import AuditLog
from dashcam.protect.policy import Policy

ARN = "arn:aws:dataprotection::aws:data-identifier/"
MAIL = "kim.private@example.com"
RECORD = {"timestamp": "2026-03-02T10:00:00Z", "operation": "Converse", "modelId": "m", "requestId": "r-1",
          "requestMetadata": {"user": MAIL}, "identity": {"arn": f"arn:aws:iam::1:user/{MAIL}"},
          "input": {"inputTokenCount": 3, "inputBodyJson": {"messages": [{"content": f"write to {MAIL}"}]}}}
PLAIN = f"ticket from {MAIL}"
CLEAN = "nothing to hide here"


def logs(server, key=None):
    key_id, secret = (key.key_id, key.secret) if key else ("AKIDEXAMPLE", "x")
    return boto3.client("logs", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def document(keep: bool) -> str:
    identifiers = [ARN + "EmailAddress"]
    return orjson.dumps({"Name": "p", "Version": "2021-06-01", "Statement": [
        {"Sid": "audit", "DataIdentifier": identifiers, "Operation": {"Audit": {"FindingsDestination": {}}}},
        {"Sid": "redact", "DataIdentifier": identifiers, "Operation": {"Deidentify": {"MaskConfig": {}}}}],
        "Configuration": {"dashcam": {"keepEncryptedOriginal": keep}}}).decode()


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def fill(client, group: str, *, keep: bool) -> int:
    """A protected group holding a record, a plain line and a line with nothing to mask; their
    timestamp."""
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="s")
    client.put_data_protection_policy(logGroupIdentifier=group, policyDocument=document(keep))
    now = int(time.time() * 1000)
    client.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": now, "message": orjson.dumps(RECORD).decode()},
        {"timestamp": now + 1, "message": PLAIN},
        {"timestamp": now + 2, "message": CLEAN}])
    return now


def messages(events) -> list:
    return [orjson.loads(m) if m.startswith("{") else m for m in (e["message"] for e in events)]


@pytest.fixture
def keyed(secured_server):
    """(admin client, reader client, server) with /app keeping originals and /drop not."""
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    as_admin = logs(secured_server, admin)
    fill(as_admin, "/app", keep=True)
    fill(as_admin, "/drop", keep=False)
    return as_admin, logs(secured_server, reader), secured_server, admin, reader


def test_get_log_events_unmasks_for_admins_only(keyed):
    as_admin, as_reader, server, admin, reader = keyed
    stored = messages(as_reader.get_log_events(logGroupName="/app", logStreamName="s", startFromHead=True)["events"])
    assert stored[0]["requestMetadata"]["user"] == "****" and stored[1] == "ticket from ****" and stored[2] == CLEAN

    unmasked = as_admin.get_log_events(logGroupName="/app", logStreamName="s", startFromHead=True, unmask=True)
    assert messages(unmasked["events"]) == [RECORD, PLAIN, CLEAN]
    backward = as_admin.get_log_events(logGroupIdentifier="/app", logStreamName="s", limit=2, unmask=True)
    assert messages(backward["events"]) == [PLAIN, CLEAN]
    # No original kept: still masked, even for an admin.
    dropped = messages(as_admin.get_log_events(logGroupName="/drop", logStreamName="s", startFromHead=True,
                                               unmask=True)["events"])
    assert dropped == stored

    code, message = error_of(as_reader.get_log_events, logGroupName="/app", logStreamName="s", unmask=True)
    assert code == "AccessDeniedException" and "unmask needs the admin role" in message and MAIL not in message
    entries = AuditLog(server.dashcam.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome, e.target, e.details["via"]) for e in entries] == [
        (admin.key_id, "ok", "/app", "GetLogEvents"), (admin.key_id, "ok", "/app", "GetLogEvents"),
        (admin.key_id, "ok", "/drop", "GetLogEvents"), (reader.key_id, "denied", "/app", "GetLogEvents")]
    assert [(e.details.get("events"), e.details.get("found")) for e in entries[:3]] == [(3, 2), (2, 1), (3, 0)]


def test_filter_log_events_matches_masked_text_and_shows_originals(keyed):
    as_admin, as_reader, server, admin, _ = keyed
    found = as_admin.filter_log_events(logGroupName="/app", filterPattern='"ticket from ****"', unmask=True)
    assert [e["message"] for e in found["events"]] == [PLAIN]
    everything = as_admin.filter_log_events(logGroupName="/app", unmask=True)["events"]
    assert messages(everything) == [RECORD, PLAIN, CLEAN] and all(e["eventId"] for e in everything)
    masked = as_reader.filter_log_events(logGroupName="/app")["events"]
    assert [e["eventId"] for e in masked] == [e["eventId"] for e in everything] and MAIL not in str(masked)
    assert error_of(as_reader.filter_log_events, logGroupName="/app", unmask=True)[0] == "AccessDeniedException"
    outcomes = [(e.outcome, e.details["via"]) for e in AuditLog(server.dashcam.data_dir).entries(action="unmask")]
    assert outcomes == [("ok", "FilterLogEvents"), ("ok", "FilterLogEvents"), ("denied", "FilterLogEvents")]


def wait_for(client, query_id: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        answer = client.get_query_results(queryId=query_id)
        if answer["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_queries_unmask_through_start_query_and_get_log_record_for_admins(keyed):
    as_admin, as_reader, server, admin, reader = keyed
    now = int(time.time())
    text = "fields unmask(@message) as original, @message, unmask(userId) as user | sort @timestamp asc"
    started = as_admin.start_query(logGroupName="/app", startTime=now - 600, endTime=now + 600, queryString=text)
    answer = wait_for(as_admin, started["queryId"])
    assert answer["status"] == "Complete"
    rows = [{f["field"]: f["value"] for f in row} for row in answer["results"]]
    assert [orjson.loads(r["original"]) if r["original"].startswith("{") else r["original"] for r in rows] == [
        RECORD, PLAIN, CLEAN]
    assert rows[0]["user"] == MAIL and MAIL not in rows[0]["@message"] and "user" not in rows[1]
    # Someone else's unmasking query: its rows hold originals, so a reader may not fetch them.
    assert error_of(as_reader.get_query_results, queryId=started["queryId"])[0] == "AccessDeniedException"
    code, message = error_of(as_reader.start_query, logGroupName="/app", startTime=now - 600, endTime=now + 600,
                             queryString=text)
    assert code == "AccessDeniedException" and "unmask needs the admin role" in message
    assert error_of(as_admin.start_query, logGroupName="/app", startTime=now - 600, endTime=now + 600,
                    queryString="filter unmask(@message) like 'x'")[0] == "MalformedQueryException"

    pointer = rows[0]["@ptr"]
    record = as_admin.get_log_record(logRecordPointer=pointer, unmask=True)["logRecord"]
    assert orjson.loads(record["@message"]) == RECORD
    assert record["requestMetadata.user"] == MAIL and record["userId"] == MAIL
    assert record["input.inputBodyJson.messages.0.content"] == f"write to {MAIL}"
    masked = as_reader.get_log_record(logRecordPointer=pointer)["logRecord"]
    assert masked["userId"] == "****" and MAIL not in str(masked)
    assert error_of(as_reader.get_log_record, logRecordPointer=pointer, unmask=True)[0] == "AccessDeniedException"

    entries = AuditLog(server.dashcam.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome, e.details["via"]) for e in entries] == [
        (admin.key_id, "ok", "query"), (reader.key_id, "denied", "query"), (admin.key_id, "ok", "GetLogRecord"),
        (reader.key_id, "denied", "GetLogRecord")]
    assert entries[0].target == "/app" and entries[0].details["found"] == 2 and entries[0].details["query"] == text


def test_an_open_server_acts_as_an_anonymous_admin(server):
    client = logs(server)
    fill(client, "/app", keep=True)
    events = client.get_log_events(logGroupName="/app", logStreamName="s", startFromHead=True, unmask=True)["events"]
    assert messages(events) == [RECORD, PLAIN, CLEAN]
    [entry] = AuditLog(server.dashcam.data_dir).entries(action="unmask")
    assert (entry.actor, entry.outcome) == ("anonymous", "ok")


def test_describe_log_groups_reports_data_protection_where_a_policy_applies(server):
    client = logs(server)
    for group in ("/app", "/plain", "/team/a"):
        client.create_log_group(logGroupName=group)
    client.put_data_protection_policy(logGroupIdentifier="/app", policyDocument=document(False))
    server.dashcam.protection.policies.put(Policy("/team/*", detectors=("email",)))
    status = {g["logGroupName"]: g.get("dataProtectionStatus") for g in client.describe_log_groups()["logGroups"]}
    assert status == {"/app": "ACTIVATED", "/plain": None, "/team/a": "ACTIVATED"}
    client.delete_data_protection_policy(logGroupIdentifier="/app")
    assert "dataProtectionStatus" not in client.describe_log_groups(logGroupNamePrefix="/app")["logGroups"][0]
