"""``dashcam dashboards list | get | put | delete``: bodies in and out unchanged, exit codes as the
CLI contract says, and the same dashboards a running server serves over the CloudWatch API."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.dashboards.repository import example_body, example_names

AWS_EXPORT = Path(__file__).parent / "dashboards" / "aws_exported_dashboard.json"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_put_get_list_delete(tmp_path):
    data = str(tmp_path / "data")
    put = run("--data", data, "dashboards", "put", "genai-prod", str(AWS_EXPORT))
    assert put.exit_code == 0, put.output
    assert "warning: /widgets/7/type" in put.stderr and "saved dashboard genai-prod" in put.stderr
    got = run("--data", data, "dashboards", "get", "genai-prod")
    assert got.stdout == AWS_EXPORT.read_text() + "\n"
    for name in example_names():
        assert run("--data", data, "dashboards", "put", name, "--example", name).exit_code == 0
    listed = json.loads(run("--data", data, "dashboards", "list", "--format", "json").stdout)
    assert [d["name"] for d in listed] == ["bedrock-logs-insights", "bedrock-overview", "genai-prod"]
    assert listed[1]["size"] == len(example_body("bedrock-overview").encode())
    only = json.loads(run("--data", data, "dashboards", "list", "--prefix", "bedrock-o", "--format", "json").stdout)
    assert [d["name"] for d in only] == ["bedrock-overview"]
    assert run("--data", data, "dashboards", "delete", "genai-prod", "bedrock-overview").exit_code == 0
    assert [d["name"] for d in json.loads(run("--data", data, "dashboards", "list", "--format", "json").stdout)] == [
        "bedrock-logs-insights"]


def test_stdin_bad_bodies_and_missing_names(tmp_path):
    data = str(tmp_path / "data")
    body = json.dumps({"widgets": [{"type": "text", "properties": {"markdown": "hi"}}]})
    assert run("--data", data, "dashboards", "put", "from-stdin", "-", input=body).exit_code == 0
    assert run("--data", data, "dashboards", "get", "from-stdin").stdout == body + "\n"
    bad = run("--data", data, "dashboards", "put", "bad", "-", input='{"widgets": [{"type": "text"}]}')
    assert bad.exit_code == 2 and "/widgets/0: 'properties' is a required property" in bad.stderr
    assert run("--data", data, "dashboards", "put", "x").exit_code == 2  # neither FILE nor --example
    assert run("--data", data, "dashboards", "put", "x", "--example", "nope").exit_code == 1
    assert run("--data", data, "dashboards", "put", "x", str(tmp_path / "missing.json")).exit_code == 1  # unreadable
    missing = run("--data", data, "dashboards", "delete", "from-stdin", "nope")
    assert missing.exit_code == 1 and "nope" in missing.stderr
    assert run("--data", data, "dashboards", "get", "from-stdin").exit_code == 0  # nothing was deleted
    assert run("--data", data, "dashboards", "get", "nope").exit_code == 1


def test_the_cli_and_a_running_server_share_the_dashboards(server):
    data = str(server.dashcam.data_dir)
    assert run("--data", data, "dashboards", "put", "overview", "--example", "bedrock-overview").exit_code == 0
    client = boto3.client("cloudwatch", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-checked")
    assert client.get_dashboard(DashboardName="overview")["DashboardBody"] == example_body("bedrock-overview")
    client.put_dashboard(DashboardName="from-boto3", DashboardBody=AWS_EXPORT.read_text())
    assert run("--data", data, "dashboards", "get", "from-boto3").stdout == AWS_EXPORT.read_text() + "\n"
