"""Recommendations from the stored invocations (``dashcam advise``): where tokens, money and time go
to waste, each with the numbers behind it, a suggested action, and the assumptions it rests on.

Every figure comes from a Logs Insights query run through dashcam's own compiler, so the analysis
runs unchanged on DuckDB and ClickHouse, and every recommendation carries a query (``query``) that
shows its evidence in ``dashcam query``. Prices come from the price catalog in use.

The kinds:

``token_waste``
    Callers (``identity.arn`` with ``app``) and prompts whose successful calls send at least
    ``waste_ratio`` times more input tokens than they get back, over at least ``min_calls`` calls
    averaging at least ``min_avg_input_tokens`` input tokens. A prompt is known by its
    *fingerprint*: the first ``fingerprint_chars`` characters of its text (tools, system prompt,
    messages, or ``prompt``/``inputText``, as read from the record's ``input.inputBodyJson``), so
    calls built from one template share it.
``prompt_caching``
    A system prompt with its tools, or a whole prompt, that recurs across at least ``min_calls``
    calls of one model that has a cache-read price in the catalog, is at least
    ``min_cacheable_tokens`` long, and is not already mostly read from the cache. Savings are
    estimated from the catalog's cache prices (see :func:`_caching_savings`).
``throttling``
    Models with at least ``min_throttles`` throttled calls, the minutes that throttled grouped into
    windows, and a sustainable rate: the median of the calls per minute (and tokens per minute)
    that succeeded in the throttled minutes — what the service accepted while pushing back.
``cheaper_model``
    For each model used, the same vendor's model of the same task (text or embeddings) that
    would have cost at least ``min_saving_share`` less for the very same tokens at catalog prices;
    the most expensive such one is suggested (the smallest step down), the cheapest are listed.
``faster_model``
    Of two models of the same vendor and task both seen in the data, the one whose successful
    calls took at least ``min_speedup_share`` less time per output token.

What the analysis cannot see: answer quality (a cheaper or faster model must be tried on a sample
first), prompts whose bodies are not logged (body logging off, or bodies in S3), and system
prompts that OpenAI-shaped requests carry inside ``messages`` (they count as whole prompts).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from xxhash import xxh3_64_hexdigest

from dashcam import pricing
from dashcam.pricing import Price, PriceCatalog, model_keys
from dashcam.query.compiler import QueryScope, compile_query
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.records import timestamp_ms
from dashcam.store.base import Store

TOKEN_WASTE = "token_waste"
PROMPT_CACHING = "prompt_caching"
THROTTLING = "throttling"
CHEAPER_MODEL = "cheaper_model"
FASTER_MODEL = "faster_model"
KINDS = (TOKEN_WASTE, PROMPT_CACHING, THROTTLING, CHEAPER_MODEL, FASTER_MODEL)

_ROW_LIMIT = 100_000
_MINUTE_MS = 60_000

# Where the request body keeps the parts of a prompt, in the order prompt caching reads them.
_PREFIX_PARTS = ("input.inputBodyJson.toolConfig", "input.inputBodyJson.tools", "input.inputBodyJson.system")
_PROMPT_PARTS = _PREFIX_PARTS + ("input.inputBodyJson.messages", "input.inputBodyJson.prompt",
                                 "input.inputBodyJson.inputText")
# Succeeded, as the metrics count it: no error code and not throttled (an HTTP 429 may come without a code).
_SUCCEEDED = "(not ispresent(errorCode) and coalesce(throttled, 0) = 0)"


@dataclass(frozen=True)
class AdviceSettings:
    """The thresholds behind every recommendation (each is reported with the advice)."""

    min_calls: int = 20
    waste_ratio: float = 20.0
    min_avg_input_tokens: int = 1000
    fingerprint_chars: int = 500
    min_cacheable_tokens: int = 1024
    cache_ttl_seconds: int = 300
    max_cache_read_share: float = 0.5
    min_throttles: int = 3
    throttle_gap_minutes: int = 2
    min_saving_share: float = 0.3
    min_speedup_share: float = 0.3
    max_per_kind: int = 10


@dataclass(frozen=True)
class Recommendation:
    """One piece of advice: what it is about, the figures that justify it, and what to do."""

    kind: str
    title: str
    subject: dict[str, Any]
    numbers: dict[str, Any]
    action: str
    assumptions: tuple[str, ...] = ()
    estimated_savings_usd: float | None = None
    query: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys in camelCase as dashcam's API writes them."""
        return {"kind": self.kind, "title": self.title, "subject": self.subject, "numbers": self.numbers,
                "action": self.action, "assumptions": list(self.assumptions),
                "estimatedSavingsUsd": self.estimated_savings_usd, "query": self.query}


@dataclass
class Advice:
    """Every recommendation for a time range, with the settings and price catalog used."""

    start_ms: int | None
    end_ms: int | None
    settings: AdviceSettings
    catalog_version: str
    recommendations: list[Recommendation] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Recommendation]:
        """The recommendations of one kind, in the order given."""
        return [r for r in self.recommendations if r.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``/api/v1/advice`` body and ``dashcam advise --format json``)."""
        return {"start": self.start_ms, "end": self.end_ms, "priceCatalog": self.catalog_version,
                "settings": asdict(self.settings),
                "recommendations": [r.to_dict() for r in self.recommendations]}


def advise(
    store: Store,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    log_groups: Sequence[str] | None = None,
    settings: AdviceSettings | None = None,
    catalog: PriceCatalog | None = None,
    now_ms: int | None = None,
) -> Advice:
    """Recommendations from the invocations in ``[start_ms, end_ms]`` of ``log_groups`` (all by default).

    Prices are those in effect at ``end_ms`` (or ``now_ms``, or now) in ``catalog`` (the catalog
    in use by default).
    """
    settings = settings or AdviceSettings()
    catalog = catalog or pricing.current()
    price_at = end_ms if end_ms is not None else (now_ms if now_ms is not None else int(time.time() * 1000))
    run = _Runner(store, QueryScope(tuple(log_groups) if log_groups else None, start_ms, end_ms, _ROW_LIMIT))
    advice = Advice(start_ms, end_ms, settings, catalog.version)
    prices = _Prices(catalog, price_at)
    for finder in (_token_waste_by_caller, _token_waste_by_prompt, _prompt_caching, _throttling, _model_choice):
        advice.recommendations += finder(run, settings, prices)
    return advice


class _Runner:
    """Runs Logs Insights text over one scope and returns decoded rows."""

    def __init__(self, store: Store, scope: QueryScope) -> None:
        self.store = store
        self.scope = scope

    def __call__(self, text: str) -> list[dict[str, Any]]:
        compiled = compile_query(parse(text), self.scope, self.store.dialect)
        return decode_rows(compiled, self.store.execute(compiled.sql))


class _Prices:
    """Catalog prices at one moment, per model id as recorded."""

    def __init__(self, catalog: PriceCatalog, at_ms: int) -> None:
        self.catalog = catalog
        self.at_ms = at_ms

    def of(self, model: str | None) -> Price | None:
        """The price of ``model`` (ARN and geo prefixes handled by the catalog), or None."""
        return self.catalog.lookup(model, self.at_ms)

    def alternatives(self) -> list[Price]:
        """The catalog's models in effect now, without geo-profile entries."""
        current = {}
        for price in self.catalog.prices():
            exact, base = model_keys(price.model)
            if exact == base and price.effective_ms <= self.at_ms:
                current[price.model] = price
        return list(current.values())


def _workload_cost(price: Price, tokens: dict[str, float]) -> float:
    """USD for a token workload at ``price`` (cache tokens at the input price when not priced)."""
    read = price.input if price.cache_read is None else price.cache_read
    write = price.input if price.cache_write is None else price.cache_write
    return (tokens["input"] * price.input + tokens["output"] * price.output + tokens["cache_read"] * read
            + tokens["cache_write"] * write) / 1_000_000


def _q(value: str) -> str:
    """A Logs Insights string literal for ``value``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _equals(path: str, value: str | None) -> str:
    return f"{path} = {_q(value)}" if value is not None else f"not ispresent({path})"


def _num(value: Any, digits: int = 2) -> float:
    return round(float(value or 0), digits)


def _money(value: float) -> float:
    return round(value, 6)


def _concat(parts: Sequence[str]) -> str:
    return f"concat({', '.join(parts)})"


def _readable(text: str, limit: int = 160) -> str:
    """A prompt prefix shortened for people: whitespace folded, cut at ``limit`` characters."""
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


# ---------------------------------------------------------------------- token waste


_WASTE_ASSUMPTIONS = (
    "Only successful calls with both token counts are counted.",
    "A high input-to-output ratio is normal for classification and extraction; it is waste when the "
    "input carries context the answer does not need.",
)


def _waste_numbers(calls: int, tokens_in: float, tokens_out: float, cost: float | None) -> dict[str, Any]:
    return {"calls": calls, "inputTokens": int(tokens_in), "outputTokens": int(tokens_out),
            "inputPerOutput": _num(tokens_in / tokens_out, 1) if tokens_out else None,
            "avgInputTokens": _num(tokens_in / calls, 1), "avgOutputTokens": _num(tokens_out / calls, 1),
            "costUsd": None if cost is None else _money(cost)}


def _wasteful(settings: AdviceSettings, calls: int, tokens_in: float, tokens_out: float) -> bool:
    return (calls >= settings.min_calls and tokens_in >= settings.waste_ratio * tokens_out
            and tokens_in / calls >= settings.min_avg_input_tokens)


def _token_waste_by_caller(run: _Runner, settings: AdviceSettings, prices: _Prices) -> list[Recommendation]:
    filters = f"filter {_SUCCEEDED} and ispresent(input.inputTokenCount) and ispresent(output.outputTokenCount)"
    rows = run(f"{filters} | stats count(*) as calls, sum(input.inputTokenCount) as inputTokens,"
               " sum(output.outputTokenCount) as outputTokens, sum(costUsd) as costUsd"
               " by identity.arn as caller, app, modelId")
    by_caller: dict[tuple[str | None, str | None], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_caller[(row["caller"], row["app"])].append(row)
    found = []
    for (caller, app), group in by_caller.items():
        calls = sum(r["calls"] for r in group)
        tokens_in = sum(r["inputTokens"] or 0 for r in group)
        tokens_out = sum(r["outputTokens"] or 0 for r in group)
        if not _wasteful(settings, calls, tokens_in, tokens_out):
            continue
        priced = [(r, prices.of(r["modelId"])) for r in group]
        input_cost = sum((r["inputTokens"] or 0) * p.input / 1_000_000 for r, p in priced if p)
        costs = [r["costUsd"] for r in group if r["costUsd"] is not None]
        numbers = _waste_numbers(calls, tokens_in, tokens_out, sum(costs) if costs else None)
        numbers.update(inputCostUsd=_money(input_cost), models=sorted({r["modelId"] or "" for r in group}))
        who = caller or "(no identity)"
        found.append(Recommendation(
            TOKEN_WASTE, f"{who}{f' ({app})' if app else ''} sends {numbers['inputPerOutput'] or 'many'}x more "
            "input tokens than it gets back", {"caller": caller, "app": app}, numbers,
            "Trim what this caller sends: fewer retrieved passages, a shorter conversation history, a shorter "
            "system prompt; cache the part that repeats (prompt caching); or move the work to a smaller model.",
            _WASTE_ASSUMPTIONS + ("Input cost is at the catalog's current input price.",),
            query=f"{filters} and {_equals('identity.arn', caller)} and {_equals('app', app)}"
                  " | stats count(*) as calls, sum(input.inputTokenCount) as inputTokens,"
                  " sum(output.outputTokenCount) as outputTokens, sum(costUsd) as costUsd by modelId",
        ))
    found.sort(key=lambda r: -r.numbers["inputTokens"])
    return found[: settings.max_per_kind]


def _token_waste_by_prompt(run: _Runner, settings: AdviceSettings, prices: _Prices) -> list[Recommendation]:
    chars = settings.fingerprint_chars
    base = (f"filter {_SUCCEEDED} and ispresent(input.inputTokenCount) and ispresent(output.outputTokenCount)"
            f" | fields {_concat(_PROMPT_PARTS)} as prompt | filter strlen(prompt) > 0")
    stats = ("stats count(*) as calls, sum(input.inputTokenCount) as inputTokens,"
             " sum(output.outputTokenCount) as outputTokens, sum(costUsd) as costUsd,"
             " count_distinct(identity.arn) as callers, count_distinct(modelId) as models")
    rows = run(f"{base} | {stats} by substr(prompt, 0, {chars}) as fingerprint | filter calls >= {settings.min_calls}")
    found = []
    for row in rows:
        calls, tokens_in, tokens_out = row["calls"], row["inputTokens"] or 0, row["outputTokens"] or 0
        if not _wasteful(settings, calls, tokens_in, tokens_out):
            continue
        fingerprint = row["fingerprint"]
        numbers = _waste_numbers(calls, tokens_in, tokens_out, row["costUsd"])
        numbers.update(callers=row["callers"], models=row["models"])
        prompt_id = "p-" + xxh3_64_hexdigest(fingerprint.encode())[:12]
        found.append(Recommendation(
            TOKEN_WASTE, f"Prompt {prompt_id} sends {numbers['inputPerOutput'] or 'many'}x more input tokens than "
            "it gets back", {"prompt": prompt_id, "promptStart": _readable(fingerprint)}, numbers,
            "Shorten this prompt template (instructions, examples, context) or cache its fixed part; if the "
            "answer is a label or a short field, a smaller model or a classifier may do.",
            _WASTE_ASSUMPTIONS + (f"Calls share a prompt when the first {chars} characters of its text (tools, "
                                  "system prompt, messages) are equal.",),
            query=f"{base} | filter substr(prompt, 0, {chars}) = {_q(fingerprint)} | {stats} by modelId"
            if len(fingerprint) < 2_000 else f"{base} | {stats} by substr(prompt, 0, {chars}) as fingerprint"
                                             " | sort inputTokens desc",
        ))
    found.sort(key=lambda r: -r.numbers["inputTokens"])
    return found[: settings.max_per_kind]


# ---------------------------------------------------------------------- prompt caching


def _caching_savings(price: Price, calls: int, windows: int, cacheable: float) -> float:
    """USD saved by caching ``cacheable`` tokens per call.

    The first call in each cache lifetime (``windows``: distinct TTL-long time buckets with calls,
    an upper bound on the cache writes) writes the cache and pays the write price instead of the
    input price; every other call reads it at the cache-read price instead of the input price.
    """
    write = price.input if price.cache_write is None else price.cache_write
    reads = max(calls - windows, 0)
    return (reads * cacheable * (price.input - price.cache_read) - windows * cacheable * (write - price.input)) / 1e6


def _prompt_caching(run: _Runner, settings: AdviceSettings, prices: _Prices) -> list[Recommendation]:
    found = []
    for shared, parts in (("system prompt and tools", _PREFIX_PARTS), ("whole prompt", _PROMPT_PARTS)):
        base = (f"filter {_SUCCEEDED} and ispresent(input.inputTokenCount)"
                f" | fields {_concat(parts)} as shared, {_concat(_PROMPT_PARTS)} as prompt | filter strlen(shared) > 0")
        stats = (f"stats count(*) as calls, count_distinct(bin({settings.cache_ttl_seconds}s)) as windows,"
                 " sum(input.inputTokenCount) as inputTokens, sum(input.cacheReadInputTokenCount) as cacheReadTokens,"
                 " sum(input.cacheWriteInputTokenCount) as cacheWriteTokens, sum(strlen(prompt)) as promptChars")
        for row in run(f"{base} | {stats} by shared, modelId | filter calls >= {settings.min_calls}"):
            rec = _caching_recommendation(row, shared, settings, prices, base, stats)
            if rec:
                found.append(rec)
    found.sort(key=lambda r: -(r.estimated_savings_usd or 0))
    return found[: settings.max_per_kind]


def _caching_recommendation(row: dict[str, Any], shared: str, settings: AdviceSettings, prices: _Prices,
                            base: str, stats: str) -> Recommendation | None:
    price = prices.of(row["modelId"])
    if price is None or price.cache_read is None:
        return None  # the catalog does not say this model caches prompts
    calls, windows = row["calls"], row["windows"]
    read, written = row["cacheReadTokens"] or 0, row["cacheWriteTokens"] or 0
    prompt_tokens = (row["inputTokens"] or 0) + read + written  # inputTokenCount excludes cache tokens
    text = row["shared"]
    # Tokens are taken to be spread evenly over the prompt's characters.
    share = min(1.0, len(text) * calls / row["promptChars"]) if row["promptChars"] else 1.0
    cacheable = prompt_tokens / calls * share
    read_share = read / prompt_tokens if prompt_tokens else 0.0
    if cacheable < settings.min_cacheable_tokens or read_share >= settings.max_cache_read_share:
        return None
    savings = _caching_savings(price, calls, windows, cacheable)
    if savings <= 0:
        return None
    prompt_id = "p-" + xxh3_64_hexdigest(text.encode())[:12]
    numbers = {
        "calls": calls, "cacheWindows": windows, "avgPromptTokens": _num(prompt_tokens / calls, 1),
        "cacheableTokensPerCall": _num(cacheable, 1), "sharedChars": len(text),
        "avgPromptChars": _num(row["promptChars"] / calls, 1), "cacheReadSharePct": _num(100 * read_share, 1),
        "inputPricePerMTok": price.input, "cacheReadPricePerMTok": price.cache_read,
        "cacheWritePricePerMTok": price.cache_write if price.cache_write is not None else price.input,
        "cacheableCostNowUsd": _money(calls * cacheable * price.input / 1e6),
    }
    whole = shared == "whole prompt"
    action = ("Mark the end of the repeated part with a cache point (Bedrock cachePoint / Anthropic "
              "cache_control) so later calls read it from the cache.")
    if whole:
        action += " The whole prompt repeats: if the answer may repeat too, cache answers in the application."
    return Recommendation(
        PROMPT_CACHING, f"The same {shared} ({prompt_id}) went to {row['modelId']} in {calls} calls: "
        f"prompt caching would save about ${savings:,.2f}",
        {"model": row["modelId"], "prompt": prompt_id, "shared": shared, "promptStart": _readable(text)},
        numbers, action,
        ("Prices are the catalog's; a cache write is charged at the cache-write price (the input price "
         "when the catalog gives none).",
         f"Each {settings.cache_ttl_seconds}-second window with calls writes the cache once and every other "
         "call reads it (an upper bound on writes: a hit extends the cache's life).",
         "Tokens are taken to be spread evenly over the prompt's characters.",
         f"Models cache prompts of at least {settings.min_cacheable_tokens} tokens (Claude needs 1,024 or "
         "more, depending on the model)."),
        estimated_savings_usd=_money(savings),
        query=f"{base} | filter shared = {_q(text)} | {stats} by modelId" if len(text) < 4_000 else
        f"{base} | {stats} by substr(shared, 0, 200) as sharedStart, modelId | sort calls desc",
    )


# ---------------------------------------------------------------------- throttling


def _throttling(run: _Runner, settings: AdviceSettings, prices: _Prices) -> list[Recommendation]:
    totals = {r["modelId"]: r for r in run("stats count(*) as calls, sum(throttled) as throttles by modelId")}
    ok_tokens = "(coalesce(input.inputTokenCount, 0) + coalesce(output.outputTokenCount, 0))"
    per_minute = (f"stats count(*) as calls, sum(throttled) as throttles, sum({_SUCCEEDED}) as succeeded,"
                  f" sum({_SUCCEEDED} * {ok_tokens}) as succeededTokens")
    minutes_query = f"{per_minute} by modelId, bin(1m) as minute | filter throttles > 0"
    by_model: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for row in run(minutes_query):
        by_model[row["modelId"]].append(row)
    found = []
    for model, minutes in by_model.items():
        total = totals.get(model, {"calls": 0, "throttles": 0})
        if (total["throttles"] or 0) < settings.min_throttles:
            continue
        minutes.sort(key=lambda r: r["minute"])
        windows = _windows(minutes, settings.throttle_gap_minutes)
        rpm = statistics.median(r["succeeded"] for r in minutes)
        tpm = statistics.median(r["succeededTokens"] or 0 for r in minutes)
        numbers = {
            "calls": total["calls"], "throttles": total["throttles"],
            "throttleSharePct": _num(100 * total["throttles"] / total["calls"], 2),
            "throttledMinutes": len(minutes), "windows": sorted(windows, key=lambda w: -w["throttles"])[:5],
            "peakCallsPerMinute": max(r["calls"] for r in minutes),
            "suggestedRequestsPerMinute": _num(rpm, 1), "suggestedTokensPerMinute": _num(tpm, 0),
        }
        found.append(Recommendation(
            THROTTLING, f"{model} throttled {total['throttles']} of {total['calls']} calls in {len(windows)} "
            f"window{'s' if len(windows) != 1 else ''}; keep it under about {numbers['suggestedRequestsPerMinute']:g} "
            "requests per minute", {"model": model}, numbers,
            f"Limit calls to {model} on the client to about {numbers['suggestedRequestsPerMinute']:g} requests "
            f"and {numbers['suggestedTokensPerMinute']:,.0f} tokens per minute, retry throttled calls with "
            "exponential backoff and jitter, spread bursts, use a cross-Region inference profile, or ask for "
            "a higher quota.",
            ("A minute is throttled when any call in it was throttled.",
             "The suggested rate is the median of what succeeded per throttled minute: what the service "
             "accepted while it was pushing back.",
             f"Throttled minutes at most {settings.throttle_gap_minutes} minutes apart form one window."),
            query=f"filter {_equals('modelId', model)} | {per_minute} by bin(1m) as minute"
                  " | filter throttles > 0 | sort minute asc",
        ))
    found.sort(key=lambda r: -r.numbers["throttles"])
    return found[: settings.max_per_kind]


def _windows(minutes: list[dict[str, Any]], gap: int) -> list[dict[str, Any]]:
    """Throttled minutes (sorted) joined into windows where they are at most ``gap`` minutes apart."""
    windows: list[dict[str, Any]] = []
    last_ms = None
    for row in minutes:
        at = timestamp_ms(row["minute"])
        if last_ms is None or at - last_ms > gap * _MINUTE_MS:
            windows.append({"start": row["minute"], "end": row["minute"], "minutes": 0, "calls": 0,
                            "throttles": 0, "succeeded": 0, "peakCallsPerMinute": 0})
        window = windows[-1]
        window["end"] = row["minute"]
        window["minutes"] += 1
        window["calls"] += row["calls"]
        window["throttles"] += row["throttles"]
        window["succeeded"] += row["succeeded"]
        window["peakCallsPerMinute"] = max(window["peakCallsPerMinute"], row["calls"])
        last_ms = at
    return windows


# ---------------------------------------------------------------------- model choice


def _family(model: str | None, price: Price | None) -> tuple[str, str, str] | None:
    """(provider, vendor, task) of a priced model: alternatives come from the same family."""
    if not model or price is None:
        return None
    base = model_keys(model)[1]
    vendor = base.split(".")[0] if price.provider == "aws.bedrock" and "." in base else ""
    return price.provider, vendor, "embedding" if "embed" in base else "text"


# Latency per output token by model, over successful calls that report both.
_SPEED_QUERY = (f"filter {_SUCCEEDED} and ispresent(latencyMs) and output.outputTokenCount > 0"
                " | stats count(*) as calls, sum(latencyMs) as latencyMs, sum(output.outputTokenCount) as outputTokens,"
                " pct(latencyMs, 50) as p50LatencyMs by modelId")


def _model_choice(run: _Runner, settings: AdviceSettings, prices: _Prices) -> list[Recommendation]:
    used = run(f"filter {_SUCCEEDED} | stats count(*) as calls, sum(input.inputTokenCount) as input,"
               " sum(output.outputTokenCount) as output, sum(input.cacheReadInputTokenCount) as cache_read,"
               " sum(input.cacheWriteInputTokenCount) as cache_write, sum(costUsd) as costUsd by modelId")
    speed = {r["modelId"]: r for r in run(_SPEED_QUERY) if r["calls"] >= settings.min_calls}
    cheaper, faster = [], []
    for row in used:
        model = row["modelId"]
        price = prices.of(model)
        family = _family(model, price)
        if family is None or row["calls"] < settings.min_calls:
            continue
        tokens = {k: float(row[k] or 0) for k in ("input", "output", "cache_read", "cache_write")}
        rec = _cheaper(model, price, family, tokens, row, settings, prices, speed)
        if rec:
            cheaper.append(rec)
        rec = _faster(model, price, family, tokens, settings, prices, speed)
        if rec:
            faster.append(rec)
    cheaper.sort(key=lambda r: -(r.estimated_savings_usd or 0))
    faster.sort(key=lambda r: -r.numbers["speedupPct"])
    return cheaper[: settings.max_per_kind] + faster[: settings.max_per_kind]


def _ms_per_token(row: dict[str, Any]) -> float:
    return float(row["latencyMs"]) / float(row["outputTokens"])


def _as_used(model: str, alternative: str) -> str:
    """``alternative`` called the way ``model`` is (through the same geo inference profile)."""
    exact, base = model_keys(model)
    return exact[: len(exact) - len(base)] + alternative


def _cheaper(model: str, price: Price, family: tuple, tokens: dict[str, float], row: dict[str, Any],
             settings: AdviceSettings, prices: _Prices, speed: dict) -> Recommendation | None:
    cost_now = _workload_cost(price, tokens)
    if cost_now <= 0:
        return None
    base = model_keys(model)[1]
    options = []
    for alt in prices.alternatives():
        if alt.model == base or _family(alt.model, alt) != family:
            continue
        alt_cost = _workload_cost(alt, tokens)
        if alt_cost <= (1 - settings.min_saving_share) * cost_now:
            options.append((alt_cost, alt))
    if not options:
        return None
    options.sort(key=lambda o: -o[0])
    alt_cost, alt = options[0]  # the smallest step down that still saves enough
    suggested = _as_used(model, alt.model)
    saving = cost_now - alt_cost
    numbers = {
        "calls": row["calls"], "inputTokens": int(tokens["input"]), "outputTokens": int(tokens["output"]),
        "cacheReadTokens": int(tokens["cache_read"]), "cacheWriteTokens": int(tokens["cache_write"]),
        "costUsd": None if row["costUsd"] is None else _money(row["costUsd"]),
        "costAtCurrentPricesUsd": _money(cost_now), "alternativeCostUsd": _money(alt_cost),
        "savingPct": _num(100 * saving / cost_now, 1),
        "alternatives": [{"model": _as_used(model, a.model), "costUsd": _money(c),
                          "savingPct": _num(100 * (cost_now - c) / cost_now, 1)} for c, a in options[-3:][::-1]],
    }
    observed = speed.get(suggested) or speed.get(alt.model)
    if observed and model in speed:
        numbers.update(msPerOutputToken=_num(_ms_per_token(speed[model])),
                       alternativeMsPerOutputToken=_num(_ms_per_token(observed)))
    return Recommendation(
        CHEAPER_MODEL, f"{suggested} would have cost {numbers['savingPct']:g}% less than {model} for the same tokens",
        {"model": model, "alternative": suggested}, numbers,
        f"Try {suggested} on a sample of this traffic; if the answers hold up, switch and save about "
        f"${saving:,.2f} over the same period.",
        ("Cost of the same input, output and cache tokens at the catalog's current prices.",
         "Alternatives are the same vendor's models of the same task (text or embeddings); the "
         "suggestion is the smallest step down that saves enough, and answer quality is not measured."),
        estimated_savings_usd=_money(saving),
        query=f"filter {_SUCCEEDED} and {_equals('modelId', model)} | stats count(*) as calls,"
              " sum(input.inputTokenCount) as inputTokens, sum(output.outputTokenCount) as outputTokens,"
              " sum(costUsd) as costUsd",
    )


def _faster(model: str, price: Price, family: tuple, tokens: dict[str, float], settings: AdviceSettings,
            prices: _Prices, speed: dict) -> Recommendation | None:
    if model not in speed:
        return None
    rate = _ms_per_token(speed[model])
    best = None
    for other, observed in speed.items():
        other_price = prices.of(other)
        if other == model or _family(other, other_price) != family:
            continue
        other_rate = _ms_per_token(observed)
        if other_rate <= (1 - settings.min_speedup_share) * rate and (best is None or other_rate < best[1]):
            best = (other, other_rate, other_price)
    if best is None:
        return None
    other, other_rate, other_price = best
    cost_now, cost_other = _workload_cost(price, tokens), _workload_cost(other_price, tokens)
    numbers = {
        "calls": speed[model]["calls"], "alternativeCalls": speed[other]["calls"],
        "msPerOutputToken": _num(rate), "alternativeMsPerOutputToken": _num(other_rate),
        "speedupPct": _num(100 * (1 - other_rate / rate), 1),
        "p50LatencyMs": _num(speed[model]["p50LatencyMs"], 1),
        "estimatedP50LatencyMs": _num(speed[model]["p50LatencyMs"] * other_rate / rate, 1),
        "costAtCurrentPricesUsd": _money(cost_now), "alternativeCostUsd": _money(cost_other),
    }
    return Recommendation(
        FASTER_MODEL, f"{other} answered {numbers['speedupPct']:g}% faster per output token than {model}",
        {"model": model, "alternative": other}, numbers,
        f"Where {model}'s latency matters, try {other}: about {numbers['estimatedP50LatencyMs']:,.0f} ms at the "
        f"median instead of {numbers['p50LatencyMs']:,.0f} ms, and "
        + (f"${cost_now - cost_other:,.2f} cheaper" if cost_other <= cost_now else f"${cost_other - cost_now:,.2f} "
           "dearer") + " for the same tokens.",
        ("Both models were seen in this data with enough successful calls; speed is latency per output "
         "token over those calls, and latency is taken to scale with output tokens.",
         "The models are the same vendor's of the same task; answer quality is not measured."),
        query=f"{_SPEED_QUERY} | sort modelId asc",
    )
