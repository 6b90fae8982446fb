"""dashcam's own JSON API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import orjson

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"


def test_health_and_readiness(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}


def test_ingest_a_json_array_then_query_it(server):
    records = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]
    response = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "app"}, json=records)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"written": 6, "duplicates": 0, "rejected": []}
    again = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "app"}, json=records)
    assert again.json()["data"]["duplicates"] == 6
    query = {"query": "stats count(*) as n, sum(throttled) as t by operation | sort operation asc"}
    rows = httpx.post(f"{server.url}/api/v1/query", json=query).json()["data"]["rows"]
    assert rows == [{"operation": "Converse", "n": 2, "t": 1}, {"operation": "ConverseStream", "n": 1, "t": 0},
                    {"operation": "InvokeModel", "n": 3, "t": 0}]


def test_ingest_gzipped_ndjson_reports_bad_lines_by_position(server):
    lines = SAMPLES.read_bytes().splitlines()[:2] + [b"{not json", b'{"no": "timestamp"}']
    response = httpx.post(
        f"{server.url}/api/v1/records",
        content=gzip.compress(b"\n".join(lines)),
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
    )
    data = response.json()["data"]
    assert (data["written"], data["rejected"]) == (
        2, [{"index": 2, "reason": "not valid JSON"}, {"index": 3, "reason": "record has no 'timestamp'"}])


def test_bad_input_gets_a_clear_400_and_the_server_keeps_serving(server):
    bad_gzip = httpx.post(f"{server.url}/api/v1/records", content=b"\x1f\x8bnope",
                          headers={"content-encoding": "gzip"})
    assert bad_gzip.status_code == 400 and "gzip" in bad_gzip.json()["error"]["message"]
    not_json = httpx.post(f"{server.url}/api/v1/records", content=b"[1, 2")
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "InputError"
    bad_group = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "a b"}, json=[])
    assert bad_group.status_code == 400 and "log group name" in bad_group.json()["error"]["message"]
    bad_query = httpx.post(f"{server.url}/api/v1/query", json={"query": "stats count(*) by"})
    error = bad_query.json()["error"]
    assert bad_query.status_code == 400 and error["code"] == "QuerySyntaxError" and error["line"] == 1
    assert httpx.post(f"{server.url}/api/v1/query", json={}).status_code == 400
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_log_groups_are_listed(server):
    httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "/svc/a"},
               json=[orjson.loads(SAMPLES.read_bytes().splitlines()[0])])
    groups = httpx.get(f"{server.url}/api/v1/log-groups").json()["data"]
    assert [(g["name"], g["events"]) for g in groups] == [("/svc/a", 1)]


def test_the_openapi_schema_is_served(server):
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/api/v1/records", "/api/v1/query", "/api/v1/log-groups"} <= set(schema["paths"])


def test_when_writes_back_up_the_server_answers_503_with_retry_after(server):
    app_gate = server.app.state.write_gate  # fill it as if that many writes were stuck
    app_gate.in_flight = app_gate.limit
    try:
        refused = httpx.post(f"{server.url}/api/v1/records", json=[])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "OverloadedError"
    finally:
        app_gate.in_flight = 0
    assert httpx.post(f"{server.url}/api/v1/records", json=[]).status_code == 200


def test_concurrent_small_requests_each_get_their_own_counts(server):
    """Requests committed together (group commit) still answer for themselves: across all answers
    every distinct record is written exactly once, and each request accounts for all its lines."""
    from concurrent.futures import ThreadPoolExecutor

    from dashcam.simulate.sample_logs import SampleSpec, generate_records

    lines = [orjson.dumps(r) for r in generate_records(SampleSpec(records=300, hours=1, seed=8))]
    # 24 requests of 50 lines over a window that slides by 10: most lines are sent five times.
    bodies = [lines[i:i + 50] + [b"{bad"] for i in range(0, 240, 10)]

    def send(body):
        with httpx.Client(timeout=60) as client:
            response = client.post(f"{server.url}/api/v1/records", params={"logGroup": "/burst"},
                                   content=b"\n".join(body), headers={"content-type": "application/x-ndjson"})
            assert response.status_code == 200, response.text
            return response.json()["data"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, bodies))
    for body, answer in zip(bodies, answers):
        assert answer["written"] + answer["duplicates"] == len(body) - 1
        assert answer["rejected"] == [{"index": len(body) - 1, "reason": "not valid JSON"}]
    distinct = len({line for body in bodies for line in body[:-1]})
    assert sum(a["written"] for a in answers) == distinct
    stored = httpx.post(f"{server.url}/api/v1/query", json={"query": "stats count(*) as n", "logGroups": ["/burst"]})
    assert stored.json()["data"]["rows"] == [{"n": distinct}]
