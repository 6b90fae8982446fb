"""Metric math: expressions between the ids of other queries of a request, aligned by timestamp.

The language is CloudWatch's metric math, the part of it dashcam supports:

* numbers, query ids (``m1``), ``+ - * /``, parentheses, unary minus;
* ``ABS(x)``;
* ``SUM``, ``AVG``, ``MIN``, ``MAX``: of a list of series (``SUM([m1, m2])``, ``MAX(METRICS())``)
  a series, the statistic across series at each timestamp of any of them; of one series
  (``AVG(m1)``) a single number over all its datapoints (as CloudWatch does);
* ``METRICS()`` (every metric query of the request) and ``METRICS("text")`` (those whose label
  contains the text);
* ``FILL(m, value | REPEAT | LINEAR)``: a datapoint for every period of the time range, missing
  ones filled with the value, the last value before (``REPEAT``), or by linear interpolation
  between neighbours (``LINEAR``; edges repeat the nearest value);
* ``ANOMALY_DETECTION_BAND(m, width)`` when the anomaly model (:mod:`dashcam.metrics.anomaly`)
  is installed: a band (lower and upper series) learned from ``m``'s history.

Between two series an operator applies where both have a datapoint (same timestamp); between a
series and a number, to every datapoint. Division by zero gives no datapoint.

Parsing uses Python's :mod:`ast` in ``eval`` mode and accepts only the node types above, so no
text is ever executed; anything else is an InputError naming what is not allowed.
"""

from __future__ import annotations

import ast
import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Union

from dashcam.errors import InputError

QUERY_ID = re.compile(r"[a-z][A-Za-z0-9_]{0,254}")
FILL_MODES = ("REPEAT", "LINEAR")
_AGGREGATES = ("SUM", "AVG", "MIN", "MAX")
FUNCTIONS = ("ABS", "FILL", "METRICS", "ANOMALY_DETECTION_BAND", *_AGGREGATES)
DEFAULT_BAND_WIDTH = 2.0

_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


@dataclass
class Series:
    """A time series: values by period start (epoch ms), and its period in seconds."""

    points: dict[int, float]
    period: int
    label: str = ""


@dataclass
class Band:
    """An anomaly-detection band: a lower and an upper series."""

    lower: Series
    upper: Series


Value = Union[float, Series, Band, list]


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression: its tree, the query ids it names, and whether it uses
    ``METRICS()`` (so it depends on every metric query) or ``ANOMALY_DETECTION_BAND``."""

    text: str
    tree: ast.expr
    ids: frozenset[str]
    uses_metrics: bool
    uses_band: bool


@dataclass
class Context:
    """What evaluation needs besides the series: the time range (FILL), the metric queries
    (``METRICS()``), and the band model (``ANOMALY_DETECTION_BAND``).

    ``band`` gets the input series and the width and returns the band; ``metric_series`` is
    every metric query's series in request order.
    """

    start_ms: int
    end_ms: int
    metric_series: Sequence[Series] = ()
    band: Callable[[Series, float], Band] | None = None
    scope: dict[str, Value] = field(default_factory=dict)


def parse_expression(text: str) -> Expression:
    """Parse and check metric-math ``text``; InputError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("an expression must be non-empty text")
    if len(text) > 2048:
        raise InputError("an expression is at most 2048 characters")
    stripped = text.strip()
    if re.match(r"(?i)select\s", stripped):
        raise InputError("Metrics Insights queries (SELECT ...) are not supported; use metric math between query ids")
    ids: set[str] = set()
    flags = {"metrics": False, "band": False}
    try:
        tree = ast.parse(stripped, mode="eval").body
        _check(tree, text, ids, flags, in_fill_mode=False)
    except SyntaxError as exc:
        column = f" at column {exc.offset}" if exc.offset else ""
        raise InputError(f"expression {text!r} does not parse{column}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise InputError(f"expression {text[:40]!r}... is nested too deeply") from None
    return Expression(text, tree, frozenset(ids), flags["metrics"], flags["band"])


def _check(node: ast.AST, text: str, ids: set[str], flags: dict[str, bool], *, in_fill_mode: bool) -> None:
    """Walk the tree, allowing only metric-math nodes."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float, str)):
            raise InputError(f"expression {text!r}: {node.value!r} is not a number")
        return
    if isinstance(node, ast.Name):
        if in_fill_mode and node.id in FILL_MODES:
            return
        if not QUERY_ID.fullmatch(node.id):
            raise InputError(f"expression {text!r}: {node.id!r} is not a query id (ids start with a lowercase "
                             "letter; functions are called with parentheses)")
        ids.add(node.id)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _OPERATORS:
            raise InputError(f"expression {text!r}: operator {_spelled(node.op)} is not supported; use + - * /")
        _check(node.left, text, ids, flags, in_fill_mode=False)
        _check(node.right, text, ids, flags, in_fill_mode=False)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise InputError(f"expression {text!r}: operator {_spelled(node.op)} is not supported")
        _check(node.operand, text, ids, flags, in_fill_mode=False)
        return
    if isinstance(node, ast.List):
        for item in node.elts:
            _check(item, text, ids, flags, in_fill_mode=False)
        return
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            shown = name or ast.unparse(node.func)
            raise InputError(f"expression {text!r}: unknown function {shown!r}; known: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise InputError(f"expression {text!r}: {name} takes positional arguments only")
        flags["metrics"] |= name == "METRICS"
        flags["band"] |= name == "ANOMALY_DETECTION_BAND"
        for position, arg in enumerate(node.args):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and name != "METRICS":
                raise InputError(f"expression {text!r}: {name} does not take text arguments")
            _check(arg, text, ids, flags, in_fill_mode=name == "FILL" and position == 1)
        return
    raise InputError(f"expression {text!r}: {ast.unparse(node)!r} is not allowed in metric math")


def _spelled(op: ast.AST) -> str:
    return {ast.Pow: "**", ast.BitXor: "^", ast.Mod: "%", ast.FloorDiv: "//"}.get(type(op), type(op).__name__)


# ---------------------------------------------------------------------- evaluation


def evaluate(expression: Expression, ctx: Context) -> Value:
    """The value of ``expression`` given the already evaluated ids in ``ctx.scope``."""
    return _eval(expression.tree, expression.text, ctx)


def _eval(node: ast.AST, text: str, ctx: Context) -> Value:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            raise InputError(f"expression {text!r}: text {node.value!r} is only an argument of METRICS()")
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in ctx.scope:
            raise InputError(f"expression {text!r} uses unknown id {node.id}")
        return ctx.scope[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _numeric(_eval(node.operand, text, ctx), text)
        return operand if isinstance(node.op, ast.UAdd) else _apply(lambda a, _: -a, operand, 0.0)
    if isinstance(node, ast.BinOp):
        left = _numeric(_eval(node.left, text, ctx), text)
        right = _numeric(_eval(node.right, text, ctx), text)
        return _apply(_OPERATORS[type(node.op)], left, right)
    if isinstance(node, ast.List):
        return [_eval(item, text, ctx) for item in node.elts]
    if isinstance(node, ast.Call):
        return _call(node, text, ctx)
    raise InputError(f"expression {text!r}: {ast.unparse(node)!r} is not allowed")  # _check keeps this unreachable


def _numeric(value: Value, text: str) -> float | Series:
    if isinstance(value, Band):
        raise InputError(f"expression {text!r}: an anomaly band is two series and cannot take part in arithmetic")
    if isinstance(value, list):
        raise InputError(f"expression {text!r}: a list of series needs a function such as SUM([...])")
    return value


def _safe(op: Callable[[float, float], float], a: float, b: float) -> float | None:
    try:
        result = op(a, b)
    except (ZeroDivisionError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def _apply(op: Callable[[float, float], float], left: float | Series, right: float | Series) -> float | Series:
    """``op`` between numbers and series: series meet at shared timestamps."""
    if isinstance(left, Series) and isinstance(right, Series):
        points = {t: _safe(op, v, right.points[t]) for t, v in left.points.items() if t in right.points}
        period = min(left.period, right.period)
    elif isinstance(left, Series):
        points = {t: _safe(op, v, right) for t, v in left.points.items()}
        period = left.period
    elif isinstance(right, Series):
        points = {t: _safe(op, left, v) for t, v in right.points.items()}
        period = right.period
    else:
        result = _safe(op, left, right)
        if result is None:
            raise InputError("the expression divides a number by zero")
        return result
    return Series({t: v for t, v in sorted(points.items()) if v is not None}, period)


def _call(node: ast.Call, text: str, ctx: Context) -> Value:
    name = node.func.id  # type: ignore[attr-defined]  # _check allows only named functions
    if name == "METRICS":
        return _metrics(node, text, ctx)
    if name == "FILL":
        if len(node.args) != 2:
            raise InputError(f"expression {text!r}: FILL takes 2 arguments, got {len(node.args)}")
        series = _series_arg(name, _eval(node.args[0], text, ctx), text)
        mode = node.args[1]
        return _fill(series, mode.id if _is_mode(mode) else None,  # type: ignore[attr-defined]
                     None if _is_mode(mode) else _eval(mode, text, ctx), ctx, text)
    args = [_eval(arg, text, ctx) for arg in node.args]
    if name == "ABS":
        _arity(name, args, 1, 1, text)
        return _apply(lambda a, _: abs(a), _numeric(args[0], text), 0.0)
    if name in _AGGREGATES:
        return _aggregate(name, args, text)
    # ANOMALY_DETECTION_BAND
    _arity(name, args, 1, 2, text)
    if ctx.band is None:
        raise InputError("ANOMALY_DETECTION_BAND is not available: dashcam.metrics.anomaly is not installed")
    width = args[1] if len(args) > 1 else DEFAULT_BAND_WIDTH
    if not isinstance(width, float) or not 0 < width <= 100:
        raise InputError(f"expression {text!r}: the band width must be a number above 0 and at most 100")
    return ctx.band(_series_arg(name, args[0], text), width)


def _arity(name: str, args: list, low: int, high: int, text: str) -> None:
    if not low <= len(args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise InputError(f"expression {text!r}: {name} takes {wanted} argument{'s' if high > 1 else ''}, "
                         f"got {len(args)}")


def _series_arg(name: str, value: Value, text: str) -> Series:
    if not isinstance(value, Series):
        raise InputError(f"expression {text!r}: the first argument of {name} must be a time series")
    return value


def _is_mode(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in FILL_MODES


def _metrics(node: ast.Call, text: str, ctx: Context) -> list[Series]:
    if len(node.args) > 1 or (node.args and not (isinstance(node.args[0], ast.Constant)
                                                  and isinstance(node.args[0].value, str))):
        raise InputError(f"expression {text!r}: METRICS takes nothing or one text, e.g. METRICS(\"Latency\")")
    wanted = node.args[0].value if node.args else ""  # type: ignore[attr-defined]
    return [s for s in ctx.metric_series if wanted in s.label]


def _aggregate(name: str, args: list[Value], text: str) -> float | Series:
    reduce = {"SUM": sum, "AVG": lambda v: sum(v) / len(v), "MIN": min, "MAX": max}[name]
    if len(args) == 1 and isinstance(args[0], Series):
        values = list(args[0].points.values())
        if not values:
            raise InputError(f"expression {text!r}: {name} of a series without datapoints has no value")
        return float(reduce(values))
    members = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not members or not all(isinstance(m, Series) for m in members):
        raise InputError(f"expression {text!r}: {name} takes one series or a list of series, e.g. {name}([m1, m2])")
    by_time: dict[int, list[float]] = {}
    for series in members:
        for t, v in series.points.items():
            by_time.setdefault(t, []).append(v)
    return Series({t: float(reduce(vs)) for t, vs in sorted(by_time.items())}, min(s.period for s in members))


def _fill(series: Series, mode: str | None, value: Value, ctx: Context, text: str) -> Series:
    step = series.period * 1000
    first = ctx.start_ms // step * step
    slots = range(first, ctx.end_ms, step)
    if mode is None:
        if not isinstance(value, float):
            raise InputError(f"expression {text!r}: FILL takes a number, REPEAT or LINEAR as its second argument")
        return Series({t: series.points.get(t, value) for t in slots}, series.period)
    known = sorted(series.points.items())
    if not known:
        return Series({}, series.period)
    times = [t for t, _ in known]
    filled: dict[int, float] = {}
    for t in slots:
        if t in series.points:
            filled[t] = series.points[t]
            continue
        after = bisect.bisect_left(times, t)
        before = after - 1
        if before < 0:
            filled[t] = known[0][1]
        elif after >= len(known) or mode == "REPEAT":
            filled[t] = known[before][1]
        else:
            (t0, v0), (t1, v1) = known[before], known[after]
            filled[t] = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return Series(filled, series.period)


def evaluation_order(expressions: dict[str, Expression], metric_ids: Sequence[str]) -> list[str]:
    """Expression ids in an order where each comes after the ids it uses; InputError for an
    unknown id or a cycle."""
    known = set(expressions) | set(metric_ids)
    for query_id, parsed in expressions.items():
        missing = sorted(parsed.ids - known)
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise InputError(f"expression {parsed.text!r} (id {query_id}) uses unknown id{plural} "
                             f"{', '.join(missing)}; the ids of this request are {', '.join(sorted(known))}")
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(query_id: str, path: tuple[str, ...]) -> None:
        """Depth first: the ids an expression uses are ordered before it."""
        if state.get(query_id) == "done":
            return
        if state.get(query_id) == "visiting":
            raise InputError(f"expressions refer to each other in a cycle: {' -> '.join(path + (query_id,))}")
        state[query_id] = "visiting"
        for used in sorted(expressions[query_id].ids & set(expressions)):
            visit(used, path + (query_id,))
        state[query_id] = "done"
        order.append(query_id)

    for query_id in expressions:
        visit(query_id, ())
    return order
