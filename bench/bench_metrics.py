"""GetMetricData at scale: 6 metrics x every model over 7 days at a 1-minute period, one request.

    python bench/bench_metrics.py [--records 10000000] [--work bench/out] [--runs 5]

Target (DESIGN.md, metrics): under 500 ms on 10 million records on DuckDB. Uses the same cached
store as bench_query.py (``--work/data-<records>``, generated and imported on first use), opened
read-only so another benchmark may share it. Prints the median and the best of ``--runs`` runs
(after one warm-up), wall and CPU time, of dashcam's full path (checks, SQL, rows to series) and
of one hand-written DuckDB SQL that computes the same numbers, fetched as Arrow as dashcam fetches
its rows (so the ratio compares the SQL, not Python's row conversion), and checks that both agree.
The two are timed in alternation, so load from other jobs on a shared machine falls on both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from dashcam.metrics.engine import MetricQuery, MetricStat, get_metric_data
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout
from dashcam.store.duckdb import DuckDBStore

WEEK_MS = 7 * 86_400_000
# (metric, statistic) pairs: counters summed, latency at the 99th percentile, TTFT averaged.
ASKED = (("Invocations", "Sum"), ("InvocationThrottles", "Sum"), ("InvocationLatency", "p99"),
         ("InputTokenCount", "Sum"), ("OutputTokenCount", "Sum"), ("TimeToFirstToken", "Average"))

HAND_WRITTEN = """
SELECT epoch_us(ts) // 60000000 AS minute, model_id,
       sum(1) FILTER (WHERE error_code IS NULL AND coalesce(throttled, 0) = 0) AS invocations,
       sum(1) FILTER (WHERE throttled = 1) AS throttles,
       quantile_disc(latency_ms, 0.99) FILTER (WHERE error_code IS NULL AND coalesce(throttled, 0) = 0) AS p99,
       sum(input_tokens) FILTER (WHERE error_code IS NULL AND coalesce(throttled, 0) = 0) AS input_tokens,
       sum(output_tokens) FILTER (WHERE error_code IS NULL AND coalesce(throttled, 0) = 0) AS output_tokens,
       avg(ttft_ms) FILTER (WHERE error_code IS NULL AND coalesce(throttled, 0) = 0
                            AND operation IN ('ConverseStream', 'InvokeModelWithResponseStream')) AS ttft
FROM events
WHERE ts >= epoch_ms({start}) AND ts < epoch_ms({end}) AND model_id IN ({models})
GROUP BY ALL
"""


def timings_ms(funcs, runs: int) -> list[dict[str, float]]:
    """Per function: median and best wall time and CPU time (all threads of this process) in ms
    over ``runs`` calls, after one warm-up call each; the functions take turns, so a burst of load
    from elsewhere hits them alike. On a shared machine the CPU time is the steadier figure."""
    for func in funcs:
        func()
    walls: list[list[float]] = [[] for _ in funcs]
    cpus: list[list[float]] = [[] for _ in funcs]
    for _ in range(runs):
        for i, func in enumerate(funcs):
            started, cpu = time.perf_counter(), time.process_time()
            func()
            walls[i].append((time.perf_counter() - started) * 1000)
            cpus[i].append((time.process_time() - cpu) * 1000)
    return [{"wall": statistics.median(w), "cpu": statistics.median(c), "best wall": min(w), "best cpu": min(c)}
            for w, c in zip(walls, cpus)]


def cached_store(records: int, work: Path) -> Path:
    """The data directory holding ``records`` generated records, imported on first use."""
    data = work / f"data-{records}"
    if not (data / ".complete").exists():
        logs = work / f"query-logs-{records}"
        write_bedrock_layout(SampleSpec(records=records, hours=max(6.0, records / 50_000)), logs)
        with Dashcam.open(data) as dashcam:
            summary = dashcam.import_logs([logs])
        (data / ".complete").write_text(str(summary.written))
    return data


def main() -> None:
    """Build or reuse the store, check both answers agree, time them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--work", default="bench/out")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    store = DuckDBStore(cached_store(args.records, Path(args.work)), read_only=True)
    try:
        total, first_ms = store.execute("SELECT count(*), epoch_ms(min(ts)) FROM events")[0]
        models = [m for (m,) in store.execute(
            "SELECT model_id FROM events WHERE model_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 8")]
        start = first_ms // 60_000 * 60_000
        end = start + WEEK_MS
        queries = [MetricQuery(f"m{i}_{j}", MetricStat(metric, 60, stat, (("ModelId", model),)))
                   for i, (metric, stat) in enumerate(ASKED) for j, model in enumerate(models)]
        print(f"{total:,} records; {len(ASKED)} metrics x {len(models)} models = {len(queries)} series, "
              "7 days at 60 s")

        results = get_metric_data(store, queries, start, end)
        quoted = ", ".join("'" + m.replace("'", "''") + "'" for m in models)
        sql = HAND_WRITTEN.format(start=start, end=end, models=quoted)
        _check_same(results, store.execute(sql), models)
        points = sum(len(r.timestamps) for r in results)

        ours, theirs = timings_ms([lambda: get_metric_data(store, queries, start, end),
                                   lambda: store.execute_arrow(sql)], args.runs)
        columns = ("wall", "cpu", "best wall", "best cpu")
        print(f"{'':22} {'wall ms':>9} {'CPU ms':>9} {'best wall':>9} {'best CPU':>9}  (median of {args.runs}, best)")
        print(f"dashcam GetMetricData: " + " ".join(f"{ours[c]:9.1f}" for c in columns)
              + f"  ({points:,} datapoints, full path)")
        print(f"hand-written SQL:      " + " ".join(f"{theirs[c]:9.1f}" for c in columns) + "  (execute, Arrow)")
        print(f"ratio:                 " + " ".join(f"{ours[c] / theirs[c]:9.2f}" for c in columns))
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; target < 500 ms wall on 10M "
              f"records: {'met' if ours['wall'] < 500 else 'NOT met'} here (median), at {total:,} records")
    finally:
        store.close()


def _check_same(results, rows, models) -> None:
    """Both answers agree on every datapoint (a benchmark of a wrong answer measures nothing)."""
    by_id = {r.id: dict(zip(r.timestamps, r.values)) for r in results}
    checked = 0
    for row in rows:
        minute, model = row[0], row[1]
        j = models.index(model)
        for i, value in enumerate(row[2:]):
            ours = by_id[f"m{i}_{j}"].get(minute * 60_000)
            if value is None:
                assert ours is None, (i, model, minute, ours)
            else:
                assert ours is not None and abs(ours - float(value)) <= 1e-9 * max(1.0, abs(float(value))), \
                    (i, model, minute, ours, value)
                checked += 1
    print(f"answers agree on {checked:,} datapoints", file=sys.stderr)


if __name__ == "__main__":
    main()
