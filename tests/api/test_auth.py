"""Keys over real HTTP: SigV4 from the real boto3 client, bearer tokens, roles that cannot exceed themselves."""

from __future__ import annotations

import time

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError


def _logs(server, access_key: str, secret: str):
    return boto3.client("logs", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=access_key, aws_secret_access_key=secret)


def test_boto3_signed_with_an_issued_pair_is_let_in_and_a_wrong_secret_is_not(secured_server):
    admin = secured_server.keys.create("admin")
    logs = _logs(secured_server, admin.key_id, admin.secret)
    logs.create_log_group(logGroupName="/app/x")
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/app/x"]
    with pytest.raises(ClientError) as wrong:
        _logs(secured_server, admin.key_id, "not-the-secret").describe_log_groups()
    assert wrong.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as unknown:
        _logs(secured_server, "AKIAUNKNOWN", "whatever").describe_log_groups()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_read_key_cannot_write_and_an_ingest_key_cannot_read(secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    ingester = secured_server.keys.create("ingest", log_groups="/app/*")
    _logs(secured_server, admin.key_id, admin.secret).create_log_group(logGroupName="/app/x")
    writer = _logs(secured_server, ingester.key_id, ingester.secret)
    writer.create_log_stream(logGroupName="/app/x", logStreamName="s")
    event = {"timestamp": int(time.time() * 1000), "message": "hello"}
    writer.put_log_events(logGroupName="/app/x", logStreamName="s", logEvents=[event])
    with pytest.raises(ClientError) as outside:
        writer.create_log_group(logGroupName="/other")
    assert outside.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as cannot_read:
        writer.get_log_events(logGroupName="/app/x", logStreamName="s")
    assert cannot_read.value.response["Error"]["Code"] == "AccessDeniedException"
    read = _logs(secured_server, reader.key_id, reader.secret)
    assert [e["message"] for e in read.get_log_events(logGroupName="/app/x", logStreamName="s")["events"]] == ["hello"]
    with pytest.raises(ClientError) as cannot_write:
        read.put_log_events(logGroupName="/app/x", logStreamName="s", logEvents=[event])
    assert cannot_write.value.response["Error"]["Code"] == "AccessDeniedException"


def test_the_native_api_wants_a_bearer_key_once_keys_exist(secured_server):
    reader = secured_server.keys.create("read")
    assert httpx.get(f"{secured_server.url}/api/v1/log-groups").status_code == 401
    assert httpx.get(f"{secured_server.url}/api/v1/log-groups",
                     headers={"authorization": "Bearer dk_X.y"}).status_code == 401
    ok = httpx.get(f"{secured_server.url}/api/v1/log-groups", headers={"authorization": f"Bearer {reader.bearer}"})
    assert ok.status_code == 200 and ok.json() == {"data": []}
    assert httpx.get(f"{secured_server.url}/healthz").status_code == 200  # health needs no key


def test_otlp_exports_need_an_ingest_key_once_keys_exist(secured_server):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    body = ExportTraceServiceRequest().SerializeToString()
    headers = {"content-type": "application/x-protobuf"}
    reader = secured_server.keys.create("read")
    assert httpx.post(f"{secured_server.url}/v1/traces", content=body, headers=headers).status_code == 401
    denied = httpx.post(f"{secured_server.url}/v1/traces", content=body,
                        headers={**headers, "authorization": f"Bearer {reader.bearer}"})
    assert denied.status_code == 403
    ingester = secured_server.keys.create("ingest")
    accepted = httpx.post(f"{secured_server.url}/v1/traces", content=body,
                          headers={**headers, "authorization": f"Bearer {ingester.bearer}"})
    assert accepted.status_code == 200
