"""The ``dashcam`` command line, as DESIGN.md's "CLI contract" states it: results on stdout,
summaries, progress and errors on stderr; exit 0 on success, 1 on a failure while running,
2 on bad usage or a malformed query.

Most tests drive the click command in-process (``CliRunner``); one runs the installed console
script in a subprocess to prove the entry point works.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from dashcam.cli import main

SAMPLES = Path(__file__).parent / "fixtures" / "bedrock-invocation-logs.jsonl"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
KEY_RE = re.compile(r"^AWSLogs/\d{12}/BedrockModelInvocationLogs/[a-z0-9-]+/\d{4}/\d\d/\d\d/\d\d/[^/]+\.json\.gz$")
SONNET_PROFILE = ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                  "us.anthropic.claude-sonnet-4-20250514-v1:0")
HOT_QUERY = "fields @timestamp, modelId, input.inputTokenCount, latencyMs, throttled | sort @timestamp asc"


def sample_records() -> list[dict]:
    return [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]


REQUEST_IDS = [r["requestId"] for r in sample_records()]


def run(*args: str, input: str | None = None, env: dict | None = None):
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


@pytest.fixture
def data(tmp_path) -> str:
    return str(tmp_path / "dashcam-data")


@pytest.fixture
def loaded(data) -> str:
    """A data directory holding the six sample records in the default log group."""
    result = run("--data", data, "import", str(SAMPLES))
    assert result.exit_code == 0, result.stderr
    return data


def query_json(data: str, *args: str) -> list[dict]:
    result = run("--data", data, "query", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- import


def test_import_prints_a_summary_and_the_skipped_lines_on_stderr(data, tmp_path):
    lines = SAMPLES.read_bytes().splitlines()
    bad = tmp_path / "in" / "mixed.jsonl"
    bad.parent.mkdir()
    bad.write_bytes(lines[0] + b"\n{broken\n" + lines[1] + b'\n{"no": "timestamp"}\n')
    gz = tmp_path / "in" / "rest.json.gz"
    gz.write_bytes(gzip.compress(b"\n".join(lines[2:]) + b"\n"))
    result = run("--data", data, "import", str(tmp_path / "in"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    err = result.stderr
    assert "imported 6 new records into /aws/bedrock/modelinvocations from 2 files" in err
    assert "0 already stored" in err
    assert "2 malformed lines skipped" in err
    assert f"{bad}:2: not valid JSON" in err
    assert f"{bad}:4: record has no 'timestamp'" in err
    skipped = [line.strip() for line in err.splitlines() if line.strip().startswith("skipped ")]
    assert skipped == [f"skipped {bad}:2: not valid JSON", f"skipped {bad}:4: record has no 'timestamp'"]

    again = run("--data", data, "import", str(tmp_path / "in"))
    assert again.exit_code == 0
    assert "imported 0 new records" in again.stderr and "6 already stored" in again.stderr


def test_import_lists_at_most_fifty_skipped_lines(data, tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_bytes(b"not json\n" * 60 + SAMPLES.read_bytes())
    result = run("--data", data, "import", str(path))
    assert result.exit_code == 0
    listed = [line for line in result.stderr.splitlines() if line.startswith("  skipped ")]
    assert listed == [f"  skipped {path}:{n}: not valid JSON" for n in range(1, 51)]
    assert "60 malformed lines skipped" in result.stderr
    assert "... and 10 more" in result.stderr
    assert "imported 6 new records" in result.stderr


def test_import_into_a_named_log_group(data):
    result = run("--data", data, "import", "--log-group", "team-a", str(SAMPLES))
    assert result.exit_code == 0, result.stderr
    assert "into team-a from 1 file " in result.stderr
    assert query_json(data, "--log-group", "team-a", "stats count(*) as n") == [{"n": 6}]
    assert query_json(data, "--log-group", "/aws/bedrock/modelinvocations", "stats count(*) as n") == [{"n": 0}]


def test_import_of_a_missing_path_fails_naming_it(data, tmp_path):
    missing = tmp_path / "nope" / "logs.json.gz"
    result = run("--data", data, "import", str(SAMPLES), str(missing))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"dashcam: error: {missing}" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_needs_a_path(data):
    result = run("--data", data, "import")
    assert result.exit_code == 2


def test_data_directory_from_the_environment(tmp_path):
    env = {"DASHCAM_DATA": str(tmp_path / "from-env")}
    assert run("import", str(SAMPLES), env=env).exit_code == 0
    assert (tmp_path / "from-env").is_dir()
    result = run("query", "--format", "json", "stats count(*) as n", env=env)
    assert json.loads(result.stdout) == [{"n": 6}]


# ---------------------------------------------------------------------- query formats


def test_query_json_follows_the_result_conventions(loaded):
    result = run("--data", loaded, "query", "--format", "json", HOT_QUERY)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [list(row) for row in rows] == [["@timestamp", "modelId", "input.inputTokenCount", "latencyMs",
                                            "throttled"]] * 6
    assert rows[0] == {"@timestamp": "2026-03-02 14:05:11.000", "modelId": SONNET_PROFILE,
                       "input.inputTokenCount": 31, "latencyMs": 1843, "throttled": 0}
    assert rows[2] == {"@timestamp": "2026-03-02 14:07:02.000", "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0",
                       "input.inputTokenCount": None, "latencyMs": None, "throttled": 1}
    assert all(TS_RE.match(row["@timestamp"]) for row in rows)
    assert [row["latencyMs"] for row in rows] == [1843, None, None, 611, None, None]
    # numbers are JSON numbers, missing values JSON null: check the text itself
    assert '"input.inputTokenCount": 31' in result.stdout
    assert '"latencyMs": null' in result.stdout
    assert '"throttled": 1' in result.stdout


def test_query_json_of_no_rows_is_an_empty_array(loaded):
    assert query_json(loaded, 'filter modelId = "no-such-model" | fields modelId') == []


def test_query_csv_has_a_header_and_empty_cells_for_missing(loaded):
    result = run("--data", loaded, "query", "--format", "csv", HOT_QUERY)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "@timestamp,modelId,input.inputTokenCount,latencyMs,throttled"
    assert lines[1] == f"2026-03-02 14:05:11.000,{SONNET_PROFILE},31,1843,0"
    assert lines[3] == "2026-03-02 14:07:02.000,anthropic.claude-3-5-haiku-20241022-v1:0,,,1"
    parsed = list(csv.reader(io.StringIO(result.stdout)))
    assert len(parsed) == 7
    assert [row[3] for row in parsed[1:]] == ["1843", "", "", "611", "", ""]


def test_query_table_is_aligned_with_a_row_count(loaded):
    result = run("--data", loaded, "query", "--format", "table",
                 "fields modelId, input.inputTokenCount, latencyMs | sort @timestamp asc")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    header, rule, body, footer = lines[0], lines[1], lines[2:-1], lines[-1]
    assert footer == "(6 rows)"
    assert set(rule) <= set("─- ") and len(rule) >= len(header.rstrip())
    assert len(body) == 6
    model_at = header.index("modelId")
    tokens_end = header.index("input.inputTokenCount") + len("input.inputTokenCount")
    latency_end = header.index("latencyMs") + len("latencyMs")
    expected = [(SONNET_PROFILE, "31", "1843"), ("anthropic.claude-3-5-haiku-20241022-v1:0", "42", ""),
                ("anthropic.claude-3-5-haiku-20241022-v1:0", "", ""), ("amazon.nova-lite-v1:0", "8", "611"),
                ("amazon.titan-embed-text-v2:0", "11", ""), ("meta.llama3-1-8b-instruct-v1:0", "", "")]
    for line, (model, tokens, latency) in zip(body, expected):
        assert (line + " ")[model_at:].startswith(model + " ")  # text: left-aligned under its header
        assert line[tokens_end - len(tokens):tokens_end] == tokens  # numbers: right-aligned
        assert line[tokens_end - 21:tokens_end].strip() == tokens
        assert line.ljust(latency_end)[latency_end - len(latency):latency_end] == latency
        assert line.ljust(latency_end)[latency_end - 9:latency_end].strip() == latency


def test_query_default_format_is_the_table(loaded):
    result = run("--data", loaded, "query", "stats count(*) as n")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "(1 row)"
    assert result.stdout.splitlines()[2].strip() == "6"


def test_show_sql_goes_to_stderr_only(loaded):
    plain = run("--data", loaded, "query", "--format", "json", "stats count(*) as n")
    shown = run("--data", loaded, "query", "--format", "json", "--show-sql", "stats count(*) as n")
    assert shown.exit_code == 0
    assert shown.stdout == plain.stdout
    assert "SELECT" in shown.stderr.upper() and plain.stderr == ""


def test_query_unknown_format_is_a_usage_error(loaded):
    result = run("--data", loaded, "query", "--format", "yaml", "stats count(*)")
    assert result.exit_code == 2
    assert result.stdout == ""


# ---------------------------------------------------------------------- scope: log groups, time, limit


def test_log_group_option_is_repeatable(data):
    records = sample_records()
    for group, chunk in (("g1", records[:1]), ("g2", records[1:3]), ("g3", records[3:])):
        path = Path(data).parent / f"{group}.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in chunk))
        assert run("--data", data, "import", "--log-group", group, str(path)).exit_code == 0
    assert query_json(data, "stats count(*) as n") == [{"n": 6}]
    assert query_json(data, "--log-group", "g1", "stats count(*) as n") == [{"n": 1}]
    assert query_json(data, "--log-group", "g1", "--log-group", "g2", "stats count(*) as n") == [{"n": 3}]
    assert query_json(data, "--log-group", "g3", "--log-group", "g2", "fields requestId | sort requestId asc") == [
        {"requestId": rid} for rid in sorted(REQUEST_IDS[1:])]
    assert query_json(data, "--log-group", "nope", "stats count(*) as n") == [{"n": 0}]


def test_start_and_end_in_iso_8601_are_inclusive(loaded):
    rows = query_json(loaded, "--start", "2026-03-02T14:06:40Z", "--end", "2026-03-02T14:08:19Z",
                      "fields requestId | sort @timestamp asc")
    assert rows == [{"requestId": rid} for rid in REQUEST_IDS[1:4]]
    # with an offset, and date-only
    rows = query_json(loaded, "--start", "2026-03-02T16:09:00+02:00", "fields requestId | sort @timestamp asc")
    assert rows == [{"requestId": rid} for rid in REQUEST_IDS[4:]]
    assert query_json(loaded, "--end", "2026-03-02", "stats count(*) as n") == [{"n": 0}]
    assert query_json(loaded, "--start", "2026-03-02", "--end", "2026-03-03", "stats count(*) as n") == [{"n": 6}]


def test_start_and_end_as_epoch_numbers(loaded):
    start = int(datetime(2026, 3, 2, 14, 8, 19, tzinfo=timezone.utc).timestamp())
    assert query_json(loaded, "--start", str(start), "stats count(*) as n") == [{"n": 3}]
    assert query_json(loaded, "--start", str(start * 1000 + 1), "stats count(*) as n") == [{"n": 2}]


def test_relative_start_and_end(data, tmp_path):
    now = datetime.now(timezone.utc)
    base = sample_records()
    records = [
        base[0] | {"requestId": "old", "timestamp": rfc3339(now - timedelta(hours=2))},
        base[1] | {"requestId": "older", "timestamp": rfc3339(now - timedelta(days=3))},
        base[3] | {"requestId": "recent", "timestamp": rfc3339(now - timedelta(minutes=10))},
    ]
    path = tmp_path / "recent.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    assert run("--data", data, "import", str(path)).exit_code == 0
    q = "fields requestId | sort @timestamp asc"

    def ids(*args: str) -> list[str]:
        return [row["requestId"] for row in query_json(data, *args, q)]

    assert ids("--start", "1h") == ["recent"]
    assert ids("--start", "1h ago") == ["recent"]
    assert ids("--start", "3h") == ["old", "recent"]
    assert ids("--start", "3h", "--end", "1h") == ["old"]
    assert ids("--start", "7d", "--end", "now") == ["older", "old", "recent"]
    assert ids("--end", "1d") == ["older"]
    assert ids("--start", "2w", "--end", "2d") == ["older"]
    assert ids() == ["older", "old", "recent"]


def test_limit_caps_the_rows(loaded):
    rows = query_json(loaded, "--limit", "2", "fields requestId | sort @timestamp asc")
    assert rows == [{"requestId": rid} for rid in REQUEST_IDS[:2]]
    # a limit command can only lower it
    assert len(query_json(loaded, "--limit", "3", "fields requestId | limit 5")) == 3
    assert len(query_json(loaded, "--limit", "5", "fields requestId | limit 1")) == 1
    assert run("--data", loaded, "query", "--limit", "0", "fields requestId").exit_code == 2


def test_no_sort_means_newest_first(loaded):
    rows = query_json(loaded, "fields requestId")
    assert [row["requestId"] for row in rows] == REQUEST_IDS[::-1]


def test_query_from_stdin(loaded):
    text = "# throttles per model\nfilter throttled = 1\n| stats count(*) as n by modelId\n"
    result = run("--data", loaded, "query", "--format", "json", "-", input=text)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"modelId": "anthropic.claude-3-5-haiku-20241022-v1:0", "n": 1}]


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("text, line", [
    ("fields modelId |", 1),
    ("stats count(*) by", 1),
    ("fields modelId\n| filter latencyMs > > 3\n| limit 5", 2),
    ("fields modelId\n| filter latencyMs >\n| limit 5", 3),  # the missing operand shows at the next token
    ("fields modelId\n| sort latencyMs desc\n| bogus 3", 3),
])
def test_malformed_query_exits_2_with_line_and_column(loaded, text, line):
    result = run("--data", loaded, "query", "--format", "json", text)
    assert result.exit_code == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    match = re.match(r"^dashcam: error: line (\d+), column (\d+): \S", message)
    assert match, message
    assert int(match.group(1)) == line
    assert int(match.group(2)) >= 1
    assert len(message.splitlines()) == 1


def test_malformed_query_column_points_at_the_problem(loaded):
    result = run("--data", loaded, "query", "fields modelId | sort latencyMs sideways")
    assert result.exit_code == 2
    assert result.stderr.startswith("dashcam: error: line 1, column 33: "), result.stderr  # the 's' of sideways
    assert "sideways" in result.stderr


def test_malformed_query_from_stdin(loaded):
    result = run("--data", loaded, "query", "-", input="stats count(*)\n| filter (\n")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("dashcam: error: line 2, column ")


def test_start_after_end_exits_2(loaded):
    result = run("--data", loaded, "query", "--start", "2026-03-03T00:00:00Z", "--end", "2026-03-02T00:00:00Z",
                 "stats count(*)")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("dashcam: error: ")
    assert "--start" in result.stderr and "--end" in result.stderr


@pytest.mark.parametrize("option", ["--start", "--end"])
def test_unreadable_time_exits_2_naming_it(loaded, option):
    result = run("--data", loaded, "query", option, "next tuesday", "stats count(*)")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "dashcam: error: " in result.stderr and "next tuesday" in result.stderr


# ---------------------------------------------------------------------- sample (the demo: tests/test_demo.py)


def test_sample_writes_bedrock_layout(tmp_path):
    out = tmp_path / "sample-out"
    result = run("sample", "--records", "2000", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert files
    assert all(KEY_RE.match(p.relative_to(out).as_posix()) for p in files), files
    total = 0
    for path in files:
        records = [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
        hour = "/".join(path.relative_to(out).parts[-5:-1])
        assert all(r["timestamp"].startswith(hour.replace("/", "-", 2).replace("/", "T")) for r in records)
        total += len(records)
    assert total == 2000
    assert f"wrote 2,000 records in {len(files)} files" in result.stderr


def test_sample_then_import_then_query(tmp_path):
    out = tmp_path / "sample-out"
    data = str(tmp_path / "data")
    assert run("sample", "--records", "1500", "--start", "2026-01-05T08:00:00Z", "--hours", "2", str(out)).exit_code == 0
    assert run("--data", data, "import", str(out)).exit_code == 0
    rows = query_json(data, "stats count(*) as n, min(@timestamp) as first, max(@timestamp) as last")
    assert rows[0]["n"] == 1500
    assert "2026-01-05 08:00:00.000" <= rows[0]["first"] <= rows[0]["last"] < "2026-01-05 10:00:00.000"


# ---------------------------------------------------------------------- the installed entry point


def test_installed_console_script_imports_and_queries(tmp_path):
    script = Path(sys.executable).with_name("dashcam")
    assert script.exists(), f"the dashcam console script is not installed next to {sys.executable}"
    data = str(tmp_path / "data")
    imported = subprocess.run([str(script), "--data", data, "import", str(SAMPLES)],
                              capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == ""
    assert "imported 6 new records" in imported.stderr
    queried = subprocess.run([str(script), "--data", data, "query", "--format", "json",
                              "stats count(*) as requests, sum(throttled) as throttles by operation"
                              " | sort operation asc"],
                             capture_output=True, text=True, timeout=120)
    assert queried.returncode == 0, queried.stderr
    assert json.loads(queried.stdout) == [
        {"operation": "Converse", "requests": 2, "throttles": 1},
        {"operation": "ConverseStream", "requests": 1, "throttles": 0},
        {"operation": "InvokeModel", "requests": 3, "throttles": 0},
    ]


def test_importing_a_folder_with_no_log_files_warns(data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("--data", data, "import", str(empty))
    assert result.exit_code == 0
    assert "no .json, .jsonl, .json.gz or .jsonl.gz files found" in result.stderr


def test_an_invalid_log_group_name_exits_2(data):
    result = run("--data", data, "import", "--log-group", "bad name", str(SAMPLES))
    assert result.exit_code == 2
    assert "log group name 'bad name' is not valid" in result.stderr
