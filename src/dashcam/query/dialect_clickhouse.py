"""The ClickHouse dialect: the compiler's primitives spelled for ClickHouse, same results as DuckDB.

DuckDB is the reference (:class:`dashcam.query.dialects.Dialect`); this subclass overrides only
what ClickHouse spells or behaves differently, so every query gives the same rows on both
engines (the golden and end-to-end suites run on both). The differences that matter:

* JSON: ``JSONExtractRaw`` (a value) and ``JSONExtract(..., 'Nullable(String)')`` (its text, as
  DuckDB's ``json_extract_string`` gives it, in one parse) with key and index arguments instead
  of a JSON Pointer. A numeric path segment is an array index (ClickHouse counts from 1) when
  the value there is an array and an object key otherwise, decided per row (``JSONType``).
* Regexes: both engines run RE2, but ClickHouse lets ``.`` match a line break by default;
  every pattern gets ``(?-s)`` first, which RE2's own default is.
* Strings: ``lengthUTF8``/``substringUTF8``/``upperUTF8`` count and change code points as
  DuckDB does (the plain ClickHouse functions work on bytes); ``concat`` skips NULLs as
  DuckDB's does.
* Numbers: ``round`` rounds half away from zero as DuckDB does (ClickHouse rounds half to even
  on floats); text that is not a number reads as NULL (``toFloat64OrNull``); a whole float
  prints as ``2.0``, as DuckDB prints it.
* Time: events are ``DateTime64(3, 'UTC')``; bucketing works on epoch microseconds exactly as
  on DuckDB; results are formatted by ``formatDateTime`` cut to milliseconds.
* Aggregates: ``pct`` is nearest-rank exactly as DuckDB's ``quantile_disc`` computes it (the
  element at ``ceil(p * n)`` of the sorted values: none of ClickHouse's ``quantileExact*``
  variants picks the same element when ``p * n`` is whole); ``stddev`` is NULL for fewer
  than two values, as on DuckDB.
* NULLs: the store runs queries with ``join_use_nulls`` and ``aggregate_functions_null_for_empty``
  so that missing stays NULL (see :mod:`dashcam.store.clickhouse`).
"""

from __future__ import annotations

from typing import ClassVar

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.dialects.dialect import Dialect as SqlglotDialect

from dashcam.query.dialects import Dialect, IsNotNull, case, fn, lit

_NO_DOTALL = "(?-s)"


def _pointer_segments(pointer: str) -> list[str]:
    """RFC 6901 pointer back to its segments (``""`` is the whole document)."""
    if not pointer:
        return []
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer.split("/")[1:]]


def _num_text(gen: ClickHouse.Generator, e: exp.Cast) -> str:
    """``CAST(x AS VARCHAR)`` as DuckDB prints numbers: a whole float keeps ``.0`` (``2.0``)."""
    value = gen.sql(e, "this")
    text = f"toString({value})"
    return (f"if(toTypeName({value}) LIKE '%Float%' AND isFinite(toFloat64OrNull({text})) "
            f"AND position({text}, '.') = 0 AND position({text}, 'e') = 0 AND position({text}, 'n') = 0, "
            f"concat({text}, '.0'), {text})")


def _cast(gen: ClickHouse.Generator, e: exp.Cast) -> str:
    to = e.args["to"]
    if to.is_type(*exp.DataType.TEXT_TYPES):
        return _num_text(gen, e)
    if to.is_type(exp.DataType.Type.BIGINT):
        return f"toInt64({gen.sql(e, 'this')})"
    return ClickHouse.Generator.cast_sql(gen, e)


def _try_cast(gen: ClickHouse.Generator, e: exp.TryCast) -> str:
    to, value = e.args["to"], gen.sql(e, "this")
    # DuckDB's TRY_CAST ignores surrounding blanks; ClickHouse's parsers do not.
    if to.is_type(exp.DataType.Type.DOUBLE):
        return f"toFloat64OrNull(trimBoth(toString({value})))"
    if to.is_type(exp.DataType.Type.BIGINT):
        return f"toInt64OrNull(trimBoth(toString({value})))"
    raise ValueError(f"no ClickHouse TRY_CAST to {to.sql()}")


def _anonymous(gen: ClickHouse.Generator, e: exp.Anonymous) -> str:
    """DuckDB-named calls the common function table builds, renamed or re-shaped for ClickHouse."""
    name = e.name.lower()
    args = [gen.sql(a) for a in e.expressions]
    renamed = _RENAMES.get(name)
    if renamed:
        return f"{renamed}({', '.join(args)})"
    if name == "concat":
        # DuckDB's concat skips NULL arguments; ClickHouse's returns NULL.
        return "concat(" + ", ".join(f"ifNull({a}, '')" for a in args) + ")"
    if name in _TRIMS and len(args) == 2:
        return f"{_TRIMS[name]}({args[0]}, {args[1]})"
    if name == "regexp_extract":
        # DuckDB's default group is the whole match (0), ClickHouse's the first group.
        group = args[2] if len(args) > 2 else "0"
        return f"regexpExtract({args[0]}, {args[1]}, {group})"
    if name == "regexp_replace":
        global_ = len(args) > 3 and "g" in args[3]
        return f"{'replaceRegexpAll' if global_ else 'replaceRegexpOne'}({args[0]}, {args[1]}, {args[2]})"
    if name == "round":
        return _round(args[0], args[1] if len(args) > 1 else None)
    return ClickHouse.Generator.anonymous_sql(gen, e)


def _round(x: str, digits: str | None) -> str:
    """DuckDB's round: ``std::round(x * 10^d) / 10^d`` (half away from zero), or
    ``std::round(x / 10^-d) * 10^-d`` for negative ``d``."""
    def half_away(v: str) -> str:
        return f"(sign({v}) * if(abs({v}) - floor(abs({v})) >= 0.5, ceil(abs({v})), floor(abs({v}))))"
    if digits is None:
        return f"if(toTypeName({x}) LIKE '%Int%', {x}, {half_away(x)})"
    up = f"({x} * pow(10, {digits}))"
    down = f"({x} / pow(10, -{digits}))"
    return (f"if(toTypeName({x}) LIKE '%Int%' AND {digits} >= 0, {x}, "
            f"if({digits} >= 0, {half_away(up)} / pow(10, {digits}), {half_away(down)} * pow(10, -{digits})))")


_RENAMES = {
    "upper": "upperUTF8", "lower": "lowerUTF8", "replace": "replaceAll", "starts_with": "startsWith",
    "ln": "log", "power": "pow",
}
_TRIMS = {"trim": "trimBoth", "ltrim": "trimLeft", "rtrim": "trimRight"}


class _ClickHouseSQL(ClickHouse):
    """ClickHouse as sqlglot writes it, with dashcam's nodes and DuckDB-named calls translated."""

    class Generator(ClickHouse.Generator):
        TRANSFORMS = {
            **ClickHouse.Generator.TRANSFORMS,
            IsNotNull: lambda gen, e: f"{gen.sql(e, 'this')} IS NOT NULL",
            exp.Anonymous: _anonymous,
            exp.Cast: _cast,
            exp.TryCast: _try_cast,
            exp.IntDiv: lambda gen, e: f"intDiv({gen.sql(e, 'this')}, {gen.sql(e, 'expression')})",
            exp.Pow: lambda gen, e: f"pow({gen.sql(e, 'this')}, {gen.sql(e, 'expression')})",
        }


class ClickHouseDialect(Dialect):
    """ClickHouse (server, cluster or chDB); see the module docstring for what differs."""

    name: ClassVar[str] = "clickhouse"
    sqlglot_dialect: ClassVar[type[SqlglotDialect]] = _ClickHouseSQL
    top_n_by_row_id: ClassVar[bool] = False  # no stable row id; its top-N keeps only the rows it needs

    # ------------------------------------------------------------------ JSON

    def _at(self, function: str, doc: exp.Expression, pointer: str, *extra: exp.Expression) -> exp.Expression:
        """``function(doc, key-or-index, ..., *extra)`` for a pointer; a numeric segment indexes an
        array (1-based) where the value is one, and names an object key elsewhere."""
        def build(prefix: list[exp.Expression], rest: list[str]) -> exp.Expression:
            if not rest:
                return fn(function, doc, *prefix, *extra)
            segment, tail = rest[0], rest[1:]
            as_key = build(prefix + [lit(segment)], tail)
            if not segment.isdigit():
                return as_key
            as_index = build(prefix + [lit(int(segment) + 1)], tail)
            is_array = exp.EQ(this=fn("JSONType", doc, *prefix), expression=lit("Array"))
            return fn("if", is_array, as_index, as_key)
        return build([], _pointer_segments(pointer))

    def json_get(self, doc: exp.Expression, pointer: str, *, safe: bool) -> exp.Expression:
        # Malformed JSON reads as missing in ClickHouse's JSON functions: always "safe".
        return exp.Nullif(this=self._at("JSONExtractRaw", doc, pointer), expression=lit(""))

    def json_get_text(self, doc: exp.Expression, pointer: str, *, safe: bool) -> exp.Expression:
        # Extracting as Nullable(String) is DuckDB's json_extract_string in one parse: strings
        # unquoted, other values as compact JSON text, JSON null and missing as NULL.
        return self._at("JSONExtract", doc, pointer, lit("Nullable(String)"))

    def json_text(self, value: exp.Expression) -> exp.Expression:
        # A value is JSON text on its own: a string is read out of a one-key wrapper document
        # (ClickHouse's JSON functions do not read a scalar at the document root).
        wrapped = fn("concat", lit('{"v":'), value, lit("}"))
        return case(
            (fn("startsWith", value, lit('"')), fn("JSONExtract", wrapped, lit("v"), lit("Nullable(String)"))),
            default=exp.Nullif(this=value, expression=lit("null")),
        )

    def json_parse(self, text: exp.Expression) -> exp.Expression:
        return case((fn("isValidJSON", text), fn("JSONExtractRaw", text)))

    def json_stringify(self, value: exp.Expression, type_: str) -> exp.Expression:
        if type_ == "json":
            return fn("JSONExtractRaw", value)  # re-serialized compactly, as DuckDB's json() does
        if type_ == "num":
            whole = exp.EQ(this=value, expression=fn("trunc", value))
            text = fn("if", whole, fn("toJSONString", fn("toInt64", value)), fn("toJSONString", value))
        else:
            text = fn("toJSONString", self.timestamp_text(value) if type_ == "ts" else value)
        return case((IsNotNull(this=value), text))

    def json_elements(self, value: exp.Expression) -> exp.Expression:
        # Arrays cannot be NULL in ClickHouse: a missing value gives the empty list (no rows).
        # Functions of a Nullable argument return Nullable results, and an array cannot be one:
        # the list is built from assumeNotNull(value), and NULL is handled by the last branch.
        text = fn("assumeNotNull", value)
        is_array = fn("ifNull", exp.EQ(this=fn("JSONType", value), expression=lit("Array")), lit(False))
        return fn(
            "if", is_array, fn("JSONExtractArrayRaw", text),
            fn("if", IsNotNull(this=value), exp.Array(expressions=[value]), exp.Array(expressions=[])),
        )

    def _numbered(self, values: exp.Expression) -> exp.Expression:
        # One arrayJoin over (element, position) pairs: ClickHouse computes identical arrayJoin
        # expressions once, so element and position stay in step (two arrayJoins would multiply).
        return fn("arrayJoin", fn("arrayZip", values, fn("arrayEnumerate", values)))

    def unnest(self, values: exp.Expression) -> exp.Expression:
        return fn("tupleElement", self._numbered(values), lit(1))

    def unnest_index(self, values: exp.Expression) -> exp.Expression:
        return fn("tupleElement", self._numbered(values), lit(2))

    # ------------------------------------------------------------------ time

    def epoch_us(self, ts: exp.Expression) -> exp.Expression:
        return fn("toUnixTimestamp64Micro", ts)

    def from_epoch_us(self, us: exp.Expression) -> exp.Expression:
        return fn("fromUnixTimestamp64Micro", us, lit("UTC"))

    def epoch_ms(self, ts: exp.Expression) -> exp.Expression:
        return fn("toUnixTimestamp64Milli", ts)

    def from_epoch_ms(self, ms: exp.Expression) -> exp.Expression:
        # DuckDB's CAST(DOUBLE AS BIGINT) rounds to the nearest integer.
        return fn("fromUnixTimestamp64Milli", fn("toInt64", fn("round", ms)), lit("UTC"))

    def timestamp_literal(self, epoch_ms: int) -> exp.Expression:
        text = super().timestamp_literal(epoch_ms).this.this  # 'YYYY-MM-DD HH:MM:SS.ffffff'
        return fn("toDateTime64", lit(text), lit(3), lit("UTC"))

    def text_to_timestamp(self, text: exp.Expression) -> exp.Expression:
        # What DuckDB's TRY_CAST(... AS TIMESTAMP) accepts: an ISO date, optionally a time; a zone
        # suffix is accepted and, as DuckDB does, ignored.
        iso = r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|UTC|[+-]\d{2}(:?\d{2})?)?$"
        local = fn("replaceRegexpOne", text, lit(r"\s*(Z|UTC|[+-]\d{2}(:?\d{2})?)$"), lit(""))
        return case((fn("match", text, lit(iso)), fn("parseDateTime64BestEffortOrNull", local, lit(6), lit("UTC"))))

    def timestamp_text(self, ts: exp.Expression) -> exp.Expression:
        return self.format_timestamp(ts)

    def year(self, ts: exp.Expression) -> exp.Expression:
        return fn("toYear", ts)

    def month(self, ts: exp.Expression) -> exp.Expression:
        return fn("toMonth", ts)

    def make_date(self, year: exp.Expression, month: exp.Expression) -> exp.Expression:
        return fn("makeDateTime64", year, month, lit(1), lit(0), lit(0), lit(0), lit(0), lit(3), lit("UTC"))

    def month_start(self, ts: exp.Expression) -> exp.Expression:
        return fn("toDateTime64", fn("toStartOfMonth", ts), lit(3), lit("UTC"))

    def add_months(self, ts: exp.Expression, months: int) -> exp.Expression:
        return fn("addMonths", ts, lit(months))

    # ------------------------------------------------------------------ strings and regexes

    def regex_match(self, text: exp.Expression, pattern: str) -> exp.Expression:
        return fn("match", text, lit(_NO_DOTALL + pattern))

    def regex_full_match(self, text: exp.Expression, pattern: str) -> exp.Expression:
        return fn("match", text, lit(f"{_NO_DOTALL}^(?:{pattern})$"))

    def regex_group(self, text: exp.Expression, pattern: str, group: int) -> exp.Expression:
        return fn("regexpExtract", text, lit(_NO_DOTALL + pattern), lit(group))

    def regex_replace_all(self, text: exp.Expression, pattern: str, replacement: str) -> exp.Expression:
        return fn("replaceRegexpAll", text, lit(_NO_DOTALL + pattern), lit(replacement))

    def regex_count(self, text: exp.Expression, pattern: str) -> exp.Expression:
        return fn("countMatches", text, lit(_NO_DOTALL + pattern))

    def contains(self, text: exp.Expression, part: exp.Expression) -> exp.Expression:
        return exp.GT(this=fn("position", text, part), expression=lit(0))

    def char_length(self, text: exp.Expression) -> exp.Expression:
        return fn("lengthUTF8", text)

    def substring(self, text: exp.Expression, start1: exp.Expression, length: exp.Expression | None) -> exp.Expression:
        # DuckDB keeps the positions [start, start + length) that exist; a start before 1 eats
        # into the length (SQL semantics), which ClickHouse's substringUTF8 does not do.
        if length is None:
            return fn("substringUTF8", text, fn("greatest", start1, lit(1)))
        end = exp.Add(this=start1, expression=length)
        first = fn("greatest", start1, lit(1))
        return fn("substringUTF8", text, first, fn("greatest", exp.Sub(this=end, expression=first), lit(0)))

    def hex_format(self, fmt: str, *args: exp.Expression) -> exp.Expression:
        return fn("printf", lit(fmt), *args)

    def split_part(self, text: exp.Expression, sep: str, index: int) -> exp.Expression:
        return case((IsNotNull(this=text),
                     fn("arrayElement", fn("splitByString", lit(sep), fn("assumeNotNull", text)), lit(index))))

    def nul_char(self) -> exp.Expression:
        return fn("char", lit(0))

    # ------------------------------------------------------------------ aggregates

    def quantile(self, value: exp.Expression, q: float) -> exp.Expression:
        count = exp.Count(this=value)
        rank = fn("greatest", fn("toUInt64", fn("ceil", exp.Mul(this=lit(float(q)), expression=count))), lit(1))
        pick = fn("arrayElement", fn("arraySort", fn("groupArray", value)), rank)
        return case((exp.GT(this=count, expression=lit(0)), pick))

    def arg_min(self, value: exp.Expression, by: exp.Expression) -> exp.Expression:
        return fn("argMin", value, by)

    def arg_max(self, value: exp.Expression, by: exp.Expression) -> exp.Expression:
        return fn("argMax", value, by)

    def stddev_samp(self, value: exp.Expression) -> exp.Expression:
        return case((exp.GT(this=exp.Count(this=value), expression=lit(1)), fn("stddevSampStable", value)))

    # ------------------------------------------------------------------ records

    def format_timestamp(self, ts: exp.Expression) -> exp.Expression:
        # %f prints microseconds; the first 23 characters end at the milliseconds (truncated,
        # as DuckDB's %g).
        return fn("left", fn("formatDateTime", ts, lit("%Y-%m-%d %H:%i:%S.%f"), lit("UTC")), lit(23))

    def pointer(self, log_group: exp.Expression, event_id: exp.Expression) -> exp.Expression:
        return fn("concat", log_group, lit(":"), fn("toString", event_id))
