"""The AWS CLI (``awscli`` from PyPI) running ``aws logs ...`` against dashcam over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson

from dashcam.simulate.sample_logs import SampleSpec, generate_records

GROUP = "/aws/bedrock/modelinvocations"


def aws(server, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """``aws logs ARGS --endpoint-url <dashcam>`` with dummy credentials and no user configuration."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-checked",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    command = [sys.executable, "-m", "awscli", "logs", *args, "--endpoint-url", server.url, "--output", "json"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_aws_cli_start_query_and_get_query_results(server, tmp_path):
    records = list(generate_records(SampleSpec(records=200, seed=3)))
    server.dashcam.store.write_records(GROUP, "aws/bedrock/modelinvocations", records, source="bedrock-log")
    created = aws(server, tmp_path, "create-log-group", "--log-group-name", "/cli/made")
    assert created.returncode == 0, created.stderr
    listed = orjson.loads(aws(server, tmp_path, "describe-log-groups").stdout)
    assert [g["logGroupName"] for g in listed["logGroups"]] == [GROUP, "/cli/made"]

    started = aws(server, tmp_path, "start-query", "--log-group-name", GROUP,
                  "--start-time", "0", "--end-time", str(int(time.time())),
                  "--query-string", "stats count(*) as requests, sum(throttled) as throttles by operation "
                                    "| sort operation asc")
    assert started.returncode == 0, started.stderr
    query_id = orjson.loads(started.stdout)["queryId"]
    deadline = time.monotonic() + 30
    while True:
        polled = aws(server, tmp_path, "get-query-results", "--query-id", query_id)
        assert polled.returncode == 0, polled.stderr
        response = orjson.loads(polled.stdout)
        if response["status"] == "Complete":
            break
        assert response["status"] in ("Scheduled", "Running") and time.monotonic() < deadline
        time.sleep(0.1)
    operations = sorted({r["operation"] for r in records})
    expected = [[{"field": "operation", "value": op},
                 {"field": "requests", "value": str(sum(r["operation"] == op for r in records))},
                 {"field": "throttles", "value": str(sum(r["operation"] == op and r.get("errorCode") ==
                                                         "ThrottlingException" for r in records))}]
                for op in operations]
    assert response["results"] == expected
    assert response["statistics"]["recordsScanned"] == len(records)


def test_aws_cli_reports_a_malformed_query_with_its_position(server, tmp_path):
    server.dashcam.store.create_log_group(GROUP)
    failed = aws(server, tmp_path, "start-query", "--log-group-name", GROUP, "--start-time", "0",
                 "--end-time", "10", "--query-string", "filter modelId = | stats count(*)")
    assert failed.returncode != 0
    assert "MalformedQueryException" in failed.stderr and "line 1, column" in failed.stderr
