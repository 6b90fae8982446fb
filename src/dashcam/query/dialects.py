"""What differs between SQL engines: the primitives the query compiler builds on.

The compiler and the function table (:mod:`dashcam.query.functions`) never spell an
engine-specific function themselves; they ask the dialect object for "the JSON value at this
pointer", "this timestamp as epoch microseconds", "does this regex match", and so on. Each engine
is one subclass of :class:`Dialect` that overrides only the primitives (and, through
``function_overrides``, only the function-table rows) that differ. DuckDB is the reference
dialect; ClickHouse will be a subclass.

Every primitive returns a :mod:`sqlglot` expression tree; user text only ever enters a tree as a
string literal (``exp.Literal.string``) or a quoted identifier, never as SQL text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect as SqlglotDialect
from sqlglot.dialects.duckdb import DuckDB

from dashcam.errors import QueryError


def fn(name: str, *args: exp.Expression) -> exp.Expression:
    """A call of the SQL function ``name`` (rendered as written, upper-cased by sqlglot)."""
    return exp.Anonymous(this=name, expressions=list(args))


def lit(value: Any) -> exp.Expression:
    """A SQL literal for a Python str/int/float/bool/None: strings are always escaped by sqlglot."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    # A decimal literal such as 0.00000006 would be a DECIMAL in DuckDB; cost formulas want DOUBLE.
    return exp.Cast(this=exp.Literal.number(repr(float(value))), to=exp.DataType.build("DOUBLE"))


def col(name: str) -> exp.Column:
    """A reference to a column; always quoted, so no name can be read as SQL."""
    return exp.Column(this=exp.to_identifier(name, quoted=True))


def paren(e: exp.Expression) -> exp.Expression:
    """``e`` wrapped in parentheses when it is an operator expression.

    sqlglot renders trees as written and does not add parentheses for precedence, so every
    operand of an operator built by the compiler goes through here.
    """
    if isinstance(e, (exp.Binary, exp.Not, exp.Neg, exp.In, exp.Between)):
        return exp.Paren(this=e)
    return e


def binop(node: type[exp.Binary], left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """``left <op> right`` with both operands parenthesised as needed (see :func:`paren`)."""
    return node(this=paren(left), expression=paren(right))


def cast(e: exp.Expression, to: str) -> exp.Expression:
    return exp.Cast(this=e, to=exp.DataType.build(to))


def try_cast(e: exp.Expression, to: str) -> exp.Expression:
    return exp.TryCast(this=e, to=exp.DataType.build(to))


def case(*whens: tuple[exp.Expression, exp.Expression], default: exp.Expression | None = None) -> exp.Expression:
    """``CASE WHEN c1 THEN v1 ... [ELSE default] END``."""
    return exp.Case(ifs=[exp.If(this=c, true=v) for c, v in whens], default=default)


def and_(*conds: exp.Expression) -> exp.Expression:
    out = paren(conds[0])
    for c in conds[1:]:
        out = exp.And(this=out, expression=paren(c))
    return out


def or_(*conds: exp.Expression) -> exp.Expression:
    out = paren(conds[0])
    for c in conds[1:]:
        out = exp.Or(this=out, expression=paren(c))
    return out


def is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=paren(e), expression=exp.Null())


class IsNotNull(exp.Expression):
    """``x IS NOT NULL``. sqlglot writes ``NOT x IS NULL`` instead, which DuckDB does not push down
    into its scans: 1.6x slower on the slowest-requests question over 10M events."""

    arg_types = {"this": True}


def not_null(e: exp.Expression) -> exp.Expression:
    return IsNotNull(this=paren(e))


class _DuckDBSQL(DuckDB):
    """DuckDB as sqlglot writes it, plus dashcam's own expression nodes."""

    class Generator(DuckDB.Generator):
        TRANSFORMS = {**DuckDB.Generator.TRANSFORMS, IsNotNull: lambda gen, e: f"{gen.sql(e, 'this')} IS NOT NULL"}


def json_pointer(segments: tuple[str, ...] | list[str]) -> str:
    """RFC 6901 pointer for dot-path segments: numeric segments index arrays or name object keys."""
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)


class Dialect:
    """DuckDB, the reference dialect; subclasses override what their engine spells differently."""

    name: ClassVar[str] = "duckdb"
    sqlglot_dialect: ClassVar[type[SqlglotDialect]] = _DuckDBSQL
    # Function-table rows (by lower-case name) that replace the common rows for this engine.
    function_overrides: ClassVar[dict[str, Any]] = {}
    # A top-N over events whose result carries their raw messages picks its rows by row id first
    # (see compiler._Compiler._rows_first): DuckDB sorts every matching event, messages and all,
    # when the LIMIT is more than a small share of them.
    top_n_by_row_id: ClassVar[bool] = True

    # ------------------------------------------------------------------ JSON

    def json_get(self, doc: exp.Expression, pointer: str, *, safe: bool) -> exp.Expression:
        """The JSON value at ``pointer`` in ``doc`` (SQL NULL when absent).

        ``safe`` documents may not be JSON at all (``@message`` of an event sent through the
        CloudWatch Logs API can be any text): a malformed one reads as missing rather than
        failing the query. TRY costs about 3% over plain extraction.
        """
        e = fn("json_extract", doc, lit(pointer or "$"))
        return fn("TRY", e) if safe else e

    def json_get_text(self, doc: exp.Expression, pointer: str, *, safe: bool) -> exp.Expression:
        """The value at ``pointer`` as text: strings unquoted, JSON null as SQL NULL, others as JSON."""
        e = fn("json_extract_string", doc, lit(pointer or "$"))
        return fn("TRY", e) if safe else e

    def json_text(self, value: exp.Expression) -> exp.Expression:
        """A JSON value (not a document path) as text, with the same rules as :meth:`json_get_text`."""
        return fn("json_extract_string", value, lit("$"))

    def json_null_to_sql(self, value: exp.Expression) -> exp.Expression:
        """JSON ``null`` becomes SQL NULL, so that ``null`` and a missing key group and coalesce alike."""
        return exp.Nullif(this=value, expression=lit("null"))

    def json_parse(self, text: exp.Expression) -> exp.Expression:
        """Text to a JSON value; text that is not JSON gives NULL."""
        return try_cast(text, "JSON")

    def json_stringify(self, value: exp.Expression, type_: str) -> exp.Expression:
        """Compact JSON text of a value of compiler type ``type_`` (``json()`` drops spaces)."""
        if type_ == "json":
            return cast(fn("json", value), "VARCHAR")
        if type_ == "num":
            # Whole numbers print without ".0", as everywhere else in results.
            whole = exp.EQ(this=value, expression=fn("trunc", value))
            return cast(case((whole, fn("to_json", try_cast(value, "BIGINT"))), default=fn("to_json", value)), "VARCHAR")
        if type_ == "ts":
            value = self.timestamp_text(value)
        return cast(fn("to_json", value), "VARCHAR")

    def json_elements(self, value: exp.Expression) -> exp.Expression:
        """A list of JSON values: the elements of an array, or the value itself as one element.

        NULL (missing) gives NULL, which unnests to no rows.
        """
        return case(
            (exp.EQ(this=fn("json_type", value), expression=lit("ARRAY")), fn("json_extract", value, lit("$[*]"))),
            (not_null(value), exp.Array(expressions=[value])),
        )

    def unnest(self, values: exp.Expression) -> exp.Expression:
        return fn("unnest", values)

    def unnest_index(self, values: exp.Expression) -> exp.Expression:
        """1-based positions, produced in step with :meth:`unnest` of the same list."""
        return fn("generate_subscripts", values, lit(1))

    # ------------------------------------------------------------------ time

    def epoch_us(self, ts: exp.Expression) -> exp.Expression:
        # DuckDB keeps TIMESTAMP as epoch microseconds: this is a free reinterpretation, where
        # epoch_ms() divides every row (measured 2x slower in bin()).
        return fn("epoch_us", ts)

    def from_epoch_us(self, us: exp.Expression) -> exp.Expression:
        return fn("make_timestamp", us)

    def epoch_ms(self, ts: exp.Expression) -> exp.Expression:
        return fn("epoch_ms", ts)

    def from_epoch_ms(self, ms: exp.Expression) -> exp.Expression:
        return fn("epoch_ms", cast(ms, "BIGINT"))

    def timestamp_literal(self, epoch_ms: int) -> exp.Expression:
        """A constant TIMESTAMP (UTC) for epoch milliseconds, so range predicates prune row groups."""
        try:
            moment = datetime(1970, 1, 1) + timedelta(milliseconds=epoch_ms)
        except OverflowError:
            raise QueryError(f"the time {epoch_ms} (epoch milliseconds) is outside the years 1 to 9999") from None
        return cast(lit(moment.isoformat(sep=" ", timespec="microseconds")), "TIMESTAMP")

    def text_to_timestamp(self, text: exp.Expression) -> exp.Expression:
        return try_cast(text, "TIMESTAMP")

    def timestamp_text(self, ts: exp.Expression) -> exp.Expression:
        return fn("strftime", ts, lit("%Y-%m-%d %H:%M:%S.%g"))

    def year(self, ts: exp.Expression) -> exp.Expression:
        return fn("year", ts)

    def month(self, ts: exp.Expression) -> exp.Expression:
        return fn("month", ts)

    def make_date(self, year: exp.Expression, month: exp.Expression) -> exp.Expression:
        """Midnight UTC on the first day of ``month`` of ``year``, as a TIMESTAMP."""
        return fn("make_timestamp", year, month, lit(1), lit(0), lit(0), lit(0))

    def month_start(self, ts: exp.Expression) -> exp.Expression:
        return fn("date_trunc", lit("month"), ts)

    def add_months(self, ts: exp.Expression, months: int) -> exp.Expression:
        return binop(exp.Add, ts, fn("to_months", lit(months)))

    # ------------------------------------------------------------------ strings and regexes

    def regex_match(self, text: exp.Expression, pattern: str) -> exp.Expression:
        """Whether RE2 ``pattern`` matches somewhere in ``text``."""
        return fn("regexp_matches", text, lit(pattern))

    def regex_full_match(self, text: exp.Expression, pattern: str) -> exp.Expression:
        return fn("regexp_full_match", text, lit(pattern))

    def regex_group(self, text: exp.Expression, pattern: str, group: int) -> exp.Expression:
        return fn("regexp_extract", text, lit(pattern), lit(group))

    def regex_replace_all(self, text: exp.Expression, pattern: str, replacement: str) -> exp.Expression:
        return fn("regexp_replace", text, lit(pattern), lit(replacement), lit("g"))

    def regex_count(self, text: exp.Expression, pattern: str) -> exp.Expression:
        return fn("len", fn("regexp_extract_all", text, lit(pattern)))

    def contains(self, text: exp.Expression, part: exp.Expression) -> exp.Expression:
        return fn("contains", text, part)

    def char_length(self, text: exp.Expression) -> exp.Expression:
        # length() counts code points as CloudWatch's strlen does; DuckDB's strlen() counts bytes.
        return fn("length", text)

    def substring(self, text: exp.Expression, start1: exp.Expression, length: exp.Expression | None) -> exp.Expression:
        """Substring from 1-based ``start1``."""
        return fn("substring", text, start1) if length is None else fn("substring", text, start1, length)

    def hex_format(self, fmt: str, *args: exp.Expression) -> exp.Expression:
        return fn("printf", lit(fmt), *args)

    def split_part(self, text: exp.Expression, sep: str, index: int) -> exp.Expression:
        return fn("split_part", text, lit(sep), lit(index))

    # ------------------------------------------------------------------ aggregates

    def quantile(self, value: exp.Expression, q: float) -> exp.Expression:
        return fn("quantile_disc", value, lit(float(q)))

    def arg_min(self, value: exp.Expression, by: exp.Expression) -> exp.Expression:
        return fn("arg_min", value, by)

    def arg_max(self, value: exp.Expression, by: exp.Expression) -> exp.Expression:
        return fn("arg_max", value, by)

    def stddev_samp(self, value: exp.Expression) -> exp.Expression:
        return exp.StddevSamp(this=value)

    # ------------------------------------------------------------------ records

    def format_timestamp(self, ts: exp.Expression) -> exp.Expression:
        """A result timestamp as ``YYYY-MM-DD HH:MM:SS.mmm`` text, formatted by the engine (much
        cheaper than building Python datetimes and formatting them one by one)."""
        return fn("strftime", ts, lit("%Y-%m-%d %H:%M:%S.%g"))

    def pointer(self, log_group: exp.Expression, event_id: exp.Expression) -> exp.Expression:
        """``@ptr``: ``<log group>:<event id>`` (see :func:`dashcam.query.compiler.parse_ptr`)."""
        return fn("concat", log_group, lit(":"), cast(event_id, "VARCHAR"))

    def sql(self, tree: exp.Expression) -> str:
        """Render a tree for this engine."""
        return self.spell_nul(self.share_quantiles(tree)).sql(dialect=self.sqlglot_dialect)

    def nul_char(self) -> exp.Expression:
        """The one-character string U+0000."""
        return fn("chr", lit(0))

    def spell_nul(self, tree: exp.Expression) -> exp.Expression:
        """``tree`` with NUL characters in string literals spelled as ``concat(..., chr(0), ...)``:
        some engine versions' parsers (DuckDB 1.5) end a quoted string at a NUL byte."""
        if not any(node.is_string and "\x00" in node.this for node in tree.find_all(exp.Literal)):
            return tree
        tree = tree.copy()  # the caller's tree stays as it was built
        for node in [n for n in tree.find_all(exp.Literal) if n.is_string and "\x00" in n.this]:
            pieces: list[exp.Expression] = []
            for i, part in enumerate(node.this.split("\x00")):
                if i:
                    pieces.append(self.nul_char())
                if part:
                    pieces.append(exp.Literal.string(part))
            node.replace(fn("concat", *pieces) if len(pieces) > 1 else pieces[0])
        return tree

    def share_quantiles(self, tree: exp.Expression) -> exp.Expression:
        """``tree`` with the percentiles of one value in one SELECT computed by a single aggregate.

        ``pct(latencyMs, 50), pct(latencyMs, 90), pct(latencyMs, 99)`` would make DuckDB sort the
        values three times; ``quantile_disc(x, [0.5, 0.9, 0.99])[i]`` sorts them once, and DuckDB
        evaluates identical aggregates once (about 3x faster for the overview's headline numbers).
        """
        if not any(len(_fractions(nodes)) > 1 for nodes in _quantiles_by_value(tree)):
            return tree
        tree = tree.copy()  # the caller's tree stays as it was built
        for nodes in _quantiles_by_value(tree):
            fractions = _fractions(nodes)
            if len(fractions) < 2:
                continue
            together = fn("quantile_disc", nodes[0].expressions[0], exp.Array(expressions=[lit(f) for f in fractions]))
            for node in nodes:
                # sqlglot counts list positions from 0 and adds DuckDB's offset of 1 itself.
                position = fractions.index(_fraction(node))
                node.replace(exp.Bracket(this=together.copy(), expressions=[lit(position)]))
        return tree


def _quantiles_by_value(tree: exp.Expression) -> list[list[exp.Anonymous]]:
    """The ``quantile_disc(value, literal)`` calls of ``tree``, grouped by SELECT and value
    (calls under a FILTER clause are left alone: their rows differ)."""
    groups: dict[tuple[int, str], list[exp.Anonymous]] = {}
    for node in tree.find_all(exp.Anonymous):
        if (node.name.lower() == "quantile_disc" and len(node.expressions) == 2
                and _fraction(node) is not None and not isinstance(node.parent, exp.Filter)):
            scope = node.find_ancestor(exp.Select)
            groups.setdefault((id(scope), node.expressions[0].sql()), []).append(node)
    return list(groups.values())


def _fraction(node: exp.Anonymous) -> float | None:
    """The constant fraction of a ``quantile_disc`` call (a literal, or a literal cast), else None."""
    q = node.expressions[1]
    q = q.this if isinstance(q, exp.Cast) else q
    return float(q.this) if isinstance(q, exp.Literal) and q.is_number else None


def _fractions(nodes: list[exp.Anonymous]) -> list[float]:
    return sorted({_fraction(node) for node in nodes})


DIALECTS: dict[str, type[Dialect]] = {"duckdb": Dialect}


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; QueryError when dashcam cannot compile for that engine yet."""
    try:
        return DIALECTS[name]()
    except KeyError:
        raise QueryError(f"no SQL dialect {name!r}; known: {', '.join(sorted(DIALECTS))}") from None


def _register_clickhouse() -> None:
    # Imported here, after Dialect exists: the ClickHouse dialect subclasses it.
    from dashcam.query.dialect_clickhouse import ClickHouseDialect

    DIALECTS["clickhouse"] = ClickHouseDialect


_register_clickhouse()
