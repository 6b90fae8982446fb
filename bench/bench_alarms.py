"""Alarm evaluation cost: 100 alarms evaluated once a minute, as CPU time per round and % of one core.

    python bench/bench_alarms.py [--records 1000000] [--work bench/out] [--rounds 15]

Generates (once, cached under --work) and imports ~1M Bedrock invocation records spread over
20 hours, defines 100 alarms of every kind — single metrics with and without a ModelId dimension
(Sum, Average, p90/p99), metric math (error rates), seasonal anomaly bands and Logs Insights
query alarms — and runs --rounds consecutive one-minute evaluation rounds with an injected clock
inside the data's time span, exactly as the server's scheduler runs them. CPU time is
``time.process_time`` (every thread of the process, DuckDB's included). The target: a round
costs under 5% of one core, i.e. under 3 CPU-seconds per minute.

The first round is reported apart: it also learns the anomaly bands (two weeks of history each),
which the scheduler then re-learns once an hour per alarm, not every minute.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
GROUP = "/aws/bedrock/modelinvocations"


def metric(name: str, stat: str, period: int, model: str | None = None) -> dict:
    return {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": name,
                       "Dimensions": [{"Name": "ModelId", "Value": model}] if model else []},
            "Period": period, "Stat": stat}


def alarms(models: list[str]) -> list[dict]:
    """100 alarm definitions of every kind over the models found in the data."""
    out: list[dict] = []
    per_model = [("Invocations", "Sum", "LessThanThreshold", 1), ("InvocationThrottles", "Sum", "GreaterThanThreshold", 10),
                 ("InvocationLatency", "p99", "GreaterThanThreshold", 20_000), ("OutputTokenCount", "Average",
                                                                                 "GreaterThanThreshold", 2_000),
                 ("CostUSD", "Sum", "GreaterThanThreshold", 5)]
    for i, model in enumerate(models * 8):
        if len(out) == 40:
            break
        name, stat, operator, threshold = per_model[i % len(per_model)]
        single = {"AlarmName": f"m{i:02d}-{name}", "MetricName": name, "Namespace": "AWS/Bedrock",
                  "Dimensions": [{"Name": "ModelId", "Value": model}], "Period": 60 if i % 2 else 300,
                  "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": threshold, "ComparisonOperator": operator,
                  "TreatMissingData": "notBreaching", "ActionsEnabled": False}
        single["ExtendedStatistic" if stat.startswith("p") else "Statistic"] = stat
        out.append(single)
    overall = [("InvocationLatency", "p90"), ("InvocationLatency", "Average"), ("InvocationLatency", "Maximum"),
               ("TimeToFirstToken", "p50"), ("InvocationServerErrors", "Sum"), ("InvocationClientErrors", "Sum"),
               ("InputTokenCount", "Sum"), ("EstimatedTPMQuotaUsage", "Maximum"), ("CostUSD", "Sum"),
               ("Invocations", "SampleCount")]
    for i in range(20):
        name, stat = overall[i % len(overall)]
        single = {"AlarmName": f"all{i:02d}-{name}-{stat}", "MetricName": name, "Namespace": "AWS/Bedrock",
                  "Period": 60 * (1 + i % 5), "EvaluationPeriods": 1 + i % 4, "Threshold": 1e9,
                  "ComparisonOperator": "GreaterThanThreshold", "ActionsEnabled": False}
        single["ExtendedStatistic" if stat.startswith("p") else "Statistic"] = stat
        out.append(single)
    for i in range(15):
        model = models[i % len(models)]
        out.append({"AlarmName": f"math{i:02d}-error-rate", "EvaluationPeriods": 5, "DatapointsToAlarm": 3,
                    "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold", "ActionsEnabled": False, "Metrics": [
                        {"Id": "ok", "MetricStat": metric("Invocations", "Sum", 60, model), "ReturnData": False},
                        {"Id": "thr", "MetricStat": metric("InvocationThrottles", "Sum", 60, model), "ReturnData": False},
                        {"Id": "err", "MetricStat": metric("InvocationServerErrors", "Sum", 60, model),
                         "ReturnData": False},
                        {"Id": "rate", "Expression": "(FILL(thr, 0) + FILL(err, 0)) / (FILL(ok, 0) + 1) * 100"}]})
    for i in range(10):
        model = models[i % len(models)]
        out.append({"AlarmName": f"band{i:02d}-traffic", "EvaluationPeriods": 3, "ThresholdMetricId": "band",
                    "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "ActionsEnabled": False,
                    "Metrics": [{"Id": "calls", "MetricStat": metric("Invocations", "Sum", 300, model)},
                                {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(calls, 2)"}]})
    queries = ["filter throttled = 1 | stats count(*)",
               "filter latencyMs > 20000 | stats count(*)",
               "stats avg(latencyMs)",
               "stats sum(costUsd)",
               "filter ispresent(errorCode) | stats count(*)"]
    for i in range(15):
        out.append({"AlarmName": f"query{i:02d}", "EvaluationPeriods": 2, "Threshold": 1e9,
                    "ComparisonOperator": "GreaterThanThreshold", "ActionsEnabled": False,
                    "Metrics": [{"Id": "q", "Period": 60 * (1 + i % 3),
                                 "Expression": f"SOURCE '{GROUP}' | {queries[i % len(queries)]}"}]})
    assert len(out) == 100, len(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--work", default="bench/out")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    hours = max(6.0, args.records / 50_000)
    data = Path(args.work) / f"alarms-data-{args.records}"
    if not (data / ".complete").exists():
        logs = Path(args.work) / f"alarms-logs-{args.records}"
        if not (logs / ".complete").exists():
            write_bedrock_layout(SampleSpec(records=args.records, hours=hours, start=START), logs)
            (logs / ".complete").write_text("")
        with Dashcam.open(data) as dashcam:
            summary = dashcam.import_logs([logs])
        (data / ".complete").write_text(str(summary.written))

    with Dashcam.open(data) as dashcam, tempfile.TemporaryDirectory() as alarm_dir:
        total = dashcam.store.execute("SELECT count(*) FROM events")[0][0]
        models = [r["modelId"] for r in dashcam.query("stats count(*) as n by modelId | sort n desc").rows][:8]
        dashcam.data_dir = Path(alarm_dir)  # alarms of this run only, not the cached data directory's
        for definition in alarms(models):
            dashcam.alarms.put(definition)
        scheduler = dashcam.alarm_scheduler()
        first_now = int(START.timestamp() * 1000) + int(hours * 0.6 * 3_600_000) // 60_000 * 60_000 + 10_000
        cpu, wall, changes = [], [], 0
        for n in range(args.rounds + 1):
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            report = scheduler.run_once(first_now + n * 60_000)
            cpu.append(time.process_time() - cpu_before)
            wall.append(time.perf_counter() - wall_before)
            changes += len(report.changed)
        states = [a.state.value for a in dashcam.alarms.describe()]
        dashcam.alarms.close()  # before its directory goes

    steady = cpu[1:]
    print(f"{total:,} records; 100 alarms (40 per-model metrics, 20 all-model metrics, 15 metric math, "
          f"10 anomaly bands, 15 Logs Insights queries); {args.rounds} one-minute rounds")
    print(f"first round (learns the bands):   {cpu[0]:6.2f} CPU-s  {wall[0]:6.2f} s wall")
    print(f"steady rounds, CPU-s per round:   median {statistics.median(steady):.3f}  max {max(steady):.3f}")
    print(f"steady rounds, wall s per round:  median {statistics.median(wall[1:]):.3f}  max {max(wall[1:]):.3f}")
    print(f"share of one core (median, max):  {statistics.median(steady) / 60 * 100:.2f}%  {max(steady) / 60 * 100:.2f}%"
          f"   (target < 5%)")
    print(f"state changes: {changes}; final states: " + ", ".join(
        f"{s} {states.count(s)}" for s in ("OK", "ALARM", "INSUFFICIENT_DATA")))


if __name__ == "__main__":
    main()
