"""The seasonal anomaly band: what ``ANOMALY_DETECTION_BAND(m1, 2)`` means in dashcam.

A baseline is learned from a metric's history by hour of day and day of week (UTC), and the band
is that baseline plus and minus ``width`` robust standard deviations:

- **Hour of day.** Each of the 24 hours gets the median of its values as its centre, when it
  holds at least :data:`MIN_SAMPLES` values from at least two different days; otherwise the
  median of the whole history stands in. Centres sit at the middle of their hour and the
  baseline is interpolated linearly between them, so a daily ramp does not become a staircase.
- **Day of week, when the history shows one.** Each of the 168 hours of the week (with
  :data:`MIN_SAMPLES` values from two different weeks) measures its effect: the median of its
  values' residuals from the daily baseline. Fourteen days give an hour of the week only a
  handful of values, so its effect is mostly noise unless the week really has a shape; the
  effects are therefore shrunk toward 0 by how much of their spread exceeds what noise alone
  would give (an empirical-Bayes estimate). A quiet weekend is learned; a noisy Tuesday is not.
- **Spread.** The residuals from the baseline give the spread as 1.4826 x their median absolute
  deviation: a standard deviation that past spikes do not inflate. When more than half the
  residuals are identical (a metric that is mostly 0), the MAD is 0 and their plain standard
  deviation is used instead. Each hour of day has its own spread, blended with the spread of the
  whole history by sample size (:data:`SPREAD_PRIOR`), so an hour seen only 14 times (hourly
  periods) does not get a band from a handful of values. The spread is widened by the centre's own
  uncertainty (new values were not part of what it was learned from), and it is never below
  :data:`MIN_RELATIVE_SPREAD` of the centre's size, so a perfectly flat history does not alarm
  on rounding noise.

Each value stands for its whole period, so it is placed at the middle of the period
(``timestamp + period_s / 2``) when it is bucketed and interpolated. A sudden step between two
hours (a weekend beginning at midnight) is blurred over the hour on either side of it.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

from dashcam.errors import InputError

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MIN_SAMPLES = 6
MAD_TO_SIGMA = 1.4826
MIN_RELATIVE_SPREAD = 0.01
SPREAD_PRIOR = 30
MEDIAN_VARIANCE = math.pi / 2  # a median of n values varies pi/2 times as much as their mean
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def _hour_of_week(hour_index: int) -> int:
    day = hour_index // 24
    return ((day + _EPOCH_WEEKDAY) % 7) * 24 + hour_index % 24


def _usable(times: Sequence[int], cycle_ms: int) -> bool:
    """Enough values, seen in at least two different cycles (days or weeks)."""
    return len(times) >= MIN_SAMPLES and len({t // cycle_ms for t in times}) >= 2


def _sigma(residuals: Sequence[float]) -> float:
    """A robust standard deviation: 1.4826 x MAD, or the plain one when the MAD is 0."""
    if len(residuals) < 2:
        return 0.0
    middle = statistics.median(residuals)
    mad = statistics.median(abs(r - middle) for r in residuals)
    return MAD_TO_SIGMA * mad if mad > 0 else statistics.pstdev(residuals)


class SeasonalModel:
    """A baseline learned once from history, asked for bands at many timestamps."""

    def __init__(self, history: Sequence[tuple[int, float]], *, period_s: int) -> None:
        self.half_period_ms = period_s * 500
        points = [(t + self.half_period_ms, float(v)) for t, v in history if v is not None and math.isfinite(v)]
        self.empty = not points
        self._flat = statistics.median(v for _, v in points) if points else math.nan
        self._flat_count = len(points)

        # Hour of day: hour -> (centre, number of values).
        by_hour: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for t, v in points:
            by_hour[(t // HOUR_MS) % 24].append((t, v))
        self._daily = {h: (statistics.median(v for _, v in items), len(items))
                       for h, items in by_hour.items() if _usable([t for t, _ in items], DAY_MS)}

        # Day of week: hour of week -> (shrunk effect, its variance factor); see the module docstring.
        self._weekly: dict[int, tuple[float, float]] = {}
        by_week_hour: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for t, v in points:
            by_week_hour[_hour_of_week(t // HOUR_MS)].append((t, v - self.centre(t)))
        measured = {}
        for k, items in by_week_hour.items():
            if _usable([t for t, _ in items], WEEK_MS):
                residuals = [r for _, r in items]
                effect = statistics.median(residuals)
                noise = MEDIAN_VARIANCE * _sigma([r - effect for r in residuals]) ** 2 / len(residuals)
                measured[k] = (effect, noise, len(residuals))
        if measured:
            noise = statistics.fmean(n for _, n, _ in measured.values())
            signal = max(0.0, statistics.fmean(e * e for e, _, _ in measured.values()) - noise)
            shrink = signal / (signal + noise) if signal + noise > 0 else 0.0
            self._weekly = {k: (shrink * effect, shrink * shrink * MEDIAN_VARIANCE / count)
                            for k, (effect, _, count) in measured.items()}

        # Spread: residuals from the full baseline, pooled by hour of day.
        spread_residuals: dict[int, list[float]] = defaultdict(list)
        everything: list[float] = []
        for t, v in points:
            residual = v - self.centre(t)
            spread_residuals[(t // HOUR_MS) % 24].append(residual)
            everything.append(residual)
        self._flat_spread = _sigma(everything)
        # An hour's own spread counts as much as it has residuals against SPREAD_PRIOR for the
        # pooled one: hourly periods give an hour only one residual a day.
        self._daily_spread = {
            h: math.sqrt((len(r) * _sigma(r) ** 2 + SPREAD_PRIOR * self._flat_spread ** 2) / (len(r) + SPREAD_PRIOR))
            for h, r in spread_residuals.items() if h in self._daily}

    def centre(self, t_ms: int) -> float:
        """The baseline at a moment (already shifted to the middle of its period)."""
        if self.empty:
            return math.nan
        position = (t_ms - HOUR_MS // 2) / HOUR_MS  # bucket centres sit at hh:30
        before = math.floor(position)
        weight = position - before
        return (1 - weight) * self._hour_centre(before) + weight * self._hour_centre(before + 1)

    def band(self, at: Sequence[int], width: float) -> list[tuple[float, float]]:
        """``(lower, upper)`` for each period start in ``at``; ``(nan, nan)`` with no history."""
        bands = []
        for t in at:
            moment = t + self.half_period_ms
            centre = self.centre(moment)
            spread = self._spread(moment // HOUR_MS, centre)
            bands.append((centre - width * spread, centre + width * spread))
        return bands

    def _hour_centre(self, hour_index: int) -> float:
        daily = self._daily.get(hour_index % 24)
        base = daily[0] if daily is not None else self._flat
        weekly = self._weekly.get(_hour_of_week(hour_index))
        return base + weekly[0] if weekly is not None else base

    def _spread(self, hour_index: int, centre: float) -> float:
        if self.empty:
            return math.nan
        hour = hour_index % 24
        spread = self._daily_spread.get(hour, self._flat_spread)
        daily = self._daily.get(hour)
        uncertainty = MEDIAN_VARIANCE / (daily[1] if daily is not None else self._flat_count)
        weekly = self._weekly.get(_hour_of_week(hour_index))
        if weekly is not None:
            uncertainty += weekly[1]
        return max(spread * math.sqrt(1 + uncertainty), MIN_RELATIVE_SPREAD * abs(centre), 1e-9)


def seasonal_band(history: Sequence[tuple[int, float]], at: Sequence[int], *, width: float,
                  period_s: int) -> list[tuple[float, float]]:
    """(lower, upper) for each timestamp in `at` (epoch ms), from a baseline learned from
    `history` (epoch ms, value) by hour of day and day of week, `width` standard deviations wide.

    Timestamps are period starts, as metric series carry them. With no usable history every band
    is ``(nan, nan)``: nothing can be said, and an alarm treats such a datapoint as missing.
    """
    if width <= 0:
        raise InputError(f"the band width must be positive, not {width}")
    return SeasonalModel(history, period_s=period_s).band(at, width)
