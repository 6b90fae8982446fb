"""Saved queries shipped with dashcam: the four questions every GenAI team asks first."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SavedQuery:
    """A named Logs Insights query."""

    key: str
    title: str
    text: str


CORE_QUESTIONS: tuple[SavedQuery, ...] = (
    SavedQuery(
        "throttles",
        "Are we hitting limits? Throttled requests per 5 minutes and model, worst first",
        'filter errorCode = "ThrottlingException"\n'
        "| stats count(*) as throttles by bin(5m) as period, modelId\n"
        "| sort throttles desc",
    ),
    SavedQuery(
        "slowest",
        "Is the model slow? The 20 slowest requests",
        "fields @timestamp, modelId, operation, latencyMs, input.inputTokenCount, output.outputTokenCount\n"
        "| filter ispresent(latencyMs)\n"
        "| sort latencyMs desc\n"
        "| limit 20",
    ),
    SavedQuery(
        "traffic",
        "Is traffic peaking? Requests per minute, busiest first",
        "stats count(*) as requests, sum(throttled) as throttled by bin(1m) as minute\n| sort requests desc",
    ),
    SavedQuery(
        "tokens",
        "Are we using too many tokens? Input and output tokens by model",
        "stats count(*) as requests, sum(input.inputTokenCount) as inputTokens,"
        " sum(output.outputTokenCount) as outputTokens by modelId\n"
        "| sort outputTokens desc",
    ),
)
