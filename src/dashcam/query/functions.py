"""Logs Insights values, their dynamic typing, and the function/aggregation table.

Logs Insights is dynamically typed: a JSON field compared with a number behaves as a number, with
a string as a string; arithmetic is numeric; boolean expressions are 1/0 wherever a value is
needed. The compiler models that with :class:`Value` — a sqlglot expression plus the static type
it is known to have — and coerces at the point of use (``to_num``, ``to_str``, ...).

Each function and aggregation is one :class:`FunctionRow` in :data:`FUNCTIONS`: name, arity,
result type and a builder that turns argument values into a result value through the dialect's
primitives. A dialect replaces rows through ``Dialect.function_overrides``.

Defined semantics (where CloudWatch's documentation leaves room):

* ``pct(x, p)`` is the nearest-rank percentile (``quantile_disc``): the smallest value with at
  least p% of the values at or below it — always a value that occurred.
* ``stddev`` is the sample standard deviation; ``count_distinct`` is exact.
* ``earliest(x)``/``latest(x)``: ``x`` from the event with the smallest/largest ``@timestamp``
  among events where ``x`` is present.
* ``sortsFirst(x)``/``sortsLast(x)``: the value that sorts first/last — numbers numerically,
  strings and timestamps in their natural order, JSON values by their text (code-point order).
* ``bin``/``datefloor``/``dateceil``: fixed-length periods (ms .. weeks) are aligned to the Unix
  epoch, so days start at UTC midnight and weeks start on Thursdays (1970-01-01 was a Thursday);
  months, quarters and years are calendar-aligned (multiples counted from January 1970).
* JSON ``null`` counts as missing. Division or modulo by zero, ``log`` of x <= 0 and ``sqrt`` of
  x < 0 give null. ``concat``, ``greatest`` and ``least`` skip missing arguments.
* A comparison involving a missing field is unknown: false in ``filter`` (and so is its ``not``,
  as in SQL), 0 where a value is needed. ``strcontains`` of a missing field is 0.
* ``trim``/``ltrim``/``rtrim`` with one argument and ``isblank`` treat every Unicode whitespace
  character (tabs and line breaks included) as blank; ``strlen`` counts characters.
* IP functions accept dotted IPv4 and every RFC 4291 IPv6 text form (``::`` compression, an IPv4
  tail, any case); the subnet functions need the CIDR as a literal string.
* ``unmask(x)`` takes ``@message`` or a field read from it and is only allowed as a whole column
  of ``fields``/``display``: the SQL returns the masked value, and the service swaps in the
  original afterwards (see :mod:`dashcam.query.unmask`), so filtering, sorting or aggregating on
  it would silently work on masked text — the compiler refuses that instead.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any, Callable

from sqlglot import exp

from dashcam.query.dialects import (
    Dialect, binop, case, cast, fn, lit, not_null, or_, paren, try_cast,
)

# Value types. "period", "regex" and "star" only ever appear as function arguments.
STR, NUM, TS, BOOL, JSON, NULL = "str", "num", "ts", "bool", "json", "null"
PERIOD, REGEX, STAR = "period", "regex", "star"


@dataclass(frozen=True)
class Value:
    """A compiled expression and what is statically known about it.

    ``json_src`` is ``(document, pointer, safe)`` when the value is a field read from JSON, so a
    use as text or number extracts text directly instead of extracting JSON and converting.
    ``group`` is a cheaper expression with the same grouping (``bin``: the integer bucket).
    ``const`` holds the Python value of a literal (for ``pct``'s p, a CIDR, a period ...).
    ``source_path`` is the path into the event's ``@message`` the value reads, when it is a field
    of the message (``()``: ``@message`` itself, or its parse); ``unmask`` is that path on the
    value ``unmask()`` returned: its rows are to be swapped for the original after the query.
    """

    expr: exp.Expression
    type: str
    json_src: tuple[exp.Expression, str, bool] | None = None
    agg: bool = False
    group: exp.Expression | None = None
    const: Any = None
    source_path: tuple[str, ...] | None = None
    unmask: tuple[str, ...] | None = None


class ArgError(Exception):
    """A function call is wrong; ``index`` names the offending argument (None: the call)."""

    def __init__(self, message: str, index: int | None = None):
        super().__init__(message)
        self.index = index


# ---------------------------------------------------------------------- coercions


def to_str(d: Dialect, v: Value) -> exp.Expression:
    """The value as text (JSON strings unquoted, numbers and objects as their JSON text)."""
    if v.type == STR:
        return v.expr
    if v.type == JSON:
        if v.json_src is not None:
            doc, pointer, safe = v.json_src
            return d.json_get_text(doc, pointer, safe=safe)
        return d.json_text(v.expr)
    if v.type == TS:
        return d.timestamp_text(v.expr)
    if v.type == BOOL:
        return cast(bool_to_int(v.expr), "VARCHAR")
    return cast(v.expr, "VARCHAR")


def to_num(d: Dialect, v: Value) -> exp.Expression:
    """The value as a number; text that is not a number gives NULL; timestamps give epoch ms."""
    if v.type == NUM:
        return v.expr
    if v.type == BOOL:
        return bool_to_int(v.expr)
    if v.type == TS:
        return d.epoch_ms(v.expr)
    if v.type == NULL:
        return v.expr
    return try_cast(to_str(d, v), "DOUBLE")


def to_ts(d: Dialect, v: Value) -> exp.Expression:
    """The value as a timestamp: numbers are epoch milliseconds, text is ISO-8601."""
    if v.type == TS:
        return v.expr
    if v.type == NUM:
        return d.from_epoch_ms(v.expr)
    if v.type == JSON:
        text = to_str(d, v)
        return exp.Coalesce(
            this=d.text_to_timestamp(text),
            expressions=[d.from_epoch_ms(try_cast(text, "DOUBLE"))],
        )
    if v.type == NULL:
        return v.expr
    return d.text_to_timestamp(to_str(d, v))


def to_bool(d: Dialect, v: Value) -> exp.Expression:
    """The value as a condition: numbers are true when non-zero, text when not empty/"false"/"0"."""
    if v.type == BOOL:
        return v.expr
    if v.type == NUM:
        return exp.NEQ(this=paren(v.expr), expression=lit(0))
    if v.type == TS:
        return not_null(v.expr)
    if v.type == NULL:
        return exp.Null()
    return exp.Not(this=exp.In(this=to_str(d, v), expressions=[lit(""), lit("0"), lit("false")]))


def bool_to_int(cond: exp.Expression) -> exp.Expression:
    """1/0 for a condition; unknown (a comparison on a missing field) is false, as in CloudWatch."""
    return case((cond, lit(1)), default=lit(0))


def present(d: Dialect, v: Value) -> exp.Expression:
    """Condition: the value exists (JSON null counts as missing)."""
    if v.type == JSON and v.json_src is not None:
        return not_null(to_str(d, v))
    if v.type == JSON:
        return not_null(d.json_null_to_sql(v.expr))
    return not_null(v.expr)


def output(d: Dialect, v: Value) -> Value:
    """The value as it is stored in a result column: booleans become 1/0, JSON null becomes NULL."""
    if v.type == BOOL:
        return Value(bool_to_int(v.expr), NUM, agg=v.agg)
    return v


def grouping(d: Dialect, v: Value) -> Value:
    """The value as a grouping/dedup key: JSON null and missing fall in the same (NULL) group."""
    v = output(d, v)
    if v.type == JSON:
        return replace(v, expr=d.json_null_to_sql(v.expr), json_src=None)
    return v


def common_type(values: list[Value]) -> str:
    """The type several values are brought to (coalesce, greatest, ``in`` lists)."""
    types = {v.type for v in values} - {NULL}
    if not types:
        return NULL
    if len(types) == 1:
        return types.pop()
    if NUM in types or BOOL in types:
        return NUM
    if TS in types and types <= {TS, STR, JSON}:
        return TS
    return STR


def coerce(d: Dialect, v: Value, type_: str) -> exp.Expression:
    """The value's expression converted to ``type_``."""
    if type_ == v.type or type_ == NULL:
        return v.expr
    return {STR: to_str, NUM: to_num, TS: to_ts, BOOL: to_bool}[type_](d, v) if type_ != JSON else v.expr


# ---------------------------------------------------------------------- operators


_CMP = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
_ARITH = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}


def compare(d: Dialect, op: str, a: Value, b: Value) -> Value:
    """``a op b`` with dynamic typing: numbers win, then timestamps, then text.

    Two JSON fields compare as numbers when both are numbers and as text otherwise.
    """
    node = _CMP[op]
    agg = a.agg or b.agg
    types = {a.type, b.type}
    if types == {JSON}:
        num = node(this=paren(to_num(d, a)), expression=paren(to_num(d, b)))
        text = node(this=paren(to_str(d, a)), expression=paren(to_str(d, b)))
        return Value(exp.Coalesce(this=num, expressions=[text]), BOOL, agg=agg)
    if types == {BOOL}:
        return Value(node(this=paren(a.expr), expression=paren(b.expr)), BOOL, agg=agg)
    if TS in types and not types & {NUM, BOOL}:
        return Value(node(this=paren(to_ts(d, a)), expression=paren(to_ts(d, b))), BOOL, agg=agg)
    target = common_type([a, b])
    left, right = coerce(d, a, target), coerce(d, b, target)
    return Value(node(this=paren(left), expression=paren(right)), BOOL, agg=agg)


def arithmetic(d: Dialect, op: str, a: Value, b: Value) -> Value:
    """Numeric ``a op b``; division and modulo by zero give NULL."""
    x, y = paren(to_num(d, a)), paren(to_num(d, b))
    agg = a.agg or b.agg
    if op in _ARITH:
        return Value(_ARITH[op](this=x, expression=y), NUM, agg=agg)
    if op == "^":
        return Value(exp.Pow(this=x, expression=y), NUM, agg=agg)
    safe_y = exp.Nullif(this=y, expression=lit(0))
    node = exp.Div if op == "/" else exp.Mod
    return Value(node(this=x, expression=safe_y), NUM, agg=agg)


def substring_match(d: Dialect, a: Value, b: Value) -> Value:
    """``a like "text"``: case-sensitive substring match."""
    return Value(d.contains(to_str(d, a), to_str(d, b)), BOOL, agg=a.agg or b.agg)


def regex_match(d: Dialect, a: Value, pattern: str) -> Value:
    return Value(d.regex_match(to_str(d, a), pattern), BOOL, agg=a.agg)


def in_list(d: Dialect, a: Value, items: list[Value]) -> Value:
    """``a in [items]``: whole-value match, typed like ``=``."""
    target = common_type([a, *items])
    same = len({i.type for i in items}) == 1
    if same and all(i.const is not None for i in items) and target in (STR, NUM):
        node = exp.In(this=paren(coerce(d, a, target)), expressions=[coerce(d, i, target) for i in items])
        return Value(node, BOOL, agg=a.agg)
    return Value(or_(*[compare(d, "=", a, i).expr for i in items]), BOOL, agg=a.agg or any(i.agg for i in items))


# ---------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Context:
    """What a builder may ask of the compiler: the dialect and the current ``@timestamp``."""

    dialect: Dialect
    timestamp: Callable[[], Value]


Builder = Callable[[Context, list[Value]], Value]


@dataclass(frozen=True)
class FunctionRow:
    """One function or aggregation: name (lower case), arity, result type, SQL builder."""

    name: str
    min_args: int
    max_args: int | None  # None: any number
    returns: str
    build: Builder
    aggregate: bool = False


def _check(cond: bool, message: str, index: int | None = None) -> None:
    if not cond:
        raise ArgError(message, index)


def _plain(args: list[Value], allowed: tuple[str, ...] = (STR, NUM, TS, BOOL, JSON, NULL)) -> None:
    """Reject periods, regexes and ``*`` where an ordinary value is expected."""
    for i, a in enumerate(args):
        _check(a.type in allowed, f"argument {i + 1} cannot be {_describe(a.type)}", i)


def _describe(type_: str) -> str:
    return {PERIOD: "a time period", REGEX: "a regex", STAR: "*"}.get(type_, f"a {type_} value")


def _agg(args: list[Value]) -> bool:
    return any(a.agg for a in args)


def _numeric(sql_name: str) -> Builder:
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        return Value(fn(sql_name, *[to_num(ctx.dialect, a) for a in args]), NUM, agg=_agg(args))
    return build


def _guarded(sql_name: str, domain: Callable[[exp.Expression], exp.Expression]) -> Builder:
    """A numeric function that is NULL outside its domain instead of NaN/-inf."""
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        x = to_num(ctx.dialect, args[0])
        return Value(case((domain(paren(x)), fn(sql_name, x))), NUM, agg=_agg(args))
    return build


def _extreme(sql_name: str) -> Builder:
    """greatest/least over the arguments' common type (text compares as text)."""
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        t = common_type(args)
        t = NUM if t in (BOOL, JSON) else t
        return Value(fn(sql_name, *[coerce(ctx.dialect, a, t) for a in args]), t, agg=_agg(args))
    return build


def _coalesce(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    d, t = ctx.dialect, common_type(args)
    if t == JSON:
        exprs = [grouping(d, a).expr for a in args]
    else:
        exprs = [coerce(d, output(d, a), t) if t != BOOL else a.expr for a in args]
    return Value(exp.Coalesce(this=exprs[0], expressions=exprs[1:]), t, agg=_agg(args))


def _string(build_sql: Callable[[Dialect, list[exp.Expression]], exp.Expression], returns: str = STR) -> Builder:
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        d = ctx.dialect
        return Value(build_sql(d, [to_str(d, a) for a in args]), returns, agg=_agg(args))
    return build


def _substr(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    d = ctx.dialect
    start = args[1]
    # CloudWatch counts from 0; SQL from 1.
    if isinstance(start.const, (int, float)):
        start1 = lit(int(start.const) + 1)
    else:
        start1 = binop(exp.Add, cast(to_num(d, start), "BIGINT"), lit(1))
    length = cast(to_num(d, args[2]), "BIGINT") if len(args) > 2 else None
    return Value(d.substring(to_str(d, args[0]), start1, length), STR, agg=_agg(args))


# "Whitespace" for the one-argument trims and isblank, as an RE2 class: Unicode's definition
# (Python's str.isspace), tabs and line breaks included — DuckDB's own trim() only removes
# space separators. Written with escapes so the SQL text stays plain ASCII.
WHITESPACE_RE = r"[\s\pZ\x{0b}\x{1c}-\x{1f}\x{85}]"
_TRIM_RE = {"trim": f"^{WHITESPACE_RE}+|{WHITESPACE_RE}+$", "ltrim": f"^{WHITESPACE_RE}+", "rtrim": f"{WHITESPACE_RE}+$"}


def _trim(sql_name: str) -> Builder:
    """trim(str) removes whitespace; trim(str, chars) removes any of ``chars``."""
    def build_sql(d: Dialect, a: list[exp.Expression]) -> exp.Expression:
        if len(a) > 1:
            return fn(sql_name, a[0], a[1])
        return d.regex_replace_all(a[0], _TRIM_RE[sql_name], "")
    return _string(build_sql)


# ------------------------------------------------------------------ datetime

_FIXED_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
             "w": 604_800_000_000}
_MONTHS = {"mo": 1, "q": 3, "y": 12}
_EPOCH_MONTH = 1970 * 12


def _period(v: Value, index: int) -> tuple[str, float]:
    _check(v.type == PERIOD, "expected a time period such as 5m or 1h", index)
    amount, unit = v.const
    _check(amount > 0, "the period must be positive", index)
    return amount, unit


def _period_parts(v: Value, index: int) -> tuple[int | None, int | None]:
    """(microseconds, None) for fixed-length periods; (None, months) for calendar periods."""
    amount, unit = _period(v, index)
    if unit in _FIXED_US:
        us = round(amount * _FIXED_US[unit])
        _check(us >= 1, "the period is shorter than a microsecond", index)
        return us, None
    months = amount * _MONTHS[unit]
    _check(months == int(months), "months, quarters and years must be whole numbers", index)
    return None, int(months)


def floor_time(d: Dialect, ts: exp.Expression, us: int | None, months: int | None) -> Value:
    """The start of the period containing ``ts`` (see the module docstring for alignment).

    Integer division truncates toward zero, so fixed-length buckets are exact for timestamps
    from 1970 on; events before the epoch (not a thing in invocation logs) land one bucket late.
    """
    if us is not None:
        # Integer arithmetic on epoch microseconds, grouped on the bucket number: measured the
        # fastest way to bucket in DuckDB (faster than time_bucket or date_trunc).
        bucket = binop(exp.IntDiv, d.epoch_us(ts), lit(us))
        start = d.from_epoch_us(binop(exp.Mul, bucket, lit(us)))
        return Value(start, TS, group=bucket)
    if months == 1:
        return Value(d.month_start(ts), TS)
    # Months since January 1970, floored to a multiple of the period, back to a date.
    index = binop(exp.Sub, binop(exp.Add, binop(exp.Mul, d.year(ts), lit(12)), d.month(ts)), lit(1 + _EPOCH_MONTH))
    floored = binop(exp.Add, binop(exp.Mul, binop(exp.IntDiv, index, lit(months)), lit(months)), lit(_EPOCH_MONTH))
    year = binop(exp.IntDiv, floored, lit(12))
    month = binop(exp.Add, binop(exp.Mod, floored, lit(12)), lit(1))
    return Value(d.make_date(year, month), TS)


def _bin(ctx: Context, args: list[Value]) -> Value:
    if len(args) == 1:
        ts, period, at = ctx.timestamp(), args[0], 0
    else:
        ts, period, at = args[0], args[1], 1
        _plain([ts])
    us, months = _period_parts(period, at)
    v = floor_time(ctx.dialect, to_ts(ctx.dialect, ts), us, months)
    return replace(v, agg=ts.agg)


def _dateceil(ctx: Context, args: list[Value]) -> Value:
    _plain(args[:1])
    d = ctx.dialect
    ts = to_ts(d, args[0])
    us, months = _period_parts(args[1], 1)
    if us is not None:
        up = binop(exp.IntDiv, binop(exp.Add, d.epoch_us(ts), lit(us - 1)), lit(us))
        return Value(d.from_epoch_us(binop(exp.Mul, up, lit(us))), TS, agg=args[0].agg)
    start = floor_time(d, ts, None, months).expr
    return Value(case((exp.EQ(this=start, expression=ts), ts), default=d.add_months(start, months)), TS,
                 agg=args[0].agg)


def _from_millis(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    return Value(ctx.dialect.from_epoch_ms(to_num(ctx.dialect, args[0])), TS, agg=_agg(args))


def _to_millis(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    return Value(ctx.dialect.epoch_ms(to_ts(ctx.dialect, args[0])), NUM, agg=_agg(args))


# ------------------------------------------------------------------ IP addresses

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"^{_OCTET}(\.{_OCTET}){{3}}$"
_V4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_H = "[0-9a-fA-F]{1,4}"


def _ipv6_regex() -> str:
    """RE2-compatible IPv6 text form (RFC 4291 2.2), including ``::`` and an IPv4 tail."""
    def groups(n: int) -> str:  # n groups separated by ':'
        return "" if n == 0 else (_H if n == 1 else f"({_H}:){{{n - 1}}}{_H}")

    forms = [f"({_H}:){{7}}{_H}", f"({_H}:){{6}}{_V4}"]
    for left in range(0, 8):
        head = groups(left)
        room = 7 - left  # groups that may follow '::'
        tail = f"(({_H}:){{0,{room - 1}}}{_H})?" if room > 0 else ""
        forms.append(f"{head}::{tail}")
        if left <= 5:
            forms.append(f"{head}::({_H}:){{0,{5 - left}}}{_V4}")
    return "^(" + "|".join(forms) + ")$"


IPV6_RE = _ipv6_regex()


def _ipv4_number(d: Dialect, text: exp.Expression) -> exp.Expression:
    parts = [cast(d.split_part(text, ".", i), "BIGINT") for i in range(1, 5)]
    total = binop(exp.Mul, parts[0], lit(16777216))
    for p, m in zip(parts[1:], (65536, 256, 1)):
        total = binop(exp.Add, total, binop(exp.Mul, p, lit(m)) if m != 1 else p)
    return total


def _ipv6_hex(d: Dialect, text: exp.Expression) -> exp.Expression:
    """A valid IPv6 address as 32 lower-case hex digits, so that ranges compare as text."""
    low = fn("lower", text)
    tail = fn("regexp_extract", low, lit(r"[0-9.]+$"))
    octets = [cast(d.split_part(tail, ".", i), "BIGINT") for i in range(1, 5)]
    hi = binop(exp.Add, binop(exp.Mul, octets[0], lit(256)), octets[1])
    lo = binop(exp.Add, binop(exp.Mul, octets[2], lit(256)), octets[3])
    no_v4 = case(
        (d.contains(low, lit(".")),
         exp.DPipe(this=fn("regexp_replace", low, lit(r"[0-9.]+$"), lit("")), expression=d.hex_format("%x:%x", hi, lo))),
        default=low,
    )
    missing = binop(exp.Sub, lit(8), d.regex_count(no_v4, "[0-9a-f]+"))
    expanded = case(
        (d.contains(no_v4, lit("::")),
         fn("trim", fn("replace", no_v4, lit("::"), exp.DPipe(this=lit(":"), expression=fn("repeat", lit("0:"), missing))),
            lit(":"))),
        default=no_v4,
    )
    padded = d.regex_replace_all(exp.DPipe(this=lit(":"), expression=expanded), ":", ":000")
    return d.regex_replace_all(padded, ":0*([0-9a-f]{4})", r"\1")


def _cidr(args: list[Value], version: int | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    c = args[1]
    _check(isinstance(c.const, str), "the subnet must be a literal CIDR string such as \"10.0.0.0/8\"", 1)
    try:
        net = ipaddress.ip_network(c.const.strip(), strict=False)
    except ValueError:
        raise ArgError(f"{c.const!r} is not a CIDR subnet", 1) from None
    _check(version is None or net.version == version, f"{c.const!r} is not an IPv{version} subnet", 1)
    return net


def _in_subnet(version: int | None) -> Builder:
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        d = ctx.dialect
        net = _cidr(args, version)
        text = to_str(d, args[0])
        lo, hi = int(net.network_address), int(net.broadcast_address)
        if net.version == 4:
            inside = exp.Between(this=_ipv4_number(d, text), low=lit(lo), high=lit(hi))
            valid = d.regex_match(text, IPV4_RE)
        else:
            inside = exp.Between(this=_ipv6_hex(d, text), low=lit(f"{lo:032x}"), high=lit(f"{hi:032x}"))
            valid = d.regex_match(text, IPV6_RE)
        # CASE, not AND: the casts inside must never see text that is not an address.
        return Value(case((valid, inside), default=lit(False)), BOOL, agg=args[0].agg)
    return build


def _valid_ip(*patterns: str) -> Builder:
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        text = to_str(ctx.dialect, args[0])
        return Value(or_(*[ctx.dialect.regex_match(text, p) for p in patterns]), BOOL, agg=args[0].agg)
    return build


# ------------------------------------------------------------------ JSON and general


def _json_parse(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    if args[0].type == JSON:
        return replace(args[0], json_src=None, expr=grouping(ctx.dialect, args[0]).expr)
    text = to_str(ctx.dialect, args[0])
    # Paths into the parsed value read the text directly (`m.input.x` is one extraction from
    # @message rather than a parse followed by an extraction).
    return Value(ctx.dialect.json_parse(text), JSON, json_src=(text, "", True), agg=args[0].agg,
                 source_path=args[0].source_path)


def _json_stringify(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    a = output(ctx.dialect, args[0])
    return Value(ctx.dialect.json_stringify(a.expr, a.type), STR, agg=a.agg)


def _ispresent(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    return Value(present(ctx.dialect, args[0]), BOOL, agg=args[0].agg)


def _isempty(blank: bool) -> Builder:
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        text = exp.Coalesce(this=to_str(ctx.dialect, args[0]), expressions=[lit("")])
        if blank:
            return Value(ctx.dialect.regex_full_match(text, f"{WHITESPACE_RE}*"), BOOL, agg=args[0].agg)
        return Value(exp.EQ(this=text, expression=lit("")), BOOL, agg=args[0].agg)
    return build


def _unmask(ctx: Context, args: list[Value]) -> Value:
    """The value itself, marked: the engine only holds masked text, so the service swaps in the
    original (for callers allowed to unmask) after the query runs."""
    _plain(args)
    a = args[0]
    _check(a.source_path is not None and not a.agg,
           "only @message and the fields of the event's message are ever masked: write unmask(@message) or "
           "unmask(a.field), such as unmask(identity.arn)", 0)
    return replace(a, unmask=a.source_path)


# ------------------------------------------------------------------ aggregations


def _aggregate(make: Callable[[Context, Value], tuple[exp.Expression, str]]) -> Builder:
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        expr, type_ = make(ctx, args[0])
        return Value(expr, type_, agg=True)
    return build


def _numeric_agg(node: Callable[[Dialect, exp.Expression], exp.Expression]) -> Builder:
    return _aggregate(lambda ctx, a: (node(ctx.dialect, to_num(ctx.dialect, a)), NUM))


def _min_max(node: type[exp.Func]) -> Builder:
    """min/max: numbers numerically (JSON values too), text and timestamps in their own order."""
    def make(ctx: Context, a: Value) -> tuple[exp.Expression, str]:
        t = a.type if a.type in (STR, TS) else NUM
        return node(this=coerce(ctx.dialect, a, t)), t
    return _aggregate(make)


def _sorts(node: type[exp.Func]) -> Builder:
    def make(ctx: Context, a: Value) -> tuple[exp.Expression, str]:
        if a.type in (STR, TS, NUM):
            return node(this=a.expr), a.type
        return node(this=to_str(ctx.dialect, a)), STR
    return _aggregate(make)


def _by_time(first: bool) -> Builder:
    def build(ctx: Context, args: list[Value]) -> Value:
        _plain(args)
        d, a = ctx.dialect, output(ctx.dialect, args[0])
        ts = ctx.timestamp().expr
        value = grouping(d, a).expr
        return Value(d.arg_min(value, ts) if first else d.arg_max(value, ts), a.type, agg=True)
    return build


def _count(ctx: Context, args: list[Value]) -> Value:
    if not args or args[0].type == STAR:
        return Value(exp.Count(this=exp.Star()), NUM, agg=True)
    _plain(args)
    return Value(exp.Count(this=_presence_value(ctx.dialect, args[0])), NUM, agg=True)


def _presence_value(d: Dialect, v: Value) -> exp.Expression:
    """An expression that is NULL exactly when the value is missing (what COUNT(x) counts)."""
    if v.type == JSON:
        return to_str(d, v)
    return output(d, v).expr


def _count_distinct(ctx: Context, args: list[Value]) -> Value:
    _plain(args)
    d, a = ctx.dialect, args[0]
    key = to_str(d, a) if a.type == JSON else output(d, a).expr
    return Value(exp.Count(this=exp.Distinct(expressions=[key])), NUM, agg=True)


def _pct(ctx: Context, args: list[Value]) -> Value:
    _plain(args[:1])
    p = args[1].const
    _check(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 100,
           "the percentile must be a number from 0 to 100", 1)
    return Value(ctx.dialect.quantile(to_num(ctx.dialect, args[0]), p / 100), NUM, agg=True)


def _rows() -> list[FunctionRow]:
    gt0 = lambda x: exp.GT(this=x, expression=lit(0))  # noqa: E731
    ge0 = lambda x: exp.GTE(this=x, expression=lit(0))  # noqa: E731
    return [
        # numeric
        FunctionRow("abs", 1, 1, NUM, _numeric("abs")),
        FunctionRow("ceil", 1, 1, NUM, _numeric("ceil")),
        FunctionRow("floor", 1, 1, NUM, _numeric("floor")),
        FunctionRow("greatest", 1, None, "any", _extreme("greatest")),
        FunctionRow("least", 1, None, "any", _extreme("least")),
        FunctionRow("log", 1, 1, NUM, _guarded("ln", gt0)),
        FunctionRow("sqrt", 1, 1, NUM, _guarded("sqrt", ge0)),
        FunctionRow("pow", 2, 2, NUM, _numeric("power")),
        FunctionRow("exp", 1, 1, NUM, _numeric("exp")),
        FunctionRow("round", 1, 2, NUM, _numeric("round")),
        # general
        FunctionRow("ispresent", 1, 1, BOOL, _ispresent),
        FunctionRow("coalesce", 1, None, "any", _coalesce),
        # string
        FunctionRow("isempty", 1, 1, BOOL, _isempty(False)),
        FunctionRow("isblank", 1, 1, BOOL, _isempty(True)),
        FunctionRow("concat", 1, None, STR, _string(lambda d, a: fn("concat", *a))),
        FunctionRow("ltrim", 1, 2, STR, _trim("ltrim")),
        FunctionRow("rtrim", 1, 2, STR, _trim("rtrim")),
        FunctionRow("trim", 1, 2, STR, _trim("trim")),
        FunctionRow("strlen", 1, 1, NUM, _string(lambda d, a: d.char_length(a[0]), NUM)),
        FunctionRow("toupper", 1, 1, STR, _string(lambda d, a: fn("upper", a[0]))),
        FunctionRow("tolower", 1, 1, STR, _string(lambda d, a: fn("lower", a[0]))),
        FunctionRow("substr", 2, 3, STR, _substr),
        FunctionRow("replace", 3, 3, STR, _string(lambda d, a: fn("replace", *a))),
        FunctionRow("strcontains", 2, 2, BOOL, _string(lambda d, a: d.contains(a[0], a[1]), BOOL)),
        # datetime
        FunctionRow("bin", 1, 2, TS, _bin),
        FunctionRow("datefloor", 2, 2, TS, _bin),
        FunctionRow("dateceil", 2, 2, TS, _dateceil),
        FunctionRow("frommillis", 1, 1, TS, _from_millis),
        FunctionRow("tomillis", 1, 1, NUM, _to_millis),
        # IP addresses
        FunctionRow("isvalidip", 1, 1, BOOL, _valid_ip(IPV4_RE, IPV6_RE)),
        FunctionRow("isvalidipv4", 1, 1, BOOL, _valid_ip(IPV4_RE)),
        FunctionRow("isvalidipv6", 1, 1, BOOL, _valid_ip(IPV6_RE)),
        FunctionRow("isipinsubnet", 2, 2, BOOL, _in_subnet(None)),
        FunctionRow("isipv4insubnet", 2, 2, BOOL, _in_subnet(4)),
        FunctionRow("isipv6insubnet", 2, 2, BOOL, _in_subnet(6)),
        # JSON
        FunctionRow("jsonparse", 1, 1, JSON, _json_parse),
        FunctionRow("jsonstringify", 1, 1, STR, _json_stringify),
        # data protection: the original of a masked field (see dashcam.query.unmask)
        FunctionRow("unmask", 1, 1, "any", _unmask),
        # aggregations
        FunctionRow("avg", 1, 1, NUM, _numeric_agg(lambda d, x: exp.Avg(this=x)), aggregate=True),
        FunctionRow("count", 0, 1, NUM, _count, aggregate=True),
        FunctionRow("count_distinct", 1, 1, NUM, _count_distinct, aggregate=True),
        FunctionRow("max", 1, 1, "any", _min_max(exp.Max), aggregate=True),
        FunctionRow("min", 1, 1, "any", _min_max(exp.Min), aggregate=True),
        FunctionRow("pct", 2, 2, NUM, _pct, aggregate=True),
        FunctionRow("stddev", 1, 1, NUM, _numeric_agg(lambda d, x: d.stddev_samp(x)), aggregate=True),
        FunctionRow("sum", 1, 1, NUM, _numeric_agg(lambda d, x: exp.Sum(this=x)), aggregate=True),
        FunctionRow("earliest", 1, 1, "any", _by_time(True), aggregate=True),
        FunctionRow("latest", 1, 1, "any", _by_time(False), aggregate=True),
        FunctionRow("sortsfirst", 1, 1, "any", _sorts(exp.Min), aggregate=True),
        FunctionRow("sortslast", 1, 1, "any", _sorts(exp.Max), aggregate=True),
    ]


FUNCTIONS: dict[str, FunctionRow] = {row.name: row for row in _rows()}


def function_table(d: Dialect) -> dict[str, FunctionRow]:
    """The rows for dialect ``d``: the common table with the dialect's overrides applied."""
    if not d.function_overrides:
        return FUNCTIONS
    return {**FUNCTIONS, **d.function_overrides}


__all__ = [
    "ArgError", "Context", "FUNCTIONS", "FunctionRow", "Value", "arithmetic", "bool_to_int", "compare",
    "function_table", "grouping", "in_list", "output", "present", "regex_match", "substring_match",
    "to_bool", "to_num", "to_str", "to_ts",
]
