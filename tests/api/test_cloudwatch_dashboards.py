"""PutDashboard, GetDashboard, ListDashboards and DeleteDashboards with the real boto3 ``cloudwatch``
client over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dashcam.dashboards.repository import DashboardRepository, example_body

AWS_EXPORT = Path(__file__).resolve().parents[1] / "dashboards" / "aws_exported_dashboard.json"
SIMPLE = json.dumps({"widgets": [{"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": {
    "metrics": [["AWS/Bedrock", "Invocations", "ModelId", "amazon.nova-pro-v1:0"]], "stat": "Sum", "period": 300,
    "region": "us-east-1", "title": "Nova invocations"}}]})


def cloudwatch(server, key_id: str = "AKIDEXAMPLE", secret: str = "not-checked"):
    """boto3's cloudwatch client pointed at dashcam (no retries, so errors show at once)."""
    return boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def failure(call, *args, **kwargs) -> dict:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response


def test_put_get_round_trip_keeps_the_body_unchanged(server):
    client = cloudwatch(server)
    text = AWS_EXPORT.read_text()
    before = datetime.now(timezone.utc)
    answer = client.put_dashboard(DashboardName="genai-prod", DashboardBody=text)
    # Stored, with warnings for what dashcam does not draw (explorer, custom, AWS/Lambda).
    paths = {m["DataPath"] for m in answer["DashboardValidationMessages"]}
    assert {"/widgets/7/type", "/widgets/8/type", "/widgets/6/properties/metrics/0/0"} <= paths
    got = client.get_dashboard(DashboardName="genai-prod")
    assert got["DashboardBody"] == text
    assert got["DashboardName"] == "genai-prod"
    assert got["DashboardArn"] == "arn:aws:cloudwatch::000000000000:dashboard/genai-prod"
    (entry,) = client.list_dashboards()["DashboardEntries"]
    assert entry["DashboardName"] == "genai-prod" and entry["Size"] == len(text.encode())
    assert before - timedelta(seconds=1) <= entry["LastModified"] <= datetime.now(timezone.utc) + timedelta(seconds=1)
    # What boto3 stored is what the data directory holds, for the CLI and the web pages.
    assert DashboardRepository.in_directory(server.dashcam.data_dir).require("genai-prod").body == text


def test_a_clean_body_has_no_messages_and_put_replaces(server):
    client = cloudwatch(server)
    assert client.put_dashboard(DashboardName="d", DashboardBody=SIMPLE)["DashboardValidationMessages"] == []
    replacement = example_body("bedrock-overview")
    assert client.put_dashboard(DashboardName="d", DashboardBody=replacement)["DashboardValidationMessages"] == []
    assert client.get_dashboard(DashboardName="d")["DashboardBody"] == replacement


def test_invalid_bodies_are_refused_with_validation_messages(server):
    client = cloudwatch(server)
    bad = json.dumps({"widgets": [
        {"type": "text", "width": 30, "properties": {"markdown": "# too wide"}},
        {"type": "metric", "properties": {"metrics": [[".", "Invocations"]]}},
        {"type": "text", "properties": {}},
    ]})
    response = failure(client.put_dashboard, DashboardName="bad", DashboardBody=bad)
    assert response["Error"]["Code"] == "InvalidParameterInput"
    assert "3 validation errors" in response["Error"]["Message"]
    assert sorted((m["DataPath"], m["Message"]) for m in response["dashboardValidationMessages"]) == [
        ("/widgets/0/width", "30 is greater than the maximum of 24"),
        ("/widgets/1/properties/metrics/0/0", "'.' repeats the previous metric, but there is none before this row"),
        ("/widgets/2/properties", "'markdown' is a required property"),
    ]
    with pytest.raises(client.exceptions.DashboardInvalidInputError):
        client.put_dashboard(DashboardName="bad", DashboardBody="{not json")
    not_json = failure(client.put_dashboard, DashboardName="bad", DashboardBody="[1, 2]")
    assert not_json["dashboardValidationMessages"] == [
        {"DataPath": "", "Message": "The field DashboardBody must be a valid JSON object"}]
    bad_name = failure(client.put_dashboard, DashboardName="no spaces allowed", DashboardBody=SIMPLE)
    assert bad_name["Error"]["Code"] == "InvalidParameterInput" and "DashboardName" in bad_name["Error"]["Message"]
    assert client.list_dashboards()["DashboardEntries"] == []


def test_list_with_a_prefix_and_pages(server):
    client = cloudwatch(server)
    for name in ("team-a-latency", "team-a-cost", "team-b", "overview"):
        client.put_dashboard(DashboardName=name, DashboardBody=SIMPLE)
    names = [e["DashboardName"] for e in client.list_dashboards(DashboardNamePrefix="team-a")["DashboardEntries"]]
    assert names == ["team-a-cost", "team-a-latency"]
    paginated = client.get_paginator("list_dashboards").paginate().build_full_result()
    assert [e["DashboardName"] for e in paginated["DashboardEntries"]] == [
        "overview", "team-a-cost", "team-a-latency", "team-b"]
    assert client.list_dashboards(DashboardNamePrefix="zzz")["DashboardEntries"] == []
    assert failure(client.list_dashboards, NextToken="garbage")["Error"]["Code"] == "InvalidParameterValue"


def test_delete_is_all_or_nothing(server):
    client = cloudwatch(server)
    for name in ("a", "b", "c"):
        client.put_dashboard(DashboardName=name, DashboardBody=SIMPLE)
    response = failure(client.delete_dashboards, DashboardNames=["a", "missing"])
    assert response["Error"]["Code"] == "ResourceNotFound" and "missing" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert [e["DashboardName"] for e in client.list_dashboards()["DashboardEntries"]] == ["a", "b", "c"]
    client.delete_dashboards(DashboardNames=["a", "b"])
    assert [e["DashboardName"] for e in client.list_dashboards()["DashboardEntries"]] == ["c"]
    gone = failure(client.get_dashboard, DashboardName="a")
    assert gone["Error"]["Code"] == "ResourceNotFound" and gone["ResponseMetadata"]["HTTPStatusCode"] == 404
    # DashboardNotFoundError and ResourceNotFound share the code; botocore raises the class it maps it to.
    with pytest.raises(client.exceptions.from_code("ResourceNotFound")):
        client.delete_dashboards(DashboardNames=["a"])


def test_reading_needs_read_and_changing_needs_admin(secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    cloudwatch(secured_server, admin.key_id, admin.secret).put_dashboard(DashboardName="d", DashboardBody=SIMPLE)
    read = cloudwatch(secured_server, reader.key_id, reader.secret)
    assert read.get_dashboard(DashboardName="d")["DashboardBody"] == SIMPLE
    assert [e["DashboardName"] for e in read.list_dashboards()["DashboardEntries"]] == ["d"]
    for call, kwargs in ((read.put_dashboard, {"DashboardName": "e", "DashboardBody": SIMPLE}),
                         (read.delete_dashboards, {"DashboardNames": ["d"]})):
        assert failure(call, **kwargs)["Error"]["Code"] == "AccessDeniedException"
    assert [e["DashboardName"] for e in read.list_dashboards()["DashboardEntries"]] == ["d"]
