"""Query results as text: the exact table, JSON and CSV dashcam prints for a fixed result."""

from __future__ import annotations

import csv
import io
import json

from dashcam.render import FORMATS, render, render_csv, render_table

COLUMNS = ["@timestamp", "modelId", "latencyMs", "ratio", "note", "meta", "missing"]
ROWS = [
    {"@timestamp": "2026-03-02 14:05:11.000", "modelId": "a", "latencyMs": 1843, "ratio": 0.25,
     "note": "line1\nline2", "meta": {"k": [1, 2]}, "missing": None},
    {"@timestamp": "2026-03-02 14:06:40.500", "modelId": 'b, "quoted"', "latencyMs": None, "ratio": 1843.5,
     "note": "x", "meta": [1, "a"], "missing": None},
    {"@timestamp": "2026-03-02 14:07:00.000", "modelId": "c", "latencyMs": 7, "ratio": 2.0,
     "note": "", "meta": None, "missing": None},
]

TABLE = (
    "@timestamp                modelId       latencyMs    ratio   note           meta          missing\n"
    "─────────────────────────────────────────────────────────────────────────────────────────────────\n"
    '2026-03-02 14:05:11.000   a                  1843     0.25   line1\\nline2   {"k":[1,2]}\n'
    '2026-03-02 14:06:40.500   b, "quoted"               1843.5   x              [1,"a"]\n'
    "2026-03-02 14:07:00.000   c                     7        2\n"
    "(3 rows)\n"
)

JSON = """[
  {
    "@timestamp": "2026-03-02 14:05:11.000",
    "modelId": "a",
    "latencyMs": 1843,
    "ratio": 0.25,
    "note": "line1\\nline2",
    "meta": {
      "k": [
        1,
        2
      ]
    },
    "missing": null
  },
  {
    "@timestamp": "2026-03-02 14:06:40.500",
    "modelId": "b, \\"quoted\\"",
    "latencyMs": null,
    "ratio": 1843.5,
    "note": "x",
    "meta": [
      1,
      "a"
    ],
    "missing": null
  },
  {
    "@timestamp": "2026-03-02 14:07:00.000",
    "modelId": "c",
    "latencyMs": 7,
    "ratio": 2.0,
    "note": "",
    "meta": null,
    "missing": null
  }
]
"""


def test_formats():
    assert FORMATS == ("table", "json", "csv")


def test_table_exact():
    assert render(COLUMNS, ROWS, "table") == TABLE
    assert render_table(COLUMNS, ROWS) == TABLE


def test_table_aligns_text_left_and_numbers_right():
    lines = render(COLUMNS, ROWS, "table").splitlines()
    header, rows = lines[0], lines[2:5]
    model_at = header.index("modelId")
    for name, values in (("latencyMs", ["1843", "", "7"]), ("ratio", ["0.25", "1843.5", "2"])):
        end = header.index(name) + len(name)
        assert [row[:end].rsplit(" ", 1)[-1] for row in rows] == values
    assert [row[model_at:model_at + 11].rstrip() for row in rows] == ["a", 'b, "quoted"', "c"]


def test_table_has_no_trailing_spaces_and_no_colour_codes():
    text = render(COLUMNS, ROWS, "table")
    assert all(line == line.rstrip() for line in text.splitlines())
    assert "\x1b" not in text


def test_table_never_wraps_long_values():
    long = "x" * 500
    text = render(["a", "b"], [{"a": long, "b": 1}], "table")
    assert text.splitlines()[2] == long + "   1"


def test_table_row_count_line():
    assert render(["n"], [{"n": 1}], "table") == "n\n─\n1\n(1 row)\n"
    assert render(["name"], [], "table") == "name\n────\n(0 rows)\n"
    assert render([], [], "table") == "(no columns)\n"


def test_table_column_order_is_the_result_order_not_the_dict_order():
    text = render(["b", "a"], [{"a": "first", "b": "second"}], "table")
    assert text.splitlines()[0].split() == ["b", "a"]
    assert text.splitlines()[2].split() == ["second", "first"]


def test_json_exact():
    text = render(COLUMNS, ROWS, "json")
    assert text == JSON
    rows = json.loads(text)
    assert [list(r) for r in rows] == [COLUMNS] * 3
    assert rows[0]["note"] == "line1\nline2"  # JSON keeps the newline itself


def test_json_of_no_rows():
    assert render(["a"], [], "json") == "[]\n"


def test_csv_exact():
    expected = (
        "@timestamp,modelId,latencyMs,ratio,note,meta,missing\n"
        '2026-03-02 14:05:11.000,a,1843,0.25,"line1\nline2","{""k"":[1,2]}",\n'
        '2026-03-02 14:06:40.500,"b, ""quoted""",,1843.5,x,"[1,""a""]",\n'
        "2026-03-02 14:07:00.000,c,7,2,,,\n"
    )
    assert render(COLUMNS, ROWS, "csv") == expected
    assert render_csv(COLUMNS, ROWS) == expected


def test_csv_reads_back():
    parsed = list(csv.reader(io.StringIO(render(COLUMNS, ROWS, "csv"))))
    assert parsed[0] == COLUMNS
    assert parsed[2][1] == 'b, "quoted"'
    assert parsed[1][5] == '{"k":[1,2]}'
    assert parsed[2][2] == ""  # None is an empty cell
    assert [len(row) for row in parsed] == [7, 7, 7, 7]


def test_csv_of_no_rows_is_the_header():
    assert render(["a", "b"], [], "csv") == "a,b\n"


def test_csv_keeps_full_float_precision():
    rows = [{"cost": 1234567.891}, {"cost": 0.000123456789}]
    assert render(["cost"], rows, "csv") == "cost\n1234567.891\n0.000123456789\n"


def test_csv_round_trips_a_newline():
    text = render(["note"], [{"note": "line1\nline2"}, {"note": "back\\nslash"}], "csv")
    assert [row[0] for row in csv.reader(io.StringIO(text))][1:] == ["line1\nline2", "back\\nslash"]
