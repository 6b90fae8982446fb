"""DuckDB vs ClickHouse (chDB, in-process) in the same run: import, the four core questions, storage.

    python bench/bench_clickhouse.py [--records 1000000] [--work bench/out] [--runs 5] [--keep]

Generates the sample logs once per size (cached under --work, shared with bench_query.py), then:
  * import: ``Dashcam.import_logs`` of the same gzip JSON Lines into a fresh DuckDB data directory
    and into a fresh chDB directory — files to committed, normalized, deduplicated rows;
  * the four core questions through dashcam's full path (parse, compile, execute, decode), the
    median of --runs after one warm-up: on DuckDB; on chDB as dashcam reads it (no FINAL: one
    writer); with FINAL, as dashcam reads a ClickHouse server — right after the import, and
    again once the parts are merged (``OPTIMIZE TABLE ... FINAL``, what background merges reach);
  * bytes on disk of each store (chDB: active parts only; replaced parts linger for minutes).
Both stores stay under --work (or a temporary directory without --work) only with --keep.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from dashcam.query.library import CORE_QUESTIONS
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout
from dashcam.store import open_store

from bench_query import median_ms  # noqa: E402 - bench/ is on sys.path when run as a script

def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--work", default="bench/out")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="Keep both stores after the run.")
    args = parser.parse_args()

    logs = Path(args.work) / f"query-logs-{args.records}"
    if not (logs / ".complete").exists() and not (logs / "AWSLogs").exists():  # bench_query.py made it
        print(f"generating {args.records:,} records under {logs}")
        write_bedrock_layout(SampleSpec(records=args.records, hours=max(6.0, args.records / 50_000)), logs)
        (logs / ".complete").write_text("ok")
    root = Path(tempfile.mkdtemp(prefix="bench-ch-", dir=args.work))
    stores = {"duckdb": str(root / "duckdb"), "chdb": f"chdb://{root / 'chdb'}"}
    try:
        print(f"{'store':8} {'import s':>9} {'records/s':>11} {'on disk MB':>11}")
        for name, url in stores.items():
            with Dashcam(open_store(url)) as dashcam:
                summary = dashcam.import_logs([logs])
            size = _size(root / name) if name == "duckdb" else dashcam.store.execute(
                "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = currentDatabase()")[0][0]
            print(f"{name:8} {summary.seconds:9.1f} {summary.written / summary.seconds:11,.0f} {size / 1e6:11.1f}")

        timings: dict[str, dict[str, float]] = {}
        rows: dict[str, int] = {}
        for name, url in [*stores.items(), ("final", stores["chdb"] + "?final=1"),
                          ("merged", stores["chdb"] + "?final=1")]:
            with Dashcam(open_store(url)) as dashcam:
                if name == "merged":
                    dashcam.store.execute("SELECT 1")
                    dashcam.store._writer.command("OPTIMIZE TABLE events FINAL")
                total = dashcam.store.execute("SELECT count(*) FROM events")[0][0]
                assert total == args.records, (name, total)
                timings[name] = {}
                for saved in CORE_QUESTIONS:
                    result = dashcam.query(saved.text)
                    assert rows.setdefault(saved.key, len(result.rows)) == len(result.rows), (name, saved.key)
                    timings[name][saved.key] = median_ms(lambda: dashcam.query(saved.text), args.runs)
        print(f"\n{args.records:,} records; median of {args.runs} runs, ms (dashcam's full query path)")
        print(f"{'question':10} {'duckdb':>8} {'chdb':>8} {'FINAL':>8} {'merged':>8} {'chdb/duckdb':>12}  rows")
        for saved in CORE_QUESTIONS:
            d, c, f, m = (timings[s][saved.key] for s in ("duckdb", "chdb", "final", "merged"))
            print(f"{saved.key:10} {d:8.1f} {c:8.1f} {f:8.1f} {m:8.1f} {c / d:12.2f}  {rows[saved.key]}")
    finally:
        if args.keep:
            print(f"\nstores kept under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
