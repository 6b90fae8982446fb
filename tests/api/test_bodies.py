"""Request bodies are refused once past 64 MiB, however they arrive, and nothing stored changes."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from dashcam.api.bodies import MAX_BODY_BYTES

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"
RECORDS = "/api/v1/records"
NDJSON = {"content-type": "application/x-ndjson"}


def _count(server) -> int:
    rows = httpx.post(f"{server.url}/api/v1/query", json={"query": "stats count(*) as n"}).json()["data"]["rows"]
    return rows[0]["n"] if rows else 0


def _chunks(data: bytes, size: int = 1 << 20):
    """The body as a stream: httpx sends it chunked, without a Content-Length."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.fixture
def stored(server):
    lines = SAMPLES.read_bytes()
    assert httpx.post(f"{server.url}{RECORDS}", content=lines, headers=NDJSON).status_code == 200
    assert _count(server) == 6
    return server


@pytest.mark.parametrize("how", ["with its length", "chunked"])
def test_a_body_past_the_limit_is_a_413_and_nothing_changes(stored, how):
    line = SAMPLES.read_bytes().splitlines()[0]
    body = (line + b"\n") * (MAX_BODY_BYTES // len(line) + 10)  # every line a record, the whole too big
    content = body if how == "with its length" else _chunks(body)
    response = httpx.post(f"{stored.url}{RECORDS}", content=content, headers=NDJSON, timeout=60)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == {"code": "TooLargeError", "message": "the body is larger than 64 MiB"}
    assert _count(stored) == 6
    fine = httpx.post(f"{stored.url}{RECORDS}", params={"logGroup": "other"}, content=line, headers=NDJSON)
    assert fine.json()["data"]["written"] == 1


def test_a_gzip_body_that_inflates_past_the_limit_is_a_413(stored):
    bomb = gzip.compress(b" " * (MAX_BODY_BYTES + 1), compresslevel=1)
    response = httpx.post(f"{stored.url}{RECORDS}", content=bomb, headers={**NDJSON, "content-encoding": "gzip"})
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "the body is larger than 64 MiB once decompressed"
    assert _count(stored) == 6


def test_a_body_just_under_the_limit_is_read_whole(stored):
    line = SAMPLES.read_bytes().splitlines()[1]
    copies = MAX_BODY_BYTES // (len(line) + 1)
    body = (line + b"\n") * copies
    assert len(body) <= MAX_BODY_BYTES
    data = httpx.post(f"{stored.url}{RECORDS}", content=body, headers=NDJSON, timeout=60).json()["data"]
    assert (data["written"], data["duplicates"]) == (0, copies)  # the line was stored already: all repeats
