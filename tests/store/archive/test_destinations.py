"""Archives in S3 (boto3 against moto's S3 server on 127.0.0.1) and encrypted archives, on both
store engines: queries stay transparent, only the days a query reaches are fetched, and an
encrypted file is unreadable without its key. A ClickHouse server reads S3 archives itself with
``s3()`` and refuses the archives it cannot read."""

from __future__ import annotations

import base64
import os
import shutil
import socket

import boto3
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from dashcam.errors import ConfigError, StoreError
from dashcam.service import Dashcam
from dashcam.store.archive import archive_once, configure
from dashcam.store.archive.clickhouse import ClickHouseArchiveEngine
from dashcam.store.archive.config import KEY_ENV
from dashcam.store.archive.manifest import DAY_MS

from .test_archiver import APP, BEDROCK, NOW, START_MS, answers, data_dir  # noqa: F401 (data_dir: the fixture)

BUCKET = "acme-dashcam-archive"


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


@pytest.fixture
def s3(monkeypatch, endpoint, tmp_path):
    """Test credentials only, the endpoint through AWS_ENDPOINT_URL_S3, and a fresh bucket."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
                        "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_S3": endpoint}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def bucket_keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_s3_archive_answers_queries_fetching_only_the_days_asked(data_dir, s3, tmp_path):
    configure(data_dir, hot_days=2, destination=f"s3://{BUCKET}/dashcam/prod")
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        run = archive_once(dashcam.store, NOW)
        assert bucket_keys(s3) == sorted(f"dashcam/prod/{key}" for key in run.files) and len(run.files) == 4
        body = s3.get_object(Bucket=BUCKET, Key=f"dashcam/prod/{run.files[0]}")["Body"].read()
        (tmp_path / "one.parquet").write_bytes(body)
        assert pq.read_table(tmp_path / "one.parquet").num_rows > 0

    shutil.rmtree(data_dir / "archive-cache")      # a fresh machine: nothing downloaded yet
    with Dashcam.open(data_dir) as dashcam:
        day_two = dict(log_groups=[APP], start_ms=START_MS + DAY_MS, end_ms=START_MS + 2 * DAY_MS - 1)
        dashcam.query("stats count(*)", **day_two)
        cached = [p.relative_to(data_dir / "archive-cache").as_posix() for p in (data_dir / "archive-cache").rglob("*.parquet")]
        assert [c.split("/", 1)[1] for c in cached] == ["log_group=%2Fapp%2Fit%27s-another/date=2026-03-02/part-0.parquet"]
        assert answers(dashcam) == before
        dashcam.store.set_retention(BEDROCK, 3)
        dashcam.store.delete_expired(NOW + 2 * DAY_MS)  # bedrock's days 1 and 2 are past 3 days
        assert [k for k in bucket_keys(s3) if "bedrock" in k] == []


def test_encrypted_archives_need_their_key(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "archive.key"
    configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"), key_file=str(key_file))
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        run = archive_once(dashcam.store, NOW)
        assert answers(dashcam) == before

    files = sorted((tmp_path / "archive").rglob("*.parquet"))
    assert len(files) == len(run.files) == 4
    for path in files:
        assert not path.read_bytes().startswith(b"PAR1")
        with pytest.raises(Exception):
            pq.read_table(path)

    shutil.rmtree(data_dir / "archive-cache")      # no plaintext left on this machine
    monkeypatch.setenv(KEY_ENV, base64.b64encode(os.urandom(32)).decode())
    with Dashcam.open(data_dir) as dashcam, pytest.raises(StoreError, match="cannot be decrypted"):
        dashcam.query("stats count(*)")
    monkeypatch.delenv(KEY_ENV)
    with Dashcam.open(data_dir) as dashcam:
        assert answers(dashcam) == before          # the key file's key reads them


def test_a_moved_encrypted_file_is_refused(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"), key_file=str(tmp_path / "k"))
    with Dashcam.open(data_dir) as dashcam:
        run = archive_once(dashcam.store, NOW)
    first, second = (tmp_path / "archive" / key for key in run.files[:2])
    first.write_bytes(second.read_bytes())         # the path is authenticated with the content
    shutil.rmtree(data_dir / "archive-cache")
    with Dashcam.open(data_dir) as dashcam, pytest.raises(StoreError, match="cannot be decrypted"):
        dashcam.query("stats count(*)")


def test_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="hot window"):
        configure(tmp_path, hot_days=0, destination=str(tmp_path))
    with pytest.raises(ConfigError, match="s3://bucket"):
        configure(tmp_path, hot_days=3, destination="gs://bucket/x")
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(ConfigError, match="256-bit key"):
        configure(tmp_path, hot_days=3, destination=str(tmp_path), key_file=str(tmp_path / "bad.key"))


@pytest.fixture
def as_server(monkeypatch):
    """The ClickHouse store archives as a server does: reading S3 itself with ``s3()``, never
    this machine's files. There is no ClickHouse server here; chDB runs the same engine and the
    same SQL, and only which machine sends the S3 requests differs."""
    monkeypatch.setattr(ClickHouseArchiveEngine, "server_side", property(lambda self: True))


@pytest.mark.parametrize("engine", ["clickhouse"])
def test_a_clickhouse_server_reads_s3_archives_itself(data_dir, s3, as_server):
    configure(data_dir, hot_days=2, destination=f"s3://{BUCKET}/dashcam/prod")
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        total = dashcam.store.inner.execute("SELECT count() FROM events")[0][0]
        run = archive_once(dashcam.store, NOW)
        assert len(run.files) == 4 and run.rows_deleted == run.rows_archived > 0
        assert dashcam.store.inner.execute("SELECT count() FROM events")[0][0] == total - run.rows_archived
        assert not list((data_dir / "archive-cache").rglob("*.parquet"))   # nothing kept or fetched here
        assert answers(dashcam) == before
        assert not list((data_dir / "archive-cache").rglob("*.parquet"))
        dashcam.store.set_retention(BEDROCK, 3)
        dashcam.store.delete_expired(NOW + 2 * DAY_MS)
        assert [k for k in bucket_keys(s3) if "bedrock" in k] == []


@pytest.mark.parametrize("engine", ["clickhouse"])
def test_a_clickhouse_server_refuses_archives_it_cannot_read(data_dir, s3, tmp_path, as_server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with Dashcam.open(data_dir) as dashcam:
        total = dashcam.store.inner.execute("SELECT count() FROM events")[0][0]
        configure(data_dir, hot_days=2, destination=str(tmp_path / "archive"))
        with pytest.raises(ConfigError, match="cannot see this machine's directory"):
            archive_once(dashcam.store, NOW)
        configure(data_dir, hot_days=2, destination=f"s3://{BUCKET}/x", key_file=str(tmp_path / "k"))
        with pytest.raises(ConfigError, match="decrypted only into dashcam's local cache"):
            archive_once(dashcam.store, NOW)
        assert dashcam.store.inner.execute("SELECT count() FROM events")[0][0] == total
    assert bucket_keys(s3) == [] and not (tmp_path / "archive").exists()


@pytest.mark.parametrize("engine", ["clickhouse"])
def test_a_file_the_server_cannot_read_is_never_listed(data_dir, s3, as_server, monkeypatch):
    from dashcam.store.archive.destination import S3Destination

    configure(data_dir, hot_days=2, destination=f"s3://{BUCKET}/dashcam")
    with Dashcam.open(data_dir) as dashcam:
        before = answers(dashcam)
        total = dashcam.store.inner.execute("SELECT count() FROM events")[0][0]
        with monkeypatch.context() as patched:   # the server looks in a bucket that is not there
            patched.setattr(S3Destination, "http_base", lambda self: f"{s3.meta.endpoint_url}/no-such-bucket/")
            with pytest.raises(StoreError, match="ClickHouse cannot read the archive file"):
                archive_once(dashcam.store, NOW)
        assert dashcam.archive.manifest.files == ()
        assert dashcam.store.inner.execute("SELECT count() FROM events")[0][0] == total
        assert answers(dashcam) == before
        run = archive_once(dashcam.store, NOW)                # readable again: archived, orphan overwritten
        assert len(run.files) == 4 and len(bucket_keys(s3)) == 4
        assert answers(dashcam) == before
