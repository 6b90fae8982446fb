"""Quota headroom: how close each model runs to its requests- and tokens-per-minute quotas.

Quotas are per model: requests per minute (``rpm``) and tokens per minute (``tpm``, tokens counted
as ``EstimatedTPMQuotaUsage`` counts them: input + cache-write + output x the model's burndown).
They come from ``quotas.json`` in the data directory (``[{"model": "...", "rpm": 300, "tpm":
200000}]``, either number may be left out). No default table ships: AWS's default quotas differ by
Region, account and inference profile, and a wrong default would warn at the wrong time.

A recorded model id finds its quota as :func:`dashcam.pricing.model_keys` finds its price: as
written after an ARN prefix is removed, then without its geo prefix (``us.``, ``eu.``, ``apac.``,
``global.``, ...). So a quota for ``anthropic.claude-sonnet-4-...`` covers
``us.anthropic.claude-sonnet-4-...`` unless the profile has a quota of its own.

The two metrics (``AWS/Bedrock``, dimension ``ModelId`` or none):

* ``QuotaHeadroomPct``, per period: 100 x (1 - max(requests / rpm, quota tokens / tpm)) at the
  period's peak minute. Requests are ALL attempts (successful, failed and throttled: AWS counts
  throttled requests against the quota too); tokens come from successful requests. Negative when a
  minute went over the quota. Without a dimension: the minimum over the models that have quotas.
* ``QuotaMinutesToExhaustion``, per period: a least-squares line through the peak-minute usage
  (the fraction of the quota, as above) of the last :data:`TREND_PERIODS` periods that have
  traffic; the minutes from the period's start until the line reaches the quota (0 when it is
  there already). No datapoint when the line is flat or falling or fewer than two periods have
  traffic. Without a dimension: the minimum over the models.

One value per period and model, so ``Minimum``, ``Maximum``, ``Average`` and ``Sum`` all give it and
``SampleCount`` gives 1; other statistics are refused. All quota queries of a request are answered
from one SQL scan of per-minute, per-model counts.
"""

from __future__ import annotations

import os
import re
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlglot import exp

from dashcam.errors import ConfigError, InputError
from dashcam.metrics.definitions import METRICS
from dashcam.metrics.statistics import parse_statistic
from dashcam.pricing import ARN_PREFIX, GEO_PREFIX, model_keys
from dashcam.query.dialects import Dialect, and_, cast, col, lit
from dashcam.store.base import Store
from dashcam.store.schema import EVENTS_TABLE

QUOTAS_FILE = "quotas.json"
HEADROOM = "QuotaHeadroomPct"
MINUTES_TO_EXHAUSTION = "QuotaMinutesToExhaustion"
QUOTA_METRICS = frozenset({HEADROOM, MINUTES_TO_EXHAUSTION})
TREND_PERIODS = 10
SUPPORTED_STATISTICS = ("Minimum", "Maximum", "Average", "Sum", "SampleCount")
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class Quota:
    """One model's quotas per minute (None: that quota is not watched)."""

    model: str
    rpm: float | None = None
    tpm: float | None = None

    def usage(self, requests: float, tokens: float) -> float:
        """The fraction of the quota a minute with ``requests`` and ``tokens`` used (1 = all of it)."""
        parts = []
        if self.rpm:
            parts.append(requests / self.rpm)
        if self.tpm:
            parts.append(tokens / self.tpm)
        return max(parts)


class QuotaTable:
    """Quotas by model id."""

    def __init__(self, quotas: Sequence[Quota] = ()) -> None:
        self.quotas = {q.model: q for q in quotas}

    def lookup(self, model_id: str | None) -> Quota | None:
        """The quota of ``model_id``: exact (after an ARN prefix), else without its geo prefix."""
        if not model_id:
            return None
        for key in dict.fromkeys(model_keys(model_id)):
            if key in self.quotas:
                return self.quotas[key]
        return None

    def to_json(self) -> list[dict[str, Any]]:
        """The table as ``quotas.json`` holds it, sorted by model."""
        return [{"model": q.model, **({"rpm": q.rpm} if q.rpm else {}), **({"tpm": q.tpm} if q.tpm else {})}
                for q in sorted(self.quotas.values(), key=lambda q: q.model)]


# ---------------------------------------------------------------------- quotas.json


def _number(value: Any, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{where}: \"{name}\" must be a number > 0, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def parse_quotas(entries: Any, *, source: str) -> QuotaTable:
    """A table from ``quotas.json``'s content; ConfigError naming the file, entry and problem."""
    if isinstance(entries, dict) and "quotas" in entries:
        entries = entries["quotas"]
    if not isinstance(entries, list):
        raise ConfigError(f"{source} must hold a list of quotas, e.g. [{{\"model\": \"...\", \"rpm\": 300, "
                          "\"tpm\": 200000}]")
    quotas: dict[str, Quota] = {}
    for position, entry in enumerate(entries):
        where = f"{source}, entry {position}"
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str) or not entry["model"].strip():
            raise ConfigError(f"{where}: each quota needs a \"model\" id")
        model = entry["model"].strip()
        unknown = sorted(set(entry) - {"model", "rpm", "tpm"})
        if unknown:
            raise ConfigError(f"{where} ({model}): unknown field(s) {', '.join(unknown)}; use model, rpm, tpm")
        rpm, tpm = _number(entry.get("rpm"), "rpm", f"{where} ({model})"), _number(entry.get("tpm"), "tpm",
                                                                                    f"{where} ({model})")
        if rpm is None and tpm is None:
            raise ConfigError(f"{where} ({model}): give \"rpm\", \"tpm\" or both")
        if model in quotas:
            raise ConfigError(f"{where}: model {model} is listed twice")
        quotas[model] = Quota(model, rpm, tpm)
    return QuotaTable(list(quotas.values()))


def load(data_dir: str | Path | None) -> QuotaTable:
    """The quotas in ``quotas.json`` in ``data_dir`` (an empty table when there is none)."""
    path = Path(data_dir) / QUOTAS_FILE if data_dir else None
    if path is None or not path.exists():
        return QuotaTable()
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_quotas(data, source=str(path))


def save(data_dir: str | Path, table: QuotaTable) -> Path:
    """Write ``table`` to ``quotas.json`` in ``data_dir`` (atomically: readers see old or new)."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / QUOTAS_FILE
    partial = path.with_name(f".{QUOTAS_FILE}.{os.getpid()}.tmp")
    partial.write_bytes(orjson.dumps(table.to_json(), option=orjson.OPT_INDENT_2))
    os.replace(partial, path)
    return path


def set_quota(data_dir: str | Path, model: str, *, rpm: float | None, tpm: float | None) -> Quota:
    """Add or replace ``model``'s quota in the data directory's ``quotas.json``."""
    entry = {"model": model, **({"rpm": rpm} if rpm is not None else {}), **({"tpm": tpm} if tpm is not None else {})}
    quota = parse_quotas([entry], source="the new quota").quotas[model.strip()]
    table = load(data_dir)
    table.quotas[quota.model] = quota
    save(data_dir, table)
    return quota


def remove_quota(data_dir: str | Path, model: str) -> None:
    """Remove ``model``'s quota; InputError when it has none."""
    table = load(data_dir)
    if model not in table.quotas:
        raise InputError(f"no quota is set for {model!r}" +
                         (f"; quotas are set for {', '.join(sorted(table.quotas))}" if table.quotas else ""))
    del table.quotas[model]
    save(data_dir, table)


class _InUse:
    """The table the metrics use: ``quotas.json`` of one data directory, re-read when it changes
    (so ``dashcam quotas set`` reaches a running server at its next request)."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._table = QuotaTable()

    def table(self) -> QuotaTable:
        directory = self.directory or Path(os.environ.get("DASHCAM_DATA") or "./dashcam-data")
        path = directory / QUOTAS_FILE
        try:
            status = path.stat()
            stamp: tuple | None = (str(path), status.st_mtime_ns, status.st_size)
        except OSError:
            stamp = (str(path), None)
        with self._lock:
            if stamp != self._stamp:
                self._table = load(directory)
                self._stamp = stamp
            return self._table


_in_use = _InUse()


def use_directory(data_dir: str | Path | None) -> None:
    """Take quotas from ``quotas.json`` in ``data_dir`` (None: ``$DASHCAM_DATA`` or ./dashcam-data)."""
    _in_use.directory = Path(data_dir) if data_dir else None


def current() -> QuotaTable:
    """The quotas in use (re-read when ``quotas.json`` changed); ConfigError if the file is bad."""
    return _in_use.table()


# ---------------------------------------------------------------------- SQL


def _escape(text: str) -> str:
    # Only regex metacharacters: RE2 (both engines) refuses some escapes Python's re.escape writes.
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def has_quota(d: Dialect) -> exp.Expression:
    """SQL: the record's model has a quota (for ListMetrics; the exact match is made in Python)."""
    models = sorted(current().quotas)
    if not models:
        return exp.false()
    pattern = (f"(?:{ARN_PREFIX.lstrip('^')})?(?:{GEO_PREFIX.lstrip('^')})?"
               f"(?:{'|'.join(_escape(m) for m in models)})")
    return d.regex_full_match(col("model_id"), pattern)


def _minute_usage(store: Store, d: Dialect, models: Sequence[str] | None, start_ms: int, end_ms: int,
                  log_groups: Sequence[str] | None) -> list[tuple[int, str, float, float]]:
    """(minute start ms, model, requests, quota tokens) for each minute and model with records."""
    minute = exp.IntDiv(this=d.epoch_us(col("ts")), expression=lit(60_000_000))
    tokens_metric = METRICS["EstimatedTPMQuotaUsage"]
    tokens = exp.Coalesce(this=cast(parse_statistic("Sum").aggregate(d, tokens_metric.sample(d), tokens_metric.where(d)),
                                    "DOUBLE"), expressions=[lit(0.0)])
    conditions = [exp.Not(this=exp.Is(this=col("model_id"), expression=exp.Null())),
                  exp.GTE(this=col("ts"), expression=d.timestamp_literal(start_ms)),
                  exp.LT(this=col("ts"), expression=d.timestamp_literal(end_ms))]
    if models is not None:
        conditions.append(exp.In(this=col("model_id"), expressions=[lit(m) for m in models]))
    if log_groups is not None:
        conditions.append(exp.In(this=col("log_group"), expressions=[lit(g) for g in log_groups])
                          if log_groups else exp.false())
    tree = (exp.select(exp.alias_(minute, "_minute", quoted=True), col("model_id"),
                       exp.alias_(cast(exp.Count(this=exp.Star()), "DOUBLE"), "_requests", quoted=True),
                       exp.alias_(tokens, "_tokens", quoted=True))
            .from_(exp.Table(this=exp.to_identifier(EVENTS_TABLE))).where(and_(*conditions))
            .group_by(col("_minute"), col("model_id")))
    return [(int(m) * _MINUTE_MS, str(model), float(r), float(t)) for m, model, r, t in store.execute(d.sql(tree))]


# ---------------------------------------------------------------------- series


def peak_usage(minutes: Sequence[tuple[int, float, float]], quota: Quota, period: int) -> dict[int, float]:
    """Per period start (ms): the highest fraction of ``quota`` any minute used (minute ms, requests, tokens)."""
    step = period * 1000
    peaks: dict[int, float] = {}
    for minute_ms, requests, tokens in minutes:
        bucket = minute_ms // step * step
        used = quota.usage(requests, tokens)
        if used > peaks.get(bucket, float("-inf")):
            peaks[bucket] = used
    return dict(sorted(peaks.items()))


def minutes_to_exhaustion(usage: dict[int, float], period: int, periods: int = TREND_PERIODS) -> dict[int, float]:
    """Per period: minutes from its start until the least-squares line through the usage of the
    last ``periods`` periods (those with traffic) reaches 1; none when the line is flat or falling."""
    step = period * 1000
    times = sorted(usage)
    out: dict[int, float] = {}
    for i, now in enumerate(times):
        window = [t for t in times[max(0, i - periods + 1):i + 1] if t > now - periods * step]
        if len(window) < 2:
            continue
        xs = [t / _MINUTE_MS for t in window]
        slope, intercept = statistics.linear_regression(xs, [usage[t] for t in window])
        if not slope > 0:
            continue
        reach = (1.0 - intercept) / slope  # minute (since the epoch) the line reaches the quota
        out[now] = max(0.0, reach - now / _MINUTE_MS)
    return out


def _check(w: Any) -> None:
    if w.stat.kind not in SUPPORTED_STATISTICS:
        raise InputError(f"query {w.query.id}: statistic {w.stat.text!r} is not available for {w.metric.name}, "
                         f"which has one value per period; use {', '.join(SUPPORTED_STATISTICS)}")
    names = [n for n, _ in w.dimensions]
    if not w.metric.accepts(names):
        raise InputError(f"query {w.query.id}: {w.metric.name} takes the dimension ModelId or none, "
                         f"got {', '.join(names)} (quotas are per model)")


def quota_points(store: Store, d: Dialect, wanted: Sequence[Any], start_ms: int, end_ms: int,
                 log_groups: Sequence[str] | None = None) -> dict[str, dict[int, float]]:
    """Points (period start ms -> value) of each quota query, by query id.

    ``wanted`` are the metrics engine's checked queries (``query.id``, ``metric.name``, ``stat``,
    ``period``, ``dimensions``); one SQL scan answers all of them.
    """
    if not wanted:
        return {}
    for w in wanted:
        _check(w)
    table = current()
    asked = [dict(w.dimensions).get("ModelId") for w in wanted]
    models = None if None in asked else sorted(set(asked))  # type: ignore[type-var]
    lead = max(w.period * 1000 * (TREND_PERIODS if w.metric.name == MINUTES_TO_EXHAUSTION else 1) for w in wanted)
    first = start_ms // 60_000 * 60_000 - lead
    by_model: dict[str, list[tuple[int, float, float]]] = {}
    for minute_ms, model, requests, tokens in _minute_usage(store, d, models, first, end_ms, log_groups):
        by_model.setdefault(model, []).append((minute_ms, requests, tokens))
    points: dict[str, dict[int, float]] = {}
    for w, model in zip(wanted, asked):
        per_model = []
        for recorded in ([model] if model is not None else sorted(by_model)):
            quota = table.lookup(recorded)
            if quota is None or recorded not in by_model:
                continue
            usage = peak_usage(by_model[recorded], quota, w.period)
            if w.metric.name == HEADROOM:
                per_model.append({t: 100.0 * (1.0 - u) for t, u in usage.items()})
            else:
                per_model.append(minutes_to_exhaustion(usage, w.period))
        merged: dict[int, float] = {}
        for series in per_model:
            for t, v in series.items():
                merged[t] = min(v, merged.get(t, v))
        if w.stat.kind == "SampleCount":
            merged = {t: 1.0 for t in merged}
        points[w.query.id] = dict(sorted(merged.items()))
    return points
