"""decode_rows: raw engine values to result rows (DESIGN.md's result conventions)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from dashcam.query.compiler import CompiledQuery, OutputColumn
from dashcam.query.results import decode_rows, format_timestamp


def compiled(*kinds: str) -> CompiledQuery:
    return CompiledQuery(sql="", columns=tuple(OutputColumn(f"c{i}", k) for i, k in enumerate(kinds)), dialect="duckdb")


def test_keys_in_result_order_and_missing_as_none():
    cq = CompiledQuery("", (OutputColumn("z", "value"), OutputColumn("a", "value"), OutputColumn("m", "json")), "duckdb")
    rows = decode_rows(cq, [(1, None, None), (None, "x", "null")])
    assert [list(r) for r in rows] == [["z", "a", "m"], ["z", "a", "m"]]
    assert rows == [{"z": 1, "a": None, "m": None}, {"z": None, "a": "x", "m": None}]


def test_numbers_booleans_and_non_finite():
    rows = decode_rows(compiled(*["value"] * 8),
                       [(True, False, 2.0, 2.5, Decimal("3.00"), Decimal("0.25"), float("nan"), float("-inf"))])
    assert rows == [{"c0": 1, "c1": 0, "c2": 2, "c3": 2.5, "c4": 3, "c5": 0.25, "c6": None, "c7": None}]
    assert isinstance(rows[0]["c2"], int) and isinstance(rows[0]["c4"], int)
    big = decode_rows(compiled("value", "value"), [(2.0**60, 10**30)])[0]
    assert big == {"c0": 2.0**60, "c1": 10**30} and isinstance(big["c0"], float)


def test_timestamps_are_utc_with_milliseconds():
    naive = datetime(2026, 3, 2, 14, 0, 5, 120999)
    aware = datetime(2026, 3, 2, 16, 0, 5, 120000, tzinfo=timezone(timedelta(hours=2)))
    rows = decode_rows(compiled("timestamp", "timestamp", "timestamp", "value", "value"),
                       [(naive, aware, 1772460005120, naive, date(2026, 3, 2))])
    assert rows == [{"c0": "2026-03-02 14:00:05.120", "c1": "2026-03-02 14:00:05.120", "c2": "2026-03-02 14:00:05.120",
                     "c3": "2026-03-02 14:00:05.120", "c4": "2026-03-02 00:00:00.000"}]
    assert format_timestamp(datetime(1970, 1, 1)) == "1970-01-01 00:00:00.000"


def test_json_scalars_decoded_and_containers_compact():
    rows = decode_rows(compiled(*["json"] * 7),
                       [('"text"', "1843", "1.5", "true", '{"a": 1, "b": [1, 2]}', "[ ]", "not json")])
    assert rows == [{"c0": "text", "c1": 1843, "c2": 1.5, "c3": 1, "c4": '{"a":1,"b":[1,2]}', "c5": "[]",
                     "c6": "not json"}]


def test_engine_containers_become_compact_json_text():
    rows = decode_rows(compiled("value", "json"), [([1, 2], {"k": "v"})])
    assert rows == [{"c0": "[1,2]", "c1": '{"k":"v"}'}]
