"""The alarm evaluator: a pure function of (definition, datapoints, previous state, now).

CloudWatch's rules, as its user guide states them ("How alarm state is evaluated when data is
missing"), with dashcam's choices where AWS publishes none:

- **Periods.** Buckets are aligned to the epoch. The period that contains ``now`` is still filling
  and is never judged (a Sum would look low); the newest judged period is the one before it.
- **Evaluation range.** The last ``EvaluationPeriods + 2`` complete periods (AWS fetches "more
  datapoints than Evaluation Periods" without saying how many; its own example uses 3 + 2).
- **M of N.** With at least N real datapoints in the range, the N most recent are judged and
  TreatMissingData does not matter: ALARM when at least M breach, else OK.
- **Fewer than N real datapoints.** ``breaching`` / ``notBreaching`` fill the shortfall with
  breaching / good points and judge as above. ``missing``: no datapoint at all gives
  INSUFFICIENT_DATA; otherwise ALARM when M real points breach, or when every real point breaches
  and the oldest is at least M periods old (AWS's "premature alarm" rule, the ``- - X - -``
  case), else OK. ``ignore`` decides as ``missing`` does, except that where ``missing`` would go to
  INSUFFICIENT_DATA or raise a premature alarm it keeps the current state.
- **Low sample counts.** With ``EvaluateLowSampleCountPercentile: ignore`` and a percentile
  statistic, a judged datapoint built from fewer than ``10 / (1 - p/100)`` samples keeps the
  current state.

Reasons and reason data are written as CloudWatch writes them (``Threshold Crossed: 2 out of the
last 3 datapoints [...] were greater than the threshold (5.0) ...`` and the JSON with
``recentDatapoints``, ``evaluatedDatapoints``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from dashcam.alarms.model import ALARM, ANOMALY, INSUFFICIENT_DATA, OK, AlarmDefinition, MetricSpec

EXTRA_RANGE_PERIODS = 2
_OPERATOR_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


@dataclass(frozen=True)
class Datapoint:
    """One period's value (``timestamp_ms`` = the period's start); band alarms carry the band."""

    timestamp_ms: int
    value: float
    lower: float | None = None
    upper: float | None = None
    sample_count: float | None = None


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation decided. ``reason``/``reason_data`` explain ``state``; ``changed`` is
    whether it differs from the previous state; ``value`` is the newest judged value, if any."""

    state: str
    reason: str
    reason_data: str
    changed: bool
    previous_state: str
    evaluated_at_ms: int
    value: float | None = None


@dataclass(frozen=True)
class _Point:
    datapoint: Datapoint
    breaching: bool
    age: int  # 1 = the newest complete period


def evaluation_range(definition: AlarmDefinition, now_ms: int) -> tuple[int, int]:
    """``[start_ms, end_ms)`` of the periods judged at ``now_ms``: complete periods only."""
    period_ms = definition.period * 1000
    end = now_ms // period_ms * period_ms
    return end - (definition.evaluation_periods + EXTRA_RANGE_PERIODS) * period_ms, end


def evaluate(definition: AlarmDefinition, datapoints: Sequence[Datapoint], previous_state: str,
             now_ms: int) -> Evaluation:
    """The alarm's state at ``now_ms`` given its datapoints (any order; those outside the evaluation
    range are ignored) and its previous state (INSUFFICIENT_DATA for a new alarm)."""
    start, end = evaluation_range(definition, now_ms)
    period_ms = definition.period * 1000
    by_slot: dict[int, Datapoint] = {}
    for point in datapoints:
        if start <= point.timestamp_ms < end and point.value is not None and math.isfinite(point.value):
            by_slot[start + (point.timestamp_ms - start) // period_ms * period_ms] = point
    real: list[_Point] = []
    for slot in sorted(by_slot):
        breaching = _breaches(definition, by_slot[slot])
        if breaching is not None:  # a band datapoint without a band cannot be judged: it counts as missing
            real.append(_Point(by_slot[slot], breaching, (end - slot) // period_ms))

    n, m = definition.evaluation_periods, definition.m
    context = _Context(definition, previous_state, now_ms, start, end)
    if len(real) >= n:
        judged = real[-n:]
        if _too_few_samples(definition, judged):
            return context.retained(judged, "the judged datapoints have too few samples for the percentile")
        breaches = sum(p.breaching for p in judged)
        return context.decide(ALARM if breaches >= m else OK, judged, filled=0)

    if _too_few_samples(definition, real):
        return context.retained(real, "the judged datapoints have too few samples for the percentile")
    shortfall = n - len(real)
    breaches = sum(p.breaching for p in real)
    mode = definition.treat_missing_data
    if mode in ("breaching", "notBreaching"):
        total = breaches + (shortfall if mode == "breaching" else 0)
        return context.decide(ALARM if total >= m else OK, real, filled=shortfall)
    if not real:
        if mode == "ignore":
            return context.retained([], "no datapoints were received and missing data is ignored")
        return context.insufficient(f"{len(range(start, end, period_ms))} datapoint"
                                    f"{'s were' if end - start > period_ms else ' was'} unknown.")
    if breaches >= m:
        return context.decide(ALARM, real, filled=0)
    if breaches == len(real) and real[0].age >= m:
        if mode == "ignore":
            return context.retained(real, "too few datapoints were received and missing data is ignored")
        return context.decide(ALARM, real, filled=0, premature=True)
    return context.decide(OK, real, filled=0)


def failed_evaluation(definition: AlarmDefinition, previous_state: str, problem: str, now_ms: int) -> Evaluation:
    """INSUFFICIENT_DATA because the alarm's data could not be read (``problem`` says why)."""
    start, end = evaluation_range(definition, now_ms)
    return _Context(definition, previous_state, now_ms, start, end).insufficient(
        f"the alarm's data could not be read: {problem}")


# ---------------------------------------------------------------------- judging one datapoint


def _breaches(definition: AlarmDefinition, point: Datapoint) -> bool | None:
    operator, value = definition.comparison_operator, point.value
    if definition.kind == ANOMALY:
        if point.lower is None or point.upper is None:
            return None
        if operator == "LessThanLowerThreshold":
            return value < point.lower
        if operator == "GreaterThanUpperThreshold":
            return value > point.upper
        return value < point.lower or value > point.upper
    threshold = definition.threshold
    assert threshold is not None
    return {
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "GreaterThanThreshold": value > threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }[operator]


def watched_metric(definition: AlarmDefinition) -> MetricSpec | None:
    """The metric whose statistic the alarm judges, when it is a plain metric (not math or a query)."""
    if definition.metric is not None:
        return definition.metric
    entry = definition.entry(definition.watched_id)
    return entry.metric if entry is not None else None


def _too_few_samples(definition: AlarmDefinition, points: Sequence[_Point]) -> bool:
    if definition.evaluate_low_sample_count_percentile != "ignore":
        return False
    metric = watched_metric(definition)
    percentile = metric.percentile if metric is not None else None
    if percentile is None or percentile >= 100:
        return False
    needed = 10 / (1 - percentile / 100)
    return any(p.datapoint.sample_count is not None and p.datapoint.sample_count < needed for p in points)


# ---------------------------------------------------------------------- reasons


def _number(value: float) -> str:
    return repr(float(value))


def _moment(epoch_ms: int) -> str:
    """CloudWatch's datapoint time in reasons: ``dd/mm/yy HH:MM:SS`` UTC."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def iso_timestamp(epoch_ms: int) -> str:
    """CloudWatch's timestamp in reason data and messages: ``2026-03-02T14:05:00.000+0000``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}+0000"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Context:
    """Builds Evaluations for one call of :func:`evaluate`."""

    def __init__(self, definition: AlarmDefinition, previous: str, now_ms: int, start: int, end: int) -> None:
        self.definition = definition
        self.previous = previous
        self.now_ms = now_ms
        self.start = start
        self.end = end

    def _evaluation(self, state: str, reason: str, data: dict, points: Sequence[_Point]) -> Evaluation:
        value = points[-1].datapoint.value if points else None
        return Evaluation(state, reason, orjson.dumps(data).decode(), state != self.previous,
                          self.previous, self.now_ms, value)

    def decide(self, state: str, points: Sequence[_Point], *, filled: int, premature: bool = False) -> Evaluation:
        definition = self.definition
        n = definition.evaluation_periods
        m = definition.m
        needed = m if state == ALARM else n - m + 1
        transition = f"(minimum {_plural(needed, 'datapoint')} for {self.previous} -> {state} transition)"
        mode = definition.treat_missing_data
        fill_word = "Breaching" if mode == "breaching" else "NonBreaching"
        shown = [p for p in points if p.breaching == (state == ALARM)]
        if not points:
            periods = (self.end - self.start) // (definition.period * 1000)
            reason = (f"Threshold Crossed: no datapoints were received for {_plural(periods, 'period')} and "
                      f"{_plural(filled, 'missing datapoint')} {'was' if filled == 1 else 'were'} treated as "
                      f"[{fill_word}].")
        else:
            listed = ", ".join(f"{_number(p.datapoint.value)} ({_moment(p.datapoint.timestamp_ms)})"
                               for p in reversed(shown))
            verb = "was" if len(shown) == 1 else "were"
            negation = "" if state == ALARM else "not "
            reason = (f"{'Thresholds' if definition.kind == ANOMALY else 'Threshold'} Crossed: {len(shown)} out of "
                      f"the last {n} datapoints [{listed}] {verb} "
                      f"{negation}{self._comparison(shown)}")
            if filled:
                reason += (f" and {_plural(filled, 'missing datapoint')} {'was' if filled == 1 else 'were'} "
                           f"treated as [{fill_word}]")
            if premature:
                reason += " and no more recent datapoints were received"
            reason += f" {transition}."
        return self._evaluation(state, reason, self._data(points, filled), points)

    def _comparison(self, shown: Sequence[_Point]) -> str:
        definition = self.definition
        if definition.kind != ANOMALY:
            return f"{_OPERATOR_WORDS[definition.comparison_operator]} the threshold ({_number(definition.threshold)})"
        lower = ", ".join(_number(p.datapoint.lower) for p in reversed(shown))
        upper = ", ".join(_number(p.datapoint.upper) for p in reversed(shown))
        operator = definition.comparison_operator
        if operator == "LessThanLowerThreshold":
            return f"less than the lower thresholds [{lower}]"
        if operator == "GreaterThanUpperThreshold":
            return f"greater than the upper thresholds [{upper}]"
        return f"less than the lower thresholds [{lower}] or greater than the upper thresholds [{upper}]"

    def retained(self, points: Sequence[_Point], why: str) -> Evaluation:
        reason = f"State retained: {why}."
        return self._evaluation(self.previous, reason, self._data(points, 0), points)

    def insufficient(self, why: str) -> Evaluation:
        reason = f"Insufficient Data: {why}"
        data = {"version": "1.0", "queryDate": iso_timestamp(self.now_ms), "startDate": iso_timestamp(self.start),
                **self._metric_data(), "recentDatapoints": [], **self._threshold_data([])}
        return Evaluation(INSUFFICIENT_DATA, reason, orjson.dumps(data).decode(),
                          self.previous != INSUFFICIENT_DATA, self.previous, self.now_ms, None)

    def _metric_data(self) -> dict:
        metric = self.definition.metric
        return {"statistic": metric.stat, "period": metric.period} if metric is not None else {}

    def _threshold_data(self, points: Sequence[_Point]) -> dict:
        if self.definition.kind == ANOMALY:
            return {"recentLowerThresholds": [p.datapoint.lower for p in points],
                    "recentUpperThresholds": [p.datapoint.upper for p in points]}
        return {"threshold": self.definition.threshold}

    def _data(self, points: Sequence[_Point], filled: int) -> dict:
        period_ms = self.definition.period * 1000
        first = points[0].datapoint.timestamp_ms if points else self.end - filled * period_ms
        evaluated = []
        for point in reversed(points):
            item: dict = {"timestamp": iso_timestamp(point.datapoint.timestamp_ms)}
            if point.datapoint.sample_count is not None:
                item["sampleCount"] = point.datapoint.sample_count
            item["value"] = point.datapoint.value
            evaluated.append(item)
        taken = {p.datapoint.timestamp_ms for p in points}
        missing = [slot for slot in range(self.end - period_ms, self.start - 1, -period_ms) if slot not in taken]
        for slot in sorted(missing[:filled], reverse=True):
            evaluated.append({"timestamp": iso_timestamp(slot)})
        evaluated.sort(key=lambda item: item["timestamp"], reverse=True)
        return {"version": "1.0", "queryDate": iso_timestamp(self.now_ms),
                "startDate": iso_timestamp(min([first, *(s for s in missing[:filled])])),
                **self._metric_data(), "recentDatapoints": [p.datapoint.value for p in points],
                **self._threshold_data(points), "evaluatedDatapoints": evaluated}
