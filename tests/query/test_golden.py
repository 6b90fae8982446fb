"""Golden cases: query text -> expected DuckDB SQL -> expected rows over a hand-made dataset.

Each ``golden/<family>.txt`` holds cases for one command or function family::

    ### title of the case
    query text (may span lines; `#` lines are Logs Insights comments explaining the rows)
    --- scope                      (optional: QueryScope fields as JSON)
    {"log_groups": ["..."]}
    --- sql
    SELECT ...
    --- rows
    {"col": value, ...}            (one JSON object per row, keys in result order)

The dataset is ``golden/fixture.jsonl`` (30 invocation records in three log groups), loaded
through the real store — on each engine: DuckDB, then ClickHouse (chDB). The ``sql`` section
is DuckDB's SQL and pins how the compiler shapes queries; the ``rows`` must come out of both
engines alike. ClickHouse's SQL is not stored: it is the same tree rendered through the other
dialect (long where JSON paths branch between array and object), so a second snapshot would
double every golden update without catching anything the rows do not. ``DASHCAM_UPDATE_GOLDEN=1`` rewrites the sql and rows sections from
what the code produces now — review the diff by hand: the expected rows must be right, not
merely what came out.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from dashcam.query.compiler import QueryScope, compile_query
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.store.base import Store

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("DASHCAM_UPDATE_GOLDEN") == "1"


@dataclass
class Case:
    title: str
    query: str
    scope: dict = field(default_factory=dict)
    sql: str = ""
    rows: list = field(default_factory=list)


@dataclass
class CaseFile:
    path: Path
    header: list[str]
    cases: list[Case]


def read_case_file(path: Path) -> CaseFile:
    header: list[str] = []
    cases: list[Case] = []
    section = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("### "):
            cases.append(Case(title=raw[4:].strip(), query=""))
            section = "query"
        elif not cases:
            header.append(raw)
        elif raw.startswith("--- "):
            section = raw[4:].strip()
        elif section == "query":
            cases[-1].query += raw + "\n"
        elif section == "scope" and raw.strip():
            cases[-1].scope = orjson.loads(raw)
        elif section == "sql" and raw.strip():
            cases[-1].sql += raw.strip()
        elif section == "rows" and raw.strip():
            cases[-1].rows.append(orjson.loads(raw))
    for case in cases:
        case.query = case.query.strip("\n")
    return CaseFile(path, header, cases)


def write_case_file(cf: CaseFile) -> None:
    out = list(cf.header)
    for case in cf.cases:
        out += [f"### {case.title}", case.query]
        if case.scope:
            out += ["--- scope", orjson.dumps(case.scope).decode()]
        out += ["--- sql", case.sql, "--- rows"]
        out += [orjson.dumps(row).decode() for row in case.rows]
        out.append("")
    cf.path.write_text("\n".join(out), encoding="utf-8")


FILES = {p.stem: read_case_file(p) for p in sorted(GOLDEN.glob("*.txt"))}
PARAMS = [pytest.param(stem, i, id=f"{stem}:{case.title}") for stem, cf in FILES.items()
          for i, case in enumerate(cf.cases)]


def load_fixture(store: Store) -> int:
    """Write golden/fixture.jsonl through the store, one batch per (log group, stream)."""
    batches: dict[tuple[str, str], list[dict]] = {}
    for line in (GOLDEN / "fixture.jsonl").read_text(encoding="utf-8").splitlines():
        item = orjson.loads(line)
        batches.setdefault((item["log_group"], item["log_stream"]), []).append(item["record"])
    total = 0
    for (group, stream), records in batches.items():
        source = "otlp" if stream == "svc-checkout" else "bedrock-log"
        total += store.write_records(group, stream, records, source=source).written
    return total


@pytest.fixture(scope="module")
def store(module_engine, module_store_opener):
    s = module_store_opener(module_engine, "golden")
    assert load_fixture(s) == 30
    return s


@pytest.fixture(scope="module", autouse=True)
def rewrite_when_updating():
    yield
    if UPDATE:
        for cf in FILES.values():
            write_case_file(cf)


def rows_equal(actual: list[dict], expected: list[dict]) -> bool:
    if len(actual) != len(expected):
        return False
    for a, e in zip(actual, expected):
        if list(a) != list(e):
            return False
        for k in a:
            x, y = a[k], e[k]
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


@pytest.mark.parametrize("stem,index", PARAMS)
def test_golden(store, stem, index):
    case = FILES[stem].cases[index]
    compiled = compile_query(parse(case.query), QueryScope(**{
        k: tuple(v) if isinstance(v, list) else v for k, v in case.scope.items()}), store.dialect)
    rows = decode_rows(compiled, store.execute(compiled.sql))
    if UPDATE and store.dialect == "duckdb":  # the reference engine writes the expectations
        case.sql, case.rows = compiled.sql, rows
        return
    if store.dialect == "duckdb":
        assert compiled.sql == case.sql
    assert rows_equal(rows, case.rows), "\n".join(orjson.dumps(r).decode() for r in rows)


def test_every_case_file_has_cases():
    assert FILES, "no golden files found"
    for stem, cf in FILES.items():
        assert cf.cases, f"{stem}.txt has no cases"
        titles = [c.title for c in cf.cases]
        assert len(titles) == len(set(titles)), f"{stem}.txt repeats a case title"


def test_golden_cases_cover_every_command_and_function():
    from dashcam.query.functions import FUNCTIONS

    queries = "\n".join(case.query for cf in FILES.values() for case in cf.cases).lower()
    missing = [name for name in FUNCTIONS if f"{name}(" not in queries.replace(" (", "(")]
    assert not missing, f"functions without a golden case: {missing}"
    for command in ("fields", "display", "filter", "stats", "sort", "limit", "parse", "dedup", "unnest", "source"):
        assert command + " " in queries, command
