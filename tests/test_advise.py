"""Recommendations (dashcam.advise) over generated invocations with known patterns, on both engines.

Each scenario plants one pattern: a caller and a prompt template that send far more input than
they get back, a long system prompt repeated by an agent, a whole prompt sent again and again, a
model throttled in two bursts, and an expensive slow model next to faster ones. The expected
figures are computed here from the records written, never copied from the code under test.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timezone

import orjson
import pytest
from click.testing import CliRunner

from dashcam import pricing
from dashcam.advise import (
    CHEAPER_MODEL, FASTER_MODEL, KINDS, PROMPT_CACHING, THROTTLING, TOKEN_WASTE, AdviceSettings, advise,
)
from dashcam.pricing import model_keys

T0 = int(datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc).timestamp() * 1000)
MINUTE = 60_000
GROUP, STREAM = "/aws/bedrock/modelinvocations", "aws/bedrock/modelinvocations"

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
OPUS = "anthropic.claude-opus-4-1-20250805-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"
NOVA_MICRO = "amazon.nova-micro-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"

WASTE_CALLER = "arn:aws:sts::123456789012:assumed-role/summarizer/i-1"
TEMPLATE_CALLER = "arn:aws:sts::123456789012:assumed-role/triage/i-2"
AGENT_CALLER = "arn:aws:sts::123456789012:assumed-role/agent/i-3"
OTHER_CALLER = "arn:aws:sts::123456789012:assumed-role/web/i-4"

SYSTEM_PROMPT = [{"text": "You are the operations agent. " + "Follow the runbook step by step. " * 250}]
TEMPLATE = "Classify this support ticket as P1, P2 or P3. Rules: " + "a P1 stops customers from paying; " * 20
DOCUMENT = "Quarterly report. " + "Revenue grew in every region and costs held steady. " * 120


def _record(n: int, at_ms: int, model: str, *, body: dict, tokens_in: int | None, tokens_out: int,
            caller: str = OTHER_CALLER, app: str = "web", latency_ms: float | None = None,
            error: str | None = None) -> dict:
    record = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z"),
        "accountId": "123456789012", "identity": {"arn": caller}, "region": "us-east-1",
        "requestId": f"req-{n:06d}", "operation": "Converse", "modelId": model,
        "input": {"inputContentType": "application/json", "inputBodyJson": body},
        "requestMetadata": {"app": app},
    }
    if tokens_in is not None:
        record["input"]["inputTokenCount"] = tokens_in
    if error:
        record["errorCode"] = error
    else:
        record["output"] = {"outputContentType": "application/json", "outputTokenCount": tokens_out,
                            "outputBodyJson": {"stopReason": "end_turn"}}
        record["latencyMs"] = latency_ms
    return record


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"text": text}]}]


def planted_records() -> list[dict]:
    """Every scenario's records (see the module docstring)."""
    records: list[dict] = []

    def add(*args, **kwargs) -> None:
        records.append(_record(len(records), *args, **kwargs))

    # Waste by caller: long unique documents, one-line summaries (each prompt starts differently).
    for i in range(30):
        add(T0 + i * 7_000, HAIKU, body={"messages": _user(f"Document {i}: " + DOCUMENT)}, tokens_in=5_000 + i,
            tokens_out=40, caller=WASTE_CALLER, app="summarizer", latency_ms=400.0)
    # Waste by prompt template (and by its caller): one long fixed instruction, then a short ticket.
    for i in range(25):
        add(T0 + i * 9_000, HAIKU, body={"messages": _user(TEMPLATE + f" Ticket {i}: checkout fails.")},
            tokens_in=3_000, tokens_out=4, caller=TEMPLATE_CALLER, app="triage", latency_ms=60.0)
    # A long system prompt repeated by an agent across four 5-minute windows, unique questions.
    for i in range(40):
        add(T0 + (i // 10) * 5 * MINUTE + (i % 10) * 20_000, SONNET,
            body={"system": SYSTEM_PROMPT, "messages": _user(f"Step {i}: what next?")}, tokens_in=2_000,
            tokens_out=300, caller=AGENT_CALLER, app="agent", latency_ms=6_000.0)
    # A whole prompt sent again and again (same document, same question).
    for i in range(24):
        add(T0 + i * 30_000, NOVA_PRO, body={"messages": _user(DOCUMENT + " What changed this quarter?")},
            tokens_in=1_600, tokens_out=200, latency_ms=2_000.0)
    # Throttling: two bursts on Llama (3 minutes, then 1 minute), quiet minutes around them.
    start = T0 + 60 * MINUTE
    for minute, ok, throttled in ((0, 5, 0), (1, 12, 8), (2, 12, 8), (3, 12, 8), (4, 5, 0), (20, 6, 4), (21, 5, 0)):
        for j in range(ok + throttled):
            at = start + minute * MINUTE + j * 2_000
            if j < ok:
                add(at, LLAMA, body={"messages": _user(f"Chat {minute}-{j}")}, tokens_in=300 + j, tokens_out=100,
                    latency_ms=800.0)
            else:
                add(at, LLAMA, body={"messages": _user(f"Chat {minute}-{j}")}, tokens_in=None, tokens_out=0,
                    error="ThrottlingException")
    # An expensive, slow model doing work its vendor sells for less.
    for i in range(25):
        add(T0 + i * 11_000, OPUS, body={"messages": _user(f"Write section {i} of the design.")}, tokens_in=1_000,
            tokens_out=500, latency_ms=20_000.0)
    return records


def clean_records() -> list[dict]:
    """Unremarkable traffic on the cheapest text model of its vendor: nothing to advise."""
    return [_record(i, T0 + i * 13_000, NOVA_MICRO, body={"messages": _user(f"Question {i} about the weather.")},
                    tokens_in=200 + i, tokens_out=150, latency_ms=500.0) for i in range(40)]


@pytest.fixture(scope="module")
def planted():
    return planted_records()


def _advice_over(store_of, records, **kwargs):
    store = store_of()
    store.write_records(GROUP, STREAM, records, source="api")
    return advise(store, **kwargs)


# ---------------------------------------------------------------------- independent figures


def _prompt_text(body: dict, parts: tuple[str, ...]) -> str:
    """The prompt text as the query reads it: the JSON text of each present part, concatenated."""
    return "".join(orjson.dumps(body[p]).decode() for p in parts if p in body)


def test_token_waste_names_the_caller_and_the_prompt(store_of, planted):
    advice = _advice_over(store_of, planted)
    found = {r.subject.get("caller"): r for r in advice.of_kind(TOKEN_WASTE) if "caller" in r.subject}
    settings = AdviceSettings()
    for caller in (WASTE_CALLER, TEMPLATE_CALLER):
        mine = [r for r in planted if r["identity"]["arn"] == caller and "errorCode" not in r]
        tokens_in = sum(r["input"]["inputTokenCount"] for r in mine)
        tokens_out = sum(r["output"]["outputTokenCount"] for r in mine)
        rec = found[caller]
        assert rec.numbers["calls"] == len(mine)
        assert (rec.numbers["inputTokens"], rec.numbers["outputTokens"]) == (tokens_in, tokens_out)
        assert rec.numbers["inputPerOutput"] == pytest.approx(tokens_in / tokens_out, abs=0.05)
        price = pricing.current().lookup(HAIKU, T0)
        assert rec.numbers["inputCostUsd"] == pytest.approx(tokens_in * price.input / 1e6, rel=1e-6)
        assert rec.numbers["costUsd"] == pytest.approx(sum(
            pricing.current().cost(HAIKU, T0, input_tokens=r["input"]["inputTokenCount"],
                                   output_tokens=r["output"]["outputTokenCount"]) for r in mine), rel=1e-6)
        assert rec.query and rec.action
    # Every other caller sends less than waste_ratio x its output, or too little input to matter.
    for caller in {r["identity"]["arn"] for r in planted} - {WASTE_CALLER, TEMPLATE_CALLER}:
        mine = [r for r in planted if r["identity"]["arn"] == caller and "errorCode" not in r]
        ratio = sum(r["input"]["inputTokenCount"] for r in mine) / sum(r["output"]["outputTokenCount"] for r in mine)
        assert ratio < settings.waste_ratio and caller not in found

    by_prompt = [r for r in advice.of_kind(TOKEN_WASTE) if "prompt" in r.subject]
    # The template's calls share their first 500 characters; the summaries' documents do not.
    assert len(by_prompt) == 1
    template_calls = [r for r in planted if r["identity"]["arn"] == TEMPLATE_CALLER]
    assert by_prompt[0].numbers["calls"] == len(template_calls)
    assert by_prompt[0].numbers["inputTokens"] == sum(r["input"]["inputTokenCount"] for r in template_calls)
    assert by_prompt[0].subject["promptStart"].startswith('[{"role":"user","content":[{"text":"Classify this')


def test_the_repeated_system_prompt_and_the_repeated_prompt_get_caching_advice(store_of, planted):
    advice = _advice_over(store_of, planted)
    recs = {r.subject["shared"]: r for r in advice.of_kind(PROMPT_CACHING)}
    assert set(recs) == {"system prompt and tools", "whole prompt"}

    agent = [r for r in planted if r["modelId"] == SONNET]
    rec = recs["system prompt and tools"]
    assert rec.subject["model"] == SONNET
    shared = _prompt_text(agent[0]["input"]["inputBodyJson"], ("system",))
    prompt_chars = sum(len(_prompt_text(r["input"]["inputBodyJson"], ("system", "messages"))) for r in agent)
    windows = len({(timestamp // 300_000) for timestamp in (
        int(datetime.fromisoformat(r["timestamp"]).timestamp() * 1000) for r in agent)})
    cacheable = sum(r["input"]["inputTokenCount"] for r in agent) / len(agent) * len(shared) * len(agent) / prompt_chars
    price = pricing.current().lookup(SONNET, T0)
    savings = ((len(agent) - windows) * cacheable * (price.input - price.cache_read)
               - windows * cacheable * (price.cache_write - price.input)) / 1e6
    assert rec.numbers["calls"] == len(agent) and rec.numbers["cacheWindows"] == windows == 4
    assert rec.numbers["sharedChars"] == len(shared)
    assert rec.numbers["cacheableTokensPerCall"] == pytest.approx(cacheable, abs=0.05)
    assert rec.estimated_savings_usd == pytest.approx(savings, rel=1e-4) and savings > 0

    repeated = [r for r in planted if r["modelId"] == NOVA_PRO]
    rec = recs["whole prompt"]
    assert rec.subject["model"] == NOVA_PRO and rec.numbers["calls"] == len(repeated)
    price = pricing.current().lookup(NOVA_PRO, T0)
    windows = len({(T0 + i * 30_000) // 300_000 for i in range(len(repeated))})
    savings = (len(repeated) - windows) * 1_600 * (price.input - price.cache_read) / 1e6  # writes cost the input price
    assert rec.numbers["cacheWindows"] == windows
    assert rec.numbers["cacheableTokensPerCall"] == 1_600
    assert rec.estimated_savings_usd == pytest.approx(savings, rel=1e-6)


def test_throttling_windows_and_the_sustainable_rate(store_of, planted):
    advice = _advice_over(store_of, planted)
    [rec] = advice.of_kind(THROTTLING)
    llama = [r for r in planted if r["modelId"] == LLAMA]
    per_minute: dict[int, list[dict]] = defaultdict(list)
    for r in llama:
        per_minute[int(datetime.fromisoformat(r["timestamp"]).timestamp() * 1000) // MINUTE].append(r)
    throttled = {m: rs for m, rs in per_minute.items() if any(r.get("errorCode") for r in rs)}
    succeeded = [sum(1 for r in rs if not r.get("errorCode")) for _, rs in sorted(throttled.items())]
    tokens = [sum(r["input"]["inputTokenCount"] + r["output"]["outputTokenCount"] for r in rs
                  if not r.get("errorCode")) for _, rs in sorted(throttled.items())]
    assert rec.subject == {"model": LLAMA}
    assert rec.numbers["calls"] == len(llama)
    assert rec.numbers["throttles"] == sum(1 for r in llama if r.get("errorCode"))
    assert rec.numbers["throttledMinutes"] == len(throttled) == 4
    assert rec.numbers["suggestedRequestsPerMinute"] == statistics.median(succeeded)
    assert rec.numbers["suggestedTokensPerMinute"] == statistics.median(tokens)
    assert rec.numbers["peakCallsPerMinute"] == max(len(rs) for rs in throttled.values())
    windows = rec.numbers["windows"]
    assert [(w["minutes"], w["throttles"]) for w in windows] == [(3, 24), (1, 4)]
    assert windows[0]["start"] == "2026-03-02 11:01:00.000" and windows[0]["end"] == "2026-03-02 11:03:00.000"


def test_an_expensive_model_gets_a_cheaper_alternative_and_a_faster_one(store_of, planted):
    advice = _advice_over(store_of, planted)
    catalog = pricing.current()
    opus = [r for r in planted if r["modelId"] == OPUS]
    tokens_in = sum(r["input"]["inputTokenCount"] for r in opus)
    tokens_out = sum(r["output"]["outputTokenCount"] for r in opus)

    def cost(model: str) -> float:
        price = catalog.lookup(model, T0)
        return (tokens_in * price.input + tokens_out * price.output) / 1e6

    now = cost(OPUS)
    same_vendor = [p.model for p in catalog.prices() if p.model.startswith("anthropic.")
                   and model_keys(p.model)[0] == model_keys(p.model)[1] and p.model != OPUS]
    step_down = max((m for m in same_vendor if cost(m) <= 0.7 * now), key=cost)
    [rec] = [r for r in advice.of_kind(CHEAPER_MODEL) if r.subject["model"] == OPUS]
    assert rec.subject["alternative"] == step_down
    assert rec.numbers["costAtCurrentPricesUsd"] == pytest.approx(now)
    assert rec.estimated_savings_usd == pytest.approx(now - cost(step_down), rel=1e-6)
    assert rec.numbers["savingPct"] == pytest.approx(100 * (1 - cost(step_down) / now), abs=0.05)
    assert rec.numbers["alternatives"][0]["model"] == min(same_vendor, key=cost)

    # Speed: latency per output token of each Anthropic model in the data; Haiku is the fastest.
    def ms_per_token(model: str) -> float:
        mine = [r for r in planted if r["modelId"] == model and not r.get("errorCode")]
        return sum(r["latencyMs"] for r in mine) / sum(r["output"]["outputTokenCount"] for r in mine)

    [fast] = [r for r in advice.of_kind(FASTER_MODEL) if r.subject["model"] == OPUS]
    fastest = min((HAIKU, SONNET), key=ms_per_token)
    assert fast.subject["alternative"] == fastest
    assert fast.numbers["msPerOutputToken"] == pytest.approx(ms_per_token(OPUS), abs=0.005)
    assert fast.numbers["speedupPct"] == pytest.approx(100 * (1 - ms_per_token(fastest) / ms_per_token(OPUS)),
                                                       abs=0.05)
    # Amazon and Meta models have no faster same-vendor model in the data.
    assert all(r.subject["model"].startswith("anthropic.") for r in advice.of_kind(FASTER_MODEL))


def test_clean_data_yields_no_advice(store_of):
    advice = _advice_over(store_of, clean_records())
    assert advice.recommendations == []


def test_the_time_range_limits_the_evidence(store_of, planted):
    # Before the Llama bursts (an hour after T0) there is nothing throttled to report.
    advice = _advice_over(store_of, planted, start_ms=T0, end_ms=T0 + 59 * MINUTE)
    assert advice.of_kind(THROTTLING) == []
    assert advice.to_dict()["end"] == T0 + 59 * MINUTE


def test_every_recommendation_query_runs_and_advice_serializes(store_of, planted):
    from dashcam.service import Dashcam

    store = store_of()
    store.write_records(GROUP, STREAM, planted, source="api")
    advice = advise(store)
    assert {r.kind for r in advice.recommendations} == set(KINDS)
    dashcam = Dashcam(store)
    for rec in advice.recommendations:
        assert dashcam.query(rec.query).rows, rec.query
    body = orjson.loads(orjson.dumps(advice.to_dict()))
    assert len(body["recommendations"]) == len(advice.recommendations)
    assert body["settings"]["waste_ratio"] == AdviceSettings().waste_ratio


def test_cli_advise_prints_table_and_json(tmp_path, planted):
    from dashcam.cli import main
    from dashcam.service import Dashcam

    data = tmp_path / "data"
    with Dashcam.open(data) as dashcam:
        dashcam.store.write_records(GROUP, STREAM, planted, source="api")
    runner = CliRunner()
    as_json = runner.invoke(main, ["--data", str(data), "advise", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    kinds = {r["kind"] for r in orjson.loads(as_json.stdout)["recommendations"]}
    assert kinds == set(KINDS)
    table = runner.invoke(main, ["--data", str(data), "advise"])
    assert table.exit_code == 0 and "prompt caching would save" in table.stdout and LLAMA in table.stdout
    narrow = runner.invoke(main, ["--data", str(data), "advise", "--start", "2026-03-02T10:00:00Z",
                                  "--end", "2026-03-02T10:59:00Z", "--format", "json"])
    assert THROTTLING not in {r["kind"] for r in orjson.loads(narrow.stdout)["recommendations"]}
    bad = runner.invoke(main, ["--data", str(data), "advise", "--start", "tomorrow-ish"])
    assert bad.exit_code == 2 and "cannot read time" in bad.stderr


def test_cli_advise_asks_the_server_that_owns_the_data_directory(tmp_path, planted):
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    data = tmp_path / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dashcam = [sys.executable, "-m", "dashcam.cli", "--data", str(data)]
    server = subprocess.Popen([*dashcam, "serve", "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "the server did not come up"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.post(f"{url}/api/v1/records", json=planted, timeout=60).status_code == 200
        # The server holds the DuckDB file; the command must go through its HTTP API.
        done = subprocess.run([*dashcam, "advise", "--format", "json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert {r["kind"] for r in orjson.loads(done.stdout)["recommendations"]} == set(KINDS)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
