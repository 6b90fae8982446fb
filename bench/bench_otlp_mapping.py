"""OTLP mapping cost in process: CPU µs per GenAI span from request bytes to the event table.

    python bench/bench_otlp_mapping.py [--batches 24] [--batch 512] [--rounds 5] [--profile [N]]

Times, with ``time.process_time()`` (CPU of this process, so a busy neighbour on a shared machine
skews it less than wall time), exactly what the server runs for each ``POST /v1/traces`` before
the commit: :func:`dashcam.api.otlp.traces_table` — protobuf decode, the GenAI mapping, the
event table (serialized records, normalized hot columns, event ids) and freeing the records. No
HTTP and no store. The payloads are :func:`bench_otlp.make_batches`' (OpenInference LLM spans
with the OTel GenAI attributes, a short prompt and answer each), so the figure is the mapping
share of ``bench/bench_otlp.py``'s "µs per span".

Prints µs/span for each round and the median. ``--profile`` runs one more round under cProfile
and prints the top ``N`` functions by own time (cProfile inflates small functions: use it to
find where the time goes, and the timed rounds to see what a change saves).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import io
import pstats
import statistics
import time
from pathlib import Path

from dashcam.api.otlp import traces_table
from dashcam.sources.otlp import JoinBuffer


def _make_batches():
    # bench/ is not a package: load its sibling by path.
    path = Path(__file__).with_name("bench_otlp.py")
    spec = importlib.util.spec_from_file_location("bench_otlp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_batches


def one_round(batches: list[bytes], join: JoinBuffer) -> tuple[float, int]:
    """(CPU seconds, records written) for mapping every batch once, as the server would."""
    written = 0
    started = time.process_time()
    for raw in batches:
        _, table, count = traces_table(raw, "identity", "protobuf", join, hold=True)
        written += count
        del table
    return time.process_time() - started, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=24, help="distinct requests per round")
    parser.add_argument("--batch", type=int, default=512, help="spans per request (bench_otlp's default)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=int, nargs="?", const=30, default=0, metavar="N",
                        help="after timing, profile one round and print the top N functions (default 30)")
    args = parser.parse_args()

    batches = _make_batches()(args.batches, args.batch)
    spans = args.batches * args.batch
    join = JoinBuffer()
    one_round(batches[:2], join)  # warm caches (lru caches, name facts) as a running server has them
    per_span = []
    for index in range(args.rounds):
        gc.collect()
        seconds, written = one_round(batches, join)
        if written != spans:
            raise SystemExit(f"expected {spans} records, the mapping wrote {written}")
        per_span.append(seconds / spans * 1e6)
        print(f"round {index + 1}: {per_span[-1]:6.1f} µs/span ({spans} spans, {seconds:.2f} s CPU)")
    median = statistics.median(per_span)
    print(f"median of {args.rounds}: {median:.1f} µs CPU per span (best {min(per_span):.1f}) "
          f"= {1e6 / median:,.0f} spans per CPU-second")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        one_round(batches, join)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())


if __name__ == "__main__":
    main()
