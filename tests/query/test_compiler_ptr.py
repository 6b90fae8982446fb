"""``@ptr`` through every pipeline shape, on each engine: the compiler carries a pointer's parts
(log group, event id) through the stages and builds its text after sort/dedup/limit, so each
value must still point at its own event, and adding ``@ptr`` must change no other column or the
order of the rows.

Expected pointers come from the store's own rows (``log_group``, ``event_id`` by request id)
through :func:`make_ptr`, not from the compiler.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dashcam.query.compiler import QueryScope, compile_query, make_ptr, parse_ptr
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.query.unmask import events_of

FIXTURE = Path(__file__).with_name("golden") / "fixture.jsonl"

# Each sort ends on requestId (unique in the fixture), so the rows' order is defined.
PIPELINES = [
    "fields requestId, latencyMs, {ptr} | sort latencyMs desc, requestId | limit 7",
    "fields {ptr}, requestId | sort requestId desc | limit 12 | sort requestId | limit 5",
    "fields requestId, {ptr} | limit 12 | sort requestId desc | limit 5",
    "filter latencyMs > 0 | fields requestId, modelId, {ptr} | sort modelId, requestId | dedup modelId",
    'filter @log like "otlp" or requestId in ["req-003", "req-004"] | fields requestId, {ptr} | sort requestId',
    "display requestId, {ptr} | sort @timestamp desc, requestId desc | limit 9",
    "fields requestId, {ptr} | sort requestId | limit 10 | filter latencyMs > 1000",
    'fields requestId, {ptr}, @log | filter requestId like "req-01" | sort requestId desc',
]


@pytest.fixture(scope="module")
def store(module_engine, module_store_opener):
    s = module_store_opener(module_engine, "ptr")
    batches: dict[tuple[str, str], list[dict]] = {}
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        item = orjson.loads(line)
        batches.setdefault((item["log_group"], item["log_stream"]), []).append(item["record"])
    for (group, stream), records in batches.items():
        s.write_records(group, stream, records, source="bedrock-log")
    return s


@pytest.fixture(scope="module")
def pointer_of(store) -> dict[str, str]:
    """``{request id: @ptr}`` built from the store's own rows."""
    return {request_id: make_ptr(group, event_id)
            for request_id, group, event_id in store.execute("SELECT request_id, log_group, event_id FROM events")}


def run(store, text: str) -> list[dict]:
    compiled = compile_query(parse(text), QueryScope(), store.dialect)
    return decode_rows(compiled, store.execute(compiled.sql))


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("ptr, name", [("@ptr", "@ptr"), ("@ptr as p", "p")])
def test_ptr_points_at_its_event_and_changes_nothing_else(store, pointer_of, pipeline, ptr, name):
    with_ptr = run(store, pipeline.format(ptr=ptr))
    assert with_ptr, "the pipeline should keep some rows"
    assert [row[name] for row in with_ptr] == [pointer_of[row["requestId"]] for row in with_ptr]
    without = run(store, pipeline.format(ptr="@logStream"))
    assert [{k: v for k, v in row.items() if k != name} for row in with_ptr] == \
           [{k: v for k, v in row.items() if k != "@logStream"} for row in without]


def test_sort_on_a_carried_ptr_sorts_by_its_text(store, pointer_of):
    rows = run(store, "fields @ptr as p, requestId | limit 12 | sort p desc | limit 5")
    assert [row["p"] for row in rows] == [pointer_of[row["requestId"]] for row in rows]
    carried = [row["p"] for row in run(store, "fields @ptr as p | limit 12")]
    assert [row["p"] for row in rows] == sorted(carried, reverse=True)[:5]


def test_functions_and_filters_on_ptr_see_its_text(store, pointer_of):
    wanted = pointer_of["req-007"]
    rows = run(store, f'filter @ptr = "{wanted}" | fields requestId, strlen(@ptr) as n, toupper(@ptr) as up')
    assert rows == [{"requestId": "req-007", "n": len(wanted), "up": wanted.upper()}]


def test_stats_by_ptr_groups_by_its_text(store, pointer_of):
    rows = run(store, "stats count(*) as n by @ptr | sort @ptr asc")
    assert rows == [{"@ptr": p, "n": 1} for p in sorted(pointer_of.values())]


def test_unmask_keys_match_the_ptr_of_each_row(store, pointer_of):
    compiled = compile_query(parse("fields requestId, @ptr, unmask(@message) as original | sort requestId | limit 6"),
                             QueryScope(), store.dialect)
    raw = store.execute(compiled.sql)
    rows = decode_rows(compiled, raw)
    assert [row["@ptr"] for row in rows] == [pointer_of[row["requestId"]] for row in rows]
    wanted: dict[str, list[int]] = {}
    for row in rows:
        group, event_id = parse_ptr(row["@ptr"])
        wanted.setdefault(group, []).append(event_id)
    assert events_of(compiled, raw) == wanted
