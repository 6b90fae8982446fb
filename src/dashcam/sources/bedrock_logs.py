"""Bedrock model invocation log files -> records.

Reads what Bedrock delivers to S3 (and what people export from CloudWatch Logs): gzip or plain
JSON Lines, one ``ModelInvocationLog`` record per line, from local files, directories walked
recursively in Bedrock's S3 layout, or ``s3://bucket/prefix`` through boto3 and the standard AWS
credential chain (``AWS_ENDPOINT_URL_S3`` points it at an S3-compatible server).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from isal import isal_zlib

from dashcam.errors import SourceError
from dashcam.sources.lines import FramedLines, frame_lines

SOURCE_NAME = "bedrock-log"
LOG_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
_CHUNK = 4 << 20
_HOUR = re.compile(r"\d\d")
_HOUR_DATA = re.compile(r"/\d\d/data/")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LogObject:
    """One file or S3 object to read, with its stored (compressed) size for progress."""

    location: str
    size: int


@dataclass(frozen=True)
class Problem:
    """A line that could not be imported: where it is and why."""

    location: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.location}:{self.line}: {self.message}"


@dataclass(frozen=True)
class LineRun:
    """Consecutive lines of one log object: each a serialized ``ModelInvocationLog`` record.

    ``lines`` holds the raw bytes, without line feeds; ``first_line`` is the 1-based line number of
    its first element in ``location``.
    """

    location: str
    first_line: int
    lines: FramedLines


def find_log_objects(locations: Sequence[str | Path], *, s3_client: Any = None) -> list[LogObject]:
    """Expand files, directories and ``s3://`` prefixes into the log objects to read, sorted.

    Directories and prefixes yield files ending in ``.json``, ``.jsonl``, ``.json.gz`` or
    ``.jsonl.gz``, skipping Bedrock's ``data/`` folders (offloaded large bodies, not records) and
    its ``permission-check`` marker objects. A file named explicitly is always read.
    """
    found: list[LogObject] = []
    for location in locations:
        text = str(location)
        if text.startswith("s3://"):
            found.extend(_list_s3(text, s3_client or _s3_client()))
        else:
            found.extend(_list_local(Path(text)))
    return found


def read_bedrock_logs(
    objects: Sequence[LogObject],
    *,
    problems: list[Problem],
    progress: Callable[[int], None] | None = None,
    s3_client: Any = None,
) -> Iterator[LineRun]:
    """Yield the records of log objects as runs of raw lines, in file order.

    Records stay serialized: the store parses and normalizes them in bulk, and refuses (with
    file and line) any line that is not a record. Unreadable gzip data is reported in
    ``problems`` and the rest of that file skipped. ``progress`` receives stored bytes as they
    are consumed.
    """
    client = s3_client
    for obj in objects:
        if obj.location.startswith("s3://") and client is None:
            client = _s3_client()
        with _open(obj.location, client) as stream:
            yield from _line_runs(obj.location, stream, problems, progress)


def _line_runs(
    location: str, stream: BinaryIO, problems: list[Problem], progress: Callable[[int], None] | None
) -> Iterator[LineRun]:
    """Frame decompressed data into runs of whole lines (gzip with any number of members, or plain)."""
    chunk = _read(location, stream)
    inflater = _Gunzip() if chunk[:2] == b"\x1f\x8b" else None
    pending = b""
    next_line = 1
    first = True
    while chunk:
        if progress:
            progress(len(chunk))
        try:
            data = pending + (inflater.feed(chunk) if inflater else chunk)
        except isal_zlib.error as exc:
            problems.append(Problem(location, next_line, f"corrupt gzip data, rest of file skipped ({exc})"))
            return
        if first and data.startswith(_BOM):  # files saved by Windows tools
            data = data[len(_BOM):]
        first = False
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if cut:
            lines = frame_lines(memoryview(data)[:cut])  # a view: no copy of the chunk
            yield LineRun(location, next_line, lines)
            next_line += len(lines)
        chunk = _read(location, stream)
    if inflater is not None and not inflater.complete:
        if not inflater.produced:  # nothing came out: a gzip header over something else, or a stub
            problems.append(Problem(location, next_line, "corrupt gzip data, rest of file skipped "
                                    "(it ends before any data could be read from it)"))
        elif pending.strip():
            problems.append(Problem(location, next_line, "gzip data ends early (truncated file); this partial line skipped"))
        else:
            problems.append(Problem(location, next_line, "gzip data ends without its trailer (truncated file?); every complete line was read"))
        return
    if pending.strip():
        yield LineRun(location, next_line, frame_lines(pending))


def _read(location: str, stream: BinaryIO) -> bytes:
    try:
        return stream.read(_CHUNK)
    except OSError as exc:
        raise SourceError(f"{location}: read failed ({exc})") from None
    except Exception as exc:  # botocore/urllib3 stream errors share no base class with OSError
        raise SourceError(f"{location}: read failed ({_aws_message(exc)})") from None


class _Gunzip:
    """Incremental gunzip that continues across concatenated gzip members.

    ISA-L's inflate (``isal``) reads gzip at about twice zlib's speed, and imports spend a third of
    their reading time here.
    """

    def __init__(self) -> None:
        self._inflater = isal_zlib.decompressobj(isal_zlib.MAX_WBITS | 16)
        self.produced = 0  # bytes of output so far

    @property
    def complete(self) -> bool:
        return self._inflater.eof

    def feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            if self._inflater.eof:
                self._inflater = isal_zlib.decompressobj(isal_zlib.MAX_WBITS | 16)
            out.append(self._inflater.decompress(chunk))
            self.produced += len(out[-1])
            chunk = self._inflater.unused_data if self._inflater.eof else b""
        return b"".join(out)


def _list_local(path: Path) -> list[LogObject]:
    if path.is_file():
        return [LogObject(str(path), path.stat().st_size)]
    if not path.is_dir():
        raise SourceError(f"{path}: no such file or directory")
    found = []
    for root, dirs, files in os.walk(path):
        # Bedrock puts offloaded bodies in <hour>/data/: those are not records. A "data" folder
        # anywhere else (a key prefix, say) is walked as usual.
        hour_folder = _HOUR.fullmatch(Path(root).name) is not None
        dirs[:] = sorted(d for d in dirs if not (hour_folder and d == "data"))
        for name in sorted(files):
            if name.endswith(LOG_SUFFIXES) and "permission-check" not in name:
                full = Path(root) / name
                found.append(LogObject(str(full), full.stat().st_size))
    return found


def _list_s3(uri: str, client: Any) -> list[LogObject]:
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise SourceError(f"{uri}: no bucket name")
    found = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                name = key.rsplit("/", 1)[-1]
                if _HOUR_DATA.search(f"/{key}") or "permission-check" in key or not name.endswith(LOG_SUFFIXES):
                    continue
                found.append(LogObject(f"s3://{bucket}/{key}", int(item.get("Size", 0))))
    except Exception as exc:  # botocore raises many unrelated types; name the location instead
        raise SourceError(f"{uri}: cannot list objects ({_aws_message(exc)})") from None
    found.sort(key=lambda o: o.location)
    return found


class _open:
    """Context manager opening a local path or an S3 object as a binary stream."""

    def __init__(self, location: str, client: Any) -> None:
        self.location = location
        self.client = client
        self.stream: Any = None

    def __enter__(self) -> BinaryIO:
        try:
            if self.location.startswith("s3://"):
                bucket, _, key = self.location[len("s3://"):].partition("/")
                self.stream = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            else:
                self.stream = open(self.location, "rb")  # noqa: SIM115 - closed in __exit__
        except OSError as exc:
            raise SourceError(f"{self.location}: {exc.strerror or exc}") from None
        except Exception as exc:  # botocore's ClientError and transport errors
            raise SourceError(f"{self.location}: cannot read ({_aws_message(exc)})") from None
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


def _s3_client() -> Any:
    import boto3  # imported here: only S3 imports pay for boto3's start-up time

    return boto3.client("s3")


def _aws_message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc) or type(exc).__name__
