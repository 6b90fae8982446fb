"""The function table: every function of the language is there, and evaluates as specified.

Scalar functions are evaluated by each engine (DuckDB, ClickHouse through chDB) on a one-event
store, and checked against Python (``ipaddress``, ``datetime``, string methods), many inputs at
a time with hypothesis.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashcam.query.compiler import QueryScope, compile_query
from dashcam.query.dialects import get_dialect
from dashcam.query.dialects import lit as sql_literal
from dashcam.query.functions import FUNCTIONS, IPV4_RE, IPV6_RE
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.store.batch import EventBatchBuilder

# Every function and aggregation of CloudWatch's language (reference §3.5) and its arity.
LANGUAGE = {
    "abs": (1, 1), "ceil": (1, 1), "floor": (1, 1), "greatest": (1, None), "least": (1, None), "log": (1, 1),
    "sqrt": (1, 1), "ispresent": (1, 1), "coalesce": (1, None), "isempty": (1, 1), "isblank": (1, 1),
    "concat": (1, None), "ltrim": (1, 2), "rtrim": (1, 2), "trim": (1, 2), "strlen": (1, 1), "toupper": (1, 1),
    "tolower": (1, 1), "substr": (2, 3), "replace": (3, 3), "strcontains": (2, 2), "bin": (1, 2),
    "datefloor": (2, 2), "dateceil": (2, 2), "frommillis": (1, 1), "tomillis": (1, 1), "isvalidip": (1, 1),
    "isvalidipv4": (1, 1), "isvalidipv6": (1, 1), "isipinsubnet": (2, 2), "isipv4insubnet": (2, 2),
    "isipv6insubnet": (2, 2), "jsonparse": (1, 1), "jsonstringify": (1, 1),
}
AGGREGATIONS = {
    "avg": (1, 1), "count": (0, 1), "count_distinct": (1, 1), "max": (1, 1), "min": (1, 1), "pct": (2, 2),
    "stddev": (1, 1), "sum": (1, 1), "earliest": (1, 1), "latest": (1, 1), "sortsfirst": (1, 1),
    "sortslast": (1, 1),
}
MESSAGE = {"n": 7, "s": "seven", "ns": "7.5", "t": True, "nul": None, "arr": [3, 1, 2], "obj": {"k": "v"}}


@pytest.fixture(scope="module")
def con(module_engine, module_store_opener):
    """A store holding one event: @message is MESSAGE, and a few hot columns are set."""
    store = module_store_opener(module_engine, "functions")
    builder = EventBatchBuilder()
    builder.add("g", "s", 1772460005120, orjson.dumps(MESSAGE).decode(),
                {"modelId": "amazon.nova-lite-v1:0", "latencyMs": 1843.5, "input": {"inputTokenCount": 31}})
    assert store.write_batch(builder.build()).written == 1
    return store


def value(con, expression: str):
    """The value of ``expression`` on the one event, as a result row shows it."""
    compiled = compile_query(parse(f"fields {expression} as v"), QueryScope(), con.dialect)
    return decode_rows(compiled, con.execute(compiled.sql))[0]["v"]


def aggregate(con, expression: str):
    compiled = compile_query(parse(f"stats {expression} as v"), QueryScope(), con.dialect)
    return decode_rows(compiled, con.execute(compiled.sql))[0]["v"]


# ---------------------------------------------------------------------- the table


def test_every_language_function_is_in_the_table_with_its_arity():
    for name, (lo, hi) in {**LANGUAGE, **AGGREGATIONS}.items():
        row = FUNCTIONS[name]
        assert (row.min_args, row.max_args) == (lo, hi), name
        assert row.aggregate == (name in AGGREGATIONS), name
        assert row.name == name and row.returns


# ---------------------------------------------------------------------- dynamic typing


@pytest.mark.parametrize("expression,expected", [
    ("n + 1", 8), ("ns * 2", 15), ("s + 1", None), ("n = 7", 1), ("n = \"7\"", 1), ("ns > 7", 1),
    ("s = \"seven\"", 1), ("s > 5", 0), ("n", 7), ("arr", "[3,1,2]"), ("obj", '{"k":"v"}'), ("obj.k", "v"),
    ("arr.1", 1), ("t", 1), ("nul", None), ("ispresent(nul)", 0), ("ispresent(obj)", 1), ("missing + 1", None),
    ("latencyMs = \"1843.5\"", 1), ("modelId = 5", 0), ("n in [6, 7]", 1), ("s in [\"seven\", 1]", 1),
    ("n not in [7]", 0), ("not n", 0), ("-ns", -7.5), ("n / 0", None), ("n % 0", None), ("n % 4", 3),
    ("2 ^ 0.5 * 2 ^ 0.5", 2.0000000000000004), ("0.1 + 0.2", 0.30000000000000004), ("7 / 2", 3.5),
    ("toMillis(@timestamp) > 0", 1), ("@timestamp > \"2026-03-02\"", 1), ("@timestamp < 1772460005121", 1),
])
def test_dynamic_typing(con, expression, expected):
    assert value(con, expression) == expected


# ---------------------------------------------------------------------- functions against Python


def test_numeric_functions(con):
    assert value(con, "abs(-2.5)") == 2.5
    assert value(con, "ceil(1.2)") == 2 and value(con, "floor(-1.2)") == -2
    assert value(con, "greatest(1, n, 3)") == 7 and value(con, "least(1, n, 3)") == 1
    assert value(con, "log(n)") == pytest.approx(math.log(7))
    assert value(con, "sqrt(n)") == pytest.approx(math.sqrt(7))
    assert value(con, "log(0)") is None and value(con, "sqrt(-1)") is None
    assert value(con, "pow(2, 3)") == 8 and value(con, "exp(1)") == pytest.approx(math.e)
    assert value(con, "round(2.345, 2)") == 2.35


def test_general_and_json_functions(con):
    assert value(con, "coalesce(nul, missing, n)") == 7
    assert value(con, "coalesce(nul, s)") == "seven"
    assert value(con, "jsonStringify(obj)") == '{"k":"v"}'
    assert value(con, "jsonStringify(s)") == '"seven"'
    assert value(con, "jsonParse('{\"a\": [1, 2]}')") == '{"a":[1,2]}'


TEXT = st.text(alphabet=st.one_of(st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="\"\\"),
                                  st.sampled_from("\u00a0\u2003\u3000")), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, start=st.integers(0, 14), length=st.integers(0, 14))
def test_string_functions_match_python(con, text, start, length):
    lit = f'"{text}"'
    assert value(con, f"strlen({lit})") == len(text)
    assert value(con, f"substr({lit}, {start}, {length})") == text[start:start + length]
    assert value(con, f"substr({lit}, {start})") == text[start:]
    assert value(con, f"toupper({lit})") == text.upper() or not text.isascii()
    assert value(con, f"trim({lit})") == text.strip()
    assert value(con, f"ltrim({lit})") == text.lstrip() and value(con, f"rtrim({lit})") == text.rstrip()
    assert value(con, f"ltrim({lit}, \"ab\")") == text.lstrip("ab")
    assert value(con, f"rtrim({lit}, \"ab\")") == text.rstrip("ab")
    assert value(con, f"isempty({lit})") == int(text == "")
    assert value(con, f"isblank({lit})") == int(text.strip() == "")
    assert value(con, f"strcontains({lit}, \"a\")") == int("a" in text)
    assert value(con, f"replace({lit}, \"a\", \"-\")") == text.replace("a", "-")
    assert value(con, f"concat({lit}, \"|\", {lit})") == f"{text}|{text}"


# ---------------------------------------------------------------------- datetime against Python

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FIXED = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
CALENDAR = {"mo": 1, "q": 3, "y": 12}


def python_floor(ms: int, amount: int, unit: str) -> datetime:
    if unit in FIXED:
        period = amount * FIXED[unit]
        return EPOCH + timedelta(milliseconds=ms // period * period)
    moment = EPOCH + timedelta(milliseconds=ms)
    months = amount * CALENDAR[unit]
    index = (moment.year - 1970) * 12 + moment.month - 1
    index = index // months * months
    return datetime(1970 + index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ms=st.integers(0, 4_102_444_800_000), amount=st.sampled_from([1, 2, 3, 5, 7, 15, 30]),
       unit=st.sampled_from(sorted(FIXED) + sorted(CALENDAR)))
def test_datefloor_and_dateceil_match_python(con, ms, amount, unit):
    floor = python_floor(ms, amount, unit)
    assert value(con, f"datefloor(fromMillis({ms}), {amount}{unit})") == fmt(floor)
    moment = EPOCH + timedelta(milliseconds=ms)
    if floor == moment:
        ceil = floor
    elif unit in FIXED:
        ceil = floor + timedelta(milliseconds=amount * FIXED[unit])
    else:
        months = floor.month - 1 + amount * CALENDAR[unit]
        ceil = floor.replace(year=floor.year + months // 12, month=months % 12 + 1)
    assert value(con, f"dateceil(fromMillis({ms}), {amount}{unit})") == fmt(ceil)


def test_bin_defaults_to_timestamp_and_labels_bucket_start(con):
    assert value(con, "bin(5m)") == "2026-03-02 14:00:00.000"
    assert value(con, "bin(@timestamp, 1s)") == "2026-03-02 14:00:05.000"
    assert value(con, "bin(1w)") == "2026-02-26 00:00:00.000"  # epoch-aligned: a Thursday
    assert value(con, "toMillis(fromMillis(1772460005120))") == 1772460005120


# ---------------------------------------------------------------------- IP addresses against ipaddress


def valid_v4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def valid_v6(text: str) -> bool:
    if "%" in text:  # zone ids are not addresses in log data
        return False
    try:
        ipaddress.IPv6Address(text)
        return True
    except ValueError:
        return False


V6_TEXT = st.one_of(
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.ip_addresses(v=4).map(lambda a: f"64:ff9b::{a}"),
    st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45),
)
V4_TEXT = st.one_of(st.ip_addresses(v=4).map(str), st.text(alphabet="0123456789.", max_size=16))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(V4_TEXT, V6_TEXT))
def test_ip_validity_matches_ipaddress(con, text):
    d = get_dialect(con.dialect)
    row = con.execute("SELECT " + ", ".join(d.sql(d.regex_match(sql_literal(text), p)) for p in (IPV4_RE, IPV6_RE)))
    assert tuple(map(bool, row[0])) == (valid_v4(text), valid_v6(text))
    assert value(con, f'isValidIp("{text}")') == int(valid_v4(text) or valid_v6(text))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=st.ip_addresses(v=6), network=st.ip_addresses(v=6), prefix=st.integers(0, 128), near=st.booleans())
def test_ipv6_subnet_matches_ipaddress(con, address, network, prefix, near):
    net = ipaddress.IPv6Network(f"{network}/{prefix}", strict=False)
    if near:  # half the cases inside or just outside the network
        address = net.network_address + (int(address) % max(net.num_addresses, 1))
    for text in {str(address), address.exploded}:
        assert value(con, f'isIpv6InSubnet("{text}", "{net}")') == int(address in net), (text, str(net))
        assert value(con, f'isIpInSubnet("{text}", "{net}")') == int(address in net)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address=st.ip_addresses(v=4), network=st.ip_addresses(v=4), prefix=st.integers(0, 32), near=st.booleans())
def test_ipv4_subnet_matches_ipaddress(con, address, network, prefix, near):
    net = ipaddress.IPv4Network(f"{network}/{prefix}", strict=False)
    if near:
        address = net.network_address + (int(address) % net.num_addresses)
    assert value(con, f'isIpv4InSubnet("{address}", "{net}")') == int(address in net)
    assert value(con, f'isIpInSubnet("{address}", "{net}")') == int(address in net)
    mapped = f"::ffff:{address}"
    assert value(con, f'isIpInSubnet("{mapped}", "::ffff:{net.network_address}/{96 + prefix}")') == int(address in net)


# ---------------------------------------------------------------------- aggregations on one row


def test_aggregations_on_one_event(con):
    assert aggregate(con, "count(*)") == 1 and aggregate(con, "count()") == 1
    assert aggregate(con, "count(missing)") == 0 and aggregate(con, "count(nul)") == 0
    assert aggregate(con, "sum(n)") == 7 and aggregate(con, "avg(ns)") == 7.5
    assert aggregate(con, "stddev(n)") is None  # sample standard deviation of one value
    assert aggregate(con, "pct(latencyMs, 50)") == 1843.5
    assert aggregate(con, "earliest(s)") == "seven" and aggregate(con, "latest(arr)") == "[3,1,2]"
    assert aggregate(con, "sortsFirst(s)") == "seven" and aggregate(con, "count_distinct(s)") == 1
    assert aggregate(con, "max(@timestamp)") == "2026-03-02 14:00:05.120"
