"""The saved queries the Query page offers: the four core questions, then common Bedrock analyses.

The core questions come from :data:`dashcam.query.library.CORE_QUESTIONS` (the CLI's demo asks the
same ones); the analyses below are the other questions Bedrock teams ask their invocation logs
most often. Every one is plain Logs Insights text, so it runs unchanged in CloudWatch too.
"""

from __future__ import annotations

from dashcam.query.library import CORE_QUESTIONS, SavedQuery

BEDROCK_ANALYSES: tuple[SavedQuery, ...] = (
    SavedQuery(
        "errors-by-code",
        "Which errors, on which models?",
        "filter ispresent(errorCode)\n"
        "| stats count(*) as errors by errorCode, modelId\n"
        "| sort errors desc",
    ),
    SavedQuery(
        "recent-errors",
        "The latest failed requests",
        "fields @timestamp, modelId, operation, errorCode, requestId\n"
        "| filter ispresent(errorCode)\n"
        "| sort @timestamp desc\n"
        "| limit 100",
    ),
    SavedQuery(
        "latency-by-model",
        "Latency percentiles by model",
        "filter ispresent(latencyMs)\n"
        "| stats count(*) as requests, pct(latencyMs, 50) as p50, pct(latencyMs, 90) as p90,"
        " pct(latencyMs, 99) as p99 by modelId\n"
        "| sort p99 desc",
    ),
    SavedQuery(
        "latency-over-time",
        "Latency p90 over time by model",
        "filter ispresent(latencyMs)\n"
        "| stats pct(latencyMs, 90) as p90 by bin(5m) as period, modelId",
    ),
    SavedQuery(
        "ttft-over-time",
        "Streaming: time to first token over time",
        "filter ispresent(timeToFirstTokenMs)\n"
        "| stats pct(timeToFirstTokenMs, 50) as p50, pct(timeToFirstTokenMs, 90) as p90 by bin(5m) as period",
    ),
    SavedQuery(
        "cost-by-model",
        "What does each model cost?",
        "stats count(*) as requests, sum(costUsd) as costUsd, sum(output.outputTokenCount) as outputTokens by modelId\n"
        "| sort costUsd desc",
    ),
    SavedQuery(
        "cost-by-caller",
        "Who is spending? Cost and tokens by caller identity",
        "stats sum(costUsd) as costUsd, sum(input.inputTokenCount) as inputTokens,"
        " sum(output.outputTokenCount) as outputTokens by identity.arn\n"
        "| sort costUsd desc",
    ),
    SavedQuery(
        "tokens-over-time",
        "Input and output tokens over time",
        "stats sum(input.inputTokenCount) as inputTokens, sum(output.outputTokenCount) as outputTokens by bin(15m) as period",
    ),
    SavedQuery(
        "prompt-cache",
        "Prompt caching: cached, written and uncached input tokens by model",
        "stats sum(input.cacheReadInputTokenCount) as cacheRead, sum(input.cacheWriteInputTokenCount) as cacheWrite,"
        " sum(input.inputTokenCount) as uncachedInput by modelId\n"
        "| sort cacheRead desc",
    ),
    SavedQuery(
        "truncated",
        "Responses cut off at the token limit",
        'filter stopReason in ["max_tokens", "length"]\n'
        "| stats count(*) as truncated by modelId, operation\n"
        "| sort truncated desc",
    ),
    SavedQuery(
        "operations",
        "Requests by API operation and model",
        "stats count(*) as requests, sum(throttled) as throttled by operation, modelId\n"
        "| sort requests desc",
    ),
    SavedQuery(
        "slowest-first-token",
        "The 20 slowest streaming starts",
        "fields @timestamp, modelId, operation, timeToFirstTokenMs, latencyMs\n"
        "| filter ispresent(timeToFirstTokenMs)\n"
        "| sort timeToFirstTokenMs desc\n"
        "| limit 20",
    ),
)


def saved_queries() -> list[dict[str, str]]:
    """Every saved query as ``{key, title, text, group}``, the core questions first."""
    return [
        {"key": q.key, "title": q.title, "text": q.text, "group": group}
        for group, queries in (("Core questions", CORE_QUESTIONS), ("Bedrock analyses", BEDROCK_ANALYSES))
        for q in queries
    ]
