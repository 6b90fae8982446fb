"""Query results as text: an aligned table for people, JSON and CSV for scripts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "csv")


def render(columns: Sequence[str], rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Rows in ``fmt`` (``table``, ``json`` or ``csv``); keys and columns keep result order."""
    if fmt == "json":
        return orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        return render_csv(columns, rows)
    return render_table(columns, rows)


def render_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """RFC 4180 CSV with a header row; missing values are empty cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


def render_table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """An aligned plain-text table: numbers right-aligned, missing values blank, never wrapped."""
    if not columns:
        return "(no columns)\n"
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    numeric = [all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) and rows for c in columns]
    for column, is_number in zip(columns, numeric):
        table.add_column(column, no_wrap=True, justify="right" if is_number else "left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else _cell(row.get(c)) for c in columns))
    buffer = io.StringIO()
    console = Console(file=buffer, width=1_000_000, color_system=None, highlight=False)
    console.print(table)
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
    return f"{text}\n({len(rows)} row{'s' if len(rows) != 1 else ''})\n"


def _csv_cell(value: Any) -> str:
    """CSV is for scripts: full precision, text as it is (the writer quotes what needs it)."""
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def _cell(value: Any) -> str:
    """A table cell for people: short floats, one line per row."""
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value).replace("\n", "\\n")
