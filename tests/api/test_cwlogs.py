"""The CloudWatch Logs API, driven by the real boto3 ``logs`` client over real HTTP on 127.0.0.1."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import httpx
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dashcam.records import normalize, timestamp_ms
from dashcam.simulate.sample_logs import SampleSpec, generate_records

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"
GROUP = "/aws/bedrock/modelinvocations"
STREAM = "aws/bedrock/modelinvocations"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def logs_client(server):
    """boto3's logs client pointed at dashcam (dummy credentials; no retries, so errors show at once)."""
    return boto3.client("logs", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="not-checked", config=Config(retries={"max_attempts": 1}))


def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response["Error"]["Code"]


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for(client, query_id: str, timeout: float = 20.0) -> dict:
    """Poll GetQueryResults until the query is finished."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get_query_results(queryId=query_id)
        if response["status"] not in ("Scheduled", "Running"):
            return response
        assert time.monotonic() < deadline, "the query did not finish"
        time.sleep(0.02)


def read_stream(client, group: str, stream: str) -> list[dict]:
    """Every event of a stream, oldest first, by following nextForwardToken to the end."""
    events, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        page = client.get_log_events(logGroupName=group, logStreamName=stream, **kwargs)
        if page["nextForwardToken"] == token:
            return events
        events += page["events"]
        token = page["nextForwardToken"]


def as_rows(results: list[list[dict]]) -> list[dict]:
    return [{cell["field"]: cell["value"] for cell in row} for row in results]


def bedrock_records() -> list[dict]:
    """The fixture's six records moved to the last hour, and 300 generated over the last half hour."""
    fixture = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]
    base = datetime.now(timezone.utc) - timedelta(minutes=50)
    for i, record in enumerate(fixture):
        record["timestamp"] = (base + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    spec = SampleSpec(records=300, seed=11, start=datetime.now(timezone.utc) - timedelta(minutes=40), hours=0.5)
    return fixture + list(generate_records(spec))


def put_records(client, records: list[dict], group: str = GROUP, stream: str = STREAM) -> None:
    events = sorted(({"timestamp": timestamp_ms(r["timestamp"]), "message": orjson.dumps(r).decode()}
                     for r in records), key=lambda e: e["timestamp"])
    for start in range(0, len(events), 100):
        response = client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start:start + 100])
        assert "rejectedLogEventsInfo" not in response


@pytest.fixture
def bedrock(server):
    """A client and a log group holding Bedrock invocation records sent with PutLogEvents."""
    client = logs_client(server)
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    records = bedrock_records()
    put_records(client, records)
    return client, records


# ---------------------------------------------------------------------- groups, streams, retention


def test_log_groups_streams_and_retention(server):
    client = logs_client(server)
    for name in ("/app/b", "/app/a", "/other/c"):
        client.create_log_group(logGroupName=name, tags={"team": "x"})
    assert error_code(client.create_log_group, logGroupName="/app/a") == "ResourceAlreadyExistsException"
    assert error_code(client.create_log_group, logGroupName="bad name") == "InvalidParameterException"

    groups = client.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/app/a", "/app/b", "/other/c"]
    assert groups[0]["arn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/app/a:*"
    assert groups[0]["logGroupArn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/app/a"
    assert groups[0]["storedBytes"] == 0 and "retentionInDays" not in groups[0]
    assert [g["logGroupName"] for g in client.describe_log_groups(logGroupNamePrefix="/app/")["logGroups"]] == \
        ["/app/a", "/app/b"]
    assert [g["logGroupName"] for g in client.describe_log_groups(logGroupNamePattern="her")["logGroups"]] == \
        ["/other/c"]
    assert error_code(client.describe_log_groups, logGroupNamePrefix="/a", logGroupNamePattern="a") == \
        "InvalidParameterException"
    first = client.describe_log_groups(limit=2)
    assert len(first["logGroups"]) == 2 and first["nextToken"]
    rest = client.describe_log_groups(limit=2, nextToken=first["nextToken"])
    assert [g["logGroupName"] for g in rest["logGroups"]] == ["/other/c"] and "nextToken" not in rest
    paged = client.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 1})
    assert [g["logGroupName"] for page in paged for g in page["logGroups"]] == ["/app/a", "/app/b", "/other/c"]
    assert error_code(client.describe_log_groups, nextToken="garbage") == "InvalidParameterException"

    client.create_log_stream(logGroupName="/app/a", logStreamName="web-2")
    client.create_log_stream(logGroupName="/app/a", logStreamName="web-1")
    client.create_log_stream(logGroupName="/app/a", logStreamName="worker")
    assert error_code(client.create_log_stream, logGroupName="/app/a", logStreamName="web-1") == \
        "ResourceAlreadyExistsException"
    assert error_code(client.create_log_stream, logGroupName="/nope", logStreamName="s") == \
        "ResourceNotFoundException"
    assert error_code(client.create_log_stream, logGroupName="/app/a", logStreamName="a:b") == \
        "InvalidParameterException"
    client.put_log_events(logGroupName="/app/a", logStreamName="web-2",
                          logEvents=[{"timestamp": now_ms(), "message": "late"}])
    streams = client.describe_log_streams(logGroupName="/app/a")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["web-1", "web-2", "worker"]
    assert "lastEventTimestamp" not in streams[0] and streams[1]["lastEventTimestamp"] > 0
    assert streams[1]["arn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/app/a:log-stream:web-2"
    by_prefix = client.describe_log_streams(logGroupIdentifier="arn:aws:logs:us-east-1:000000000000:log-group:/app/a",
                                            logStreamNamePrefix="web", descending=True)
    assert [s["logStreamName"] for s in by_prefix["logStreams"]] == ["web-2", "web-1"]
    latest = client.describe_log_streams(logGroupName="/app/a", orderBy="LastEventTime", descending=True, limit=1)
    assert latest["logStreams"][0]["logStreamName"] == "web-2" and latest["nextToken"]
    assert error_code(client.describe_log_streams, logGroupName="/app/a", orderBy="LastEventTime",
                      logStreamNamePrefix="w") == "InvalidParameterException"
    assert error_code(client.describe_log_streams, logGroupName="/nope") == "ResourceNotFoundException"

    client.put_retention_policy(logGroupName="/app/a", retentionInDays=7)
    assert client.describe_log_groups(logGroupNamePrefix="/app/a")["logGroups"][0]["retentionInDays"] == 7
    assert error_code(client.put_retention_policy, logGroupName="/app/a", retentionInDays=2) == \
        "InvalidParameterException"
    assert error_code(client.put_retention_policy, logGroupName="/nope", retentionInDays=7) == \
        "ResourceNotFoundException"
    client.delete_retention_policy(logGroupName="/app/a")
    assert "retentionInDays" not in client.describe_log_groups(logGroupNamePrefix="/app/a")["logGroups"][0]

    client.delete_log_group(logGroupName="/app/a")
    assert [g["logGroupName"] for g in client.describe_log_groups()["logGroups"]] == ["/app/b", "/other/c"]
    assert error_code(client.delete_log_group, logGroupName="/app/a") == "ResourceNotFoundException"
    assert error_code(client.describe_log_streams, logGroupName="/app/a") == "ResourceNotFoundException"


# ---------------------------------------------------------------------- PutLogEvents


def test_put_log_events_follows_aws_batch_rules(server):
    client = logs_client(server)
    client.create_log_group(logGroupName="g")
    client.create_log_stream(logGroupName="g", logStreamName="s")
    now = now_ms()

    def put(events, stream="s", group="g"):
        return client.put_log_events(logGroupName=group, logStreamName=stream,
                                     logEvents=[{"timestamp": t, "message": m} for t, m in events])

    old = put([(now - 14 * DAY_MS - 2 * HOUR_MS, "old-1"), (now - 14 * DAY_MS - HOUR_MS, "old-2"),
               (now - 14 * DAY_MS + HOUR_MS, "ok-1")])
    assert old["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    new = put([(now, "ok-2"), (now + HOUR_MS, "ok-3"), (now + 3 * HOUR_MS, "new-1"), (now + 4 * HOUR_MS, "new-2")])
    assert new["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 2}
    assert "rejectedLogEventsInfo" not in put([(now + 1, "ok-4"), (now + 1, "ok-4")])  # the same text twice

    client.create_log_group(logGroupName="short")
    client.create_log_stream(logGroupName="short", logStreamName="s")
    client.put_retention_policy(logGroupName="short", retentionInDays=1)
    expired = put([(now - 36 * HOUR_MS, "exp-1"), (now - 30 * HOUR_MS, "exp-2"), (now - 20 * HOUR_MS, "ok-5")],
                  group="short")
    assert expired["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}

    refused = {
        "out of order": [(now, "a"), (now - 1, "b")],
        "over 24 hours": [(now - 25 * HOUR_MS, "a"), (now, "b")],
        "over 1 MB": [(now, "x" * 600_000), (now, "y" * 600_000)],
    }
    for events in refused.values():
        assert error_code(put, events) == "InvalidParameterException"
    assert error_code(put, [(now, "a")], stream="missing") == "ResourceNotFoundException"
    assert error_code(put, [(now, "a")], group="missing") == "ResourceNotFoundException"

    # Exactly at the limit is fine: 1,048,576 bytes counting 26 per event.
    at_limit = put([(now - 1, "z" * (1_048_576 - 2 * 26 - 1)), (now + 2, "w")])
    assert "rejectedLogEventsInfo" not in at_limit

    # A retried batch is not stored twice.
    put([(now + 3, "retried")])
    put([(now + 3, "retried")])
    stored = [e["message"] for e in read_stream(client, "g", "s")]
    assert [m if len(m) < 100 else "big" for m in stored] == \
        ["ok-1", "big", "ok-2", "ok-4", "ok-4", "w", "retried", "ok-3"]  # by time (each time distinct)
    assert [e["message"] for e in read_stream(client, "short", "s")] == ["ok-5"]


def test_bedrock_records_sent_with_put_log_events_get_their_typed_fields(bedrock, server):
    client, records = bedrock
    end = int(time.time()) + 60
    query = ("stats count(*) as n, sum(throttled) as throttles, sum(input.inputTokenCount) as tokens "
             "by modelId | sort modelId asc")
    started = client.start_query(logGroupName=GROUP, startTime=end - 7200, endTime=end, queryString=query)
    response = wait_for(client, started["queryId"])
    assert response["status"] == "Complete"
    expected = Counter(r["modelId"] for r in records)
    throttles = Counter(r["modelId"] for r in records if r.get("errorCode") == "ThrottlingException")
    tokens: dict[str, int] = {}
    for r in records:
        count = (r.get("input") or {}).get("inputTokenCount")
        if count is not None:
            tokens[r["modelId"]] = tokens.get(r["modelId"], 0) + count
    rows = as_rows(response["results"])
    # A sum over no values is missing, and missing values are left out of a row, as in CloudWatch.
    assert rows == [{"modelId": m, "n": str(expected[m]), "throttles": str(throttles[m]),
                     **({"tokens": str(tokens[m])} if m in tokens else {})} for m in sorted(expected)]
    assert all(isinstance(v, str) for row in response["results"] for cell in row for v in cell.values())
    stats = response["statistics"]
    assert stats["recordsScanned"] == stats["recordsMatched"] == len(records)
    assert stats["bytesScanned"] > 0 and stats["logGroupsScanned"] == 1
    # The hot columns were filled from the records: the derived field is there to filter on.
    assert server.dashcam.query("filter source = 'cwlogs' | stats count(*) as n").rows == [{"n": len(records)}]


def test_start_query_get_query_results_and_get_log_record(bedrock):
    client, records = bedrock
    end = int(time.time()) + 60
    slowest = client.start_query(
        logGroupNames=[GROUP], startTime=end - 7200, endTime=end, limit=5,
        queryString="fields @timestamp, modelId, latencyMs\n| filter ispresent(latencyMs)\n| sort latencyMs desc")
    response = wait_for(client, slowest["queryId"])
    rows = as_rows(response["results"])
    assert len(rows) == 5 and [list(r) for r in rows] == [["@timestamp", "modelId", "latencyMs", "@ptr"]] * 5
    derived = [normalize(copy.deepcopy(r), source="test")["latencyMs"] for r in records]
    latencies = sorted((v for v in derived if v is not None), reverse=True)
    assert [float(r["latencyMs"]) for r in rows] == [float(v) for v in latencies[:5]]
    assert response["statistics"]["recordsMatched"] == len(latencies)
    assert response["statistics"]["recordsScanned"] == len(records)

    record = client.get_log_record(logRecordPointer=rows[0]["@ptr"])["logRecord"]
    assert record["modelId"] == rows[0]["modelId"] and record["@log"] == f"000000000000:{GROUP}"
    assert record["@logStream"] == STREAM and float(record["latencyMs"]) == float(rows[0]["latencyMs"])
    original = orjson.loads(record["@message"])
    assert record["requestId"] == original["requestId"] and record["source"] == "cwlogs"
    assert all(isinstance(v, str) for v in record.values())
    assert error_code(client.get_log_record, logRecordPointer="not a pointer") == "InvalidParameterException"
    assert error_code(client.get_log_record, logRecordPointer=f"{GROUP}:12345") == "ResourceNotFoundException"

    # SOURCE instead of named groups, and an ARN identifier; the time range is inclusive by the second.
    by_source = client.start_query(startTime=end - 7200, endTime=end,
                                   queryString=f'SOURCE "{GROUP}" | stats count(*) as n')
    assert as_rows(wait_for(client, by_source["queryId"])["results"]) == [{"n": str(len(records))}]
    last = max(timestamp_ms(r["timestamp"]) for r in records)
    by_arn = client.start_query(logGroupIdentifiers=[f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}"],
                                startTime=last // 1000, endTime=last // 1000, queryString="stats count(*) as n")
    at_last = sum(1 for r in records if timestamp_ms(r["timestamp"]) // 1000 == last // 1000)
    assert as_rows(wait_for(client, by_arn["queryId"])["results"]) == [{"n": str(at_last)}]

    queries = client.describe_queries(logGroupName=GROUP)["queries"]
    assert {q["queryId"] for q in queries} >= {slowest["queryId"], by_arn["queryId"]}
    assert all(q["status"] == "Complete" for q in queries)
    assert queries[0]["queryId"] == by_arn["queryId"]  # newest first
    assert client.describe_queries(status="Running")["queries"] == []
    assert client.stop_query(queryId=slowest["queryId"])["success"] is False  # already complete


def test_query_errors_are_aws_errors(bedrock):
    client, _ = bedrock
    end = int(time.time())
    with pytest.raises(ClientError) as caught:
        client.start_query(logGroupName=GROUP, startTime=0, endTime=end,
                           queryString="fields modelId\n| stats count(*) by")
    error = caught.value.response
    assert error["Error"]["Code"] == "MalformedQueryException"
    assert "line 2, column" in error["Error"]["Message"]
    assert error["queryCompileError"]["location"]["startCharOffset"] > len("fields modelId")
    bad = dict(startTime=0, endTime=end, queryString="stats count(*)")
    assert error_code(client.start_query, **bad) == "InvalidParameterException"  # no log group
    assert error_code(client.start_query, logGroupName=GROUP, logGroupNames=[GROUP], **bad) == \
        "InvalidParameterException"
    assert error_code(client.start_query, logGroupName="/missing", **bad) == "ResourceNotFoundException"
    assert error_code(client.start_query, logGroupName=GROUP, queryLanguage="SQL", **bad) == \
        "InvalidParameterException"
    assert error_code(client.start_query, logGroupName=GROUP, startTime=end, endTime=end - 10,
                      queryString="stats count(*)") == "InvalidParameterException"
    assert error_code(client.start_query, logGroupName=GROUP, startTime=0, endTime=end,
                      queryString="stats nosuchfunction(x)") == "MalformedQueryException"
    assert error_code(client.get_query_results, queryId="nope") == "ResourceNotFoundException"
    assert error_code(client.stop_query, queryId="nope") == "ResourceNotFoundException"
    # A query that fails while running reports Failed, not an HTTP error.
    failing = client.start_query(logGroupName=GROUP, startTime=0, endTime=end,
                                 queryString="fields @message | filter @message =~ /a\\Z/")  # not RE2
    assert wait_for(client, failing["queryId"])["status"] == "Failed"


def test_a_running_query_reports_running_and_can_be_stopped(bedrock, server, monkeypatch):
    client, _ = bedrock
    store = server.dashcam.store
    gate, real_execute = threading.Event(), store.execute

    def gated_execute(sql: str, **options):
        if "log_groups" not in sql:  # let StartQuery's log-group check through; hold the query
            assert gate.wait(10), "the test never opened the gate"
        return real_execute(sql, **options)

    monkeypatch.setattr(store, "execute", gated_execute)
    try:
        end = int(time.time()) + 60
        started = client.start_query(logGroupName=GROUP, startTime=0, endTime=end, queryString="stats count(*)")
        deadline = time.monotonic() + 5
        while (running := client.get_query_results(queryId=started["queryId"]))["status"] == "Scheduled":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert running["status"] == "Running" and running["results"] == []
        assert running["statistics"]["recordsScanned"] == 0
        assert [q["status"] for q in client.describe_queries(status="Running")["queries"]] == ["Running"]
        assert client.stop_query(queryId=started["queryId"])["success"] is True
    finally:
        gate.set()
    time.sleep(0.1)  # the stopped query finishes in the background; its rows are dropped
    stopped = client.get_query_results(queryId=started["queryId"])
    assert stopped["status"] == "Cancelled" and stopped["results"] == []
    assert [q["queryId"] for q in client.describe_queries(status="Cancelled")["queries"]] == [started["queryId"]]


# ---------------------------------------------------------------------- reading events


def test_get_log_events_pages_forward_and_backward(server):
    client = logs_client(server)
    client.create_log_group(logGroupName="g")
    client.create_log_stream(logGroupName="g", logStreamName="s")
    client.create_log_stream(logGroupName="g", logStreamName="other")
    base = now_ms() - HOUR_MS
    # 25 events, several sharing a millisecond, so paging must order within a timestamp too.
    events = [{"timestamp": base + i // 3, "message": f"event {i:02d}"} for i in range(25)]
    client.put_log_events(logGroupName="g", logStreamName="s", logEvents=events)
    client.put_log_events(logGroupName="g", logStreamName="other", logEvents=[{"timestamp": base, "message": "x"}])

    seen, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        page = client.get_log_events(logGroupName="g", logStreamName="s", limit=10, **kwargs)
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        seen += page["events"]
        token = page["nextForwardToken"]
    assert sorted(e["message"] for e in seen) == [e["message"] for e in events]
    assert len({e["message"] for e in seen}) == 25
    assert [e["timestamp"] for e in seen] == sorted(e["timestamp"] for e in seen)
    assert all(e["ingestionTime"] >= e["timestamp"] for e in seen)

    # Newest first by default: the last 10 are events 15-24 (the last four timestamps, whole).
    tail = client.get_log_events(logGroupName="g", logStreamName="s", limit=10)
    assert {e["message"] for e in tail["events"]} == {f"event {i:02d}" for i in range(15, 25)}
    pages, token = [tail["events"]], tail["nextBackwardToken"]
    while True:
        page = client.get_log_events(logGroupName="g", logStreamName="s", limit=10, nextToken=token)
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        pages.insert(0, page["events"])
        token = page["nextBackwardToken"]
    assert [len(p) for p in pages] == [5, 10, 10]
    backward = [e for p in pages for e in p]
    assert [e["message"] for e in backward] == [e["message"] for e in seen]  # the same order both ways

    window = client.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True,
                                   startTime=base + 2, endTime=base + 4)  # end is exclusive
    assert sorted(e["message"] for e in window["events"]) == [f"event {i:02d}" for i in range(6, 12)]
    for bad in ("f/x", "f/1/2", "x/1/2/3", "b/head/1"):
        assert error_code(client.get_log_events, logGroupName="g", logStreamName="s", nextToken=bad) == \
            "InvalidParameterException"
    assert error_code(client.get_log_events, logGroupName="g", logStreamName="nope") == "ResourceNotFoundException"
    assert error_code(client.get_log_events, logStreamName="s") == "InvalidParameterException"
    empty = client.get_log_events(logGroupName="g", logStreamName="s", startTime=base + 999_999)
    assert empty["events"] == []


def test_filter_log_events_with_terms_and_json_patterns(bedrock):
    client, records = bedrock
    client.create_log_stream(logGroupName=GROUP, logStreamName="app")
    now = now_ms()
    client.put_log_events(logGroupName=GROUP, logStreamName="app", logEvents=[
        {"timestamp": now, "message": "ThrottlingException seen by the app, retrying"},
        {"timestamp": now + 1, "message": "all fine"},
    ])

    def messages(**kwargs) -> list[str]:
        pages = client.get_paginator("filter_log_events").paginate(logGroupName=GROUP, **kwargs)
        return [e["message"] for page in pages for e in page["events"]]

    throttled = [r for r in records if r.get("errorCode") == "ThrottlingException"]
    assert throttled, "the generated records include a throttling burst"
    by_term = messages(filterPattern="ThrottlingException")
    assert len(by_term) == len(throttled) + 1
    assert messages(filterPattern="ThrottlingException", logStreamNames=[STREAM]) == \
        messages(filterPattern='{ $.errorCode = "ThrottlingException" }')
    assert len(messages(filterPattern='{ $.errorCode = "ThrottlingException" }')) == len(throttled)
    assert messages(filterPattern="ThrottlingException -retrying", logStreamNamePrefix="app") == []
    assert messages(filterPattern='?"all fine" ?retrying', logStreamNames=["app"]) == \
        ["ThrottlingException seen by the app, retrying", "all fine"]

    many = [r for r in records if ((r.get("input") or {}).get("inputTokenCount") or 0) > 1000]
    found = messages(filterPattern="{ $.input.inputTokenCount > 1000 }")
    assert sorted(orjson.loads(m)["requestId"] for m in found) == sorted(r["requestId"] for r in many)
    claude = [r for r in records if "claude" in r["modelId"] and r.get("errorCode") is None]
    found = messages(filterPattern='{ $.modelId = "*claude*" && $.errorCode NOT EXISTS }')
    assert len(found) == len(claude)

    # Paging by 7: every event once, in time order, with unique event ids.
    pages = list(client.get_paginator("filter_log_events").paginate(
        logGroupName=GROUP, logStreamNames=[STREAM], PaginationConfig={"PageSize": 7}))
    events = [e for page in pages for e in page["events"]]
    assert len(pages) > 10 and len(events) == len(records)
    assert len({e["eventId"] for e in events}) == len(records)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert all(e["logStreamName"] == STREAM for e in events)

    assert error_code(client.filter_log_events, logGroupName=GROUP, filterPattern="{ $.a = }") == \
        "InvalidParameterException"
    assert error_code(client.filter_log_events, logGroupName=GROUP, logStreamNames=["a"],
                      logStreamNamePrefix="a") == "InvalidParameterException"
    assert error_code(client.filter_log_events, logGroupName="/missing") == "ResourceNotFoundException"
    assert error_code(client.filter_log_events, logGroupName=GROUP, nextToken="bogus") == "InvalidParameterException"


# ---------------------------------------------------------------------- bad requests


def test_garbage_requests_get_clear_4xx_and_the_server_keeps_serving(server):
    client = logs_client(server)
    client.create_log_group(logGroupName="g")
    amz = {"content-type": "application/x-amz-json-1.1"}

    def post(body: bytes, target: str | None = "Logs_20140328.DescribeLogGroups", **headers):
        sent = {**amz, **({"x-amz-target": target} if target else {}), **headers}
        return httpx.post(server.url + "/", content=body, headers=sent)

    cases = [
        (post(b"{not json"), 400, "SerializationException"),
        (post(b"[1, 2]"), 400, "SerializationException"),
        (post(b"\x00\xff\xfe"), 400, "SerializationException"),
        (post(b"\x1f\x8bgarbage", **{"content-encoding": "gzip"}), 400, "SerializationException"),
        (post(b"{}", target="Logs_20140328.NoSuchThing"), 400, "UnknownOperationException"),
        (post(b"{}", target="Other_2020.DescribeLogGroups"), 400, "UnknownOperationException"),
        (post(b"{}", target=None), 400, "UnknownOperationException"),
        (post(b"{}", **{"content-type": "text/plain"}), 415, "UnsupportedMediaTypeException"),
        (post(b'{"logGroupName": 5}', target="Logs_20140328.CreateLogGroup"), 400, "SerializationException"),
        (post(b'{"limit": "ten"}'), 400, "SerializationException"),
        (post(b'{"limit": 500}'), 400, "InvalidParameterException"),
        (post(b"{}", target="Logs_20140328.CreateLogGroup"), 400, "InvalidParameterException"),
        (post(b'{"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": 1}]}',
              target="Logs_20140328.PutLogEvents"), 400, "InvalidParameterException"),
        (post(b'{"logGroupName": "g", "logStreamName": "s", "logEvents": []}',
              target="Logs_20140328.PutLogEvents"), 400, "InvalidParameterException"),
        (post(b'{"logGroupName": "g", "logStreamName": "s", "logEvents": [null]}',
              target="Logs_20140328.PutLogEvents"), 400, "InvalidParameterException"),
        (post(b'{"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": true, "message": "m"}]}',
              target="Logs_20140328.PutLogEvents"), 400, "SerializationException"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["__type"] == code and body["message"], body
        assert response.headers["content-type"] == "application/x-amz-json-1.1"
    missing = post(b"{}", target="Logs_20140328.CreateLogGroup").json()["message"]
    assert "Value null at 'logGroupName' failed to satisfy constraint: Member must not be null" in missing
    # Nothing changed, and boto3 is still answered.
    assert [g["logGroupName"] for g in client.describe_log_groups()["logGroups"]] == ["g"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200
