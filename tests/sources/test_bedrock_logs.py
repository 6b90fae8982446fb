"""Reading Bedrock invocation log files: finding them (files, directories in Bedrock's S3 layout)
and framing them into numbered lines (plain, gzip, multi-member gzip, CRLF, no final newline),
with unreadable gzip data reported by file and line.

These tests stay at the source level (``find_log_objects`` / ``read_bedrock_logs``); what the
store makes of the lines is covered by ``tests/test_service_import.py``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from dashcam.errors import InputError, SourceError
from dashcam.sources import bedrock_logs
from dashcam.sources.bedrock_logs import LogObject, Problem, find_log_objects, read_bedrock_logs

SAMPLES = Path(__file__).parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"
ACCT = "123456789012"
HOUR_DIR = f"AWSLogs/{ACCT}/BedrockModelInvocationLogs/us-east-1/2026/03/02/14"


def sample_lines() -> list[bytes]:
    lines = SAMPLES.read_bytes().splitlines()
    assert len(lines) == 6
    return lines


def read_all(locations, **kwargs) -> tuple[list[tuple[str, int, bytes]], list[Problem], list[int], list[LogObject]]:
    """(location, line number, raw line) of every line read, the problems, the progress calls, the objects."""
    objects = find_log_objects([str(x) for x in locations])
    problems: list[Problem] = []
    advances: list[int] = []
    out: list[tuple[str, int, bytes]] = []
    for run in read_bedrock_logs(objects, problems=problems, progress=advances.append, **kwargs):
        items = run.lines.array.to_pylist()
        assert run.lines.joined() == b"".join(item + b"\n" for item in items)
        for offset, line in enumerate(items):
            out.append((run.location, run.first_line + offset, line))
    return out, problems, advances, objects


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------- file forms


def _forms(lines: list[bytes]) -> dict[str, tuple[str, bytes]]:
    lf = b"\n".join(lines) + b"\n"
    return {
        "json": ("a.json", lf),
        "jsonl": ("a.jsonl", lf),
        "json.gz": ("a.json.gz", gzip.compress(lf)),
        "jsonl.gz": ("a.jsonl.gz", gzip.compress(lf)),
        "multi-member gzip": ("a.json.gz", b"".join(gzip.compress(b"".join(x + b"\n" for x in lines[i:i + 2]))
                                                  for i in range(0, 6, 2))),
        "multi-member gzip, one line split across members": (
            "a.json.gz", gzip.compress(lf[:100]) + gzip.compress(lf[100:3000]) + gzip.compress(lf[3000:])),
        "no final newline": ("a.jsonl", b"\n".join(lines)),
        "gzip, no final newline": ("a.json.gz", gzip.compress(b"\n".join(lines))),
        "other suffix, named explicitly": ("invocations.log", lf),
        "gzip with another suffix, named explicitly": ("invocations.bin", gzip.compress(lf)),
    }


@pytest.mark.parametrize("form", list(_forms(sample_lines())))
def test_every_file_form_yields_the_records_with_line_numbers(tmp_path, form):
    name, data = _forms(sample_lines())[form]
    path = write(tmp_path / name, data)
    got, problems, advances, objects = read_all([path])
    assert problems == []
    assert objects == [LogObject(str(path), len(data))]
    assert got == [(str(path), n, line) for n, line in enumerate(sample_lines(), start=1)]
    assert sum(advances) == len(data)


def test_crlf_lines_keep_their_numbering_and_only_lose_the_lf(tmp_path):
    # The store strips the CR (tests/test_service_import.py checks the stored message).
    lines = sample_lines()
    path = write(tmp_path / "crlf.jsonl", b"\r\n".join(lines) + b"\r\n")
    got, problems, _, _ = read_all([path])
    assert problems == []
    assert [(n, line.rstrip(b"\r")) for _, n, line in got] == list(enumerate(lines, start=1))
    assert all(b"\n" not in line for _, _, line in got)


def test_crlf_gzip_without_final_newline(tmp_path):
    lines = sample_lines()
    path = write(tmp_path / "crlf.json.gz", gzip.compress(b"\r\n".join(lines)))
    got, problems, _, _ = read_all([path])
    assert problems == []
    assert [line.rstrip(b"\r") for _, _, line in got] == lines
    assert [n for _, n, _ in got] == [1, 2, 3, 4, 5, 6]


def test_blank_lines_are_counted_so_later_line_numbers_stay_true(tmp_path):
    lines = sample_lines()
    data = b"\n" + lines[0] + b"\n\n   \n" + lines[1] + b"\n\t\n"
    path = write(tmp_path / "blanks.jsonl", data)
    got, problems, _, _ = read_all([path])
    assert problems == []
    numbered = {n: line for _, n, line in got}
    assert numbered[2] == lines[0]
    assert numbered[5] == lines[1]
    assert all(not numbered[n].strip() for n in numbered if n not in (2, 5))


def test_empty_files_yield_nothing_and_report_nothing(tmp_path):
    plain = write(tmp_path / "empty.jsonl", b"")
    gz = write(tmp_path / "empty.json.gz", gzip.compress(b""))
    got, problems, advances, objects = read_all([plain, gz])
    assert [line for _, _, line in got if line.strip()] == []
    assert problems == []
    assert sum(advances) == sum(o.size for o in objects)


@pytest.mark.parametrize("chunk", [2, 3, 7, 64, 1000, 4096])
def test_lines_and_gzip_members_split_across_read_chunks(tmp_path, monkeypatch, chunk):
    """Framing must not depend on where reads cut the data: mid-line, mid-member, mid-CRLF."""
    monkeypatch.setattr(bedrock_logs, "_CHUNK", chunk)
    lines = [b'{"timestamp":"2026-03-02T14:05:%02dZ","n":%d}' % (i, i) for i in range(25)]
    text = b"\r\n".join(lines)  # CRLF, and no final newline
    members = gzip.compress(text[:57]) + gzip.compress(text[57:400]) + gzip.compress(text[400:])
    plain = write(tmp_path / "p.jsonl", text)
    packed = write(tmp_path / "g.json.gz", members)
    for path in (plain, packed):
        got, problems, advances, _ = read_all([path])
        assert problems == []
        assert [line.rstrip(b"\r") for _, _, line in got] == lines, path
        assert [n for _, n, _ in got] == list(range(1, 26))
        assert sum(advances) == path.stat().st_size


# ---------------------------------------------------------------------- directories


def _layout(root: Path) -> dict[str, Path]:
    """A Bedrock S3 layout on disk: two hours, a data/ folder, permission-check markers, stray files."""
    lines = sample_lines()
    hour = root / HOUR_DIR
    next_hour = root / HOUR_DIR[:-2] / "15"
    paths = {
        "first": write(hour / "20260302T140511Z_0a1b2c3d.json.gz", gzip.compress(b"\n".join(lines[:3]) + b"\n")),
        "second": write(hour / "20260302T140819Z_4e5f6a7b.json.gz", gzip.compress(b"\n".join(lines[3:5]) + b"\n")),
        "later": write(next_hour / "20260302T151130Z_8c9d0e1f.json.gz", gzip.compress(lines[5] + b"\n")),
        "plain": write(next_hour / "exported.jsonl", lines[0] + b"\n"),
    }
    # Offloaded bodies: request/response JSON, not records. Reading them would report problems.
    write(hour / "data" / "7c1e2f4a-3b5d-4e6f-9a01-2b3c4d5e6f70_input.json.gz",
          gzip.compress(b'{"messages":[{"role":"user","content":[{"text":"long document"}]}]}\n'))
    write(hour / "data" / "7c1e2f4a-3b5d-4e6f-9a01-2b3c4d5e6f70_output.json.gz", gzip.compress(b'{"output":{}}\n'))
    write(hour / "data" / "nested" / "x.json", b'{"not": "a record"}\n')
    # Bedrock's permission-check marker (with and without a log-like suffix).
    write(root / f"AWSLogs/{ACCT}/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check", b"")
    write(root / f"AWSLogs/{ACCT}/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check.json",
          b"permission check\n")
    # Files that are not logs.
    write(hour / "README.txt", b"not a log\n")
    write(hour / "20260302T140511Z_0a1b2c3d.json.gz.tmp", b"partial download")
    write(root / ".DS_Store", b"\x00\x01")
    return paths


def test_directory_walk_follows_bedrock_layout_and_skips_data_and_markers(tmp_path):
    paths = _layout(tmp_path / "bucket")
    objects = find_log_objects([tmp_path / "bucket"])
    assert [o.location for o in objects] == [
        str(paths["first"]), str(paths["second"]), str(paths["later"]), str(paths["plain"])]
    assert [o.size for o in objects] == [p.stat().st_size for p in
                                        (paths["first"], paths["second"], paths["later"], paths["plain"])]
    got, problems, advances, _ = read_all([tmp_path / "bucket"])
    assert problems == []
    lines = sample_lines()
    assert [line for _, _, line in got] == lines + [lines[0]]
    assert [(loc, n) for loc, n, _ in got] == [
        (str(paths["first"]), 1), (str(paths["first"]), 2), (str(paths["first"]), 3),
        (str(paths["second"]), 1), (str(paths["second"]), 2),
        (str(paths["later"]), 1), (str(paths["plain"]), 1)]
    assert sum(advances) == sum(o.size for o in objects)


def test_directory_walk_starting_inside_the_layout(tmp_path):
    paths = _layout(tmp_path / "bucket")
    objects = find_log_objects([tmp_path / "bucket" / HOUR_DIR])
    assert [o.location for o in objects] == [str(paths["first"]), str(paths["second"])]


def test_a_file_named_explicitly_is_read_even_inside_data(tmp_path):
    _layout(tmp_path / "bucket")
    body = tmp_path / "bucket" / HOUR_DIR / "data" / "nested" / "x.json"
    assert find_log_objects([body]) == [LogObject(str(body), body.stat().st_size)]


def test_several_locations_keep_the_order_given(tmp_path):
    lines = sample_lines()
    b = write(tmp_path / "b.jsonl", lines[1] + b"\n")
    a = write(tmp_path / "a.jsonl", lines[0] + b"\n")
    assert [o.location for o in find_log_objects([b, a])] == [str(b), str(a)]


def test_missing_path_is_a_source_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-dir" / "logs.json.gz"
    with pytest.raises(SourceError) as info:
        find_log_objects([str(missing)])
    assert str(missing) in str(info.value)
    assert isinstance(info.value, InputError)


def test_missing_path_after_a_good_one_still_fails(tmp_path):
    good = write(tmp_path / "a.jsonl", sample_lines()[0] + b"\n")
    with pytest.raises(SourceError, match="nowhere.jsonl"):
        find_log_objects([good, tmp_path / "nowhere.jsonl"])


# ---------------------------------------------------------------------- broken gzip


def test_truncated_gzip_is_reported_and_lines_before_the_cut_are_kept(tmp_path):
    lines = sample_lines()
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    path = write(tmp_path / "truncated.json.gz", whole[: len(whole) * 2 // 3])
    got, problems, advances, _ = read_all([path])
    assert len(problems) == 1
    problem = problems[0]
    assert problem.location == str(path)
    assert "truncated" in problem.message
    kept = [line for _, _, line in got]
    assert len(kept) in range(1, 6)
    assert kept == lines[: len(kept)]
    assert problem.line == len(kept) + 1  # the first line that could not be read
    assert str(problem) == f"{path}:{problem.line}: {problem.message}"
    assert sum(advances) == path.stat().st_size


def test_corrupt_gzip_is_reported_and_other_files_are_still_read(tmp_path):
    lines = sample_lines()
    data = bytearray(gzip.compress(b"\n".join(lines) + b"\n"))
    data[30:60] = b"\xff" * 30  # garbage inside the deflate stream
    bad = write(tmp_path / "a-corrupt.json.gz", bytes(data))
    good = write(tmp_path / "b-good.jsonl", lines[0] + b"\n")
    got, problems, _, _ = read_all([tmp_path])
    assert len(problems) == 1
    assert problems[0].location == str(bad)
    assert problems[0].line >= 1
    assert "corrupt gzip" in problems[0].message
    assert (str(good), 1, lines[0]) in got
    assert all(loc == str(bad) for loc, _, _ in got if loc != str(good))


def test_truncated_member_after_a_complete_one(tmp_path):
    lines = sample_lines()
    first = gzip.compress(b"\n".join(lines[:2]) + b"\n")
    second = gzip.compress(b"\n".join(lines[2:]) + b"\n")
    path = write(tmp_path / "two.json.gz", first + second[:20])
    got, problems, _, _ = read_all([path])
    assert [line for _, _, line in got][:2] == lines[:2]
    assert len(problems) == 1 and "truncated" in problems[0].message
    assert problems[0].line >= 3


def test_a_data_folder_above_the_bedrock_layout_is_walked(tmp_path):
    # e.g. a bucket synced locally whose logging keyPrefix is "data": data/AWSLogs/<acct>/...
    log = write(tmp_path / "bucket" / "data" / HOUR_DIR / "20260302T140511Z_0a1b2c3d.json.gz",
                gzip.compress(sample_lines()[0] + b"\n"))
    assert [o.location for o in find_log_objects([tmp_path / "bucket"])] == [str(log)]
