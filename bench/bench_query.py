"""The four core questions: dashcam's query vs the best hand-written DuckDB SQL, same data, same run.

    python bench/bench_query.py [--records 1000000] [--work bench/out] [--runs 7]

Imports the generated logs once per size (cached under --work), then for each question runs
dashcam's full path (parse, compile, execute, decode rows) and the hand-written SQL (execute and
fetch, with dashcam's default 10,000-row limit), --runs times each after one warm-up, and prints
the medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from dashcam.query.library import CORE_QUESTIONS
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout

HAND_WRITTEN = {
    "throttles": """SELECT time_bucket(INTERVAL 5 MINUTE, ts) AS period, model_id, count(*) AS throttles
                    FROM events WHERE error_code = 'ThrottlingException'
                    GROUP BY ALL ORDER BY throttles DESC LIMIT 10000""",
    "slowest": """SELECT ts, model_id, operation, latency_ms, input_tokens, output_tokens FROM events
                  WHERE latency_ms IS NOT NULL ORDER BY latency_ms DESC LIMIT 20""",
    "traffic": """SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS minute, count(*), sum(throttled)
                  FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 10000""",
    "tokens": """SELECT model_id, count(*), sum(input_tokens), sum(output_tokens) AS o
                 FROM events GROUP BY 1 ORDER BY o DESC LIMIT 10000""",
}


def median_ms(func, runs: int) -> float:
    """Median wall time of ``func`` in ms over ``runs`` calls, after one warm-up call."""
    func()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--work", default="bench/out")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    data = Path(args.work) / f"data-{args.records}"
    if not (data / ".complete").exists():
        logs = Path(args.work) / f"query-logs-{args.records}"
        write_bedrock_layout(SampleSpec(records=args.records, hours=max(6.0, args.records / 50_000)), logs)
        with Dashcam.open(data) as dashcam:
            summary = dashcam.import_logs([logs])
        (data / ".complete").write_text(str(summary.written))
    with Dashcam.open(data) as dashcam:
        total = dashcam.store.execute("SELECT count(*) FROM events")[0][0]
        print(f"{total:,} records")
        print(f"{'question':10} {'dashcam ms':>11} {'hand SQL ms':>12} {'ratio':>6}  rows")
        for saved in CORE_QUESTIONS:
            result = dashcam.query(saved.text)
            ours = median_ms(lambda: dashcam.query(saved.text), args.runs)
            sql = HAND_WRITTEN[saved.key]
            hand_rows = dashcam.store.execute(sql)
            theirs = median_ms(lambda: dashcam.store.execute(sql), args.runs)
            assert len(hand_rows) == len(result.rows), (saved.key, len(hand_rows), len(result.rows))
            print(f"{saved.key:10} {ours:11.1f} {theirs:12.1f} {ours / theirs:6.2f}  {len(result.rows)}")


if __name__ == "__main__":
    main()
