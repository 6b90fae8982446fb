"""Where archive files go: a local directory, or an S3 prefix through boto3.

Both take whole files by key (``log_group=.../date=.../part-N.parquet``), confirm a write before
returning (a local file is read back; S3 checks the body against its Content-MD5 and the object
is then looked up), and translate failures into :class:`~dashcam.errors.StoreError`. S3 uses
boto3's standard credential chain; ``AWS_ENDPOINT_URL_S3`` points it at an S3-compatible server.
"""

from __future__ import annotations

import base64
import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dashcam.errors import StoreError


class Destination(ABC):
    """A place that holds archive files by key."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` durably; StoreError unless it is confirmed stored intact."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is already gone)."""

    def local_path(self, key: str) -> Path | None:
        """A path the store's engine (DuckDB, chDB) can read the file at directly, when there is one."""
        return None


class LocalDestination(Destination):
    """Files under a directory (``root/log_group=.../date=.../part-N.parquet``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            if hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(data).digest():
                raise StoreError(f"archive file {path} does not read back as written")
        except OSError as exc:
            raise StoreError(f"cannot write archive file {path}: {exc}") from None

    def get(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read archive file {self.root / key}: {exc}") from None

    def delete(self, key: str) -> None:
        path = self.root / key
        try:
            path.unlink(missing_ok=True)
            for parent in (path.parent, path.parent.parent):  # empty date=, then log_group= directories
                if parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                    parent.rmdir()
        except OSError as exc:
            raise StoreError(f"cannot delete archive file {path}: {exc}") from None

    def local_path(self, key: str) -> Path:
        return self.root / key


class S3Destination(Destination):
    """Objects under ``s3://bucket/prefix/``."""

    def __init__(self, url: str, client: Any = None) -> None:
        bucket, _, prefix = url[len("s3://"):].partition("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = url
        self._client = client

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use."""
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def http_base(self) -> str:
        """The path-style HTTP(S) URL of the prefix at the endpoint boto3 talks to (the region's,
        or ``AWS_ENDPOINT_URL_S3``), percent-encoded and ending in ``/``: a key appended
        percent-encoded names an object for ClickHouse's ``s3()``."""
        prefix = f"{quote(self.prefix, safe='/')}/" if self.prefix else ""
        return f"{self.client.meta.endpoint_url.rstrip('/')}/{quote(self.bucket, safe='')}/{prefix}"

    def credentials(self) -> tuple[str, str, str | None] | None:
        """(access key id, secret key, session token or None) from boto3's credential chain,
        the ones this destination writes with; None when the chain finds none."""
        import boto3

        found = boto3.Session().get_credentials()
        if found is None:
            return None
        frozen = found.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - S3's own integrity check
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentMD5=md5)
            stored = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"cannot write s3://{self.bucket}/{self._key(key)}: {exc}") from None
        if stored.get("ContentLength") != len(data):
            raise StoreError(f"s3://{self.bucket}/{self._key(key)} holds {stored.get('ContentLength')} bytes, "
                             f"not the {len(data)} written")

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{self._key(key)}: {exc}") from None

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"cannot delete s3://{self.bucket}/{self._key(key)}: {exc}") from None


def open_destination(location: str, *, s3_client: Any = None) -> Destination:
    """The destination a setting names: ``s3://bucket/prefix`` or a local directory."""
    if location.startswith("s3://"):
        return S3Destination(location, s3_client)
    return LocalDestination(location)
