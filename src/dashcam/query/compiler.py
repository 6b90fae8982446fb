"""Compile a Logs Insights syntax tree to one SQL statement over the ``events`` table.

The pipeline ``cmd | cmd | ...`` becomes as few nested SELECTs as its semantics allow: commands
accumulate into a *stage* (one SELECT: FROM, WHERE, GROUP BY, HAVING, QUALIFY, ORDER BY, LIMIT
and the names the query has defined), and a new stage wrapping the previous one as a subquery
is started only when the next command cannot be expressed in the same SELECT — a ``filter`` or
``sort`` after ``limit``, a second ``stats``, ``unnest``. So the common questions compile to a
single flat SELECT on typed hot columns, as fast as hand-written SQL.

Field paths resolve, in order, to: a name the query defined (``fields ... as x``, ``parse``,
``unnest``, ``stats`` output), a path inside a JSON value the query defined (``m.input`` after
``fields jsonParse(@message) as m``), a hot column (:data:`dashcam.records.HOT_FIELD_BY_PATH`),
``@ptr``, or else a JSON Pointer into ``@message``.

Result conventions (as in CloudWatch, see DESIGN.md): a column is named by its alias, or by the
expression text as written (a field by its dotted name); with no ``fields``/``display``, events
show ``@timestamp``, ``@message`` and the fields ``parse``/``unnest`` created; ``fields`` lists
accumulate (plus ``parse``/``unnest`` fields), the last ``display`` wins; ``stats`` shows its
``by`` keys, then its aggregates; ``fields``/``display`` after ``stats`` choose among (or compute
from) its columns. With no ``sort``, events come newest first and ``stats`` rows ordered by
their keys (ascending, missing last); ``sort`` puts missing values last either way, and a later
``sort`` replaces an earlier one. Rows that tie on every sort key come in no defined order (a
tie-breaker would cost DuckDB its top-N pruning: 7x slower on the slowest-requests question).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import NoReturn

from sqlglot import exp

from dashcam.errors import QuerySyntaxError
from dashcam.query import ast
from dashcam.query.dialects import (
    Dialect, and_, case, col, fn, get_dialect, is_null, json_pointer, lit, or_, paren,
)
from dashcam.query.functions import (
    BOOL, JSON, NULL, NUM, PERIOD, REGEX, STAR, STR, TS, ArgError, Context, Value, arithmetic, compare,
    function_table, grouping, in_list, output, present, regex_match, substring_match, to_bool, to_num, to_str,
)
from dashcam.records import HOT_FIELD_BY_PATH
from dashcam.store.schema import EVENTS_TABLE

MAX_STATS = 2
_KIND_TYPE = {"string": STR, "int": NUM, "float": NUM, "timestamp": TS}
_ROW, _STATS, _IN_AGG = "row", "stats", "in-aggregation"



def _constant(sql: exp.Expression) -> bool:
    """True when an expression reads no column and aggregates nothing: the same for every row."""
    return sql.find(exp.Column, exp.AggFunc, exp.Star, exp.Window) is None


class _Pointer(exp.Expression):
    """``@ptr`` held as its parts (``this``: the log group, ``expression``: the event id) while a
    query compiles. A stage carries the two raw columns, and the dialect's pointer text is built
    only when the SQL is rendered — for a result column, in a SELECT around the one that sorts,
    dedups and limits, so only the rows kept pay for it (building it for every matching event
    before a top-N sort doubled the time of ``fields @ptr | sort latencyMs desc | limit 100``)."""

    arg_types = {"this": True, "expression": True}


class _Timestamp(exp.Expression):
    """A result timestamp (``this``) to be written as text in the final SELECT, like ``@ptr``: a
    top-N sort over millions of events then formats only the rows it keeps (DuckDB formatted every
    row first: 28 ms for ``limit 20`` but 900 ms for ``limit 100`` over 10M events)."""

    arg_types = {"this": True}


@dataclass(frozen=True)
class QueryScope:
    """Which events a query sees and how many rows it may return."""

    log_groups: tuple[str, ...] | None = None   # None = all groups
    start_ms: int | None = None                 # inclusive, epoch ms; None = unbounded
    end_ms: int | None = None                   # inclusive, epoch ms
    limit: int = 10_000                         # cap on rows returned (a `limit` command can only lower it)


@dataclass(frozen=True)
class OutputColumn:
    """A result column: its CloudWatch name, and how to decode its raw values.

    ``kind`` is ``value`` (use as is), ``json`` (JSON text to decode) or ``timestamp``.
    ``unmask`` is set on a column ``unmask()`` made: the path into the event's original message
    whose value replaces the masked one after the query (``()``: the whole message).
    """

    name: str
    kind: str
    unmask: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CompiledQuery:
    """SQL for one engine, and the columns its rows hold, in order.

    When a column is to be unmasked, each raw row also ends with the event's log group and event
    id (``hidden`` names those trailing columns), which are not result columns: the service
    looks the originals up by them (see :mod:`dashcam.query.unmask`).
    """

    sql: str
    columns: tuple[OutputColumn, ...]
    dialect: str
    hidden: tuple[str, ...] = ()

    @property
    def unmasks(self) -> bool:
        """True when some column shows originals once the service has swapped them in."""
        return any(c.unmask is not None for c in self.columns)


def compile_query(query: ast.Query, scope: QueryScope, dialect: str = "duckdb") -> CompiledQuery:
    """Compile ``query`` over ``scope`` into SQL for ``dialect``.

    Raises :class:`QuerySyntaxError` (with the offending node's line and column) for queries
    that are well-formed text but cannot be answered: unknown function, wrong arity, an
    aggregation outside ``stats``, a non-aggregate ``stats`` column, a command after ``dedup``
    other than ``limit``, more than two ``stats``, a field that does not exist after ``stats``.
    """
    return _Compiler(get_dialect(dialect), scope).compile(query)


def make_ptr(log_group: str, event_id: int) -> str:
    """The ``@ptr`` value of an event (the compiled SQL builds the same string)."""
    return f"{log_group}:{event_id}"


def parse_ptr(ptr: str) -> tuple[str, int]:
    """``(log_group, event_id)`` from an ``@ptr`` value; ValueError when it is not one."""
    group, sep, event_id = ptr.rpartition(":")
    if not sep or not group:
        raise ValueError(f"{ptr!r} is not a record pointer")
    return group, int(event_id)


# ---------------------------------------------------------------------- stages


@dataclass
class _Stage:
    """One SELECT under construction."""

    source: exp.Expression
    events: bool                                   # rows are events (paths resolve to columns/JSON)
    where: list[exp.Expression] = field(default_factory=list)
    env: dict[str, Value] = field(default_factory=dict)
    group_by: list[exp.Expression] | None = None   # not None: an aggregating stage
    having: list[exp.Expression] = field(default_factory=list)
    qualify: list[exp.Expression] = field(default_factory=list)
    order: list[tuple[exp.Expression, bool]] | None = None        # from `sort`; (key, descending)
    default_order: list[tuple[exp.Expression, bool]] = field(default_factory=list)
    limit: int | None = None
    base_outputs: list[str] = field(default_factory=list)
    fields: list[str] | None = None
    display: list[str] | None = None
    created: list[str] = field(default_factory=list)
    dedup: ast.Dedup | None = None
    stats_count: int = 0

    @property
    def effective_order(self) -> list[tuple[exp.Expression, bool]]:
        # A constant key (`sort "x"`, `by ""`) orders nothing, and engines reject it in ORDER BY.
        order = self.order if self.order is not None else self.default_order
        return [(key, desc) for key, desc in order if not _constant(key)]

    def output_names(self) -> list[str]:
        if self.display is not None:
            names = self.display
        elif self.fields is not None:
            names = self.fields + self.created
        else:
            names = self.base_outputs + self.created
        return list(dict.fromkeys(names))


class _Compiler:
    def __init__(self, dialect: Dialect, scope: QueryScope):
        self.d = dialect
        self.scope = scope
        self.functions = function_table(dialect)
        self._counter = 0
        self._projecting: ast.Expr | None = None  # the whole expression of a fields/display item

    # ------------------------------------------------------------------ driver

    def compile(self, query: ast.Query) -> CompiledQuery:
        stage = _Stage(source=exp.Table(this=exp.to_identifier(EVENTS_TABLE)), events=True,
                       where=self._scope_conditions(), base_outputs=["@timestamp", "@message"])
        stage.default_order = [(col("ts"), True)]
        for i, cmd in enumerate(query.commands):
            if stage.dedup is not None and not isinstance(cmd, ast.Limit):
                self._fail(cmd, "only `limit` may follow `dedup`")
            if isinstance(cmd, ast.Source) and i != 0:
                self._fail(cmd, "SOURCE must be the first command")
            stage = self._command(stage, cmd)
        return self._finish(stage)

    def _command(self, s: _Stage, cmd: ast.Command) -> _Stage:
        if isinstance(cmd, (ast.Fields, ast.Display)):
            return self._fields(s, cmd)
        if isinstance(cmd, ast.Filter):
            return self._filter(s, cmd)
        if isinstance(cmd, ast.Stats):
            return self._stats(s, cmd)
        if isinstance(cmd, ast.Sort):
            return self._sort(s, cmd)
        if isinstance(cmd, ast.Limit):
            if cmd.count < 0:
                self._fail(cmd, "the limit must not be negative")
            s.limit = cmd.count if s.limit is None else min(s.limit, cmd.count)
            return s
        if isinstance(cmd, ast.Parse):
            return self._parse(s, cmd)
        if isinstance(cmd, ast.Dedup):
            return self._dedup(s, cmd)
        if isinstance(cmd, ast.Unnest):
            return self._unnest(s, cmd)
        if isinstance(cmd, ast.Source):
            s.where.append(self._source_condition(cmd))
            return s
        self._fail(cmd, f"unsupported command {type(cmd).__name__}")

    # ------------------------------------------------------------------ commands

    def _fields(self, s: _Stage, cmd: ast.Fields | ast.Display) -> _Stage:
        names = []
        for item in cmd.items:
            name = _name(item)
            if isinstance(item.expr, ast.FieldRef) and item.alias is None:
                self._field(item.expr, s, _ROW)  # validate now; resolved by name when output
            else:
                self._projecting = item.expr  # the one place unmask() may stand
                try:
                    v = self._expr(item.expr, s, _ROW)
                finally:
                    self._projecting = None
                _plain(self, item.expr, v)
                s.env[name] = v
            names.append(name)
        if isinstance(cmd, ast.Display):
            s.display = names
        else:
            s.fields = (s.fields or []) + names
        return s

    def _filter(self, s: _Stage, cmd: ast.Filter) -> _Stage:
        if s.limit is not None:
            s = self._nest(s)
        v = self._expr(cmd.condition, s, _ROW)
        _plain(self, cmd.condition, v)
        (s.having if s.group_by is not None else s.where).append(to_bool(self.d, v))
        return s

    def _sort(self, s: _Stage, cmd: ast.Sort) -> _Stage:
        if s.limit is not None:
            s = self._nest(s)
        order = []
        for key in cmd.keys:
            v = output(self.d, self._expr(key.expr, s, _ROW))
            _plain(self, key.expr, v)
            desc = True if key.descending is None else key.descending
            if v.type == JSON:
                # Numbers sort numerically (before text), then everything else by its text.
                order += [(to_num(self.d, v), desc), (to_str(self.d, v), desc)]
            else:
                order.append((v.expr, desc))
        s.order = order
        return s

    def _stats(self, s: _Stage, cmd: ast.Stats) -> _Stage:
        if s.stats_count >= MAX_STATS:
            self._fail(cmd, f"a query may have at most {MAX_STATS} `stats` commands")
        if not cmd.aggregates:
            self._fail(cmd, "`stats` needs at least one aggregation")
        if s.group_by is not None or s.limit is not None:
            s = self._nest(s)
        keys: dict[str, Value] = {}
        for item in cmd.by:
            v = self._expr(item.expr, s, _ROW)
            _plain(self, item.expr, v)
            self._define(keys, _name(item), grouping(self.d, v), item)
        key_texts = {item.expr.text: keys[_name(item)] for item in cmd.by}
        key_texts.update({_name(item): keys[_name(item)] for item in cmd.by})
        aggs: dict[str, Value] = {}
        for item in cmd.aggregates:
            v = self._expr(item.expr, s, _STATS, key_texts)
            _plain(self, item.expr, v)
            if not v.agg and item.expr.text not in key_texts:
                self._fail(item, f"`{item.expr.text}` is not an aggregation: wrap it in one such as "
                                 "count(), sum() or avg(), or list it after `by`")
            self._define(aggs, _name(item), output(self.d, v), item, taken=keys)
        # Grouped rows have no event columns to carry a pointer's parts in: `by @ptr` groups by its text.
        keys = {name: replace(v, expr=self._built(v.expr)) for name, v in keys.items()}
        aggs = {name: replace(v, expr=self._built(v.expr)) for name, v in aggs.items()}
        new = _Stage(source=s.source, events=False, where=list(s.where),
                     group_by=[g for g in (v.group if v.group is not None else v.expr for v in keys.values())
                               if not _constant(g)],
                     stats_count=s.stats_count + 1)
        # Rows are no longer events: a `by` key is not a field of a message any more (for unmask).
        new.env = {name: replace(v, source_path=None) for name, v in {**keys, **aggs}.items()}
        times = [v for v in keys.values() if v.type == TS]
        if len(times) == 1 and "@timestamp" not in new.env:
            # A later bin()/earliest() over the stats output uses its one time key (`by bin(5m)`).
            new.env["@timestamp"] = times[0]
        new.base_outputs = list(keys) + list(aggs)
        new.default_order = [(v.expr, False) for v in keys.values()]
        return new

    def _parse(self, s: _Stage, cmd: ast.Parse) -> _Stage:
        src = self._expr(cmd.source, s, _ROW)
        _plain(self, cmd.source, src)
        if cmd.is_regex:
            pattern, groups = translate_regex(cmd.pattern, lambda msg: self._fail(cmd, msg))
            missing = [n for n in cmd.names if n not in groups]
            if missing:
                self._fail(cmd, f"the regex has no named group {missing[0]!r}")
            indexes = [groups[n] for n in cmd.names]
        else:
            pattern, count = glob_to_regex(cmd.pattern)
            if count != len(cmd.names):
                self._fail(cmd, f"the pattern has {count} `*` but {len(cmd.names)} names follow `as`")
            indexes = list(range(1, count + 1))
        text = to_str(self.d, src)
        matched = self.d.regex_match(text, pattern)
        for name, index in zip(cmd.names, indexes):
            s.env[name] = Value(case((matched, self.d.regex_group(text, pattern, index))), STR, agg=src.agg)
            s.created.append(name)
        return s

    def _dedup(self, s: _Stage, cmd: ast.Dedup) -> _Stage:
        if s.limit is not None:
            s = self._nest(s)
        keys = []
        for f in cmd.fields:
            v = self._expr(f, s, _ROW)
            _plain(self, f, v)
            keys.append(grouping(self.d, v).expr)
        if not keys:
            self._fail(cmd, "`dedup` needs at least one field")
        ordered = [exp.Ordered(this=e, desc=desc) for e, desc in s.effective_order]
        window = exp.Window(this=exp.RowNumber(), partition_by=keys,
                            order=exp.Order(expressions=ordered) if ordered else None)
        # A row with a missing key is never a duplicate.
        s.qualify.append(or_(exp.EQ(this=window, expression=lit(1)), *[is_null(k) for k in keys]))
        s.dedup = cmd
        return s

    def _unnest(self, s: _Stage, cmd: ast.Unnest) -> _Stage:
        if s.group_by is not None or s.limit is not None:
            s = self._nest(s)
        src = self._expr(cmd.source, s, _ROW)
        _plain(self, cmd.source, src)
        if src.type != JSON:
            # Not a list: a one-element list, so the row stays (unless the value is missing).
            s.where.append(present(self.d, src))
            s.env[cmd.into] = src
            s.created.append(cmd.into)
            return s
        # The list is computed once in a subquery: the unnest below refers to it several times.
        holder = self._fresh("v")
        s = self._nest(s, extra=[(holder, grouping(self.d, src).expr)])
        values = self.d.json_elements(col(holder))
        element, position = self._fresh("u"), self._fresh("i")
        s = self._nest(s, extra=[(element, self.d.unnest(values)), (position, self.d.unnest_index(values))])
        s.env[cmd.into] = Value(col(element), JSON)
        s.created.append(cmd.into)
        s.default_order = s.default_order + [(col(position), False)]
        return s

    def _source_condition(self, cmd: ast.Source) -> exp.Expression:
        group = col("log_group")
        conds: list[exp.Expression] = []
        if cmd.names:
            conds.append(exp.In(this=group, expressions=[lit(n) for n in cmd.names]))
        conds += [fn("starts_with", group, lit(p)) for p in cmd.prefixes]
        if not conds:
            self._fail(cmd, "SOURCE names no log group")
        return or_(*conds)

    def _scope_conditions(self) -> list[exp.Expression]:
        sc, ts = self.scope, col("ts")
        conds: list[exp.Expression] = []
        if sc.log_groups is not None:
            conds.append(exp.In(this=col("log_group"), expressions=[lit(g) for g in sc.log_groups])
                         if sc.log_groups else exp.Boolean(this=False))
        if sc.start_ms is not None:
            conds.append(exp.GTE(this=ts, expression=self.d.timestamp_literal(sc.start_ms)))
        if sc.end_ms is not None:
            conds.append(exp.LTE(this=ts, expression=self.d.timestamp_literal(sc.end_ms)))
        return conds

    # ------------------------------------------------------------------ stages to SQL

    def _fresh(self, prefix: str = "x") -> str:
        self._counter += 1
        return f"_{prefix}{self._counter}"

    def _select(self, s: _Stage, columns: list[tuple[str, exp.Expression]], *, star: bool,
                ordered: bool, limit: int | None) -> exp.Select:
        items: list[exp.Expression] = [exp.Star()] if star else []
        items += [exp.alias_(e, exp.to_identifier(name, quoted=True)) for name, e in columns]
        sel = exp.Select(expressions=items).from_(s.source, copy=False)
        if s.where:
            sel = sel.where(and_(*s.where), copy=False)
        if s.group_by:
            sel = sel.group_by(*s.group_by, copy=False)
        if s.having:
            sel = sel.having(and_(*s.having), copy=False)
        if s.qualify:
            sel = sel.qualify(and_(*s.qualify), copy=False)
        if ordered and s.effective_order:
            sel = sel.order_by(*[exp.Ordered(this=e, desc=desc) for e, desc in s.effective_order], copy=False)
        if limit is not None:
            sel = sel.limit(lit(limit), copy=False)
        return sel

    def _nest(self, s: _Stage, extra: list[tuple[str, exp.Expression]] = ()) -> _Stage:
        """Wrap ``s`` as a subquery; every name it defined becomes a column of the new stage."""
        columns: list[tuple[str, exp.Expression]] = []
        aliases: dict[str, str] = {}  # SQL text -> column, so an expression is carried once

        def carry(e: exp.Expression, prefix: str) -> exp.Expression:
            if isinstance(e, _Pointer):  # the parts travel; the text is built where it is used
                return _Pointer(this=carry(e.this, prefix), expression=carry(e.expression, prefix))
            key = self._sql(e)
            if key not in aliases:
                aliases[key] = self._fresh(prefix)
                columns.append((aliases[key], e))
            return col(aliases[key])

        env = {name: Value(carry(v.expr, "x"), v.type, unmask=v.unmask) for name, v in s.env.items()}
        order = [(carry(e, "o"), desc) for e, desc in s.effective_order]
        columns += list(extra)
        # Order inside a subquery only matters when it decides which rows a LIMIT keeps.
        sel = self._select(s, columns, star=s.events, ordered=s.limit is not None, limit=s.limit)
        sub = exp.Subquery(this=sel, alias=exp.TableAlias(this=exp.to_identifier(self._fresh("t"))))
        return _Stage(source=sub, events=s.events, env=env, default_order=order,
                      base_outputs=list(s.base_outputs), fields=s.fields, display=s.display,
                      created=list(s.created), stats_count=s.stats_count)

    def _finish(self, s: _Stage) -> CompiledQuery:
        columns, outputs = [], []
        for name in s.output_names():
            v = output(self.d, self._field(ast.FieldRef(path=tuple(name.split(".")), text=name), s, _ROW))
            columns.append((name, _Timestamp(this=v.expr) if v.type == TS else v.expr))
            outputs.append(OutputColumn(name, "json" if v.type == JSON else "value", unmask=v.unmask))
        hidden: tuple[str, ...] = ()
        if any(o.unmask is not None for o in outputs):
            # Marked values only live in event stages (stats drops them), so the event's key is here.
            hidden = (self._fresh("g"), self._fresh("e"))
            columns += [(hidden[0], col("log_group")), (hidden[1], col("event_id"))]
        limit = self.scope.limit if s.limit is None else min(s.limit, self.scope.limit)
        self._rows_first(s, columns, limit)
        if s.group_by is None and any(isinstance(e, (_Pointer, _Timestamp)) for _, e in columns):
            sel = self._formatted_after(s, columns, limit)
        else:
            sel = self._select(s, columns, star=False, ordered=True, limit=limit)
            _disambiguate(sel, s.source, _renamed(columns))
        return CompiledQuery(sql=self._sql(sel), columns=tuple(outputs), dialect=self.d.name, hidden=hidden)

    def _rows_first(self, s: _Stage, columns: list[tuple[str, exp.Expression]], limit: int) -> None:
        """Have a top-N over the events table whose result carries their raw messages choose its
        rows by row id first (filters and a sort of the keys alone), then read only those rows in full.

        DuckDB sorts every matching event, with every column it returns, when the LIMIT is more
        than a small share of them: ``fields @message | sort latencyMs desc`` (10,000 rows by
        default) over 1M events sorted ~1.5 GB of messages and ran out of the server's memory;
        by row id first it takes 0.3 s. The rows chosen are the same: the second sort only orders
        those already picked.
        """
        if not self.d.top_n_by_row_id or s.group_by is not None or s.qualify or not s.effective_order:
            return
        if not (isinstance(s.source, exp.Table) and s.source.name == EVENTS_TABLE):
            return
        if not any(c.name == "message" for _, e in columns for c in e.find_all(exp.Column)):
            return
        chosen = exp.Select(expressions=[col("rowid")]).from_(s.source.copy(), copy=False)
        if s.where:
            chosen = chosen.where(and_(*[w.copy() for w in s.where]), copy=False)
        chosen = chosen.order_by(*[exp.Ordered(this=e.copy(), desc=desc) for e, desc in s.effective_order],
                                 copy=False).limit(lit(limit), copy=False)
        # The filters went into the choice; the chosen rows need no second pass through them.
        s.where = [exp.In(this=col("rowid"), query=exp.Subquery(this=chosen))]

    def _formatted_after(self, s: _Stage, columns: list[tuple[str, exp.Expression]], limit: int) -> exp.Select:
        """The final SELECT of a stage whose result has ``@ptr`` or timestamp columns: ``s``
        filters, dedups, sorts and limits rows carrying each pointer's parts and each raw
        timestamp, and a SELECT around it writes the pointer and timestamp text of the rows kept.
        The outer SELECT sorts those few rows again, because a subquery's order is not one an
        engine promises to keep."""
        inner: list[tuple[str, exp.Expression]] = []
        aliases: dict[str, str] = {}  # SQL text -> column, so an expression is carried once

        def carry(e: exp.Expression) -> exp.Expression:
            if _constant(e):  # the same on every row: nothing to carry
                return e
            key = self._sql(e)
            if key not in aliases:
                aliases[key] = self._fresh("x")
                inner.append((aliases[key], e))
            return col(aliases[key])

        def late(e: exp.Expression) -> exp.Expression:
            if isinstance(e, _Pointer):
                return self.d.pointer(carry(e.this), carry(e.expression))
            if isinstance(e, _Timestamp):
                return self.d.format_timestamp(carry(e.this))
            return carry(e)

        outer = [(name, late(e)) for name, e in columns]
        order = [(carry(e), desc) for e, desc in s.effective_order]
        # Inner names are all fresh, so its ORDER BY cannot mistake one for a column.
        sub = exp.Subquery(this=self._select(s, inner, star=False, ordered=True, limit=limit),
                           alias=exp.TableAlias(this=exp.to_identifier(self._fresh("t"))))
        sel = self._select(_Stage(source=sub, events=False, default_order=order), outer,
                           star=False, ordered=True, limit=None)
        _disambiguate(sel, sub, _renamed(outer))
        return sel

    def _built(self, tree: exp.Expression) -> exp.Expression:
        """``tree`` with every ``@ptr`` held as parts replaced by the dialect's pointer text, and
        every result timestamp written as text."""
        if tree.find(_Pointer, _Timestamp) is None:
            return tree

        def build(node: exp.Expression) -> exp.Expression:
            if isinstance(node, _Pointer):
                return self.d.pointer(node.this, node.expression)
            if isinstance(node, _Timestamp):
                return self.d.format_timestamp(node.this)
            return node

        return tree.transform(build)

    def _sql(self, tree: exp.Expression) -> str:
        """Render ``tree`` for the dialect (pointers built from their parts)."""
        return self.d.sql(self._built(tree))

    # ------------------------------------------------------------------ expressions

    def _expr(self, node: ast.Expr, s: _Stage, mode: str, keys: dict[str, Value] | None = None) -> Value:
        if not isinstance(node, ast.Literal) and node.text:
            # After stats, an expression written exactly as an output column *is* that column
            # (`sort count(*) desc`); inside stats, as a `by` key.
            # (Except an aggregation written in the next `stats`: `count(*)` there counts anew.)
            if not s.events and node.text in s.env and not (mode == _STATS and isinstance(node, ast.Call)):
                return s.env[node.text]
            if mode == _STATS and keys and node.text in keys:
                return keys[node.text]
        if isinstance(node, ast.FieldRef):
            return self._projected(node, self._field(node, s, mode, keys))
        if isinstance(node, ast.Literal):
            if isinstance(node.value, str):
                return Value(lit(node.value), STR, const=node.value)
            return Value(lit(node.value), NUM, const=node.value)
        if isinstance(node, ast.Duration):
            return Value(exp.Null(), PERIOD, const=(node.amount, node.unit))
        if isinstance(node, ast.Regex):
            pattern, _ = translate_regex(node.pattern, lambda msg: self._fail(node, msg))
            return Value(exp.Null(), REGEX, const=pattern)
        if isinstance(node, ast.Star):
            return Value(exp.Star(), STAR)
        if isinstance(node, ast.Unary):
            v = self._operand(node.operand, s, mode, keys)
            if node.op == "-":
                return Value(exp.Neg(this=paren(to_num(self.d, v))), NUM, agg=v.agg)
            return Value(exp.Not(this=paren(to_bool(self.d, v))), BOOL, agg=v.agg)
        if isinstance(node, ast.Binary):
            return self._binary(node, s, mode, keys)
        if isinstance(node, ast.InList):
            a = self._operand(node.operand, s, mode, keys)
            items = [self._operand(i, s, mode, keys) for i in node.items]
            if not items:
                return Value(exp.Boolean(this=node.negated), BOOL)
            v = in_list(self.d, a, items)
            return Value(exp.Not(this=paren(v.expr)), BOOL, agg=v.agg) if node.negated else v
        if isinstance(node, ast.Call):
            return self._projected(node, self._call(node, s, mode, keys))
        self._fail(node, f"unsupported expression {type(node).__name__}")

    def _projected(self, node: ast.Expr, v: Value) -> Value:
        """``v``, unless it is an unmasked value used anywhere but as a whole output column: the
        engine only has masked text, so a filter, sort, group or function on it would be wrong."""
        if v.unmask is not None and node is not self._projecting:
            self._fail(node, f"`{node.text or 'unmask()'}` is unmasked after the query runs, so it can only be "
                             "a whole column of `fields` or `display` (e.g. `fields unmask(@message) as original`); "
                             "filter, sort and aggregate on the masked field instead")
        return v

    def _operand(self, node: ast.Expr, s: _Stage, mode: str, keys: dict[str, Value] | None) -> Value:
        v = self._expr(node, s, mode, keys)
        _plain(self, node, v)
        return v

    def _binary(self, node: ast.Binary, s: _Stage, mode: str, keys: dict[str, Value] | None) -> Value:
        a = self._operand(node.left, s, mode, keys)
        op = node.op
        if op in ("like", "not_like", "=~"):
            b = self._expr(node.right, s, mode, keys)
            if b.type == REGEX:
                v = regex_match(self.d, a, b.const)
            elif op == "=~":
                # `=~ "text"` takes the string as a regex; a pattern must be known when compiling.
                if not isinstance(b.const, str):
                    self._fail(node.right, "`=~` needs a regex such as /pattern/")
                v = regex_match(self.d, a, translate_regex(b.const, lambda msg: self._fail(node.right, msg))[0])
            else:
                _plain(self, node.right, b)
                v = substring_match(self.d, a, b)
            return Value(exp.Not(this=paren(v.expr)), BOOL, agg=v.agg) if op == "not_like" else v
        b = self._operand(node.right, s, mode, keys)
        if op in ("and", "or"):
            build = and_ if op == "and" else or_
            return Value(build(to_bool(self.d, a), to_bool(self.d, b)), BOOL, agg=a.agg or b.agg)
        if op in ("=", "!=", "<", "<=", ">", ">="):
            return compare(self.d, op, a, b)
        if op in ("+", "-", "*", "/", "%", "^"):
            return arithmetic(self.d, op, a, b)
        self._fail(node, f"unknown operator {op!r}")

    def _call(self, node: ast.Call, s: _Stage, mode: str, keys: dict[str, Value] | None) -> Value:
        row = self.functions.get(node.name.lower())
        if row is None:
            self._fail(node, f"unknown function `{node.name}`")
        n = len(node.args)
        if n < row.min_args or (row.max_args is not None and n > row.max_args):
            if row.max_args is None:
                want = f"at least {row.min_args}"
            elif row.min_args == row.max_args:
                want = str(row.min_args)
            else:
                want = f"{row.min_args} to {row.max_args}"
            self._fail(node, f"`{node.name}` takes {want} argument{'s' if want != '1' else ''}, got {n}")
        if row.aggregate:
            if mode == _ROW:
                self._fail(node, f"the aggregation `{node.name}` can only be used in `stats`")
            if mode == _IN_AGG:
                self._fail(node, f"the aggregation `{node.name}` cannot be inside another aggregation")
            args = [self._expr(a, s, _IN_AGG) for a in node.args]
        else:
            args = [self._expr(a, s, mode, keys) for a in node.args]
        ctx = Context(self.d, lambda: self._timestamp(s, node))
        try:
            return row.build(ctx, args)
        except ArgError as err:
            at = node.args[err.index] if err.index is not None and err.index < n else node
            self._fail(at, f"{node.name}: {err}")

    def _timestamp(self, s: _Stage, node: ast.Node) -> Value:
        if "@timestamp" in s.env or s.events:
            return self._field(ast.FieldRef(path=("@timestamp",)), s, _IN_AGG)
        self._fail(node, f"`{node.text or 'this'}` needs @timestamp, which `stats` output does not have")

    def _field(self, node: ast.FieldRef, s: _Stage, mode: str, keys: dict[str, Value] | None = None) -> Value:
        path, name = node.path, node.name
        if name in s.env:
            return s.env[name]
        for i in range(len(path) - 1, 0, -1):
            parent = s.env.get(".".join(path[:i]))
            if parent is not None and parent.type == JSON:
                return self._json_child(parent, path[i:])
        if not s.events:
            known = ", ".join(k for k in s.env) or "none"
            self._fail(node, f"`{name}` is not a column of the `stats` output (columns: {known})")
        if mode == _STATS:
            self._fail(node, f"`{name}` must be inside an aggregation such as count() or sum(), "
                             "or listed after `by`")
        hot = HOT_FIELD_BY_PATH.get(name)
        if hot is not None:
            # The message, and the record fields cached from it, are what masking may have changed.
            source = () if name == "@message" else (None if name.startswith("@") else path)
            return Value(col(hot.column), _KIND_TYPE[hot.kind], source_path=source)
        if name == "@ptr":
            return Value(_Pointer(this=col("log_group"), expression=col("event_id")), STR)
        if path[0].startswith("@"):
            if not path[0].startswith("@@"):
                return Value(exp.Null(), NULL)  # an unknown system field is missing
            path = (path[0][1:],) + path[1:]  # `@@key` is the record's own "@key"
        pointer = json_pointer(path)
        message = col("message")
        return Value(self.d.json_get(message, pointer, safe=True), JSON, json_src=(message, pointer, True),
                     source_path=path)

    def _json_child(self, parent: Value, segments: tuple[str, ...]) -> Value:
        if parent.json_src is not None:
            doc, pointer, safe = parent.json_src
            pointer += json_pointer(segments)
        else:
            doc, pointer, safe = parent.expr, json_pointer(segments), False
        source = None if parent.source_path is None else parent.source_path + segments
        return Value(self.d.json_get(doc, pointer, safe=safe), JSON, json_src=(doc, pointer, safe), agg=parent.agg,
                     source_path=source)

    # ------------------------------------------------------------------ errors

    def _define(self, names: dict[str, Value], name: str, v: Value, node: ast.Node,
                taken: dict[str, Value] | None = None) -> None:
        if name in names or (taken and name in taken):
            self._fail(node, f"the column name `{name}` is used twice in this `stats`")
        names[name] = v

    def _fail(self, node: ast.Node, message: str) -> NoReturn:
        raise QuerySyntaxError(message, line=node.line, column=node.column)


def _disambiguate(sel: exp.Select, source: exp.Expression, names: set[str]) -> None:
    """Qualify column references in ORDER BY, GROUP BY, HAVING and QUALIFY with their table
    when an output column is named like one of them (``fields latencyMs as ts``).

    DuckDB resolves those clauses to select-list aliases before table columns (identifiers
    ignore case), so the default ``ORDER BY "ts"`` would sort by the alias otherwise.
    """
    clauses = [sel.args.get(k) for k in ("order", "group", "having", "qualify")]
    clauses = [c for c in clauses if c is not None]
    used = {c.name.lower() for clause in clauses for c in clause.find_all(exp.Column) if not c.table}
    if not used & names:
        return
    table = source.alias_or_name
    for clause in clauses:
        for column in list(clause.find_all(exp.Column)):
            if not column.table:
                column.set("table", exp.to_identifier(table, quoted=True))


def _renamed(columns: list[tuple[str, exp.Expression]]) -> set[str]:
    """The (lower-cased) output names that could shadow a column in ORDER BY, GROUP BY and the
    like (an alias that is the name of the very column it selects, ``operation``, is harmless)."""
    return {name.lower() for name, e in columns
            if not (isinstance(e, exp.Column) and e.name.lower() == name.lower())}


def _name(item: ast.Projection) -> str:
    """A column's name: its alias, a field's dotted name (without backticks), or the text."""
    if item.alias is not None:
        return item.alias
    if isinstance(item.expr, ast.FieldRef):
        return item.expr.name
    return item.expr.text or item.name


def _plain(c: _Compiler, node: ast.Node, v: Value) -> None:
    """Periods, regexes and ``*`` are only valid as function arguments or after like/=~."""
    if v.type in (PERIOD, REGEX, STAR):
        what = {PERIOD: "a time period", REGEX: "a regex", STAR: "`*`"}[v.type]
        c._fail(node, f"{what} cannot be used here")


# ---------------------------------------------------------------------- patterns

_GLOB_SPECIAL = set("\\.+*?()|[]{}^$")


def glob_to_regex(glob: str) -> tuple[str, int]:
    """A ``parse`` glob as RE2 and its number of ``*`` captures.

    Each ``*`` captures lazily (``(.*?)``) except a trailing one, which takes the rest of the
    text; the pattern may match anywhere in the field (CloudWatch's behaviour), and ``.`` also
    matches newlines.
    """
    parts = glob.split("*")
    escaped = ["".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in p) for p in parts]
    count = len(parts) - 1
    out = escaped[0]
    for i, part in enumerate(escaped[1:], start=1):
        out += ("(.*)" if i == count and part == "" else "(.*?)") + part
    return "(?s)" + out, count


_UNSUPPORTED = [
    (re.compile(r"\(\?<[=!]"), "lookbehind `(?<=` / `(?<!`"),
    (re.compile(r"\(\?[=!]"), "lookahead `(?=` / `(?!`"),
    (re.compile(r"\(\?>"), "atomic groups `(?>`"),
    (re.compile(r"\\[1-9]"), "backreferences such as `\\1`"),
]


def translate_regex(pattern: str, fail) -> tuple[str, dict[str, int]]:
    """CloudWatch (Hyperscan-style) regex to RE2: ``(?<name>`` becomes ``(?P<name>``.

    Returns the pattern and each named group's capture index. ``fail(message)`` is called for
    syntax RE2 cannot run (lookaround, backreferences) and for malformed patterns.
    """
    out, groups, index, i, in_class = [], {}, 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":  # `[]...]`: a leading ] is a literal
                out.append("[]")
                i += 2
                continue
        elif ch == "(":
            named = re.match(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>", pattern[i:])
            if named:
                index += 1
                groups[named.group(1)] = index
                out.append(f"(?P<{named.group(1)}>")
                i += named.end()
                continue
            if not pattern.startswith("(?", i):
                index += 1
        out.append(ch)
        i += 1
    translated = "".join(out)
    for check, what in _UNSUPPORTED:
        if check.search(_strip_escapes(translated)):
            fail(f"regex {what} is not supported (dashcam runs RE2)")
    try:
        re.compile(_for_python(translated))
    except re.error as err:
        fail(f"invalid regex: {err}")
    return translated, groups


def _for_python(pattern: str) -> str:
    r"""An RE2 pattern made acceptable to Python's ``re`` for validation only.

    RE2 allows flag groups such as ``(?i)`` anywhere (Python only at the start), the flag ``U``
    and ``\z``; dropping them keeps the syntax check meaningful.
    """
    pattern = re.sub(r"(?<!\\)\(\?[imsU-]+\)", "", pattern)
    pattern = re.sub(r"(?<!\\)\(\?([imsU-]*)U([imsU-]*):", r"(?\1\2:", pattern)
    return pattern.replace(r"\z", r"\Z").replace("(?-:", "(?:")


def _strip_escapes(pattern: str) -> str:
    r"""The pattern with escaped characters other than digits blanked, so `\(?=` is not lookahead."""
    return re.sub(r"\\([^1-9])", "__", pattern)
