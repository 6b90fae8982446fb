"""OTLP trace mapping in worker processes (dashcam.api.otlp_workers), in the receiver and alone."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import psutil
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import dashcam.api.otlp as otlp_api
from dashcam.api import otlp_workers
from dashcam.api.otlp_decode import JSON, OtlpError
from dashcam.api.otlp_workers import JoinNotes, configured_workers, map_export
from dashcam.api.pipe_workers import WorkerLost
from dashcam.errors import ConfigError
from dashcam.service import Dashcam
from dashcam.sources.otlp import JoinBuffer
from dashcam.sources.otlp_content import Content
from tests.conftest import RunningServer, serve_in_subprocess

NOW_NS = 1_772_445_600_000_000_000  # 2026-03-02T10:00:00Z
TRACE = "5B8EFFF798038103D269B633813FC60C"
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 8, "gen_ai.usage.output_tokens": 2}
WITH_CONTENT = {**CHAT, "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "Hi?"}]}]',
                "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "text", "content": "Hello."}],'
                                          ' "finish_reason": "stop"}]'}
FIELDS = "fields spanId, app, input.inputBodyJson.messages.0.content.0.text as prompt, " \
         "output.outputBodyJson.output.message.content.0.text as answer | sort spanId asc"


def span(span_id: str, attrs: dict, *, trace_id: str = TRACE) -> dict:
    def value(v):
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}

    return {"traceId": trace_id, "spanId": span_id, "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + 250_000_000),
            "attributes": [{"key": k, "value": value(v)} for k, v in attrs.items()], "status": {}}


def resource_spans(service: str, *spans: dict) -> dict:
    return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "hand.built"}, "spans": list(spans)}]}


def content_logs(service: str, span_id: str, answer: str) -> dict:
    body = {"kvlistValue": {"values": [{"key": "message", "value": {"kvlistValue": {"values": [
        {"key": "content", "value": {"stringValue": answer}}]}}}]}}
    return {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": service}}]}, "scopeLogs": [{"logRecords": [
            {"timeUnixNano": str(NOW_NS), "eventName": "gen_ai.choice", "traceId": TRACE, "spanId": span_id,
             "body": body, "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}]}]}]}]}


def rows(server, group: str) -> list[dict]:
    return server.dashcam.query(FIELDS, log_groups=[group]).rows


def stats(server) -> dict:
    return httpx.get(f"{server.url}/api/v1/otlp/stats").json()["data"]


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("value", "cores", "expected"), [
    ("", 2, 2), ("", 3, 3), ("", 16, 4), ("", 1, 0), ("", None, 0), ("0", 2, 0), ("3", 1, 3), (" 2 ", 8, 2)])
def test_the_number_of_workers_comes_from_the_environment_or_the_cores(monkeypatch, value, cores, expected):
    monkeypatch.setenv("DASHCAM_OTLP_WORKERS", value)
    monkeypatch.setattr(otlp_workers.os, "cpu_count", lambda: cores)
    assert configured_workers() == expected


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "65"])
def test_a_bad_number_of_workers_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("DASHCAM_OTLP_WORKERS", value)
    with pytest.raises(ConfigError, match=f"DASHCAM_OTLP_WORKERS={value!r}"):
        configured_workers()


# --------------------------------------------------------------------------- the worker's side


def test_a_worker_maps_the_services_that_need_no_join_and_hands_back_the_others():
    export = {"resourceSpans": [
        resource_spans("plain-app", span("00000000000000A1", WITH_CONTENT), span("00000000000000A2", CHAT)),
        resource_spans("content-app", span("00000000000000B1", CHAT)),
    ]}
    raw = json_format.MessageToJson(ExportTraceServiceRequest()).encode()  # the encoding's empty message
    assert len(map_export(raw, "identity", JSON, frozenset()).rows) == 0

    body = _json_body(export)
    mapped = map_export(body, "identity", JSON, frozenset({"content-app"}))
    assert (mapped.result.spans, len(mapped.rows)) == (2, 2)
    assert mapped.rows.columns()[1] == ["/dashcam/otlp/plain-app"] * 2
    # Only the span without content is noted: content may follow it.
    assert [(note[0][16:].hex(), note[3], note[6], note[7]) for note in mapped.notes] == [
        ("00000000000000a2", "plain-app", False, False)]
    handed_back = ExportTraceServiceRequest.FromString(mapped.deferred)
    assert [s.span_id.hex() for rs in handed_back.resource_spans for ss in rs.scope_spans for s in ss.spans] == [
        "00000000000000b1"]

    everything = map_export(body, "identity", JSON, frozenset({"another-app"}))
    assert (everything.result.spans, everything.deferred) == (3, None)


def test_undecodable_input_in_a_worker_is_the_same_otlp_error_after_crossing_processes():
    import pickle

    with pytest.raises(OtlpError) as raised:
        map_export(b"\x0a\xff\xff", "identity", "protobuf", frozenset())
    crossed = pickle.loads(pickle.dumps(raised.value))
    assert (type(crossed), crossed.status, str(crossed)) == (OtlpError, 400, str(raised.value))
    assert "not a valid protobuf" in str(crossed)


def test_join_notes_stand_in_for_an_empty_join_buffer():
    notes = JoinNotes()
    assert notes.take(b"k") is None and not notes.has_output(b"k") and not notes.sends_content("app")


def answer(text: str) -> Content:
    return Content(output=[{"role": "assistant", "content": [{"text": text}]}], answered=True)


def test_content_that_arrived_while_its_span_was_in_a_worker_is_written_as_late_content():
    join = JoinBuffer()
    key_waiting, key_complete, key_quiet = b"T" * 16 + b"1" * 8, b"T" * 16 + b"2" * 8, b"T" * 16 + b"3" * 8
    for key in (key_waiting, key_complete):
        join.add(key, answer("late answer"), log_group="/g", log_stream="s", app="app", provider="openai",
                 ts_nano=NOW_NS)
    late = join.written_elsewhere([
        (key_waiting, "/g", "s", "app", "openai", "2026-03-02T10:00:00.000Z", True, False),
        (key_complete, "/g", "s", "app", "openai", "2026-03-02T10:00:00.000Z", True, True),
        (key_quiet, "/g", "s", "app", "openai", "2026-03-02T10:00:00.000Z", True, False),
    ])
    assert [(group, record["spanId"], "input" in record, record["output"]["outputBodyJson"]["output"]["message"]
             ["content"]) for group, _, record in late] == [("/g", "31" * 8, False, [{"text": "late answer"}])]
    assert len(join) == 0  # the complete span's copy was redundant: dropped, not left to expire
    # The noted spans are remembered: content that comes after them is recognised as late.
    outcome, record = join.add(key_quiet, answer("later"), log_group="/g", log_stream="s", app="app",
                               provider="openai", ts_nano=NOW_NS)
    assert outcome == "late" and record[2]["spanId"] == "33" * 8


# --------------------------------------------------------------------------- in the receiver


@pytest.fixture
def one_worker(monkeypatch):
    monkeypatch.setenv("DASHCAM_OTLP_WORKERS", "1")


def _json_body(export: dict) -> bytes:
    import json

    return json.dumps(export).encode()


def post_traces(server, export: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/traces", content=_json_body(export),
                      headers={"content-type": "application/json"}, timeout=60)


def test_spans_are_mapped_in_a_worker_and_content_senders_in_the_server(server, one_worker):
    # content-app sends content log records: its span waits in the server for its answer.
    httpx.post(f"{server.url}/v1/logs", json=content_logs("content-app", "00000000000000B1", "Joined answer."))
    export = {"resourceSpans": [
        resource_spans("plain-app", span("00000000000000A1", WITH_CONTENT), span("00000000000000A2", CHAT)),
        resource_spans("content-app", span("00000000000000B1", CHAT)),
    ]}
    response = post_traces(server, export)
    assert response.status_code == 200, response.text
    counters = stats(server)
    assert (counters["spans_received"], counters["spans_mapped_in_workers"], counters["records_written"]) == (3, 2, 3)
    assert rows(server, "/dashcam/otlp/plain-app") == [
        {"spanId": "00000000000000a1", "app": "plain-app", "prompt": "Hi?", "answer": "Hello."},
        {"spanId": "00000000000000a2", "app": "plain-app", "prompt": None, "answer": None}]
    assert rows(server, "/dashcam/otlp/content-app") == [
        {"spanId": "00000000000000b1", "app": "content-app", "prompt": None, "answer": "Joined answer."}]

    # Content after a span mapped in the worker is recognised as late, not held for a span that came.
    late = httpx.post(f"{server.url}/v1/logs", json=content_logs("plain-app", "00000000000000A2", "Late answer."))
    assert late.status_code == 200 and stats(server)["content_events_late"] == 1
    assert sorted((r["spanId"], r["answer"] or "") for r in rows(server, "/dashcam/otlp/plain-app")) == [
        ("00000000000000a1", "Hello."), ("00000000000000a2", ""), ("00000000000000a2", "Late answer.")]


def test_bad_input_mapped_in_a_worker_is_a_400_and_the_worker_keeps_working(server, one_worker):
    bad = httpx.post(f"{server.url}/v1/traces", content=b"\x0a\xff\xff",
                     headers={"content-type": "application/x-protobuf"})
    assert bad.status_code == 400
    assert post_traces(server, {"resourceSpans": [resource_spans("app", span("00000000000000C1", CHAT))]}).status_code == 200
    assert stats(server)["spans_mapped_in_workers"] == 1 and len(rows(server, "/dashcam/otlp/app")) == 1


def test_a_worker_that_dies_is_replaced(server, one_worker):
    export = {"resourceSpans": [resource_spans("app", span("00000000000000D1", CHAT))]}
    assert post_traces(server, export).status_code == 200
    pool = server.app.state.otlp.pool
    dead = list(pool._processes)
    for process in [psutil.Process(worker.pid) for worker in dead]:
        process.kill()
        process.wait(10)
    deadline = time.monotonic() + 10
    while not all(worker.lost for worker in dead):
        assert time.monotonic() < deadline, "the pool did not notice its worker died"
        time.sleep(0.01)
    for span_id in ("00000000000000D2", "00000000000000D3"):
        assert post_traces(server, {"resourceSpans": [resource_spans("app", span(span_id, CHAT))]}).status_code == 200
    assert [r["spanId"] for r in rows(server, "/dashcam/otlp/app")] == [
        "00000000000000d1", "00000000000000d2", "00000000000000d3"]
    assert stats(server)["spans_mapped_in_workers"] == 3
    assert {worker.pid for worker in pool._processes}.isdisjoint(worker.pid for worker in dead)


def test_the_mapping_worker_of_dashcam_serve_loads_neither_arrow_nor_duckdb(tmp_path):
    process, url = serve_in_subprocess(tmp_path / "data", env={"DASHCAM_OTLP_WORKERS": "1"})
    try:
        export = {"resourceSpans": [resource_spans("app", span("00000000000000D5", CHAT))]}
        response = httpx.post(f"{url}/v1/traces", content=_json_body(export),
                              headers={"content-type": "application/json"}, timeout=60)
        assert response.status_code == 200
        assert httpx.get(f"{url}/api/v1/otlp/stats").json()["data"]["spans_mapped_in_workers"] == 1
        server = psutil.Process(process.pid)
        (worker,) = server.children()  # and no resource tracker beside it
        libraries = {m.path for m in worker.memory_maps()}
        assert any("google" in path or "protobuf" in path or "upb" in path for path in libraries)
        assert [path for path in libraries if any(name in path for name in ("pyarrow", "numpy", "duckdb"))] == []
        assert any("duckdb" in m.path for m in server.memory_maps())  # the check sees what the server has
    finally:
        process.kill()
        process.wait(10)


def test_a_worker_that_cannot_start_is_not_started_again_for_every_export(monkeypatch):
    import asyncio

    started = []

    class Counted(otlp_workers.WorkerProcess):
        def __init__(self, target):
            super().__init__(target)
            started.append(self)

    monkeypatch.setattr(otlp_workers, "WorkerProcess", Counted)
    pool = otlp_workers.MappingPool(1)
    pool.target = "dashcam.api.no_such_module:map_export"  # the worker fails as it starts
    body = _json_body({"resourceSpans": [resource_spans("app", span("00000000000000D6", CHAT))]})
    try:
        for _ in range(3):
            with pytest.raises(WorkerLost):
                asyncio.run(pool.map(body, "identity", JSON, frozenset()))
        assert len(started) == 1
        monkeypatch.setattr(otlp_workers, "RESTART_AFTER_SECONDS", 0)
        pool._start_after = 0.0  # the wait is over: a worker that can start is started
        pool.target = "dashcam.api.otlp_workers:map_export"
        mapped = asyncio.run(pool.map(body, "identity", JSON, frozenset()))
        assert (len(started), mapped.result.spans, len(mapped.rows)) == (2, 1, 1)
    finally:
        pool.close()


def test_an_export_whose_worker_dies_under_it_is_mapped_in_the_server(server, one_worker, monkeypatch):
    async def died(*args):
        raise WorkerLost()

    monkeypatch.setattr(otlp_api.receiver_of(server.app).pool, "map", died)
    export = {"resourceSpans": [resource_spans("app", span("00000000000000D4", WITH_CONTENT))]}
    assert post_traces(server, export).status_code == 200
    assert "spans_mapped_in_workers" not in stats(server)
    assert rows(server, "/dashcam/otlp/app") == [
        {"spanId": "00000000000000d4", "app": "app", "prompt": "Hi?", "answer": "Hello."}]


def test_the_same_records_with_and_without_workers(tmp_path, monkeypatch):

    export = {"resourceSpans": [
        resource_spans("app", span("00000000000000E1", WITH_CONTENT), span("00000000000000E2", CHAT)),
        resource_spans("other", span("00000000000000E3", WITH_CONTENT, trace_id="AB" * 16))]}
    stored = {}
    for workers in ("0", "1"):
        monkeypatch.setenv("DASHCAM_OTLP_WORKERS", workers)
        running = RunningServer(tmp_path / workers)
        try:
            assert post_traces(running, export).status_code == 200
            assert stats(running).get("spans_mapped_in_workers", 0) == 3 * int(workers)
            stored[workers] = sorted(
                r["@message"] for r in running.dashcam.query("fields @message", limit=100).rows)
        finally:
            running.stop()
    assert len(stored["0"]) == 3 and stored["0"] == stored["1"]


def test_kill_9_of_the_server_ends_its_workers_and_keeps_acknowledged_spans(tmp_path):
    data = tmp_path / "data"
    process, url = serve_in_subprocess(data, env={"DASHCAM_OTLP_WORKERS": "1"})
    acknowledged: list[int] = []
    stop = threading.Event()

    def sender() -> None:
        n = 1  # span ids are not all zero
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                spans = [span(f"{n + i:016X}", CHAT) for i in range(50)]
                try:
                    response = client.post(f"{url}/v1/traces", json={"resourceSpans": [resource_spans("app", *spans)]})
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acknowledged.append(n)
                n += 50

    thread = threading.Thread(target=sender)
    thread.start()
    deadline = time.monotonic() + 30
    while not psutil.Process(process.pid).children() or len(acknowledged) < 3:
        assert time.monotonic() < deadline, "no mapping worker started"
        time.sleep(0.1)
    workers = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    stop.set()
    thread.join(10)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [], "mapping workers outlived their server"
    with Dashcam.open(data) as dashcam:
        stored = {row["spanId"] for row in dashcam.query("fields spanId", limit=100_000).rows}
    assert [n for n in acknowledged if f"{n:016x}" not in stored or f"{n + 49:016x}" not in stored] == []



def test_an_export_is_mapped_in_the_server_when_the_workers_are_full_and_its_thread_is_free(server, one_worker,
                                                                                             monkeypatch):
    monkeypatch.setattr(otlp_workers, "QUEUED_PER_WORKER", 0)  # the workers have no room
    export = {"resourceSpans": [resource_spans("app", span("00000000000000F1", WITH_CONTENT))]}
    assert post_traces(server, export).status_code == 200
    assert "spans_mapped_in_workers" not in stats(server)
    server.app.state.otlp.mapping_here = 1  # ... and the server's mapping thread is taken
    second = {"resourceSpans": [resource_spans("app", span("00000000000000F2", WITH_CONTENT))]}
    assert post_traces(server, second).status_code == 200
    assert stats(server)["spans_mapped_in_workers"] == 1
    assert [r["answer"] for r in rows(server, "/dashcam/otlp/app")] == ["Hello.", "Hello."]
