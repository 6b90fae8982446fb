"""Importing Bedrock invocation logs straight from S3 (``s3://bucket/prefix``), through boto3
against moto's S3 server running on 127.0.0.1 — the same HTTP path a real bucket takes.
"""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from dashcam.cli import main
from dashcam.errors import SourceError
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, generate_records, write_bedrock_layout

BUCKET = "acme-bedrock-logs"
PREFIX = "bedrock/prod"
ACCT = "123456789012"
SPEC = SampleSpec(records=3000, hours=3, seed=5)
LOGS_ROOT = f"{PREFIX}/AWSLogs/{ACCT}/BedrockModelInvocationLogs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, endpoint, tmp_path):
    """Test credentials only, and no shared config or profile from the machine."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)


@pytest.fixture(scope="module")
def uploaded(endpoint, tmp_path_factory):
    """A generated sample uploaded in Bedrock's layout, plus what Bedrock puts next to it."""
    local = tmp_path_factory.mktemp("s3-sample")
    summary = write_bedrock_layout(SPEC, local)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    keys = {}
    for path in sorted(local.rglob("*.json.gz")):
        key = f"{PREFIX}/{path.relative_to(local).as_posix()}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        keys[key] = path.stat().st_size
    first_hour = next(iter(keys)).rsplit("/", 1)[0]
    # An offloaded body (not a record: reading it would report a problem), a permission-check
    # marker, and records under another prefix that must not be imported.
    s3.put_object(Bucket=BUCKET, Key=f"{first_hour}/data/0b3f1c2e-aaaa-4bbb-8ccc-123456789abc_input.json.gz",
                  Body=gzip.compress(b'{"messages": [{"role": "user", "content": [{"text": "long"}]}]}\n'))
    s3.put_object(Bucket=BUCKET, Key=f"{first_hour}/data/0b3f1c2e-aaaa-4bbb-8ccc-123456789abc_output.json.gz",
                  Body=gzip.compress(b'{"output": {"message": {}}}\n'))
    s3.put_object(Bucket=BUCKET, Key=f"{LOGS_ROOT}/amazon-bedrock-logs-permission-check", Body=b"")
    s3.put_object(Bucket=BUCKET, Key=f"{LOGS_ROOT}/permission-check.json.gz", Body=gzip.compress(b"check\n"))
    s3.put_object(Bucket=BUCKET, Key=f"{LOGS_ROOT}/README.txt", Body=b"not a log")
    one = (Path(__file__).parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl").read_bytes()
    s3.put_object(Bucket=BUCKET, Key=f"staging/AWSLogs/{ACCT}/BedrockModelInvocationLogs/x.jsonl", Body=one)
    assert summary.records == SPEC.records
    return {"keys": keys, "files": summary.files}


def test_s3_prefix_imports_exactly_the_records(uploaded, tmp_path, progress_recorder):
    recorder = progress_recorder
    with Dashcam.open(tmp_path / "data") as dc:
        summary = dc.import_logs([f"s3://{BUCKET}/{PREFIX}"], progress=recorder)
        assert summary.problems == []
        assert summary.files == uploaded["files"] == len(uploaded["keys"])
        assert (summary.records, summary.written, summary.duplicates) == (SPEC.records, SPEC.records, 0)
        assert recorder.starts == [(len(uploaded["keys"]), sum(uploaded["keys"].values()))]
        assert sum(recorder.advances) == sum(uploaded["keys"].values())
        rows = dc.query("stats count(*) as n, count_distinct(requestId) as ids, sum(throttled) as t").rows
        expected = list(generate_records(SPEC))
        throttles = sum(1 for r in expected if r.get("errorCode") == "ThrottlingException")
        assert rows == [{"n": SPEC.records, "ids": SPEC.records, "t": throttles}]
        first = expected[0]
        got = dc.query(f'filter requestId = "{first["requestId"]}" | fields timestamp, @timestamp, modelId').rows
        assert got == [{"timestamp": first["timestamp"],
                        "@timestamp": first["timestamp"].replace("T", " ").replace("Z", ".000"),
                        "modelId": first["modelId"]}]
        # importing again stores nothing twice
        again = dc.import_logs([f"s3://{BUCKET}/{PREFIX}/"])
        assert (again.written, again.duplicates) == (0, SPEC.records)


def test_s3_listing_skips_data_permission_check_and_foreign_keys(uploaded):
    from dashcam.sources.bedrock_logs import find_log_objects

    objects = find_log_objects([f"s3://{BUCKET}/{PREFIX}"])
    assert {o.location: o.size for o in objects} == {f"s3://{BUCKET}/{k}": size for k, size in uploaded["keys"].items()}
    assert [o.location for o in objects] == sorted(o.location for o in objects)


def test_s3_client_can_be_passed_explicitly(uploaded, endpoint, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    hour_key = next(iter(uploaded["keys"]))
    with Dashcam.open(tmp_path / "data") as dc:
        summary = dc.import_logs([f"s3://{BUCKET}/{hour_key}"], s3_client=client)
        assert summary.files == 1 and summary.problems == []
        assert summary.written == dc.query("stats count(*) as n").rows[0]["n"] > 0


def test_cli_imports_from_s3_with_the_endpoint_from_the_environment(uploaded, endpoint, tmp_path):
    runner = CliRunner()
    data = str(tmp_path / "data")
    result = runner.invoke(main, ["--data", data, "import", "--log-group", "prod", f"s3://{BUCKET}/{PREFIX}"],
                           env={"AWS_ENDPOINT_URL_S3": endpoint})
    assert result.exit_code == 0, result.stderr
    assert f"{SPEC.records:,} new records into prod" in result.stderr
    assert f"from {uploaded['files']} files" in result.stderr
    assert "0 malformed lines skipped" in result.stderr
    query = runner.invoke(main, ["--data", data, "query", "--log-group", "prod", "--format", "json",
                                 "stats count(*) as n"])
    assert query.exit_code == 0, query.stderr
    assert json.loads(query.stdout) == [{"n": SPEC.records}]


def test_a_key_prefix_named_data_is_imported(endpoint, tmp_path):
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="prefix-data-bucket")
    line = (Path(__file__).parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl").read_bytes().splitlines()[0]
    key = f"data/AWSLogs/{ACCT}/BedrockModelInvocationLogs/us-east-1/2026/03/02/14/20260302T140511Z_0a1b2c3d.json.gz"
    s3.put_object(Bucket="prefix-data-bucket", Key=key, Body=gzip.compress(line + b"\n"))
    with Dashcam.open(tmp_path / "data") as dc:
        summary = dc.import_logs(["s3://prefix-data-bucket/data/"])
    assert (summary.files, summary.written) == (1, 1)


def test_missing_bucket_is_a_source_error_naming_the_uri(tmp_path):
    uri = "s3://no-such-bucket-dashcam/AWSLogs/"
    with Dashcam.open(tmp_path / "data") as dc, pytest.raises(SourceError) as info:
        dc.import_logs([uri])
    assert uri in str(info.value)
    assert "NoSuchBucket" in str(info.value)


def test_cli_missing_bucket_exits_non_zero_naming_the_uri(tmp_path):
    uri = "s3://no-such-bucket-dashcam/logs"
    result = CliRunner().invoke(main, ["--data", str(tmp_path / "data"), "import", uri])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert f"dashcam: error: {uri}" in result.stderr
    assert "Traceback" not in result.stderr


def test_s3_uri_without_bucket_is_refused(tmp_path):
    with Dashcam.open(tmp_path / "data") as dc, pytest.raises(SourceError, match="s3://"):
        dc.import_logs(["s3:///prefix"])


