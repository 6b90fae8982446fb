"""EventRows: events gathered as plain lists — repeats dropped and counted, merged, and carried
across a process boundary by pickle — and the Arrow table made of them."""

from __future__ import annotations

import pickle

import orjson

from dashcam.records import normalize, stable_event_id
from dashcam.store.batch import EventBatchBuilder, rows_table
from dashcam.store.rows import EventRows

RECORDS = [{"timestamp": f"2026-03-02T10:00:0{i}.000Z", "modelId": "amazon.nova-lite-v1:0", "operation": "Converse",
            "input": {"inputTokenCount": 10 * i}, "output": {"outputTokenCount": i}} for i in range(4)]


def add(rows: EventRows, index: int, group: str = "/g") -> bool:
    record = dict(RECORDS[index])
    message = orjson.dumps(record).decode()
    return rows.add(group, "s", 1_772_445_600_000 + index * 1000, message, normalize(record, source="api"))


def test_a_repeat_is_dropped_and_counted_and_another_group_is_not_a_repeat():
    rows = EventRows()
    assert [add(rows, 0), add(rows, 1), add(rows, 0), add(rows, 0, group="/h")] == [True, True, False, True]
    assert (len(rows), rows.duplicates, rows.offered, rows.log_groups()) == (3, 1, 4, {"/g", "/h"})
    ids, groups, streams, ts, messages, hot = rows.columns()
    assert ids == [stable_event_id(g, m.encode()) for g, m in zip(groups, messages)]
    assert groups == ["/g", "/g", "/h"] and len(hot) == 3


def test_extend_keeps_order_drops_what_is_there_and_adds_up_duplicates():
    first, second = EventRows(), EventRows()
    add(first, 0), add(first, 1), add(first, 1)
    add(second, 1), add(second, 2), add(second, 2), add(second, 3)
    first.extend(second)
    assert [orjson.loads(m)["timestamp"][-7:] for m in first.columns()[4]] == ["00.000Z", "01.000Z", "02.000Z",
                                                                            "03.000Z"]
    assert first.duplicates == 1 + 1 + 1  # its own, second's own, and second's copy of event 1
    assert first.offered == 3 + 4
    assert len({*first.columns()[0]}) == 4


def test_pickled_rows_are_equal_and_still_refuse_repeats():
    rows = EventRows()
    add(rows, 0), add(rows, 1)
    copied = pickle.loads(pickle.dumps(rows))
    assert copied.columns() == rows.columns() and copied.duplicates == rows.duplicates
    assert not add(copied, 1) and add(copied, 2)
    assert "_seen" not in pickle.loads(pickle.dumps(rows)).__getstate__()


def test_the_table_of_rows_is_the_builders_table():
    rows, builder = EventRows(), EventBatchBuilder()
    for index in range(3):
        add(rows, index)
        add(builder, index)
    assert rows_table(rows, ingestion_ms=5).equals(builder.build(ingestion_ms=5))
    assert rows_table(rows, ingestion_ms=5).num_rows == 3
    assert rows_table(EventRows()).num_rows == 0
