"""The bounded queue, the batcher and the senders, against a real dashcam server and real stores."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import orjson

from dashcam.capture.attempt import Attempt
from dashcam.capture.bedrock_records import describe_converse
from dashcam.capture.settings import resolve
from dashcam.capture.shipper import MAX_RETRY_WAIT, HttpSender, LocalSender, Shipper, retry_after_seconds
from dashcam.service import Dashcam


def finished_attempt(text: str = "hello", output_tokens: int = 7) -> Attempt:
    """A finished Converse attempt, as the botocore hooks leave it."""
    started = time.perf_counter()
    attempt = Attempt("aws.bedrock", "Converse", describe_converse, time.time(), started, {"app": "shipper-test"})
    attempt.model_id = "amazon.nova-lite-v1:0"
    attempt.request_id = str(uuid.uuid4())
    attempt.status = 200
    attempt.request = orjson.dumps({"messages": [{"role": "user", "content": [{"text": text}]}]})
    attempt.response = orjson.dumps({
        "output": {"message": {"role": "assistant", "content": [{"text": "answer"}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": output_tokens, "totalTokens": 3 + output_tokens},
        "metrics": {"latencyMs": 12}})
    attempt.ended = started + 0.012
    attempt.done = True
    return attempt


def stored(dashcam_like, log_group: str = "/dashcam/capture") -> list[dict]:
    return dashcam_like.query("fields requestId, source, output.outputTokenCount, app | sort @timestamp asc",
                              log_groups=[log_group]).rows


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_batches_reach_the_server_with_an_ingest_key(secured_server):
    key = secured_server.keys.create("ingest")
    settings = resolve(url=secured_server.url, key=key.bearer, batch_size=4, flush_interval=0.01)
    shipper = Shipper(settings)
    attempts = [finished_attempt(f"text {i}", output_tokens=i) for i in range(10)]
    for attempt in attempts:
        shipper.submit(attempt)
    assert shipper.flush(10)
    rows = stored(secured_server.dashcam)
    assert sorted(r["requestId"] for r in rows) == sorted(a.request_id for a in attempts)
    assert sum(r["output.outputTokenCount"] for r in rows) == sum(range(10))
    assert {(r["source"], r["app"]) for r in rows} == {("sdk", "shipper-test")}
    stats = shipper.stats()
    assert (stats.captured, stats.sent, stats.dropped, stats.pending, stats.failed) == (10, 10, 0, 0, 0)
    shipper.close()


def test_a_wrong_key_is_not_retried_and_the_batch_is_dropped(secured_server):
    shipper = Shipper(resolve(url=secured_server.url, key="dk_nope.nope", flush_interval=0.01))
    shipper.submit(finished_attempt())
    assert shipper.flush(10)
    stats = shipper.stats()
    assert (stats.sent, stats.dropped, stats.failed) == (0, 1, 1)
    assert "HTTP 401" in stats.last_error
    shipper.close()


def test_an_overloaded_server_is_retried_after_the_time_it_asks(secured_server):
    key = secured_server.keys.create("ingest")
    gate = secured_server.app.state.write_gate
    gate.limit = 0  # every write is refused with 503 and Retry-After, as under overload
    shipper = Shipper(resolve(url=secured_server.url, key=key.bearer, flush_interval=0.01))
    attempt = finished_attempt()
    shipper.submit(attempt)
    wait_for(lambda: shipper.stats().failed >= 1)
    gate.limit = 8
    assert shipper.flush(10)
    stats = shipper.stats()
    assert (stats.sent, stats.dropped) == (1, 0) and stats.failed >= 1 and "HTTP 503" in stats.last_error
    assert [r["requestId"] for r in stored(secured_server.dashcam)] == [attempt.request_id]
    shipper.close()


def test_a_full_queue_drops_and_counts_without_waiting(secured_server):
    key = secured_server.keys.create("ingest")
    # A long interval and a big batch: the batcher leaves the queue alone until asked to flush.
    shipper = Shipper(resolve(url=secured_server.url, key=key.bearer, queue_size=3, flush_interval=60))
    for _ in range(10):
        shipper.submit(finished_attempt())
    stats = shipper.stats()
    assert (stats.captured, stats.queue_full, stats.dropped, stats.pending) == (10, 7, 7, 3)
    assert shipper.flush(10)
    stats = shipper.stats()
    assert (stats.captured, stats.sent, stats.dropped, stats.pending) == (10, 3, 7, 0)
    assert len(stored(secured_server.dashcam)) == 3
    shipper.close()


def test_with_the_server_down_records_are_dropped_after_retries_and_close_is_bounded():
    settings = resolve(url="http://127.0.0.1:9", send_attempts=2, flush_interval=0.01, exit_timeout=0.5)
    shipper = Shipper(settings)
    for _ in range(5):
        shipper.submit(finished_attempt())
    shipper.close()
    stats = shipper.stats()
    assert stats.captured == stats.dropped == 5 and stats.sent == 0 and stats.pending == 0
    assert "ConnectError" in stats.last_error
    shipper.submit(finished_attempt())  # after close: dropped, never queued
    assert shipper.stats().dropped == 6


def test_a_record_that_cannot_be_built_is_counted_and_the_rest_are_sent(server):
    shipper = Shipper(resolve(url=server.url, flush_interval=0.01))
    broken = finished_attempt()
    broken.response = b"{not json"  # decoded leniently: still a record
    broken.describe = lambda attempt: 1 / 0  # a describe bug
    good = finished_attempt()
    shipper.submit(broken)
    shipper.submit(good)
    assert shipper.flush(10)
    stats = shipper.stats()
    assert (stats.captured, stats.sent, stats.dropped, stats.errors) == (2, 1, 1, 1)
    assert [r["requestId"] for r in stored(server.dashcam)] == [good.request_id]
    shipper.close()


def test_local_sender_writes_into_a_data_directory(tmp_path):
    data = tmp_path / "data"
    shipper = Shipper(resolve(data_dir=str(data), flush_interval=0.01))
    attempts = [finished_attempt(f"local {i}") for i in range(3)]
    for attempt in attempts:
        shipper.submit(attempt)
    assert shipper.flush(30)
    shipper.close()
    with Dashcam.open(data) as local:
        rows = stored(local)
    assert sorted(r["requestId"] for r in rows) == sorted(a.request_id for a in attempts)
    assert {r["source"] for r in rows} == {"sdk"}


def test_local_sender_goes_through_the_server_that_owns_the_directory(tmp_path, server):
    data = tmp_path / "owned"
    data.mkdir()
    (data / "server.json").write_bytes(orjson.dumps({"url": server.url, "token": "local-token", "pid": 1}))
    shipper = Shipper(resolve(data_dir=str(data), flush_interval=0.01))
    attempt = finished_attempt()
    shipper.submit(attempt)
    assert shipper.flush(10)
    shipper.close()
    assert [r["requestId"] for r in stored(server.dashcam)] == [attempt.request_id]
    assert not (data / "dashcam.duckdb").exists()


def test_a_stale_server_file_falls_back_to_the_store(tmp_path):
    data = tmp_path / "stale"
    data.mkdir()
    (data / "server.json").write_bytes(orjson.dumps({"url": "http://127.0.0.1:9", "token": "t", "pid": 1}))
    sender = LocalSender(resolve(data_dir=str(data), send_attempts=1))
    delivery = sender.send([{"schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
                             "timestamp": "2026-03-02T10:00:00.000Z", "operation": "Converse",
                             "modelId": "m", "requestId": "stale-1", "source": "sdk"}], time.monotonic() + 5)
    sender.close()
    assert (delivery.sent, delivery.lost) == (1, 0)
    with Dashcam.open(data) as local:
        assert [r["requestId"] for r in stored(local)] == ["stale-1"]


def test_submit_never_blocks_while_a_delivery_hangs():
    # A server that accepts connections and never answers: the batcher waits on it, submitters do not.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    shipper = Shipper(resolve(url=f"http://127.0.0.1:{port}", send_timeout=30, send_attempts=1,
                              flush_interval=0.01, queue_size=50, exit_timeout=0.2))
    shipper.submit(finished_attempt())
    listener.settimeout(10)
    connection, _ = listener.accept()  # the batch is on its way, and will wait for an answer
    submitted = threading.Event()

    def submit_many() -> None:
        for _ in range(100):
            shipper.submit(finished_attempt())
        submitted.set()

    threading.Thread(target=submit_many, daemon=True).start()
    assert submitted.wait(10)
    stats = shipper.stats()
    assert (stats.captured, stats.queue_full) == (101, 50)
    shipper.close()
    connection.close()
    listener.close()


def test_retry_after_forms():
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("1000000") == MAX_RETRY_WAIT
    soon = datetime.now(timezone.utc) + timedelta(seconds=20)
    assert 18 <= retry_after_seconds(format_datetime(soon, usegmt=True)) <= 20
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_http_sender_gives_up_at_the_deadline(secured_server):
    key = secured_server.keys.create("ingest")
    secured_server.app.state.write_gate.limit = 0
    sender = HttpSender(resolve(url=secured_server.url, key=key.bearer, send_attempts=5))
    delivery = sender.send([{"timestamp": "2026-03-02T10:00:00Z"}], time.monotonic() + 0.1)
    sender.close()
    # The server asks for a 1 s wait; with 0.1 s left the sender stops after the first refusal.
    assert (delivery.sent, delivery.lost) == (0, 1) and "HTTP 503" in delivery.error


def test_before_send_rewrites_or_drops_records_before_they_leave(server):
    def before_send(record: dict) -> dict | None:
        if record["output"]["outputTokenCount"] % 2:
            return None  # odd ones dropped
        record["requestMetadata"]["reviewed"] = "yes"
        return record

    settings = resolve(url=server.url, batch_size=3, flush_interval=0.01, before_send=before_send)
    shipper = Shipper(settings)
    for i in range(6):
        shipper.submit(finished_attempt(f"text {i}", output_tokens=i))
    assert shipper.flush(10)
    rows = server.dashcam.query("fields output.outputTokenCount as n, requestMetadata.reviewed as r | sort n asc",
                                log_groups=["/dashcam/capture"]).rows
    assert [(r["n"], r["r"]) for r in rows] == [(0, "yes"), (2, "yes"), (4, "yes")]
    stats = shipper.stats()
    assert (stats.sent, stats.dropped) == (3, 3)
    shipper.close(5)


def test_before_send_must_be_a_function():
    import pytest

    from dashcam.errors import ConfigError

    with pytest.raises(ConfigError, match="before_send"):
        resolve(before_send="not callable")
