"""CloudWatch statistics: parsed from their text, compiled to one SQL aggregate per period.

Supported (CloudWatch's spellings): ``SampleCount``, ``Sum``, ``Average``, ``Minimum``,
``Maximum``; percentiles ``pNN`` / ``pNN.NN`` (``p0`` to ``p100``); ``IQM``; trimmed mean
``TM(a:b)`` and its short form ``tmNN``; winsorized mean ``WM(a:b)`` / ``wmNN``; trimmed count
``TC(a:b)`` / ``tcNN``; trimmed sum ``TS(a:b)`` / ``tsNN``; percentile rank ``PR(a:b)``. Bounds
are percentages (``10%``) or absolute values (``150``); either may be left out (``TM(:90%)``,
``PR(:300)``), and one number alone is the upper bound (``TM(90%)``, as ``tm90``).

Definitions, for the n samples of a period sorted ascending, x(1) <= ... <= x(n):

* **Percentile** ``pQ`` is the nearest rank: x(r) with r = ceil(Q/100 * n), at least 1. So ``p0``
  is the minimum, ``p100`` the maximum, and every percentile is a value that was observed. This
  is the definition of dashcam's Logs Insights ``pct()`` and of DuckDB's ``quantile_disc``.
* **Percentage bounds** trim by rank: ``TM(a%:b%)`` drops the floor(a/100 * n) lowest and the
  floor((1 - b/100) * n) highest samples and averages the rest (so at least one sample remains
  whenever a < b, and ties are not special). ``IQM`` is ``TM(25%:75%)``. ``WM`` replaces the
  dropped samples by the nearest kept one instead of dropping them; ``TC`` counts and ``TS``
  sums the kept samples. A missing lower bound drops nothing at the bottom (``tm90`` drops only
  the highest 10%).
* **Absolute bounds** trim by value, lower bound exclusive, upper bound inclusive, as CloudWatch
  documents for ``TM(150:1000)`` and ``PR``: a sample x is kept when lo < x <= hi. ``WM`` clamps
  samples to [lo, hi]. ``PR(lo:hi)`` is the percentage of samples kept (absolute bounds only).

Rank arithmetic is exact (integers from the bounds as fractions), so both engines pick the same
samples. Everything compiles to sqlglot trees and renders for DuckDB and ClickHouse; the bounds
enter SQL only as numeric literals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from sqlglot import exp

from dashcam.errors import InputError
from dashcam.query.dialects import Dialect, and_, binop, case, cast, fn, lit, not_null

BASIC = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
_BASIC_BY_LOWER = {name.lower(): name for name in BASIC}
_TRIMMED = ("TM", "WM", "TC", "TS")

_NUMBER = r"\d+(?:\.\d{1,6})?"
_PERCENTILE = re.compile(rf"p({_NUMBER})", re.IGNORECASE)
_SHORT = re.compile(rf"(tm|wm|tc|ts)({_NUMBER})", re.IGNORECASE)
_BOUND = rf"-?{_NUMBER}%?"
_RANGE = re.compile(rf"(tm|wm|tc|ts|pr)\(\s*({_BOUND})?\s*(?::\s*({_BOUND})?\s*)?\)", re.IGNORECASE)


@dataclass(frozen=True)
class Bound:
    """One end of a range: a fraction of the samples (``percent``, 0..1) or an absolute value."""

    value: Fraction
    percent: bool


@dataclass(frozen=True)
class Statistic:
    """A parsed statistic. ``text`` is how the caller wrote it (results are labelled with it);
    ``kind`` is one of :data:`BASIC`, ``percentile``, ``TM``, ``WM``, ``TC``, ``TS``, ``PR``."""

    text: str
    kind: str
    quantile: Fraction | None = None
    lower: Bound | None = None
    upper: Bound | None = None

    @property
    def by_rank(self) -> bool:
        """Whether the bounds are percentages (trim by rank) rather than values."""
        return any(b is not None and b.percent for b in (self.lower, self.upper))

    def aggregate(self, d: Dialect, sample: exp.Expression, where: exp.Expression | None = None) -> exp.Expression:
        """The SQL aggregate, per group, of ``sample`` over the records ``where`` selects.

        A group without samples may give any value here; callers drop it by its sample count
        (:func:`sample_count`).
        """
        agg = _Aggregates(d, sample, where)
        if self.kind == "SampleCount":
            return agg.count()
        if self.kind == "Sum" and _is_one(sample):
            # A sum of ones (Invocations, InvocationThrottles, ...) is a count; DuckDB counts
            # faster than it sums (its integer sum keeps a 128-bit total). NULLIF keeps "no
            # samples" as NULL, as the sum gives it.
            return exp.Nullif(this=agg.of(exp.Count(this=exp.Star())), expression=lit(0))
        if self.kind in ("Sum", "Average", "Minimum", "Maximum"):
            node = {"Sum": exp.Sum, "Average": exp.Avg, "Minimum": exp.Min, "Maximum": exp.Max}[self.kind]
            return agg.of(node(this=sample))
        if self.kind == "percentile":
            return _percentile(agg, self.quantile)
        if self.by_rank:
            return _by_rank(agg, self)
        return _by_value(agg, self)


def _is_one(sample: exp.Expression) -> bool:
    return isinstance(sample, exp.Literal) and not sample.is_string and sample.this == "1"


def sample_count(d: Dialect, sample: exp.Expression, where: exp.Expression | None = None) -> exp.Expression:
    """The number of samples per group (groups with none give no datapoint)."""
    return _Aggregates(d, sample, where).count()


def parse_statistic(text: str) -> Statistic:
    """The statistic ``text`` names; InputError naming it and the accepted forms otherwise."""
    if not isinstance(text, str):
        raise InputError(f"a statistic must be text, got {type(text).__name__}")
    stripped = text.strip()
    basic = _BASIC_BY_LOWER.get(stripped.lower())
    if basic:
        return Statistic(stripped, basic)
    if stripped.upper() == "IQM":
        return Statistic(stripped, "TM", lower=Bound(Fraction(1, 4), True), upper=Bound(Fraction(3, 4), True))
    found = _PERCENTILE.fullmatch(stripped)
    if found:
        q = Fraction(found.group(1))
        if q > 100:
            raise InputError(f"statistic {text!r}: a percentile is between p0 and p100")
        return Statistic(stripped, "percentile", quantile=q / 100)
    found = _SHORT.fullmatch(stripped)
    if found:
        upper = _bound(text, found.group(2) + "%")
        _check_range(text, None, upper)
        return Statistic(stripped, found.group(1).upper(), upper=upper)
    found = _RANGE.fullmatch(stripped)
    if found:
        kind, first, second = found.group(1).upper(), found.group(2), found.group(3)
        has_colon = ":" in stripped
        lower = _bound(text, first) if has_colon and first else None
        upper = _bound(text, second if has_colon else first) if (second if has_colon else first) else None
        if kind == "PR" and any(b is not None and b.percent for b in (lower, upper)):
            raise InputError(f"statistic {text!r}: PR takes values, not percentages, e.g. PR(100:2000)")
        _check_range(text, lower, upper)
        return Statistic(stripped, kind, lower=lower, upper=upper)
    raise InputError(
        f"unknown statistic {text!r}: use SampleCount, Sum, Average, Minimum, Maximum, a percentile such as "
        "p99 or p99.9, IQM, TM(10%:90%) or tm90, WM(..), TC(..), TS(..) or PR(lo:hi)")


def _bound(text: str, spelled: str) -> Bound:
    if spelled.endswith("%"):
        value = Fraction(spelled[:-1])
        if not 0 <= value <= 100:
            raise InputError(f"statistic {text!r}: a percentage bound is between 0% and 100%")
        return Bound(value / 100, True)
    return Bound(Fraction(spelled), False)


def _check_range(text: str, lower: Bound | None, upper: Bound | None) -> None:
    if lower is None and upper is None:
        raise InputError(f"statistic {text!r} needs at least one bound, e.g. TM(10%:90%) or tm90")
    if lower is not None and upper is not None:
        if lower.percent != upper.percent:
            raise InputError(f"statistic {text!r}: give both bounds as percentages or both as values")
        if lower.value >= upper.value:
            raise InputError(f"statistic {text!r}: the lower bound must be below the upper bound")
    if upper is not None and upper.percent and upper.value == 0:
        raise InputError(f"statistic {text!r}: an upper bound of 0% keeps no samples")


# ---------------------------------------------------------------------- SQL


class _Aggregates:
    """Builds aggregates of one sample restricted to the records ``where`` selects.

    The restriction is SQL's ``FILTER (WHERE ...)`` clause (DuckDB runs it faster than a CASE
    inside the aggregate, and ClickHouse turns it into its ``-If`` combinators).
    """

    def __init__(self, d: Dialect, sample: exp.Expression, where: exp.Expression | None) -> None:
        self.d = d
        self.sample = sample
        self.where = where

    def of(self, aggregate: exp.Expression, *, non_null: bool = False) -> exp.Expression:
        """``aggregate`` over the selected records (and, with ``non_null``, non-NULL samples only)."""
        conditions = [c for c in (self.where, not_null(self.sample) if non_null else None) if c is not None]
        if not conditions:
            return aggregate
        return exp.Filter(this=aggregate, expression=exp.Where(this=and_(*conditions)))

    def count(self) -> exp.Expression:
        """The number of samples."""
        return self.of(exp.Count(this=self.sample))

    def sorted(self) -> exp.Expression:
        """The group's samples as a sorted list (NULLs left out)."""
        if self.d.name == "clickhouse":
            return fn("arraySort", self.of(fn("groupArray", self.sample)))  # groupArray skips NULLs
        return fn("list_sort", self.of(fn("list", self.sample), non_null=True))

    def element(self, values: exp.Expression, index1: exp.Expression) -> exp.Expression:
        """The element of a list at a 1-based index."""
        return fn("arrayElement" if self.d.name == "clickhouse" else "list_extract", values, index1)


def _int_div(numerator: exp.Expression, denominator: int) -> exp.Expression:
    return exp.IntDiv(this=exp.Paren(this=numerator), expression=lit(denominator))


def _percentile(agg: _Aggregates, q: Fraction) -> exp.Expression:
    if agg.d.name != "clickhouse":
        # DuckDB's quantile_disc is exactly the nearest rank (checked against exact fractions).
        return agg.of(fn("quantile_disc", agg.sample, lit(float(q))))
    rank = _int_div(binop(exp.Add, binop(exp.Mul, lit(q.numerator), agg.count()), lit(q.denominator - 1)),
                    q.denominator)
    return agg.element(agg.sorted(), fn("greatest", rank, lit(1)))


def _by_rank(agg: _Aggregates, stat: Statistic) -> exp.Expression:
    n = agg.count()
    low = stat.lower.value if stat.lower is not None else Fraction(0)
    high = stat.upper.value if stat.upper is not None else Fraction(1)
    drop_low = _int_div(binop(exp.Mul, lit(low.numerator), n), low.denominator) if low else lit(0)
    drop_high = (_int_div(binop(exp.Mul, lit(high.denominator - high.numerator), n), high.denominator)
                 if high != 1 else lit(0))
    kept_count = binop(exp.Sub, binop(exp.Sub, n, drop_low), drop_high)
    values = agg.sorted()
    first = binop(exp.Add, drop_low, lit(1))
    if agg.d.name == "clickhouse":
        kept_sum = fn("arraySum", fn("arraySlice", values, first, kept_count))
    else:
        kept_sum = fn("list_sum", fn("list_slice", values, first, binop(exp.Sub, n, drop_high)))
    as_double = cast(kept_sum, "DOUBLE")
    if stat.kind == "TC":
        result = kept_count
    elif stat.kind == "TS":
        result = as_double
    elif stat.kind == "TM":
        result = binop(exp.Div, as_double, kept_count)
    else:  # WM: the dropped samples count as the nearest kept one
        low_edge = binop(exp.Mul, drop_low, agg.element(values, first))
        high_edge = binop(exp.Mul, drop_high, agg.element(values, binop(exp.Sub, n, drop_high)))
        total = binop(exp.Add, binop(exp.Add, as_double, low_edge), high_edge)
        result = binop(exp.Div, total, n)
    return case((exp.GT(this=n, expression=lit(0)), result))


def _by_value(agg: _Aggregates, stat: Statistic) -> exp.Expression:
    sample = agg.sample
    low = float(stat.lower.value) if stat.lower is not None else None
    high = float(stat.upper.value) if stat.upper is not None else None
    conditions = []
    if low is not None:
        conditions.append(exp.GT(this=sample, expression=lit(low)))
    if high is not None:
        conditions.append(exp.LTE(this=sample, expression=lit(high)))
    in_range = and_(*conditions)
    kept = case((in_range, sample))
    if stat.kind == "TM":
        return agg.of(exp.Avg(this=kept))
    if stat.kind == "TC":
        return agg.of(exp.Count(this=kept))
    if stat.kind == "TS":
        return exp.Coalesce(this=agg.of(exp.Sum(this=cast(kept, "DOUBLE"))), expressions=[lit(0.0)])
    if stat.kind == "PR":
        counted = agg.of(exp.Count(this=case((in_range, lit(1)))))
        return binop(exp.Div, binop(exp.Mul, lit(100.0), counted), agg.count())
    # WM: clamp to [low, high]
    whens = []
    if low is not None:
        whens.append((exp.LTE(this=sample, expression=lit(low)), lit(low)))
    if high is not None:
        whens.append((exp.GT(this=sample, expression=lit(high)), lit(high)))
    return agg.of(exp.Avg(this=case(*whens, default=cast(sample, "DOUBLE"))))
