"""Deterministic, realistic Amazon Bedrock model invocation logs (ModelInvocationLog 1.0).

Newcomers use this (``dashcam sample OUT_DIR``, the demo) to try dashcam without AWS, and tests
and benchmarks use it to get realistic data at any size, so it has to be both faithful to the
real record shapes and fast (about 10 million records is the largest size in use).

How it stays deterministic and fast:

* The whole span is planned first: per-minute record counts (a smooth daily/hourly shape times
  a burst), cut into output objects (one or more per UTC hour, at most 50,000 records each).
* Every object has its own ``random.Random`` seeded from ``(seed, object index)``, so an object's
  bytes do not depend on how the others were produced.
  There is no global ``random``, no wall clock, no ``uuid4``.
* Everything static (request bodies, completions, caller identities) is serialized once and
  reused as ``orjson.Fragment``. Per record the code builds only the small dicts that hold
  the numbers that change (tokens, latency, ids).

The traffic story (this is what lets every Logs Insights feature be demonstrated): a base load,
then a burst (``BURST_WINDOW``, as fractions of the span) where the support assistant's traffic
roughly triples the volume. The Claude Sonnet 4 inference profile is then heavily throttled
(``ThrottlingException``), and latency climbs for the calls that succeed.
"""

from __future__ import annotations

import bisect
import math
import random
import sys
import textwrap
import time
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Callable, Iterator

import orjson

__all__ = ["BURST_WINDOW", "SampleSpec", "SampleSummary", "burst_window", "generate_lines", "generate_records",
           "write_bedrock_layout"]

BURST_WINDOW = (0.66, 0.79)  # the burst, as fractions of the span (the volume peaks at x3 inside it)
BURST_FACTOR = 3.0
MAX_RECORDS_PER_OBJECT = 50_000
OFFLOAD_RATE = 0.002  # share of successful calls whose body went to S3 (the "large data" path)
_BATCH = 8192  # records per compress call and per progress() call
GZIP_LEVEL = 1  # level 1 is about 3x faster than 6, and these files are throwaway samples

_F = orjson.Fragment
_JSON = "application/json"


@dataclass(frozen=True)
class SampleSpec:
    """What to generate: how many records, with which seed, over which UTC time span and account."""

    records: int = 20_000
    seed: int = 7
    start: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # UTC
    hours: float = 6.0  # the span the records are spread across
    account_id: str = "123456789012"
    region: str = "us-east-1"


@dataclass
class SampleSummary:
    """What ``write_bedrock_layout`` wrote: object count, record count, compressed bytes, root dir."""

    files: int
    records: int
    bytes_written: int
    root: Path


# --------------------------------------------------------------------------------------------
# Text pools. Kept short to keep files small, but realistic enough for a demo. A few contain
# e-mail addresses, phone numbers, card digits and an IP address so that masking can be shown.
# --------------------------------------------------------------------------------------------

_SUPPORT = (
    ("How do I reset my password? I no longer have access to jane.doe@example.com, the e-mail on my account.",
     "Since you can't use that mailbox, ask your workspace admin to open a ticket; we will verify your identity "
     "and change the e-mail first, then use \"Forgot password\" (help-center article KB-112)."),
    ("My February invoice shows two charges of $49. Can you refund the duplicate?",
     "I'm sorry about that. I can see two payments for the same invoice. I've flagged the duplicate for the "
     "billing team; refunds go back to the original card within 5 to 10 business days."),
    ("The export to CSV button does nothing in Firefox 124. Is this a known issue?",
     "Yes, this is a known issue with Firefox 124 and our download handler. A fix ships this week. Until then, "
     "use Chrome or the API endpoint /v2/exports, which is not affected."),
    ("Please change the billing contact to mark.chen@contoso.io and call me at +1 (415) 555-0132 when done.",
     "Done: the billing contact is now mark.chen@contoso.io. I can't place phone calls, but you will get a "
     "confirmation e-mail within a few minutes."),
    ("What is the difference between the Team and Business plans?",
     "Team includes up to 25 seats, 30 days of history and e-mail support. Business adds SSO, audit logs, "
     "unlimited history and a 99.9% uptime SLA with 1-hour response times."),
    ("Our webhook deliveries have failed with 401 since this morning. Nothing changed on our side.",
     "Webhook signatures are now verified with the secret rotated on March 1st. Copy the new signing secret "
     "from Settings > Webhooks and redeploy your receiver; deliveries are retried for 72 hours."),
    ("Can I move my workspace from us-east-1 to eu-west-1?",
     "Yes: our migration team moves it with about two hours of read-only time. Reply with a maintenance window."),
    ("I was charged after cancelling. Order ORD-58213, card ending 4242.",
     "Thanks for the order number. The charge covers the last billing period before the cancellation took "
     "effect. If you cancelled before the renewal date, I'll escalate for a prorated refund."),
    ("Hi, this is Priya (priya.n@fabrikam.com). SSO login loops back to the login page from 10.24.8.19.",
     "A login loop usually means the SAML assertion's audience doesn't match. Check that the Entity ID in your "
     "IdP is exactly https://app.example.com/saml/metadata and clear the session cookies."),
    ("How long do you keep audit logs?", "400 days on Business and Enterprise plans; export them from Admin > Audit."),
)

_CLASSIFY = (
    ("Ticket: Checkout page returns HTTP 500 for all EU users since the 09:00 deploy.", "bug"),
    ("Ticket: Please add dark mode to the mobile app.", "feature_request"),
    ("Ticket: I was billed twice for March, see invoice INV-2291.", "billing"),
    ("Ticket: Can't log in, the 2FA code from my phone is always rejected.", "account"),
    ("Ticket: Is there a student discount?", "billing"), ("Ticket: Thanks for the quick fix!", "other"),
    ("Ticket: Please delete my account and all data (tom.hale@example.org).", "account"),
)

_PARAGRAPHS = (
    "At 14:02 UTC the payments API started returning elevated 5xx errors after a configuration change "
    "reduced the connection pool size from 200 to 20.",
    "On-call engineers rolled back the change at 14:31 UTC; error rates returned to baseline within four "
    "minutes and no payments were lost, although 3.1% of checkouts had to be retried by customers.",
    "Quarterly revenue grew 18% year over year to $42.7M, driven by the Business plan, while churn in the "
    "self-serve segment rose from 2.1% to 2.6% after the price change in January.",
    "The team agreed to move the mobile release to April 14 so that the offline-sync bug can be fixed; QA "
    "needs two additional days for regression testing on Android 12 devices.",
    "Customer interviews show that most users export reports to spreadsheets because the built-in charts "
    "cannot be filtered by team, which is the top requested feature this quarter.",
    "The data platform migration to Apache Iceberg is 70% complete; the remaining jobs depend on the new "
    "schema registry, which is blocked by a security review scheduled for next week.",
    "Support volume increased 35% during the outage window, mostly password-reset and login tickets, and the "
    "median first-response time rose from 11 to 47 minutes.",
    "Action items: add an alarm on connection-pool saturation, require two approvals for pool-size changes, "
    "and run a game day on the payments failover runbook before the end of the month.",
)

# Documents to summarise (paragraph indexes into _PARAGRAPHS, 1 to 6 of them) with a matching summary.
_DOCS = (
    ((0, 1, 6, 7), "- A config change shrank the payments connection pool and caused 5xx errors.\n- Rolled back "
     "after 29 minutes; no payments lost.\n- Support tickets rose 35%.\n- Follow-ups: saturation alarm, "
     "two-person review, failover game day."),
    ((0, 1), "- A config change shrank the payments connection pool: 5xx errors for 29 minutes.\n- Rolled back "
     "at 14:31 UTC; no payments lost, 3.1% of checkouts retried."),
    ((6,), "- The outage drove a 35% spike in support tickets.\n- Median first response rose from 11 to 47 min."),
    ((2, 4), "- Revenue +18% YoY to $42.7M.\n- Self-serve churn up to 2.6% after the January price change.\n- "
     "Top customer request: filter charts by team."),
    ((2,), "- Revenue +18% YoY to $42.7M, led by the Business plan.\n- Self-serve churn rose to 2.6%."),
    ((3,), "- Mobile release moved to April 14 for the offline-sync fix.\n- QA needs two extra days on Android 12."),
    ((5,), "- Iceberg migration 70% done.\n- Remaining jobs blocked on the schema-registry security review."),
    ((3, 5, 4), "- Mobile release moved to April 14.\n- Iceberg migration 70% done, blocked on a security "
     "review.\n- Top customer request: filter charts by team."),
    ((0, 1, 6, 7, 2, 4), "- Payments outage (29 min) from a pool-size change; no payments lost.\n- Support "
     "tickets +35% during the outage.\n- Revenue +18% YoY; self-serve churn 2.6%.\n- Next: alarms, reviews, "
     "game day; build team filters for charts."),
)

_CODE_REVIEW = (
    ("Review this diff:\n```python\n-    for user in users:\n-        send(user.email)\n+    for user in "
     "users:\n+        try:\n+            send(user.email)\n+        except Exception:\n+            pass\n```",
     "Swallowing every exception hides failed sends. Catch the specific SMTP errors, log them with the user "
     "id (not the e-mail address), and count failures so an alarm can fire."),
    ("Review this diff:\n```python\n+query = f\"SELECT * FROM orders WHERE id = {order_id}\"\n+rows = "
     "db.execute(query)\n```",
     "This is an SQL injection risk. Use a parameterized query: db.execute(\"SELECT * FROM orders WHERE id = "
     "%s\", (order_id,)). Also select only the columns you need."),
    ("Review this diff:\n```python\n+cache = {}\n+def get_rate(currency):\n+    if currency not in cache:\n+"
     "        cache[currency] = fetch_rate(currency)\n+    return cache[currency]\n```",
     "The module-level cache never expires, so exchange rates go stale. Use a TTL (e.g. functools.lru_cache "
     "is not enough; cachetools.TTLCache with 10 minutes) and make it thread-safe."),
    ("Review this diff:\n```go\n+resp, _ := http.Get(url)\n+body, _ := io.ReadAll(resp.Body)\n```",
     "Errors are ignored and resp.Body is never closed, which leaks connections. Check err, defer "
     "resp.Body.Close(), and set a client timeout instead of using http.Get's default client."),
    ("Review this diff:\n```python\n-TIMEOUT = 30\n+TIMEOUT = 300\n```",
     "A 5-minute timeout ties up workers during an outage. Keep 30 s; retry with backoff and jitter."),
)

_SQL = (
    ("How many orders were placed per day last week?",
     "SELECT date_trunc('day', created_at) AS day, count(*) AS orders FROM orders WHERE created_at >= "
     "now() - interval '7 days' GROUP BY 1 ORDER BY 1"),
    ("Top 10 customers by revenue this year, with their e-mail.",
     "SELECT c.email, sum(o.total_cents) / 100.0 AS revenue FROM orders o JOIN customers c ON c.id = "
     "o.customer_id WHERE o.created_at >= date_trunc('year', now()) GROUP BY c.email ORDER BY revenue DESC "
     "LIMIT 10"),
    ("Which countries have the most refunded orders?",
     "SELECT c.country, count(*) AS refunds FROM orders o JOIN customers c ON c.id = o.customer_id WHERE "
     "o.status = 'refunded' GROUP BY c.country ORDER BY refunds DESC"),
    ("Average order value by month in 2025.",
     "SELECT date_trunc('month', created_at) AS month, avg(total_cents) / 100.0 AS aov FROM orders WHERE "
     "created_at >= '2025-01-01' AND created_at < '2026-01-01' GROUP BY 1 ORDER BY 1"),
    ("Customers who signed up in March but never ordered.",
     "SELECT c.id, c.email FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE c.created_at "
     ">= '2026-03-01' AND c.created_at < '2026-04-01' AND o.id IS NULL"),
    ("What share of orders are cancelled?",
     "SELECT avg((status = 'cancelled')::int) AS cancelled_share FROM orders"),
)

_TOOL = (
    ("Where is my order ORD-40917? It was supposed to arrive Monday.", "ORD-40917"),
    ("Has order ORD-77120 shipped yet?", "ORD-77120"),
    ("Can you check the status of ORD-12345 for customer alex.kim@example.net?", "ORD-12345"),
    ("My package for order ORD-66002 says delivered but I don't have it.", "ORD-66002"),
)

_CHAT = (
    ("List three risks of shipping on a Friday.",
     "1. Fewer people on call over the weekend. 2. Rollbacks wait until Monday. 3. Incidents linger."),
    ("Explain exponential backoff in two sentences.",
     "Exponential backoff retries a failed request after waits that double each time (1 s, 2 s, 4 s...). "
     "Adding random jitter prevents many clients from retrying in lockstep."),
    ("Write a haiku about log retention.", "Thirty days of lines,\nquietly the bucket fills;\nexpiry wipes clean."),
    ("What does HTTP 429 mean?",
     "429 Too Many Requests: the server is rate limiting you. Slow down and honour the Retry-After header."),
    ("Give me a regex for ISO dates.", "^\\d{4}-\\d{2}-\\d{2}$"),
)

_EMBED_TEXTS = (  # knowledge-base chunks being indexed
    "CloudWatch Logs Insights supports the stats command.", "Webhooks are retried for up to 72 hours.",
    "To rotate an API key, open Settings > API keys, create a new key, then revoke the old one.",
    "Refunds are issued to the original payment method within 5 to 10 business days.",
    "Business plans include SSO with SAML 2.0 and SCIM provisioning.",
    "Audit logs record who changed what and when, and are kept for 400 days.",
    "The export API returns CSV or JSON Lines and is limited to 1 million rows per request.",
    "Data is encrypted at rest with AES-256 and in transit with TLS 1.2 or later.",
    "Rate limits are 600 requests per minute per API key; exceeding them returns HTTP 429.",
)

_GUARDRAIL_TEXT = "Sorry, the model cannot answer this question."
_SUPPORT_SYSTEM = ("You are Acme Cloud's customer-support assistant. Be friendly and concise, cite the "
                   "help-center article when relevant, and never promise refunds or share other customers' data.")
_ORDER_TOOL = {"tools": [{"toolSpec": {
    "name": "get_order_status", "description": "Look up the shipping status of an order by its id.",
    "inputSchema": {"json": {"type": "object", "properties": {"orderId": {"type": "string"}},
                             "required": ["orderId"]}}}}]}


@dataclass(frozen=True)
class _Task:
    system: str
    pairs: tuple  # (prompt, completion) pairs; for "tool" (prompt, order id)
    max_tokens: int
    temperature: float
    p_max_tokens: float = 0.04  # share of calls that hit max_tokens
    p_stop_sequence: float = 0.0  # share that stop on a configured stop sequence
    p_guardrail: float = 0.0  # share blocked by a guardrail (Converse only)
    stop_sequences: tuple = ()


def _doc_pairs() -> tuple:
    return tuple(("Summarise the following document:\n\n" + "\n\n".join(_PARAGRAPHS[i] for i in idx), summary)
                 for idx, summary in _DOCS)


_TASKS = {
    "support": _Task(_SUPPORT_SYSTEM, _SUPPORT, 1024, 0.3, p_guardrail=0.006),
    "classify": _Task("Classify the support ticket as one of: billing, bug, account, feature_request, other. "
                      "Answer with the label only.", _CLASSIFY, 10, 0.0, p_max_tokens=0.0),
    "tool": _Task(_SUPPORT_SYSTEM, _TOOL, 512, 0.2, p_max_tokens=0.0),
    "summarize": _Task("Summarise documents for an executive audience in at most five bullet points.",
                       _doc_pairs(), 400, 0.2, p_max_tokens=0.06),
    "code_review": _Task("You are a senior engineer reviewing a pull request. Point out bugs, security "
                         "issues and risky changes. Be specific and brief.", _CODE_REVIEW, 2048, 0.2),
    "sql": _Task("Translate the question into one PostgreSQL query. Schema: orders(id, customer_id, "
                 "total_cents, status, created_at), customers(id, email, country, created_at). Reply with "
                 "SQL only, then </sql>.", _SQL, 600, 0.0, p_stop_sequence=0.3, stop_sequences=("</sql>",)),
    "chat": _Task("You are a helpful assistant.", _CHAT, 512, 0.7),
    "embed": _Task("", tuple((t, "") for t in _EMBED_TEXTS), 0, 0.0, p_max_tokens=0.0),
}


@dataclass(frozen=True)
class _Model:
    base_id: str
    family: str  # anthropic | nova | llama | titan: decides the InvokeModel body format
    native: str  # the "model" field of Anthropic responses
    ops: dict  # operation -> weight
    ttft_ms: float  # typical time to first byte
    ms_per_token: float  # per output token; gives latency roughly proportional to output tokens
    verbosity: float  # output tokens relative to the visible completion text
    throttle: tuple  # (rate outside the burst, extra rate at the burst's peak)
    profile: bool = False  # called through the US cross-Region inference profile


_CONVERSE_ONLY = {"Converse": 0.65, "ConverseStream": 0.35}
_MODELS = {
    "sonnet": _Model("anthropic.claude-sonnet-4-20250514-v1:0", "anthropic", "claude-sonnet-4-20250514",
                     {"Converse": 0.45, "ConverseStream": 0.25, "InvokeModel": 0.15,
                      "InvokeModelWithResponseStream": 0.15}, 650, 17.0, 1.4, (0.012, 0.55), profile=True),
    "haiku": _Model("anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic", "claude-3-5-haiku-20241022",
                    {"Converse": 0.35, "ConverseStream": 0.10, "InvokeModel": 0.40,
                     "InvokeModelWithResponseStream": 0.15}, 320, 7.5, 1.0, (0.004, 0.15)),
    "nova-lite": _Model("amazon.nova-lite-v1:0", "nova", "", _CONVERSE_ONLY, 230, 4.2, 0.9, (0.003, 0.05)),
    "nova-pro": _Model("amazon.nova-pro-v1:0", "nova", "", _CONVERSE_ONLY, 380, 9.0, 1.1, (0.004, 0.12)),
    "llama": _Model("meta.llama3-1-70b-instruct-v1:0", "llama", "", {"InvokeModel": 0.6, "Converse": 0.4},
                    420, 13.5, 1.2, (0.004, 0.10)),
    "titan": _Model("amazon.titan-embed-text-v2:0", "titan", "", {"InvokeModel": 1.0}, 45, 0.0, 0.0,
                    (0.002, 0.03)),
}


@dataclass(frozen=True)
class _App:
    name: str
    team: str
    principal: str  # "role/<name>" (assumed role) or "user/<name>" (IAM user)
    sessions: tuple  # role session names; one identity ARN each
    weight: float
    tasks: dict
    models: dict
    cache_tokens: int = 0  # size of the prompt-cached prefix on Claude calls (0 = no prompt caching)
    metadata: bool = True  # sets Converse requestMetadata (app, team, userId, sessionId)


_APPS = (
    _App("support-assistant", "customer-care", "role/support-bot-role",
         ("ecs-task-7f3a9c21", "ecs-task-1b2e4d08", "ecs-task-9c0d5e77"), 0.30,
         {"support": 0.6, "classify": 0.15, "tool": 0.25}, {"sonnet": 0.6, "haiku": 0.25, "nova-pro": 0.15},
         cache_tokens=2350),
    _App("doc-summarizer", "knowledge", "role/app-backend-role", ("i-0abc12345def67890", "i-0fed98765cba43210"),
         0.18, {"summarize": 1.0}, {"nova-lite": 0.4, "haiku": 0.3, "sonnet": 0.2, "llama": 0.1}),
    _App("code-review-bot", "platform", "role/ci-runner-role", ("gha-run-88121", "gha-run-88407"), 0.14,
         {"code_review": 0.8, "sql": 0.2}, {"sonnet": 0.7, "llama": 0.3}, cache_tokens=3100),
    _App("analytics-copilot", "data", "role/analytics-copilot-role", ("lambda-sql-helper",), 0.12,
         {"sql": 0.7, "classify": 0.3}, {"nova-pro": 0.3, "haiku": 0.3, "llama": 0.2, "nova-lite": 0.2}),
    _App("rag-indexer", "knowledge", "role/rag-indexer-role", ("indexer-task-42", "indexer-task-43"), 0.16,
         {"embed": 1.0}, {"titan": 1.0}, metadata=False),
    _App("dev-alice", "platform", "user/dev-alice", ("",), 0.05, {"chat": 0.7, "sql": 0.3},
         {"sonnet": 0.4, "haiku": 0.2, "nova-lite": 0.2, "llama": 0.2}, metadata=False),
    _App("dev-bob", "data", "user/dev-bob", ("",), 0.05, {"chat": 0.6, "summarize": 0.4},
         {"haiku": 0.5, "nova-lite": 0.42, "nova-pro": 0.08}, metadata=False),
)
# The burst is the support assistant going viral: its extra traffic leans even more on Sonnet.
_BURST_APP = replace(_APPS[0], models={"sonnet": 0.8, "haiku": 0.12, "nova-pro": 0.08})
_DENIED = {("dev-bob", "nova-pro")}  # dev-bob lacks bedrock:InvokeModel on Nova Pro: AccessDeniedException
# Rare failures outside throttling, as (errorCode, probability per call), on every route.
_RARE_ERRORS = (("ValidationException", 0.0030), ("ModelTimeoutException", 0.0006),
                ("InternalServerException", 0.0005), ("ServiceUnavailableException", 0.0005),
                ("AccessDeniedException", 0.0002))
_INFERENCE_REGIONS = (("us-east-1", 0.5), ("us-east-2", 0.3), ("us-west-2", 0.2))
_USERS = tuple(f"user-{i:04d}" for i in range(1, 401))


def _tokens(text: str) -> int:
    """Rough token estimate (about 4 characters a token): enough for plausible counts."""
    return max(1, (len(text) + 3) // 4)


def _frag(obj) -> orjson.Fragment:
    return _F(orjson.dumps(obj))


def _cum(weights) -> list[float]:
    """Cumulative, normalized weights for ``bisect`` (faster than rng.choices per record)."""
    total, acc, out = sum(weights), 0.0, []
    for w in weights:
        acc += w
        out.append(acc / total)
    out[-1] = 1.0
    return out


# --------------------------------------------------------------------------------------------
# Routes: one per (app, task, model, operation) with everything static pre-built.
# --------------------------------------------------------------------------------------------

class _Route:
    """A way a call is made: who calls which model with which operation for which task."""

    def __init__(self, app: _App, task_name: str, mkey: str, op: str, account: str, region: str):
        model = _MODELS[mkey]
        self.app, self.task_name, self.task, self.model, self.op = app, task_name, _TASKS[task_name], model, op
        self.converse = op in ("Converse", "ConverseStream")
        self.kind = "converse" if self.converse else (
            "anthropic_stream" if op == "InvokeModelWithResponseStream" else model.family)
        self.model_id = (f"arn:aws:bedrock:{region}:{account}:inference-profile/us.{model.base_id}"
                         if model.profile else model.base_id)
        self.identities = tuple(_F(orjson.dumps({"arn": (
            f"arn:aws:sts::{account}:assumed-role/{app.principal[5:]}/{s}" if app.principal.startswith("role/")
            else f"arn:aws:iam::{account}:{app.principal}")})) for s in app.sessions)
        self.claude = model.family == "anthropic"
        self.cache_tokens = app.cache_tokens if self.claude else 0
        self.metadata = app.metadata and self.converse  # requestMetadata is a Converse-only parameter
        self.denied = (app.name, mkey) in _DENIED
        self.throttle_base, self.throttle_burst = model.throttle
        self.n = len(self.task.pairs)
        self.inputs: dict = {}  # pair index -> (input body Fragment, input tokens), built lazily

    def input_body(self, i: int):
        got = self.inputs.get(i)
        if got is None:
            got = self.inputs[i] = self._build_input(i)
        return got

    def _build_input(self, i: int):
        t, prompt = self.task, self.task.pairs[i][0]
        cached = self.cache_tokens > 0
        if self.kind == "titan":
            return _frag({"inputText": prompt, "dimensions": 256, "normalize": True}), _tokens(prompt)
        # With prompt caching the system prompt is served from the cache: inputTokenCount is only the
        # non-cached part (AWS semantics), so it excludes the system prompt in that case.
        in_tokens = _tokens(prompt) + (0 if cached else _tokens(t.system)) + 4
        if self.kind == "converse":
            body = {"messages": [{"role": "user", "content": [{"text": prompt}]}],
                    "system": [{"text": t.system}] + ([{"cachePoint": {"type": "default"}}] if cached else []),
                    "inferenceConfig": {"maxTokens": t.max_tokens, "temperature": t.temperature}}
            if t.stop_sequences:
                body["inferenceConfig"]["stopSequences"] = list(t.stop_sequences)
            if self.model.family == "nova":  # the shape the Nova console/SDK samples send
                body["inferenceConfig"].update(topP=0.9, stopSequences=list(t.stop_sequences))
                body["additionalModelRequestFields"] = {}
            if self.task_name == "tool":
                body["toolConfig"] = _ORDER_TOOL
            return _frag(body), in_tokens
        if self.kind == "llama":
            body = {"prompt": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + t.system
                    + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n" + prompt
                    + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                    "max_gen_len": t.max_tokens, "temperature": t.temperature, "top_p": 0.9}
            return _frag(body), in_tokens + 12
        system = ([{"type": "text", "text": t.system, "cache_control": {"type": "ephemeral"}}]
                  if cached else t.system)
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": t.max_tokens, "system": system,
                "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
                "temperature": t.temperature}
        if t.stop_sequences:
            body["stop_sequences"] = list(t.stop_sequences)
        return _frag(body), in_tokens


class _Catalog:
    """Routes and pre-serialized completions for one (account, region); built once per process."""

    def __init__(self, account: str, region: str):
        def routes_of(apps):
            out = []
            for app in apps:
                for task_name, tw in app.tasks.items():
                    for mkey, mw in app.models.items():
                        model = _MODELS[mkey]
                        if (task_name == "embed") != (model.family == "titan"):
                            continue  # only the embedding model embeds, and it does nothing else
                        ops = {op: w for op, w in model.ops.items()
                               if task_name != "tool" or op in ("Converse", "ConverseStream")}
                        total = sum(ops.values())
                        for op, ow in ops.items():
                            out.append((_Route(app, task_name, mkey, op, account, region),
                                        app.weight * tw * mw * ow / total))
            return [r for r, _ in out], _cum([w for _, w in out])

        self.routes, self.cum = routes_of(_APPS)
        self.burst_routes, self.burst_cum = routes_of([_BURST_APP])
        self.bucket = f"dashcam-sample-invocation-logs-{account}"
        self.completions: dict = {}
        rng = random.Random(2)  # fixed: pools are the same whatever the seed
        self.vectors = tuple(_F(orjson.dumps([round(rng.gauss(0, 0.09), 6) for _ in range(12)]))
                             for _ in range(len(_EMBED_TEXTS)))

    def completion(self, kind: str, task_name: str, i: int, variant: str):
        """Pre-serialized completion for (body kind, task, pair, variant) plus its token estimate.

        variant: "text", "cut" (stopped by max_tokens: the text is truncated) or "guard".
        """
        key = (kind, task_name, i, variant)
        got = self.completions.get(key)
        if got is not None:
            return got
        text = _TASKS[task_name].pairs[i][1]
        if task_name == "tool":
            text = f"Order {_TASKS[task_name].pairs[i][1]} shipped yesterday and should arrive within two days."
        if variant == "cut":
            text = text[: max(8, int(len(text) * 0.6))]
        elif variant == "guard":
            text = _GUARDRAIL_TEXT
        if kind == "converse":
            frag = _frag({"role": "assistant", "content": [{"text": text}]})
        elif kind == "anthropic":
            frag = _frag([{"type": "text", "text": text}])
        elif kind == "llama":
            frag = _frag(text)
        else:  # anthropic_stream: the middle chunks, content_block_start .. content_block_stop
            # deltas of about 40 characters, like real token batches; joined they give the text back
            pieces = textwrap.wrap(text, 40, expand_tabs=False, replace_whitespace=False,
                                   drop_whitespace=False, break_on_hyphens=False) or [text]
            chunks = [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
            chunks += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
                       for p in pieces]
            chunks.append({"type": "content_block_stop", "index": 0})
            frag = b",".join(orjson.dumps(c) for c in chunks)
        got = self.completions[key] = (frag, _tokens(text))
        return got


@lru_cache(maxsize=8)
def _catalog(account: str, region: str) -> _Catalog:
    return _Catalog(account, region)


# --------------------------------------------------------------------------------------------
# Planning: per-minute counts, then objects.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Object:
    index: int
    hour: int  # epoch seconds of the UTC hour (the S3 folder)
    first_second: int  # start of its first minute bucket: names the object
    segments: tuple  # (lo, hi, bucket count, first index in bucket, n, burst load)


def _span(spec: SampleSpec) -> tuple[int, int]:
    """First and last whole second of the span [start, start + hours) (a naive start counts as UTC)."""
    start = spec.start if spec.start.tzinfo else spec.start.replace(tzinfo=timezone.utc)
    s = start.timestamp()
    t0, t1 = math.ceil(s), math.ceil(s + spec.hours * 3600) - 1
    return t0, max(t0, t1)


def _load(f: float) -> float:
    """Volume multiplier at fraction f of the span: 1 outside the burst, BURST_FACTOR at its plateau."""
    a, b = BURST_WINDOW
    if f <= a or f >= b:
        return 1.0
    ramp = 0.15 * (b - a)  # short ramps so the burst edges look organic, not like a square wave
    return 1.0 + (BURST_FACTOR - 1.0) * min(1.0, min(f - a, b - f) / ramp)


@lru_cache(maxsize=16)
def _plan(spec: SampleSpec) -> tuple[_Object, ...]:
    t0, t1 = _span(spec)
    n = max(0, int(spec.records))
    if n == 0:
        return ()
    rng = random.Random(f"dashcam-sample/{spec.seed}/plan")
    # Minute buckets aligned to UTC minutes (so none straddles an hour folder), clipped to the span.
    edges = [t0] + list(range(t0 - t0 % 60 + 60, t1 + 1, 60)) + [t1 + 1]
    span = t1 + 1 - t0
    buckets, weights = [], []
    for lo, hi in zip(edges, edges[1:]):
        mid = (lo + hi) / 2
        load = _load((mid - t0) / span)
        hod = (mid % 86400) / 3600
        shape = 1.0 + 0.35 * math.cos(2 * math.pi * (hod - 15) / 24)  # daily cycle, peak 15:00 UTC
        if lo % 3600 < 300:
            shape *= 1.2  # top-of-hour batch jobs (indexers, reports)
        noise = max(0.5, rng.gauss(1.0, 0.08))
        buckets.append((lo, hi, load))
        weights.append((hi - lo) * shape * load * noise)
    # Systematic sampling: counts add up to exactly n and each is within 1 of its share, and a
    # small n is still spread over the whole span (largest-remainder would pile it into the burst).
    total, acc, prev, u = sum(weights), 0.0, 0, rng.random()
    counts = []
    for w in weights:
        acc += w
        cur = int(acc / total * n + u)
        counts.append(cur - prev)
        prev = cur
    counts[-1] += n - prev  # guard against float rounding in the last cumulative sum
    # Group by hour; split an hour into equal parts of at most MAX_RECORDS_PER_OBJECT records.
    by_hour: dict[int, list] = {}
    for (lo, hi, load), c in zip(buckets, counts):
        if c:
            by_hour.setdefault(lo - lo % 3600, []).append((lo, hi, c, load))
    objects = []
    for hour, items in by_hour.items():
        h_total = sum(c for _, _, c, _ in items)
        parts = -(-h_total // MAX_RECORDS_PER_OBJECT)
        sizes = [h_total // parts + (1 if p < h_total % parts else 0) for p in range(parts)]
        it, cur = iter(items), None
        for size in sizes:
            segs, need = [], size
            while need:
                if cur is None:
                    lo, hi, c, load = next(it)
                    cur = [lo, hi, c, 0, load]  # next unassigned index in this bucket
                lo, hi, c, k, load = cur
                take = min(need, c - k)
                segs.append((lo, hi, c, k, take, load))
                need -= take
                cur = None if k + take == c else [lo, hi, c, k + take, load]
            objects.append(_Object(len(objects), hour, segs[0][0], tuple(segs)))
    return tuple(objects)


def burst_window(spec: SampleSpec) -> tuple[datetime, datetime]:
    """The UTC interval of the burst (volume up to x3, heavy Sonnet throttling) for ``spec``."""
    t0, t1 = _span(spec)
    span = t1 + 1 - t0
    a, b = BURST_WINDOW
    return (datetime.fromtimestamp(t0 + a * span, timezone.utc), datetime.fromtimestamp(t0 + b * span, timezone.utc))


# --------------------------------------------------------------------------------------------
# Record generation
# --------------------------------------------------------------------------------------------

_MMSS = tuple(f"{s // 60:02d}:{s % 60:02d}Z" for s in range(3600))  # "MM:SSZ" by second of the hour
_ID_CHARS = str.maketrans("0123456789abcdef", "1A9bKq3RtW7xZe5M")  # hex -> mixed case, like msg ids
_RARE_CUM = tuple(zip(accumulate(p for _, p in _RARE_ERRORS), (code for code, _ in _RARE_ERRORS)))
_RARE_TOTAL = _RARE_CUM[-1][0]
_REGION_CUM = _cum([w for _, w in _INFERENCE_REGIONS])


def _uuid(n: int) -> str:
    """Format 128 random bits as a version-4 UUID (like uuid4, but from our seeded RNG)."""
    n = (n & ~(0xF << 76)) | (0x4 << 76)
    n = (n & ~(0xC << 60)) | (0x8 << 60)
    h = "%032x" % n
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _ObjectGen:
    """Generates the records of one object from that object's own RNG."""

    def __init__(self, spec: SampleSpec, obj: _Object):
        self.spec, self.obj = spec, obj
        self.cat = _catalog(spec.account_id, spec.region)
        rng = random.Random(f"dashcam-sample/{spec.seed}/{obj.index}")
        self.rnd, self.bits = rng.random, rng.getrandbits
        self.s3_prefix = (f"s3://{self.cat.bucket}/AWSLogs/{spec.account_id}/BedrockModelInvocationLogs/"
                          f"{spec.region}/" + time.strftime("%Y/%m/%d/%H", time.gmtime(obj.hour)) + "/data/")

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """Yield (epoch second, JSON line) in time order."""
        rnd, bits, dumps, obj, cat = self.rnd, self.bits, orjson.dumps, self.obj, self.cat
        acct, region, mmss, bisect_left = self.spec.account_id, self.spec.region, _MMSS, bisect.bisect_left
        routes, cum, burst_routes, burst_cum = cat.routes, cat.cum, cat.burst_routes, cat.burst_cum
        hour, hour_prefix = obj.hour, time.strftime("%Y-%m-%dT%H:", time.gmtime(obj.hour))
        for lo, hi, c, k0, n, load in obj.segments:
            heat = (load - 1.0) / (BURST_FACTOR - 1.0)  # 0 outside the burst, 1 at its peak
            extra = (load - 1.0) / load  # share of this minute's calls that are burst traffic
            slow = 1.0 + 0.9 * heat  # latency climbs under load
            width = hi - lo
            for k in range(k0, k0 + n):
                # Stratified placement keeps seconds sorted even when a minute is split across objects.
                sec = lo + int((k + rnd()) * width / c)
                if extra and rnd() < extra:
                    r = burst_routes[bisect_left(burst_cum, rnd())]
                else:
                    r = routes[bisect_left(cum, rnd())]
                rid = _uuid(bits(128))
                i = int(rnd() * r.n)
                body, in_tok = r.input_body(i)
                idents = r.identities
                rec = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
                       "timestamp": hour_prefix + mmss[sec - hour], "accountId": acct,
                       "identity": idents[int(rnd() * len(idents))] if len(idents) > 1 else idents[0],
                       "region": region, "requestId": rid, "operation": r.op, "modelId": r.model_id}
                u = rnd()
                p_thr = r.throttle_base + r.throttle_burst * heat
                if r.denied:
                    err = "AccessDeniedException"
                elif u < p_thr:
                    err = "ThrottlingException"
                elif u < p_thr + _RARE_TOTAL:
                    err = next(code for edge, code in _RARE_CUM if u - p_thr < edge)
                else:
                    err = None
                if err is None:
                    self._success(rec, r, i, body, in_tok, slow, rid)
                else:  # failed calls are logged with the request but no output and no token counts
                    rec["errorCode"] = err
                    rec["input"] = {"inputContentType": _JSON, "inputBodyJson": body}
                if r.metadata:
                    rec["requestMetadata"] = {"app": r.app.name, "team": r.app.team,
                                              "userId": _USERS[int(rnd() * len(_USERS))],
                                              "sessionId": "sess-%08x" % bits(32)}
                yield sec, dumps(rec)

    def _success(self, rec: dict, r: _Route, i: int, body, in_tok: int, slow: float, rid: str) -> None:
        """Fill input/output of a successful call: tokens, stop reason, latency, provider-native body."""
        rnd, bits = self.rnd, self.bits
        model, task, kind = r.model, r.task, r.kind
        cr = cw = 0
        if r.cache_tokens:  # prompt caching: mostly hits, sometimes a (re)write after the 5-minute TTL
            if rnd() < 0.85:
                cr = r.cache_tokens
            else:
                cw = r.cache_tokens
        s = rnd()
        stop, variant = "end_turn", "text"
        if r.task_name == "tool":
            if s < 0.65:
                stop = "tool_use"
        elif s < task.p_max_tokens:
            stop, variant = "max_tokens", "cut"
        elif s < task.p_max_tokens + task.p_stop_sequence:
            stop = "stop_sequence"
        elif r.converse and s > 1.0 - task.p_guardrail:
            stop, variant = "guardrail_intervened", "guard"
        offload = kind != "titan" and rnd() < OFFLOAD_RATE
        if offload:  # only bodies over ~100 KB are offloaded: a long document went in
            in_tok = 28_000 + int(rnd() * 90_000)

        if kind == "titan":
            rec["input"] = {"inputContentType": _JSON, "inputBodyJson": body, "inputTokenCount": in_tok}
            rec["output"] = {"outputContentType": _JSON, "outputBodyJson": {
                "embedding": self.cat.vectors[i], "inputTextTokenCount": in_tok}}
            return

        frag, text_tok = self.cat.completion(kind, r.task_name, i, variant)
        if stop == "max_tokens":
            out_tok = task.max_tokens
        elif stop == "tool_use":
            out_tok = 40 + int(rnd() * 30)
        else:
            out_tok = max(1, int(text_tok * model.verbosity * (0.75 + 0.5 * rnd())))
        out_offload = offload and r.claude and rnd() < 0.3
        if out_offload:  # a very long generation: the response body went to S3 too
            out_tok = 20_000 + int(rnd() * 12_000)
        # Latency: time to first byte (grows a little with input size) + time per output token, with a
        # heavy tail (about 4% of calls are 1.2x to 5x slower), all stretched during the burst.
        ttft = model.ttft_ms * (0.7 + 0.6 * rnd()) + in_tok * 0.004
        lat = ttft + out_tok * model.ms_per_token * (0.85 + 0.3 * rnd())
        t = rnd()
        if t < 0.04:
            lat *= 1.5 / (t * 25 + 0.3)
        lat, ttft = int(lat * slow), int(ttft * slow)

        if offload:  # the S3 path takes the body's place; token counts are still logged
            rec["input"] = {"inputContentType": _JSON, "inputBodyS3Path": self.s3_prefix + rid + "_input.json.gz",
                            "inputTokenCount": in_tok, "cacheReadInputTokenCount": cr,
                            "cacheWriteInputTokenCount": cw}
        else:
            rec["input"] = {"inputContentType": _JSON, "inputBodyJson": body, "inputTokenCount": in_tok,
                            "cacheReadInputTokenCount": cr, "cacheWriteInputTokenCount": cw}

        if kind == "converse":
            if stop == "tool_use":
                oid = task.pairs[i][1]
                message = {"role": "assistant", "content": [
                    {"text": f"Let me look up order {oid}."},
                    {"toolUse": {"toolUseId": "tooluse_" + ("%022x" % bits(88)).translate(_ID_CHARS),
                                 "name": "get_order_status", "input": {"orderId": oid}}}]}
            else:
                message = frag
            usage = {"inputTokens": in_tok, "outputTokens": out_tok, "totalTokens": in_tok + out_tok + cr + cw}
            if r.claude:
                usage["cacheReadInputTokens"] = cr
                usage["cacheWriteInputTokens"] = cw
            out_body = {"output": {"message": message}, "stopReason": stop, "metrics": {"latencyMs": lat},
                        "usage": usage}
        elif kind == "llama":
            out_body = {"generation": frag, "prompt_token_count": in_tok, "generation_token_count": out_tok,
                        "stop_reason": "length" if stop == "max_tokens" else "stop"}
        else:
            msg_id = "msg_bdrk_01" + ("%022x" % bits(88)).translate(_ID_CHARS)
            seq = task.stop_sequences[0] if stop == "stop_sequence" else None
            usage = {"input_tokens": in_tok, "output_tokens": out_tok, "cache_creation_input_tokens": cw,
                     "cache_read_input_tokens": cr}
            if kind == "anthropic":
                out_body = {"id": msg_id, "type": "message", "role": "assistant", "model": model.native,
                            "content": frag, "stop_reason": stop, "stop_sequence": seq, "usage": usage}
            else:  # anthropic_stream: the decoded chunks; the last one carries Bedrock's invocation metrics
                start = orjson.dumps({"type": "message_start", "message": {
                    "id": msg_id, "type": "message", "role": "assistant", "model": model.native, "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})
                end = orjson.dumps([
                    {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": seq},
                     "usage": {"output_tokens": out_tok}},
                    {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": in_tok, "outputTokenCount": out_tok, "invocationLatency": lat,
                        "firstByteLatency": ttft}}])
                out_body = _F(b"[" + start + b"," + frag + b"," + end[1:])
        if out_offload:
            rec["output"] = {"outputContentType": _JSON,
                             "outputBodyS3Path": self.s3_prefix + rid + "_output.json.gz", "outputTokenCount": out_tok}
        else:
            rec["output"] = {"outputContentType": _JSON, "outputBodyJson": out_body, "outputTokenCount": out_tok}
        if model.profile:  # the Region that served this cross-Region inference-profile call
            rec["inferenceRegion"] = _INFERENCE_REGIONS[bisect.bisect_left(_REGION_CUM, rnd())][0]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def generate_lines(spec: SampleSpec) -> Iterator[tuple[datetime, bytes]]:
    """Yield (timestamp, one JSON line without newline) — the fast path used by the writer."""
    last_sec, last_dt = None, None
    for obj in _plan(spec):
        for sec, line in _ObjectGen(spec, obj).lines():
            if sec != last_sec:  # many records share a second: build each datetime once
                last_sec, last_dt = sec, datetime.fromtimestamp(sec, timezone.utc)
            yield last_dt, line


def generate_records(spec: SampleSpec) -> Iterator[dict]:
    """Yield ModelInvocationLog 1.0 records as dicts, in timestamp order."""
    loads = orjson.loads
    for _, line in generate_lines(spec):
        yield loads(line)  # parsing the line guarantees dicts and files never disagree


def _object_key(spec: SampleSpec, obj: _Object) -> str:
    """S3-style key of an object: AWSLogs/<acct>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<name>."""
    folder = time.strftime("%Y/%m/%d/%H", time.gmtime(obj.hour))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(obj.first_second))
    suffix = "%08x" % zlib.crc32(f"{spec.seed}/{spec.records}/{obj.index}".encode())
    return (f"AWSLogs/{spec.account_id}/BedrockModelInvocationLogs/{spec.region}/{folder}/"
            f"{stamp}_{suffix}.json.gz")


class _GzipObject:
    """One output object being written; its methods run on the single compression thread, in order."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "wb")
        # wbits=31: gzip container with mtime 0 and no file name, so the bytes are reproducible.
        self.comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        self.written = 0

    def write(self, lines: list[bytes]) -> None:
        lines.append(b"")  # so the join ends with a newline too (JSON Lines)
        self.written += self.file.write(self.comp.compress(b"\n".join(lines)))

    def close(self) -> int:
        self.written += self.file.write(self.comp.flush())
        self.file.close()
        return self.written


def write_bedrock_layout(spec: SampleSpec, out_dir: Path | str, *,
                         progress: Callable[[int], None] | None = None) -> SampleSummary:
    """Write gzip JSON Lines in Bedrock's S3 layout under out_dir:
    AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<YYYYMMDDTHHMMSSZ>_<8 hex>.json.gz
    (one or more objects per UTC hour; split an hour into several objects of at most ~50,000 records).

    ``progress(n)`` is called with the number of records just written, in batches of up to 8,192
    (for a progress bar). Existing files under ``out_dir`` are left alone.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    objects = _plan(spec)
    # The writer thread re-takes the GIL every time it returns from zlib or a file write; by default
    # it then waits up to 5 ms for the generating thread to hand it over, which (several times per
    # batch) made it the bottleneck. A short switch interval, only while writing, removes the wait.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, 5e-5))
    try:
        records, written = _write_objects(spec, root, objects, progress)
    finally:
        sys.setswitchinterval(switch)
    return SampleSummary(files=len(objects), records=records, bytes_written=written, root=root)


def _write_objects(spec: SampleSpec, root: Path, objects, progress) -> tuple[int, int]:
    """Generate on this thread while one background thread compresses and writes.

    Generation holds the GIL but zlib and file writes release it, so this uses both cores without
    multiprocessing (no pickling, no re-import of ``__main__``, same bytes by construction).
    """
    pending: deque = deque()  # (future, records): bounded, so memory stays flat at any size
    records = 0

    def settle(limit: int) -> None:
        nonlocal records
        while len(pending) > limit:
            fut, n = pending.popleft()
            fut.result()  # re-raises an I/O error from the writer thread
            records += n
            if progress and n:
                progress(n)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashcam-gzip") as pool:
        closes = []
        for obj in objects:
            sink = _GzipObject(root / _object_key(spec, obj))
            batch: list[bytes] = []
            for _, line in _ObjectGen(spec, obj).lines():
                batch.append(line)
                if len(batch) == _BATCH:
                    pending.append((pool.submit(sink.write, batch), _BATCH))
                    batch = []
                    settle(3)
            if batch:
                n = len(batch)  # before submitting: the writer appends to the list
                pending.append((pool.submit(sink.write, batch), n))
            closes.append(pool.submit(sink.close))
            pending.append((closes[-1], 0))
            settle(3)
        settle(0)
        return records, sum(c.result() for c in closes)


def prompt_catalog() -> tuple[tuple[str, str, str, int], ...]:
    """The sample applications' text prompts, as ``(task, system prompt, user prompt, max tokens)``:
    what the load driver sends to the simulator, so live traffic reads like the sample logs."""
    return tuple((name, task.system, prompt, task.max_tokens)
                 for name, task in _TASKS.items() if name not in ("embed", "tool")
                 for prompt, _ in task.pairs)
