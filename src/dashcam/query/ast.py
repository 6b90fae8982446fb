"""The Logs Insights syntax tree: what the parser produces and the compiler consumes.

Every node remembers the exact source text it came from (``text``) and where it starts
(``line``, ``column``, 1-based), because CloudWatch names an un-aliased result column by its
expression text exactly as written (``count(*)``, ``bin(5m)``, ``identity.arn``) and because
compile errors must point at the line and column of the offending part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Node:
    """Position and source text shared by every node (excluded from equality)."""

    text: str = field(default="", compare=False, kw_only=True)
    line: int = field(default=1, compare=False, kw_only=True)
    column: int = field(default=1, compare=False, kw_only=True)


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class FieldRef(Node):
    """A field: ``@timestamp``, ``modelId``, ``input.inputTokenCount``, ``messages.0.content``.

    ``path`` holds the dot-separated segments; a backticked name is split on dots the same way
    (CloudWatch flattens JSON keys with dots, so `` `identity.arn` `` *is* ``identity.arn``), except
    that a backticked segment with no dots may hold any character (`` `foo-bar` ``).
    """

    path: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Literal(Node):
    """A string or number literal. Strings keep their unescaped value."""

    value: Union[str, int, float]


@dataclass(frozen=True)
class Duration(Node):
    """A time period such as ``5m`` or ``1.5h``: ``amount`` of a canonical ``unit``.

    Units are canonicalised to one of ``ms s m h d w mo q y`` whatever spelling was written
    (``msec``, ``minutes``, ``hr``, ``qtr``, ...).
    """

    amount: float
    unit: str


@dataclass(frozen=True)
class Regex(Node):
    """A ``/pattern/`` literal. ``pattern`` is the text between the slashes, ``\\/`` unescaped."""

    pattern: str


@dataclass(frozen=True)
class Unary(Node):
    """``-x``, ``not x`` (also written ``!x``)."""

    op: str  # "-" | "not"
    operand: "Expr"


@dataclass(frozen=True)
class Binary(Node):
    """A binary operation.

    ``op`` is one of ``+ - * / % ^ = != < <= > >= and or like not_like =~``
    (``!~``/``not like`` both become ``not_like``).
    """

    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class InList(Node):
    """``x in [a, b, c]`` / ``x not in [...]``."""

    operand: "Expr"
    items: tuple["Expr", ...]
    negated: bool = False


@dataclass(frozen=True)
class Star(Node):
    """The ``*`` in ``count(*)``."""


@dataclass(frozen=True)
class Call(Node):
    """A function or aggregation call; ``name`` is lower-cased (function names ignore case)."""

    name: str
    args: tuple["Expr", ...]


Expr = Union[FieldRef, Literal, Duration, Regex, Unary, Binary, InList, Star, Call]


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class Projection(Node):
    """``expr [as alias]``; ``name`` is the alias, or the expression text as written."""

    expr: Expr
    alias: str | None = None

    @property
    def name(self) -> str:
        return self.alias if self.alias is not None else self.expr.text


@dataclass(frozen=True)
class Fields(Node):
    items: tuple[Projection, ...]


@dataclass(frozen=True)
class Display(Node):
    items: tuple[Projection, ...]


@dataclass(frozen=True)
class Filter(Node):
    condition: Expr


@dataclass(frozen=True)
class Stats(Node):
    """``stats agg [as a], ... [by expr [as b], ...]``."""

    aggregates: tuple[Projection, ...]
    by: tuple[Projection, ...] = ()


@dataclass(frozen=True)
class SortKey(Node):
    expr: Expr
    descending: bool | None = None  # None: not written (CloudWatch's default is descending)


@dataclass(frozen=True)
class Sort(Node):
    keys: tuple[SortKey, ...]


@dataclass(frozen=True)
class Limit(Node):
    count: int


@dataclass(frozen=True)
class Parse(Node):
    """``parse field "glob * pattern" as a, b`` or ``parse field /(?<a>...)/``.

    For a glob, ``names`` are the ``as`` names (one per ``*``); for a regex they are the named
    capture groups in order.
    """

    source: Expr
    pattern: str
    is_regex: bool
    names: tuple[str, ...]


@dataclass(frozen=True)
class Dedup(Node):
    fields: tuple[Expr, ...]


@dataclass(frozen=True)
class Unnest(Node):
    """``unnest expr into name``."""

    source: Expr
    into: str


@dataclass(frozen=True)
class Source(Node):
    """``SOURCE "group" ...`` or ``SOURCE logGroups(namePrefix: ["a", "b"])``.

    ``names`` are exact log group names, ``prefixes`` name prefixes; a group is selected when it
    matches either list.
    """

    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


Command = Union[Fields, Display, Filter, Stats, Sort, Limit, Parse, Dedup, Unnest, Source]


@dataclass(frozen=True)
class Query(Node):
    commands: tuple[Command, ...]
