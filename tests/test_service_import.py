"""``Dashcam.import_logs`` end to end: Bedrock log files -> the DuckDB store -> ``Dashcam.query``.

The expected values of the six hand-made sample records are worked out by hand from
``tests/fixtures/bedrock-invocation-logs.jsonl`` (a copy of the shared samples file).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from dashcam.errors import SourceError
from dashcam.service import BEDROCK_LOG_STREAM, DEFAULT_LOG_GROUP, Dashcam
from dashcam.simulate.sample_logs import SampleSpec, generate_records, write_bedrock_layout

SAMPLES = Path(__file__).parent / "fixtures" / "bedrock-invocation-logs.jsonl"
ACCT = "123456789012"
HOUR_DIR = f"AWSLogs/{ACCT}/BedrockModelInvocationLogs/us-east-1/2026/03/02/14"
SONNET_PROFILE = f"arn:aws:bedrock:us-east-1:{ACCT}:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"

# The six sample records, oldest first, as `fields` should return them. Worked out by hand:
# - latencyMs: Converse/ConverseStream from output.outputBodyJson.metrics.latencyMs; InvokeModel
#   (Anthropic native, Titan) carries no latency; failed calls have no output at all.
# - timeToFirstTokenMs: only streaming InvokeModelWithResponseStream chunks carry firstByteLatency;
#   ConverseStream is logged in the aggregated Converse shape, so none of the six has one.
# - throttled: 1 only for errorCode ThrottlingException (ValidationException is not throttling).
# - stopReason: Converse stopReason / Anthropic stop_reason; none for embeddings or errors.
# - input.inputTokenCount: absent on the two failed calls.
EXPECTED_HOT = [
    {"modelId": SONNET_PROFILE, "operation": "Converse", "input.inputTokenCount": 31,
     "output.outputTokenCount": 38, "latencyMs": 1843, "timeToFirstTokenMs": None, "throttled": 0,
     "stopReason": "end_turn", "errorCode": None},
    {"modelId": HAIKU, "operation": "InvokeModel", "input.inputTokenCount": 42,
     "output.outputTokenCount": 4, "latencyMs": None, "timeToFirstTokenMs": None, "throttled": 0,
     "stopReason": "end_turn", "errorCode": None},
    {"modelId": HAIKU, "operation": "Converse", "input.inputTokenCount": None,
     "output.outputTokenCount": None, "latencyMs": None, "timeToFirstTokenMs": None, "throttled": 1,
     "stopReason": None, "errorCode": "ThrottlingException"},
    {"modelId": "amazon.nova-lite-v1:0", "operation": "ConverseStream", "input.inputTokenCount": 8,
     "output.outputTokenCount": 21, "latencyMs": 611, "timeToFirstTokenMs": None, "throttled": 0,
     "stopReason": "end_turn", "errorCode": None},
    {"modelId": "amazon.titan-embed-text-v2:0", "operation": "InvokeModel", "input.inputTokenCount": 11,
     "output.outputTokenCount": None, "latencyMs": None, "timeToFirstTokenMs": None, "throttled": 0,
     "stopReason": None, "errorCode": None},
    {"modelId": "meta.llama3-1-8b-instruct-v1:0", "operation": "InvokeModel", "input.inputTokenCount": None,
     "output.outputTokenCount": None, "latencyMs": None, "timeToFirstTokenMs": None, "throttled": 0,
     "stopReason": None, "errorCode": "ValidationException"},
]
TIMESTAMPS = ["2026-03-02T14:05:11Z", "2026-03-02T14:06:40Z", "2026-03-02T14:07:02Z",
              "2026-03-02T14:08:19Z", "2026-03-02T14:09:55Z", "2026-03-02T14:11:30Z"]


def sample_lines() -> list[bytes]:
    return SAMPLES.read_bytes().splitlines()


def sample_records() -> list[dict]:
    return [orjson.loads(line) for line in sample_lines()]


REQUEST_IDS = [r["requestId"] for r in sample_records()]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def dashcam(tmp_path):
    with Dashcam.open(tmp_path / "dashcam-data") as dc:
        yield dc


def stored_ids(dc: Dashcam, log_group: str | None = None) -> list[str]:
    rows = dc.query("fields requestId | sort requestId asc", log_groups=[log_group] if log_group else None).rows
    return [r["requestId"] for r in rows]


def count(dc: Dashcam, log_group: str | None = None) -> int:
    return dc.query("stats count(*) as n", log_groups=[log_group] if log_group else None).rows[0]["n"]


# ---------------------------------------------------------------------- every file form


def _forms() -> dict[str, tuple[str, bytes]]:
    lines = sample_lines()
    lf = b"\n".join(lines) + b"\n"
    return {
        "json": ("logs.json", lf),
        "jsonl": ("logs.jsonl", lf),
        "json.gz": ("logs.json.gz", gzip.compress(lf)),
        "jsonl.gz": ("logs.jsonl.gz", gzip.compress(lf)),
        "concatenated gzip members": ("logs.json.gz", b"".join(gzip.compress(line + b"\n") for line in lines)),
        "CRLF": ("logs.jsonl", b"\r\n".join(lines) + b"\r\n"),
        "CRLF gzip": ("logs.json.gz", gzip.compress(b"\r\n".join(lines) + b"\r\n")),
        "final line without newline": ("logs.jsonl", b"\n".join(lines)),
        "gzip, final line without newline": ("logs.json.gz", gzip.compress(b"\n".join(lines))),
        "blank lines": ("logs.jsonl", b"\n\n" + b"\n   \n".join(lines) + b"\n\r\n\n"),
        "explicit file with another suffix": ("bedrock-export.txt", lf),
        "explicit gzip file with another suffix": ("bedrock-export.gzip", gzip.compress(lf)),
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_file_form_imports_the_six_records(dashcam, tmp_path, form):
    name, data = _forms()[form]
    path = write(tmp_path / "in" / name, data)
    summary = dashcam.import_logs([path])
    assert (summary.files, summary.records, summary.written, summary.duplicates) == (1, 6, 6, 0)
    assert summary.problems == [] and summary.skipped == 0
    assert stored_ids(dashcam) == sorted(REQUEST_IDS)


def test_crlf_records_are_stored_without_the_carriage_return(dashcam, tmp_path):
    lines = sample_lines()
    path = write(tmp_path / "crlf.jsonl", b"\r\n".join(lines) + b"\r\n")
    dashcam.import_logs([path])
    rows = dashcam.query("fields @message | sort @timestamp asc").rows
    assert [r["@message"] for r in rows] == [line.decode() for line in lines]
    # the same records with LF endings are the same events: nothing new is stored
    lf = write(tmp_path / "lf.jsonl", b"\n".join(lines) + b"\n")
    again = dashcam.import_logs([lf])
    assert (again.written, again.duplicates) == (0, 6)


# ---------------------------------------------------------------------- directories


def _bedrock_tree(root: Path) -> None:
    lines = sample_lines()
    hour = root / HOUR_DIR
    write(hour / "20260302T140511Z_0a1b2c3d.json.gz", gzip.compress(b"\n".join(lines[:4]) + b"\n"))
    write(root / HOUR_DIR[:-2] / "15" / "20260302T151130Z_4e5f6a7b.json.gz",
          gzip.compress(b"\n".join(lines[4:]) + b"\n"))
    # offloaded bodies and the permission-check marker: never records
    write(hour / "data" / f"{REQUEST_IDS[0]}_input.json.gz", gzip.compress(b'{"messages": []}\n'))
    write(hour / "data" / f"{REQUEST_IDS[0]}_output.json.gz", gzip.compress(b'{"output": {}}\n'))
    write(root / f"AWSLogs/{ACCT}/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check", b"")
    write(root / f"AWSLogs/{ACCT}/BedrockModelInvocationLogs/permission-check.json.gz",
          gzip.compress(b"Permission Check\n"))
    write(hour / "notes.md", b"# not a log\n")


def test_directory_in_bedrock_layout_is_walked_recursively(dashcam, tmp_path):
    _bedrock_tree(tmp_path / "bucket")
    summary = dashcam.import_logs([tmp_path / "bucket"])
    assert summary.files == 2
    assert summary.problems == []
    assert (summary.records, summary.written) == (6, 6)
    assert stored_ids(dashcam) == sorted(REQUEST_IDS)


# ---------------------------------------------------------------------- malformed input


def test_malformed_lines_are_reported_and_every_good_line_is_imported(dashcam, tmp_path):
    lines = sample_lines()
    good = sample_records()[0]
    content = [
        lines[0],                                                  # 1 good
        b'{"schemaType": "ModelInvocationLog", "timestamp": ',     # 2 bad JSON (cut off)
        b"[1, 2, 3]",                                              # 3 a JSON array
        lines[1],                                                  # 4 good
        orjson.dumps({k: v for k, v in good.items() if k != "timestamp"} | {"requestId": "no-ts"}),  # 5
        orjson.dumps(good | {"timestamp": "last tuesday", "requestId": "bad-ts"}),               # 6
        b'{"timestamp": "2026-03-02T14:05:11Z", "requestId": "\xff\xfe bad utf-8"}',             # 7
        b"",                                                       # 8 blank: skipped silently
        lines[2],                                                  # 9 good
        b'"just a string"',                                        # 10 a JSON string
        lines[3],                                                  # 11 good, no final newline
    ]
    path = write(tmp_path / "mixed.jsonl", b"\n".join(content))
    summary = dashcam.import_logs([path])
    assert [(p.location, p.line) for p in summary.problems] == [
        (str(path), 2), (str(path), 3), (str(path), 5), (str(path), 6), (str(path), 7), (str(path), 10)]
    reasons = {p.line: p.message for p in summary.problems}
    assert "JSON" in reasons[2] and "not valid" in reasons[2]
    assert "array" in reasons[3]
    assert "timestamp" in reasons[5]
    assert "last tuesday" in reasons[6]
    assert "UTF-8" in reasons[7]
    assert "JSON object" in reasons[10]
    assert str(summary.problems[0]) == f"{path}:2: {reasons[2]}"
    assert summary.skipped == 6
    assert (summary.records, summary.written) == (4, 4)
    assert stored_ids(dashcam) == sorted(REQUEST_IDS[:4])


def test_non_object_lines_are_described_with_json_type_names(dashcam, tmp_path):
    path = write(tmp_path / "scalars.jsonl", b'"a string"\n42\n-1.5\n')
    summary = dashcam.import_logs([path])
    reasons = [p.message for p in summary.problems]
    assert len(reasons) == 3 and all("JSON object" in r for r in reasons)
    assert "string" in reasons[0]
    assert "number" in reasons[1] and "number" in reasons[2]


def test_problem_line_numbers_are_right_far_into_a_gzip_file(dashcam, tmp_path):
    """Line numbers count across gzip members and across the reader's chunks."""
    records = list(generate_records(SampleSpec(records=3000, hours=1)))
    body = [orjson.dumps(r) for r in records]
    body[2499] = b"{oops"
    data = b"".join(gzip.compress(b"\n".join(body[i:i + 700]) + b"\n") for i in range(0, 3000, 700))
    path = write(tmp_path / "big.json.gz", data)
    summary = dashcam.import_logs([path])
    assert [(p.location, p.line) for p in summary.problems] == [(str(path), 2500)]
    assert summary.written == 2999


@pytest.mark.parametrize("batch_size, chunk", [(7, 300), (3, 64), (50, 1 << 20)])
def test_problems_and_counts_stay_right_across_batches_and_chunks(dashcam, tmp_path, monkeypatch, batch_size, chunk):
    """Many small commits and reads: every refused line keeps its own file and line number."""
    from functools import partial

    from dashcam import service
    from dashcam.ingest import BatchWriter
    from dashcam.sources import bedrock_logs

    monkeypatch.setattr(service, "BatchWriter", partial(BatchWriter, batch_size=batch_size))
    monkeypatch.setattr(bedrock_logs, "_CHUNK", chunk)
    records = list(generate_records(SampleSpec(records=60, hours=1, seed=3)))
    expected_problems = []
    for name, part in (("a.jsonl", records[:30]), ("b.json.gz", records[30:])):
        body = [orjson.dumps(r) for r in part]
        for index in (0, 13, len(body) - 1):
            body[index] = b"{bad " + name.encode()
            expected_problems.append((str(tmp_path / name), index + 1))
        data = b"\r\n".join(body)
        write(tmp_path / name, gzip.compress(data[:500]) + gzip.compress(data[500:]) if name.endswith(".gz") else data)
    summary = dashcam.import_logs([tmp_path / "a.jsonl", tmp_path / "b.json.gz", tmp_path / "a.jsonl"])
    assert [(p.location, p.line) for p in summary.problems] == sorted(expected_problems + expected_problems[:3])
    assert all("not valid JSON" in p.message for p in summary.problems)
    assert (summary.written, summary.duplicates) == (54, 27)
    assert count(dashcam) == 54


def test_truncated_and_corrupt_gzip_files_are_reported_and_the_rest_kept(dashcam, tmp_path):
    lines = sample_lines()
    write(tmp_path / "in" / "a-good.jsonl", b"\n".join(lines[:3]) + b"\n")
    whole = gzip.compress(b"\n".join(lines[3:]) + b"\n")
    truncated = write(tmp_path / "in" / "b-truncated.json.gz", whole[: len(whole) // 2])
    corrupt_bytes = bytearray(gzip.compress(b"\n".join(lines[3:]) + b"\n"))
    corrupt_bytes[25:45] = b"\xff" * 20
    corrupt = write(tmp_path / "in" / "c-corrupt.json.gz", bytes(corrupt_bytes))
    write(tmp_path / "in" / "d-good.json.gz", gzip.compress(lines[5] + b"\n"))
    summary = dashcam.import_logs([tmp_path / "in"])
    assert summary.files == 4
    by_file = {p.location: p for p in summary.problems}
    assert set(by_file) == {str(truncated), str(corrupt)}
    assert "truncated" in by_file[str(truncated)].message
    assert "corrupt" in by_file[str(corrupt)].message
    ids = set(stored_ids(dashcam))
    assert set(REQUEST_IDS[:3]) | {REQUEST_IDS[5]} <= ids
    assert ids <= set(REQUEST_IDS)


# ---------------------------------------------------------------------- duplicates and log groups


def test_reimport_stores_nothing_twice_and_a_second_group_stores_again(dashcam, tmp_path):
    _bedrock_tree(tmp_path / "bucket")
    first = dashcam.import_logs([tmp_path / "bucket"])
    assert (first.records, first.written, first.duplicates) == (6, 6, 0)
    again = dashcam.import_logs([tmp_path / "bucket"])
    assert (again.files, again.records, again.written, again.duplicates) == (2, 6, 0, 6)
    assert count(dashcam) == 6
    # the same records, now in a plain file next to a new one: only the new one is stored
    extra = sample_records()[0] | {"requestId": "extra-1", "timestamp": "2026-03-02T14:30:00Z"}
    write(tmp_path / "more.jsonl", SAMPLES.read_bytes() + orjson.dumps(extra) + b"\n")
    third = dashcam.import_logs([tmp_path / "more.jsonl"])
    assert (third.written, third.duplicates) == (1, 6)
    assert count(dashcam) == 7

    other = dashcam.import_logs([tmp_path / "bucket"], log_group="team-b/bedrock")
    assert (other.written, other.duplicates) == (6, 0)
    assert count(dashcam, "team-b/bedrock") == 6
    assert count(dashcam, DEFAULT_LOG_GROUP) == 7
    assert count(dashcam) == 13
    assert {g.name for g in dashcam.log_groups()} == {DEFAULT_LOG_GROUP, "team-b/bedrock"}


def test_the_same_file_twice_in_one_import_counts_duplicates(dashcam):
    summary = dashcam.import_logs([SAMPLES, SAMPLES])
    assert (summary.files, summary.records, summary.written, summary.duplicates) == (2, 12, 6, 6)
    assert count(dashcam) == 6


def test_events_land_in_bedrocks_stream_and_group(dashcam):
    dashcam.import_logs([SAMPLES])
    rows = dashcam.query("stats count(*) as n by @log, @logStream").rows
    assert rows == [{"@log": DEFAULT_LOG_GROUP, "@logStream": BEDROCK_LOG_STREAM, "n": 6}] or rows == [
        {"@log": f"{ACCT}:{DEFAULT_LOG_GROUP}", "@logStream": BEDROCK_LOG_STREAM, "n": 6}]


# ---------------------------------------------------------------------- what comes back


def test_timestamp_becomes_at_timestamp(dashcam):
    dashcam.import_logs([SAMPLES])
    rows = dashcam.query("fields @timestamp, timestamp, requestId | sort @timestamp asc").rows
    assert [r["timestamp"] for r in rows] == TIMESTAMPS
    assert [r["@timestamp"] for r in rows] == [t.replace("T", " ").replace("Z", ".000") for t in TIMESTAMPS]
    assert [r["requestId"] for r in rows] == REQUEST_IDS


def test_timestamp_forms_with_offset_fraction_and_epoch(dashcam, tmp_path):
    base = sample_records()[0]
    records = [
        base | {"requestId": "offset", "timestamp": "2026-03-02T16:05:11.250+02:00"},
        base | {"requestId": "fraction", "timestamp": "2026-03-02T14:05:12.5Z"},
        base | {"requestId": "epoch-s", "timestamp": 1772460313},
        base | {"requestId": "epoch-ms", "timestamp": 1772460314123},
    ]
    path = write(tmp_path / "ts.jsonl", b"\n".join(orjson.dumps(r) for r in records))
    summary = dashcam.import_logs([path])
    assert summary.problems == []
    rows = dashcam.query("fields requestId, @timestamp | sort @timestamp asc").rows
    assert rows == [
        {"requestId": "offset", "@timestamp": "2026-03-02 14:05:11.250"},
        {"requestId": "fraction", "@timestamp": "2026-03-02 14:05:12.500"},
        {"requestId": "epoch-s", "@timestamp": "2026-03-02 14:05:13.000"},
        {"requestId": "epoch-ms", "@timestamp": "2026-03-02 14:05:14.123"},
    ]


def test_hot_fields_of_the_sample_records(dashcam):
    dashcam.import_logs([SAMPLES])
    result = dashcam.query(
        "fields modelId, operation, input.inputTokenCount, output.outputTokenCount, latencyMs, "
        "timeToFirstTokenMs, throttled, stopReason, errorCode | sort @timestamp asc")
    assert result.columns == list(EXPECTED_HOT[0])
    assert result.rows == EXPECTED_HOT
    assert all(list(row) == result.columns for row in result.rows)


def test_hot_fields_aggregate(dashcam):
    dashcam.import_logs([SAMPLES])
    rows = dashcam.query("stats count(*) as n, sum(throttled) as throttles, sum(input.inputTokenCount) as tokens,"
                         " max(latencyMs) as slowest, avg(latencyMs) as mean").rows
    assert rows == [{"n": 6, "throttles": 1, "tokens": 31 + 42 + 8 + 11, "slowest": 1843, "mean": (1843 + 611) / 2}]


def test_streaming_invoke_model_latency_and_time_to_first_token(dashcam, tmp_path):
    record = sample_records()[1] | {
        "operation": "InvokeModelWithResponseStream", "requestId": "stream-1",
        "output": {"outputContentType": "application/json", "outputTokenCount": 4, "outputBodyJson": [
            {"type": "message_start", "message": {"usage": {"input_tokens": 42, "output_tokens": 1}}},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "P1"}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}},
            {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": 42, "outputTokenCount": 4, "invocationLatency": 987, "firstByteLatency": 321}},
        ]},
    }
    dashcam.import_logs([write(tmp_path / "s.jsonl", orjson.dumps(record))])
    rows = dashcam.query("fields latencyMs, timeToFirstTokenMs, stopReason, throttled").rows
    assert rows == [{"latencyMs": 987, "timeToFirstTokenMs": 321, "stopReason": "end_turn", "throttled": 0}]


def test_offloaded_bodies_are_kept_with_their_s3_paths(dashcam, tmp_path):
    base = sample_records()[0]
    in_path = f"s3://logs-bucket/{HOUR_DIR}/data/{base['requestId']}_input.json.gz"
    out_path = f"s3://logs-bucket/{HOUR_DIR}/data/{base['requestId']}_output.json.gz"
    offloaded = base | {
        "input": {"inputContentType": "application/json", "inputBodyS3Path": in_path, "inputTokenCount": 120_000},
        "output": {"outputContentType": "application/json", "outputBodyS3Path": out_path, "outputTokenCount": 25_000},
    }
    only_input = sample_records()[1] | {"requestId": "only-input", "input": {
        "inputContentType": "application/json", "inputBodyS3Path": in_path.replace(base["requestId"], "only-input"),
        "inputTokenCount": 50_000}}
    path = write(tmp_path / "offloaded.jsonl", orjson.dumps(offloaded) + b"\n" + orjson.dumps(only_input) + b"\n")
    summary = dashcam.import_logs([path])
    assert (summary.written, summary.problems) == (2, [])
    rows = dashcam.query("filter ispresent(input.inputBodyS3Path) | fields requestId, input.inputBodyS3Path,"
                         " output.outputBodyS3Path, input.inputTokenCount, output.outputTokenCount,"
                         " input.inputBodyJson | sort requestId asc").rows
    assert rows == [
        {"requestId": base["requestId"], "input.inputBodyS3Path": in_path, "output.outputBodyS3Path": out_path,
         "input.inputTokenCount": 120_000, "output.outputTokenCount": 25_000, "input.inputBodyJson": None},
        {"requestId": "only-input", "input.inputBodyS3Path": in_path.replace(base["requestId"], "only-input"),
         "output.outputBodyS3Path": None, "input.inputTokenCount": 50_000, "output.outputTokenCount": 4,
         "input.inputBodyJson": None},
    ]


# ---------------------------------------------------------------------- errors and progress


def test_missing_path_is_a_source_error_naming_it(dashcam, tmp_path):
    missing = tmp_path / "exports" / "2026-03-02.json.gz"
    with pytest.raises(SourceError) as info:
        dashcam.import_logs([SAMPLES, missing])
    assert str(missing) in str(info.value)


def test_progress_total_is_the_files_sizes_and_advances_add_up_to_it(dashcam, tmp_path, progress_recorder):
    _bedrock_tree(tmp_path / "bucket")
    extra = write(tmp_path / "plain.jsonl", SAMPLES.read_bytes())
    recorder = progress_recorder
    dashcam.import_logs([tmp_path / "bucket", extra], progress=recorder)
    counted = sorted((tmp_path / "bucket" / HOUR_DIR).glob("*.json.gz")) + sorted(
        (tmp_path / "bucket" / HOUR_DIR[:-2] / "15").glob("*.json.gz")) + [extra]
    total = sum(p.stat().st_size for p in counted)
    assert recorder.starts == [(3, total)]
    assert sum(recorder.advances) == total
    assert all(n > 0 for n in recorder.advances)


def test_progress_of_a_large_file_advances_in_several_steps(dashcam, tmp_path, progress_recorder):
    # A file larger than the reader's chunk: progress must move more than once, and add up.
    body = SAMPLES.read_bytes() * 900  # ~6.8 MB, duplicates of six records
    path = write(tmp_path / "big.jsonl", body)
    recorder = progress_recorder
    summary = dashcam.import_logs([path], progress=recorder)
    assert recorder.starts == [(1, len(body))]
    assert len(recorder.advances) >= 2
    assert sum(recorder.advances) == len(body)
    assert (summary.written, summary.duplicates) == (6, 6 * 899)


# ---------------------------------------------------------------------- generated sample


def test_generated_sample_imports_completely(dashcam, tmp_path):
    spec = SampleSpec(records=5000, hours=3, seed=11)
    written = write_bedrock_layout(spec, tmp_path / "sample")
    summary = dashcam.import_logs([tmp_path / "sample"])
    assert summary.files == written.files
    assert (summary.records, summary.written, summary.duplicates, summary.skipped) == (5000, 5000, 0, 0)
    assert count(dashcam) == spec.records
    rows = dashcam.query("stats count(*) by operation | sort operation asc").rows
    assert [r["operation"] for r in rows] == ["Converse", "ConverseStream", "InvokeModel",
                                              "InvokeModelWithResponseStream"]
    assert sum(r["count(*)"] for r in rows) == 5000
    # the generator's own records agree with what the store answers
    records = list(generate_records(spec))
    throttles = sum(1 for r in records if r.get("errorCode") == "ThrottlingException")
    offloaded = sum(1 for r in records if "inputBodyS3Path" in r["input"])
    answer = dashcam.query("stats sum(throttled) as t, count(input.inputBodyS3Path) as o").rows[0]
    assert answer == {"t": throttles, "o": offloaded}
    assert offloaded > 0 and throttles > 0


def test_a_byte_order_mark_does_not_cost_the_first_record(dashcam, tmp_path):
    path = write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + b"\n".join(sample_lines()) + b"\n")
    summary = dashcam.import_logs([path])
    assert (summary.written, summary.skipped) == (6, 0)


def test_a_gzip_file_missing_only_its_trailer_keeps_every_line_and_says_so(dashcam, tmp_path):
    whole = gzip.compress(b"\n".join(sample_lines()) + b"\n")
    path = write(tmp_path / "no-trailer.json.gz", whole[:-8])  # CRC and size are the last 8 bytes
    summary = dashcam.import_logs([path])
    assert summary.written == 6
    (problem,) = summary.problems
    assert "every complete line was read" in problem.message


def test_an_invalid_log_group_name_is_refused_before_reading(dashcam, tmp_path):
    from dashcam.errors import InputError

    path = write(tmp_path / "a.jsonl", b"\n".join(sample_lines()) + b"\n")
    for name in ("", "has space", "x" * 513, "semi;colon"):
        with pytest.raises(InputError, match="log group name"):
            dashcam.import_logs([path], log_group=name)
    assert dashcam.log_groups() == []


def test_a_stream_that_fails_mid_read_is_a_source_error(dashcam, tmp_path, monkeypatch):
    from dashcam.sources import bedrock_logs

    path = write(tmp_path / "a.jsonl", b"\n".join(sample_lines()) + b"\n")

    class Broken:
        def read(self, size: int) -> bytes:
            raise ConnectionResetError(104, "Connection reset by peer")

        def close(self) -> None:
            pass

    monkeypatch.setattr(bedrock_logs._open, "__enter__", lambda self: Broken())
    with pytest.raises(SourceError, match="read failed"):
        dashcam.import_logs([path])


def test_raw_batches_are_cut_at_exactly_the_batch_size(dashcam, tmp_path, monkeypatch):
    """Whole DuckDB row groups per commit: every batch but the last holds exactly batch_size lines,
    however the files' reads split them."""
    from functools import partial

    from dashcam import service
    from dashcam.ingest import BatchWriter
    from dashcam.sources import bedrock_logs

    monkeypatch.setattr(service, "BatchWriter", partial(BatchWriter, batch_size=11))
    monkeypatch.setattr(bedrock_logs, "_CHUNK", 700)
    sizes = []
    inner = dashcam.store
    original = type(inner).prepare_raw

    def recording(self, batch, **kwargs):
        sizes.append(batch.num_rows)
        return original(self, batch, **kwargs)

    monkeypatch.setattr(type(inner), "prepare_raw", recording)
    records = list(generate_records(SampleSpec(records=50, hours=1, seed=5)))
    write(tmp_path / "a.jsonl", b"\n".join(orjson.dumps(r) for r in records[:23]) + b"\n")
    write(tmp_path / "b.json.gz", gzip.compress(b"\n".join(orjson.dumps(r) for r in records[23:]) + b"\n"))
    summary = dashcam.import_logs([tmp_path])
    assert summary.written == 50 and count(dashcam) == 50
    assert sizes == [11, 11, 11, 11, 6]
