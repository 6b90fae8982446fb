"""Import throughput: dashcam import end to end vs DuckDB's own read_json on the same files.

    python bench/bench_import.py [--records 1000000] [--runs 1] [--work bench/out]

Generates the sample logs once (cached under --work), then in the same run measures:
  * dashcam: `Dashcam.import_logs` into a fresh data directory — gzip JSON Lines to committed,
    normalized, deduplicated rows (what `dashcam import` does, minus the progress bar);
  * DuckDB read_json: `CREATE TABLE AS SELECT * FROM read_json(...)` over the same files into a
    fresh database file — the engine's own limit for reading this JSON on this machine.
Prints records/s for each and the ratio. With ``--runs N`` both are measured N times, alternating
(a shared machine's speed drifts from minute to minute), and the medians and ratios are printed too.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--work", default="bench/out")
    args = parser.parse_args()

    logs = Path(args.work) / f"logs-{args.records}"
    if not (logs / ".complete").exists():
        shutil.rmtree(logs, ignore_errors=True)
        started = time.perf_counter()
        summary = write_bedrock_layout(SampleSpec(records=args.records, hours=max(6.0, args.records / 50_000)), logs)
        (logs / ".complete").write_text(str(summary.records))
        print(f"generated {summary.records:,} records, {summary.bytes_written / 1e6:,.0f} MB gzip, "
              f"in {time.perf_counter() - started:.1f}s")
    size = sum(p.stat().st_size for p in logs.rglob("*.json.gz"))
    print(f"input: {args.records:,} records in {size / 1e6:,.0f} MB of gzip JSON Lines")

    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(_dashcam_import(logs, args))
        print(f"dashcam import:  {ours[-1]:7.2f}s  {args.records / ours[-1]:10,.0f} records/s")
        theirs.append(_read_json(logs, args))
        print(f"duckdb read_json:{theirs[-1]:7.2f}s  {args.records / theirs[-1]:10,.0f} records/s")
        print(f"ratio dashcam / read_json: {theirs[-1] / ours[-1]:.2f}")
    if args.runs > 1:
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        print(f"median of {args.runs}: dashcam {args.records / ours_median:,.0f} records/s (best "
              f"{args.records / min(ours):,.0f}), read_json {args.records / theirs_median:,.0f}, "
              f"ratio {theirs_median / ours_median:.2f}")


def _dashcam_import(logs: Path, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(dir=args.work) as data:
        started = time.perf_counter()
        with Dashcam.open(data) as dashcam:
            summary = dashcam.import_logs([logs])
        seconds = time.perf_counter() - started
        assert summary.written == args.records, summary
    return seconds


def _read_json(logs: Path, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        con = duckdb.connect(str(Path(scratch) / "read_json.duckdb"))
        started = time.perf_counter()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_json('{logs}/**/*.json.gz', format='newline_delimited')")
        con.execute("CHECKPOINT")
        seconds = time.perf_counter() - started
        count = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.close()
        assert count == args.records, count
    return seconds


if __name__ == "__main__":
    main()
