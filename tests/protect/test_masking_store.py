"""Masked values never reach the store: events sent through several ingest paths (file import,
``POST /api/v1/records``, boto3 ``PutLogEvents``) into protected log groups, then every file of
the data directory read as raw bytes and every column of every table read back — the originals
must be nowhere, while a harmless marker sent alongside them is (so the raw check can see text).
On both engines, the store decorator masks ``write_raw`` and ``write_batch`` alike."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import duckdb
import httpx
import orjson
import pyarrow as pa
import pytest
from botocore.config import Config

from dashcam.protect import Policy, ProtectedStore, Protection
from dashcam.query.compiler import parse_ptr
from dashcam.store.batch import EventBatchBuilder, RawBatchBuilder
from dashcam.records import stable_event_id

ALL_DETECTORS = ("email", "phone", "credit-card", "aws-access-key", "aws-secret-key", "ip-address", "bearer-token")
MARKER = "HarmlessControlMarker"


def _luhn_complete(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str(-total % 10)


CARD = _luhn_complete("453957876362148")
SENSITIVE = {
    "email": "zed.sensitive@example.com",
    "card": CARD,
    "access key": "AKIAZSENSITIVEKEY234",
    "secret": "Zq8sEnSiTiVe/SeCrEtKeYvAlUe0123456789+ab",
    "phone": "+1 415 555 2671",
    "ip": "198.51.100.77",
    "token": "tok3nSENSITIVE0123456789abc",
}


def sensitive_record(n: int) -> dict:
    """An invocation record with every kind of sensitive value, in the body and in a hot field."""
    text = (f"{MARKER} #{n}: mail {SENSITIVE['email']}, card {SENSITIVE['card']}, key {SENSITIVE['access key']},"
            f" aws_secret_access_key={SENSITIVE['secret']}, phone {SENSITIVE['phone']}, from {SENSITIVE['ip']},"
            f" header Authorization: Bearer {SENSITIVE['token']}")
    return {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60 - n)),
        "operation": "Converse", "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0",
        "requestMetadata": {"userId": SENSITIVE["email"], "session": f"s{n}"},
        "input": {"inputTokenCount": 40 + n, "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": text}]}]}},
        "output": {"outputTokenCount": 9, "outputBodyJson": {"stopReason": "end_turn", "metrics": {"latencyMs": 500 + n}}},
    }


def assert_nowhere(data_dir: Path, *, expect_marker: bool = True) -> None:
    seen_marker = False
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        for kind, value in SENSITIVE.items():
            assert value.encode() not in raw, f"{kind} {value!r} found in {path.name}"
        seen_marker |= MARKER.encode() in raw
    assert seen_marker or not expect_marker, "the raw check cannot see stored text at all"


# The raw check reads the embedded store's files in the data directory (ClickHouse compresses
# its parts, so no raw check could see stored text there): DuckDB whatever DASHCAM_STORE says.
@pytest.mark.usefixtures("embedded_store")
def test_originals_never_reach_the_store_through_any_ingest_path(server, tmp_path):
    protection = server.dashcam.protection
    for group in ("/import", "/api", "/cw"):
        protection.policies.put(Policy(group, detectors=ALL_DETECTORS, keep_original=True))
    records = [sensitive_record(n) for n in range(3)]

    # 1. A file import (raw lines, normalized in the engine).
    logs = tmp_path / "bedrock.jsonl"
    logs.write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    assert server.dashcam.import_logs([logs], log_group="/import").written == 3
    # 2. The native API.
    posted = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "/api"}, json=records)
    assert posted.json()["data"]["written"] == 3
    # 3. CloudWatch PutLogEvents: invocation records and a plain line (events with typed columns).
    client = boto3.client("logs", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
    client.create_log_group(logGroupName="/cw")
    client.create_log_stream(logGroupName="/cw", logStreamName="s")
    now = int(time.time() * 1000)
    events = [{"timestamp": now - 3000 + i, "message": orjson.dumps(r).decode()} for i, r in enumerate(records)]
    events.append({"timestamp": now, "message": f"{MARKER} plain line from {SENSITIVE['ip']} for {SENSITIVE['email']}"})
    client.put_log_events(logGroupName="/cw", logStreamName="s", logEvents=events)

    rows = server.dashcam.query("fields @log, @message, userId, input.inputTokenCount, latencyMs | sort @log").rows
    assert len(rows) == 10
    for row in rows:
        assert "****" in row["@message"]
        assert not any(value in row["@message"] for value in SENSITIVE.values())
    assert {r["userId"] for r in rows if r["input.inputTokenCount"] is not None} == {"****"}
    assert sorted(r["latencyMs"] for r in rows if r["@log"] == "/api") == [500, 501, 502]

    assert_nowhere(server.dashcam.data_dir)  # while serving: the write-ahead log holds the inserts
    counts = protection.stats.masked_counts()
    assert counts[("/api", "email")] == 6 and counts[("/cw", "ip-address")] == 4  # body + userId; 3 + plain line
    ptrs = server.dashcam.query("fields @ptr", log_groups=["/cw"]).rows
    originals = {}
    for ptr in (r["@ptr"] for r in ptrs):
        group, event_id = parse_ptr(ptr)
        originals.update(protection.unmask(group, [event_id]))
    assert sorted(originals.values()) == sorted(e["message"] for e in events)

    server.stop()  # checkpoints the store into its file, where message is zstd-compressed:
    assert_nowhere(server.dashcam.data_dir, expect_marker=False)  # raw bytes then prove less, so
    database = server.dashcam.data_dir / "dashcam.duckdb"  # ... every value of every table is read back too
    with duckdb.connect(str(database), read_only=True) as con:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            for row in con.execute(f'SELECT * FROM "{table}"').fetchall():
                text = orjson.dumps([str(v) for v in row]).decode()
                assert not any(value in text for value in SENSITIVE.values()), (table, text)


def test_without_a_policy_events_are_stored_byte_for_byte(server):
    record = sensitive_record(0)
    line = orjson.dumps(record)
    httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "/open"}, content=line,
               headers={"content-type": "application/x-ndjson"})
    assert server.dashcam.query("fields @message").rows == [{"@message": line.decode()}]
    assert server.dashcam.protection.stats.masked_counts() == {}


def _raw_batch(group: str, lines: list[bytes]) -> pa.Table:
    builder = RawBatchBuilder()
    builder.extend(group, "s", pa.array(lines, pa.binary()), [stable_event_id(group, line) for line in lines], "test", 1)
    return builder.build()[0]


def test_both_engines_store_only_masked_text_whichever_write_is_used(store_of, tmp_path):
    protection = Protection(tmp_path / "data")
    protection.policies.put(Policy("/p", detectors=ALL_DETECTORS, keep_original=True))
    store = ProtectedStore(store_of(), protection)
    records = [sensitive_record(n) for n in range(4)]
    raw = store.write_raw(_raw_batch("/p", [orjson.dumps(r) for r in records[:2]]), source="bedrock-log")
    assert (raw.written, raw.rejected) == (2, [])
    builder = EventBatchBuilder()
    for record in records[2:]:
        builder.add_record("/p", "s", record, source="api")
    assert store.write_batch(builder.build()).written == 2
    rows = store.execute("SELECT * FROM events")
    assert len(rows) == 4
    for row in rows:
        text = orjson.dumps([str(v) for v in row]).decode()
        assert not any(value in text for value in SENSITIVE.values()), text
        assert MARKER in text
    assert sorted(store.execute("SELECT user_id, input_tokens, latency_ms FROM events")) == [
        ("****", 40 + n, 500.0 + n) for n in range(4)]
    assert protection.vault.count() == 4
    assert_nowhere(tmp_path / "data", expect_marker=False)  # the side files hold ciphertext only
    protection.close()
