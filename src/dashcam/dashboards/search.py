"""CloudWatch's ``SEARCH()`` metric expressions, matched against the metrics that have data.

Dashboards made by AWS (the Bedrock automatic dashboard among them) draw one line per model with
``SEARCH('{AWS/Bedrock,ModelId} MetricName="Invocations"', 'Sum', 300)``. The metrics engine
answers metric queries and metric math only, so a dashboard widget's SEARCH is turned into plain
metric queries here, one per metric that matches, from the (metric, dimensions) combinations the
engine's ``list_metrics`` reports.

The search text is CloudWatch's:

- an optional schema first, ``{Namespace, DimensionName, ...}``: only metrics with exactly those
  dimension names (``{AWS/Bedrock}``: without dimensions);
- then terms, all of which must match (``AND`` may be written), ``OR`` between alternatives,
  ``NOT`` and parentheses. ``Name="value"`` matches a property exactly (``MetricName``,
  ``Namespace`` or a dimension name); ``Name=value`` and a bare word or ``"phrase"`` match
  part of it (a bare word: part of the metric name, namespace, or any dimension's name or value),
  ignoring case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union

from dashcam.errors import InputError
from dashcam.metrics.definitions import NAMESPACE

MAX_RESULTS = 500  # CloudWatch draws at most this many series of one search

_CALL = re.compile(
    r"""SEARCH\s*\(\s*(?P<text>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*,\s*(?P<stat>'[^']*'|"[^"]*")"""
    r"""\s*(?:,\s*(?P<period>[0-9]+)\s*)?\)""", re.IGNORECASE | re.DOTALL)
_SCHEMA = re.compile(r"^\s*\{(?P<items>[^}]*)\}")
_TOKEN = re.compile(r"""\s*(?:(?P<open>\()|(?P<close>\))"""
                    r"""|(?P<key>[A-Za-z0-9_.:/@-]+)=(?P<value>"(?:[^"\\]|\\.)*"|[^\s()"]+)"""
                    r"""|(?P<phrase>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()"]+))""")


@dataclass(frozen=True)
class Term:
    """One search term: ``key`` None for a word or phrase; ``exact`` for a quoted property value."""

    key: str | None
    value: str
    exact: bool


@dataclass(frozen=True)
class Combined:
    """Terms joined by ``and`` / ``or``, or one negated (``not``, a single part)."""

    op: str
    parts: tuple["Condition", ...]


Condition = Union[Term, Combined]


@dataclass(frozen=True)
class Search:
    """One ``SEARCH(...)`` call: where it is in its expression and what it asks for."""

    span: tuple[int, int]
    namespace: str | None
    dimension_names: tuple[str, ...] | None  # None: any dimensions
    condition: Condition | None
    stat: str
    period: int | None

    def matches(self, metric_name: str, dimensions: tuple[tuple[str, str], ...]) -> bool:
        """Whether an ``AWS/Bedrock`` metric with these dimensions is one the search finds."""
        if self.namespace is not None and self.namespace != NAMESPACE:
            return False
        if self.dimension_names is not None and sorted(self.dimension_names) != sorted(n for n, _ in dimensions):
            return False
        return self.condition is None or _holds(self.condition, metric_name, dict(dimensions))


    def metric_names(self) -> tuple[str, ...] | None:
        """The metric names the search can only find (its ``MetricName="..."`` terms, alone, in an
        AND, or OR-ed together), so the metrics to list can be narrowed; None when any may match."""
        return _required_names(self.condition)


def _required_names(condition: Condition | None) -> tuple[str, ...] | None:
    if isinstance(condition, Term):
        return (condition.value,) if condition.exact and condition.key == "MetricName" else None
    if isinstance(condition, Combined) and condition.op == "and":
        for part in condition.parts:
            names = _required_names(part)
            if names is not None:
                return names
        return None
    if isinstance(condition, Combined) and condition.op == "or":
        alternatives = [_required_names(part) for part in condition.parts]
        if all(names is not None for names in alternatives):
            return tuple(name for names in alternatives for name in names)
    return None


def find_searches(expression: str) -> list[Search]:
    """Every ``SEARCH(...)`` in a metric-math expression, parsed; InputError when one is malformed."""
    found = []
    for match in _CALL.finditer(expression):
        text = _unquote(match["text"])
        namespace, names, rest = _schema(text)
        tokens = [m for m in _TOKEN.finditer(rest) if m.group(0).strip()]
        condition, at = _parse_or(tokens, 0, text) if tokens else (None, 0)
        if at != len(tokens):
            raise InputError(f"SEARCH {text!r}: unexpected {tokens[at].group(0).strip()!r}")
        period = int(match["period"]) if match["period"] else None
        found.append(Search(match.span(), namespace, names, condition, match["stat"][1:-1], period))
    if not found and "SEARCH" in expression.upper():
        raise InputError(f"{expression!r}: write a search as SEARCH('{{Namespace,DimensionName}} terms', "
                         "'Statistic', period)")
    return found


def default_label(metric_name: str, dimensions: tuple[tuple[str, str], ...], several_metrics: bool) -> str:
    """The label of a search result: its dimension values, then the metric name when the search
    found more than one metric (or the result has no dimensions)."""
    parts = [value for _, value in dimensions]
    if several_metrics or not parts:
        parts.append(metric_name)
    return " ".join(parts)


# ---------------------------------------------------------------------- parsing


def _unquote(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def _schema(text: str) -> tuple[str | None, tuple[str, ...] | None, str]:
    match = _SCHEMA.match(text)
    if match is None:
        return None, None, text
    items = [item.strip().strip('"') for item in match["items"].split(",")]
    if not items or not items[0]:
        raise InputError(f"SEARCH {text!r}: the schema {{...}} must name a namespace first")
    return items[0], tuple(item for item in items[1:] if item), text[match.end():]


def _word(token: re.Match, word: str) -> bool:
    return token["word"] is not None and token["word"] == word


def _parse_or(tokens: list[re.Match], at: int, text: str) -> tuple[Condition, int]:
    parts = []
    part, at = _parse_and(tokens, at, text)
    parts.append(part)
    while at < len(tokens) and _word(tokens[at], "OR"):
        part, at = _parse_and(tokens, at + 1, text)
        parts.append(part)
    return (parts[0] if len(parts) == 1 else Combined("or", tuple(parts))), at


def _parse_and(tokens: list[re.Match], at: int, text: str) -> tuple[Condition, int]:
    parts: list[Condition] = []
    while at < len(tokens) and tokens[at]["close"] is None and not _word(tokens[at], "OR"):
        if _word(tokens[at], "AND"):
            at += 1
            continue
        part, at = _parse_not(tokens, at, text)
        parts.append(part)
    if not parts:
        raise InputError(f"SEARCH {text!r}: a term is missing (around OR, AND or parentheses)")
    return (parts[0] if len(parts) == 1 else Combined("and", tuple(parts))), at


def _parse_not(tokens: list[re.Match], at: int, text: str) -> tuple[Condition, int]:
    if at >= len(tokens):
        raise InputError(f"SEARCH {text!r}: a term is missing at the end")
    token = tokens[at]
    if _word(token, "NOT"):
        inner, at = _parse_not(tokens, at + 1, text)
        return Combined("not", (inner,)), at
    if token["open"] is not None:
        inner, at = _parse_or(tokens, at + 1, text)
        if at >= len(tokens) or tokens[at]["close"] is None:
            raise InputError(f"SEARCH {text!r}: a parenthesis is not closed")
        return inner, at + 1
    if token["close"] is not None:
        raise InputError(f"SEARCH {text!r}: unexpected ')'")
    if token["key"] is not None:
        value = token["value"]
        quoted = value.startswith('"')
        return Term(token["key"], _unquote(value) if quoted else value, quoted), at + 1
    if token["phrase"] is not None:
        return Term(None, _unquote(token["phrase"]), False), at + 1
    return Term(None, token["word"], False), at + 1


# ---------------------------------------------------------------------- matching


def _holds(condition: Condition, metric_name: str, dimensions: dict[str, Any]) -> bool:
    if isinstance(condition, Combined):
        if condition.op == "not":
            return not _holds(condition.parts[0], metric_name, dimensions)
        results = (_holds(part, metric_name, dimensions) for part in condition.parts)
        return any(results) if condition.op == "or" else all(results)
    properties = {"MetricName": metric_name, "Namespace": NAMESPACE, **dimensions}
    if condition.key is None:
        needle = condition.value.lower()
        haystack = [metric_name, NAMESPACE, *dimensions.keys(), *dimensions.values()]
        return any(needle in str(item).lower() for item in haystack)
    value = properties.get(condition.key)
    if value is None:
        return False
    return value == condition.value if condition.exact else condition.value.lower() in str(value).lower()
