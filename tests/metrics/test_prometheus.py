"""The store's Prometheus families (dashcam.metrics.prometheus) on both engines.

Records are generated from a seed with a known outcome each; the expected figures are computed
here from those records (normalized as ingestion normalizes them), and the exposition is read
back with prometheus_client's own parser.
"""

from __future__ import annotations

import copy
import random
from collections import Counter, defaultdict
from datetime import datetime, timezone

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dashcam.metrics.prometheus import (
    LATENCY_BUCKETS_MS, TTFT_BUCKETS_MS, ScrapeCache, StoreCollector, outcome_of, protection_families,
)
from dashcam.records import normalize

T0 = int(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc).timestamp() * 1000)
MODELS = ("anthropic.claude-haiku-4-5-20251001-v1:0", "amazon.nova-lite-v1:0",
          "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "acme.mystery-v1", None)
ERRORS = {  # error code -> the outcome it must be counted as
    "ThrottlingException": "throttled", "429": "throttled",
    "ValidationException": "client_error", "AccessDeniedException": "client_error", "400": "client_error",
    "InternalServerException": "server_error", "ServiceUnavailableException": "server_error", "503": "server_error",
}
# Latencies on and around bucket bounds, so an off-by-one in `le` shows.
LATENCIES = (3.2, 10.0, 10.5, 640.0, 640.5, 1999.0, 81920.0, 90000.0, None)
TTFTS = (0.5, 1.0, 100.0, 100.1, 7500.0, 12000.0, None)


def generate(count: int, seed: int) -> list[dict]:
    """``count`` Bedrock-shaped records, each with a ``_outcome`` key saying how it ended."""
    rng = random.Random(seed)
    records = []
    for n in range(count):
        model = rng.choice(MODELS)
        operation = rng.choice(("Converse", "ConverseStream", "InvokeModel"))
        record = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
                  "timestamp": T0 + n * 1_000, "requestId": f"r-{seed}-{n}", "operation": operation,
                  "input": {"inputTokenCount": rng.randint(1, 5_000)}}
        if model:
            record["modelId"] = model
        if rng.random() < 0.3:
            code = rng.choice(sorted(ERRORS))
            record["errorCode"] = code
            record["_outcome"] = ERRORS[code]
        else:
            record["_outcome"] = "success"
            record["output"] = {"outputTokenCount": rng.randint(0, 2_000)}
            if rng.random() < 0.4:
                record["input"]["cacheReadInputTokenCount"] = rng.randint(0, 3_000)
                record["input"]["cacheWriteInputTokenCount"] = rng.randint(0, 1_000)
            latency = rng.choice(LATENCIES)
            if latency is not None:
                record["latencyMs"] = latency
            # Non-streaming records with a first-token time too: the histogram must leave them out.
            ttft = rng.choice(TTFTS)
            if ttft is not None:
                record["timeToFirstTokenMs"] = ttft
        records.append(record)
    return records


def stored(records: list[dict]) -> list[dict]:
    """The invocation records (those naming a model) as the store derives their fields (cost,
    throttled), without the test's keys; events without a model are not invocations."""
    out = []
    for record in records:
        if not record.get("modelId"):
            continue
        clean = {k: v for k, v in copy.deepcopy(record).items() if not k.startswith("_")}
        out.append(normalize(clean, source="api") | {"_outcome": record["_outcome"]})
    return out


def write(store, group: str, records: list[dict]) -> None:
    store.write_records(group, "s", [{k: v for k, v in r.items() if not k.startswith("_")} for r in records],
                        source="api")


def scrape(collector) -> dict:
    """{family name: {(sample name, sorted labels): value}} from the text exposition."""
    text = generate_latest(collector).decode()
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def labels(**pairs: str) -> tuple:
    return tuple(sorted(pairs.items()))


@pytest.fixture
def populated(store_of):
    store = store_of()
    records = {"/app/a": generate(400, seed=1), "/app/b": generate(150, seed=2)}
    for group, batch in records.items():
        write(store, group, batch)
    return store, records


def test_invocations_throttles_and_errors_match_the_records(populated):
    store, records = populated
    everything = stored(records["/app/a"] + records["/app/b"])
    metrics = scrape(StoreCollector(ScrapeCache(store)))

    expected = Counter((r["modelId"], r["operation"], r["_outcome"]) for r in everything)
    got = {
        (dict(k[1])["model"], dict(k[1])["operation"], dict(k[1])["outcome"]): v
        for k, v in metrics["dashcam_invocations"].items()}
    assert got == {k: float(v) for k, v in expected.items()}
    assert sum(got.values()) == len(everything)

    throttles = Counter(r["modelId"] for r in everything if r["_outcome"] == "throttled")
    models = {r["modelId"] for r in everything}
    assert {dict(k[1])["model"]: v for k, v in metrics["dashcam_invocation_throttles"].items()} == {
        m: float(throttles.get(m, 0)) for m in models}

    errors = Counter((r["modelId"], r["errorCode"], r["_outcome"]) for r in everything
                     if r["_outcome"] != "success")
    kinds = {"throttled": "throttle", "client_error": "client", "server_error": "server"}
    assert {(dict(k[1])["model"], dict(k[1])["error_code"], dict(k[1])["type"]): v
            for k, v in metrics["dashcam_invocation_errors"].items()} == {
        (m, code, kinds[outcome]): float(n) for (m, code, outcome), n in errors.items()}


def test_tokens_and_cost_match_the_records(populated):
    store, records = populated
    everything = stored(records["/app/a"] + records["/app/b"])
    metrics = scrape(StoreCollector(ScrapeCache(store)))
    paths = {"input": ("input", "inputTokenCount"), "output": ("output", "outputTokenCount"),
             "cache_read": ("input", "cacheReadInputTokenCount"), "cache_write": ("input", "cacheWriteInputTokenCount")}
    expected_tokens: dict = defaultdict(float)
    expected_cost: dict = defaultdict(float)
    unpriced: dict = defaultdict(float)
    for r in everything:
        model = r["modelId"]
        for kind, (part, key) in paths.items():
            expected_tokens[(model, kind)] += (r.get(part) or {}).get(key) or 0
        if r["costUsd"] is None:
            unpriced[model] += 1
        else:
            expected_cost[model] += r["costUsd"]
    assert {(dict(k[1])["model"], dict(k[1])["type"]): v for k, v in metrics["dashcam_tokens"].items()} == dict(
        expected_tokens)
    cost = {dict(k[1])["model"]: v for k, v in metrics["dashcam_cost_usd"].items()}
    assert cost == pytest.approx({m: expected_cost.get(m, 0.0) for m in cost}, rel=1e-9)
    assert cost["acme.mystery-v1"] == 0.0 and expected_cost["anthropic.claude-haiku-4-5-20251001-v1:0"] > 0
    got_unpriced = {dict(k[1])["model"]: v for k, v in metrics["dashcam_unpriced_invocations"].items()}
    assert {m: v for m, v in got_unpriced.items() if v} == dict(unpriced)
    assert unpriced["acme.mystery-v1"] > 0  # an unknown model is counted as unpriced, never as $0


@pytest.mark.parametrize("family, field, bounds", [
    ("dashcam_invocation_latency_seconds", "latencyMs", LATENCY_BUCKETS_MS),
    ("dashcam_time_to_first_token_seconds", "timeToFirstTokenMs", TTFT_BUCKETS_MS),
])
def test_histograms_are_cumulative_and_agree_with_the_records(populated, family, field, bounds):
    store, records = populated
    everything = stored(records["/app/a"] + records["/app/b"])
    samples = scrape(StoreCollector(ScrapeCache(store)))[family]
    values: dict = defaultdict(list)
    for r in everything:
        streams_only = field == "timeToFirstTokenMs"
        if r["_outcome"] == "success" and r.get(field) is not None and (
                not streams_only or r["operation"] in ("ConverseStream", "InvokeModelWithResponseStream")):
            values[r["modelId"]].append(r[field])
    assert values, "the generator must produce observations"
    for model, observed in values.items():
        buckets = [(float(dict(k[1])["le"]), v) for k, v in samples.items()
                   if k[0] == f"{family}_bucket" and dict(k[1])["model"] == model]
        buckets.sort()
        assert [le for le, _ in buckets] == [b / 1000 for b in bounds] + [float("inf")]
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "buckets must be cumulative"
        assert counts == [float(sum(1 for x in observed if x <= b)) for b in bounds] + [float(len(observed))]
        assert samples[(f"{family}_count", labels(model=model))] == len(observed) == counts[-1]
        assert samples[(f"{family}_sum", labels(model=model))] == pytest.approx(sum(observed) / 1000)
    # Models without a single observation have no histogram at all.
    assert {dict(k[1])["model"] for k in samples} == set(values)


def test_log_group_gauges_and_scope(populated):
    store, records = populated
    metrics = scrape(StoreCollector(ScrapeCache(store)))
    assert {dict(k[1])["log_group"]: v for k, v in metrics["dashcam_log_group_events"].items()} == {
        g: float(len(rs)) for g, rs in records.items()}
    assert set(dict(k[1])["log_group"] for k in metrics["dashcam_log_group_last_ingestion_timestamp_seconds"]) == {
        "/app/a", "/app/b"}

    only_b = scrape(StoreCollector(ScrapeCache(store), ["/app/b"]))
    assert sum(only_b["dashcam_invocations"].values()) == len(stored(records["/app/b"]))
    assert {dict(k[1])["log_group"] for k in only_b["dashcam_log_group_events"]} == {"/app/b"}
    nothing = scrape(StoreCollector(ScrapeCache(store), []))
    assert nothing["dashcam_invocations"] == {} and nothing["dashcam_log_group_events"] == {}


def test_results_are_cached_until_they_are_stale(store_of):
    store = store_of()
    first, second = generate(20, seed=3), generate(30, seed=4)
    write(store, "/app/a", first)
    now = [1000.0]
    cache = ScrapeCache(store, seconds=5, clock=lambda: now[0])

    def total() -> float:
        return sum(scrape(StoreCollector(cache))["dashcam_invocations"].values())

    assert total() == len(stored(first))
    write(store, "/app/a", second)
    now[0] += 4.9
    assert total() == len(stored(first))  # still fresh: the store is not asked again
    now[0] += 0.2
    assert total() == len(stored(first + second)) > len(stored(first))


def test_outcome_classes():
    assert [outcome_of(None, 0), outcome_of("ThrottlingException", 1), outcome_of("ValidationException", 0),
            outcome_of("InternalServerException", 0), outcome_of("502", 0), outcome_of("404", 0)] == [
        "success", "throttled", "client_error", "server_error", "server_error", "client_error"]


class _Families:
    """A collector yielding given families, for the exposition encoder."""

    def __init__(self, families) -> None:
        self.families = families

    def collect(self):
        return iter(self.families)


def test_protection_counts_become_counters_scoped_to_log_groups():
    masked = {("/app/a", "email"): 3, ("/app/a", "ticket"): 1, ("/app/b", "credit-card"): 2}
    dropped = {("/app/b", "text"): 4, ("/app/b", "image"): 5}
    changed = {"/app/a": 3, "/app/b": 6}
    metrics = scrape(_Families(protection_families(masked, dropped, changed)))
    assert metrics["dashcam_protection_masked_findings"] == {
        ("dashcam_protection_masked_findings_total", labels(log_group=g, detector=d)): float(n)
        for (g, d), n in masked.items()}
    assert metrics["dashcam_protection_dropped_body_items"] == {
        ("dashcam_protection_dropped_body_items_total", labels(log_group=g, modality=m)): float(n)
        for (g, m), n in dropped.items()}
    assert metrics["dashcam_protection_changed_events"] == {
        ("dashcam_protection_changed_events_total", labels(log_group=g)): float(n) for g, n in changed.items()}

    only_a = scrape(_Families(protection_families(masked, dropped, changed, ["/app/a"])))
    assert {dict(k[1])["log_group"] for family in only_a.values() for k in family} == {"/app/a"}
    assert only_a["dashcam_protection_dropped_body_items"] == {}
    # Nothing counted yet: the families are still announced (HELP and TYPE), with no samples.
    text = generate_latest(_Families(protection_families({}, {}, {}))).decode()
    assert "# TYPE dashcam_protection_masked_findings_total counter" in text
