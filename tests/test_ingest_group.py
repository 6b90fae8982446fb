"""Group commit of ingest requests: many requests per commit, each with its own exact counts.

The oracle is the store itself: each request's outcome must equal what committing the requests one
at a time, in the order they were submitted, gives in a fresh store of the same engine.
"""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from dashcam.errors import StoreError
from dashcam.ingest_group import GroupCommitter, RequestOutcome
from dashcam.simulate.sample_logs import SampleSpec, generate_records
from dashcam.sources.lines import frame_lines
from dashcam.store.batch import RawBatchBuilder

RECORDS = [orjson.dumps(r) for r in generate_records(SampleSpec(records=40, hours=1, seed=21))]


def requests() -> list[tuple[str, list[bytes]]]:
    """(log group, lines) per request: fresh lines, repeats within and across requests, lines
    stored before, bad lines, blank lines, and a second log group."""
    r = RECORDS
    return [
        ("/g/a", r[0:6] + [b"{bad"]),
        ("/g/a", [r[2], b"", r[6], r[6], b"[1]"]),  # r[2] repeats request 0; r[6] twice here
        ("/g/b", [r[2], r[7], b'{"timestamp":"soon"}']),  # the same line in another group is new
        ("/g/a", r[8:12] + [b"   ", r[0]]),
        ("/g/a", [r[30], r[31]]),  # stored before the test's commits
    ]


def framed(lines: list[bytes]):
    return frame_lines(b"".join(line + b"\n" for line in lines))


def one_at_a_time(store, reqs) -> list[RequestOutcome]:
    """The oracle: each request committed alone, in order."""
    outcomes = []
    for group, lines in reqs:
        builder = RawBatchBuilder()
        f = framed(lines)
        builder.extend(group, "s", f.array, f.event_ids(group), "request", 0)
        table, refused = builder.build()
        result = store.write_raw(table, source="api")
        outcomes.append(RequestOutcome(result.written, result.duplicates, sorted(refused + result.rejected)))
    return outcomes


class Gate:
    """Wraps a store: its first prepare_raw waits until released, so later requests pile up."""

    def __init__(self, store):
        self.store, self.entered, self.release = store, threading.Event(), threading.Event()
        self.reports_rows = store.reports_rows
        self.efficient_commit_rows = store.efficient_commit_rows
        self.batches: list[int] = []

    def prepare_raw(self, batch, **kwargs):
        self.batches.append(batch.num_rows)
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(30)
        return self.store.prepare_raw(batch, **kwargs)

    def commit_raw(self, prepared, **kwargs):
        return self.store.commit_raw(prepared, **kwargs)


def behind_a_commit(gate: Gate, reqs) -> tuple[GroupCommitter, RequestOutcome, list[RequestOutcome]]:
    """Submit one request, hold its commit, submit ``reqs`` behind it, release: the committer,
    the first request's outcome, and the outcomes of ``reqs``."""
    committer = GroupCommitter(lambda: gate, source="api")
    try:
        first = committer.submit("/g/x", "s", framed([RECORDS[39]]))
        assert gate.entered.wait(30)
        futures = [committer.submit(group, "s", framed(lines)) for group, lines in reqs]
        gate.release.set()
        return committer, first.result(30), [f.result(30) for f in futures]
    finally:
        committer.stop()


def test_requests_waiting_behind_a_commit_go_together_with_their_own_counts(store_of):
    reqs = requests()
    expected_store, store = store_of("expected"), store_of("grouped")
    one_at_a_time(expected_store, [("/g/a", [RECORDS[30], RECORDS[31]])])
    one_at_a_time(store, [("/g/a", [RECORDS[30], RECORDS[31]])])
    expected = one_at_a_time(expected_store, reqs)

    gate = Gate(store)
    committer, first, outcomes = behind_a_commit(gate, reqs)
    assert first == RequestOutcome(1, 0, [])
    assert outcomes == expected
    assert gate.batches == [1, sum(len(lines) for _, lines in reqs)]  # the five requests: one commit
    assert committer.commits == 2
    count = "SELECT log_group, count(*) FROM events WHERE log_group IN ('/g/a', '/g/b') GROUP BY 1 ORDER BY 1"
    assert store.execute(count) == expected_store.execute(count)


def test_a_store_that_cannot_list_rows_gets_one_commit_per_request(store_of):
    reqs = requests()
    expected_store, store = store_of("expected"), store_of("plain")
    expected = one_at_a_time(expected_store, reqs)
    gate = Gate(store)
    gate.reports_rows = False
    _, first, outcomes = behind_a_commit(gate, reqs)
    assert first.written == 1
    assert outcomes == expected
    assert gate.batches == [1] + [len(lines) for _, lines in reqs]


@pytest.mark.parametrize("stage", ["prepare_raw", "commit_raw"])
def test_a_failed_commit_fails_every_request_in_it_and_the_next_commit_works(store_of, stage):
    store = store_of()

    class Failing:
        reports_rows = True
        efficient_commit_rows = 0
        calls = 0

        def prepare_raw(self, batch, **kwargs):
            self._fail_once("prepare_raw")
            return store.prepare_raw(batch, **kwargs)

        def commit_raw(self, prepared, **kwargs):
            self._fail_once("commit_raw")
            return store.commit_raw(prepared, **kwargs)

        def _fail_once(self, this_stage):
            if this_stage == stage:
                Failing.calls += 1
                if Failing.calls == 1:
                    raise RuntimeError("disk on fire")

    committer = GroupCommitter(lambda: Failing(), source="api")
    try:
        failed = committer.submit("/g/a", "s", framed(RECORDS[:3]))
        with pytest.raises(StoreError, match="disk on fire"):
            failed.result(30)
        assert committer.submit("/g/a", "s", framed(RECORDS[:3])).result(30) == RequestOutcome(3, 0, [])
    finally:
        committer.stop()
    assert store.execute("SELECT count(*) FROM events")[0][0] == 3


def test_an_empty_request_is_answered_without_a_commit(store_of):
    committer = GroupCommitter(lambda: store_of(), source="api")
    try:
        assert committer.submit("/g/a", "s", framed([])).result(5) == RequestOutcome(0, 0, [])
    finally:
        committer.stop()
    assert committer.commits == 0



class SlowCommits:
    """Wraps a store whose commits are cheapest from 4 lines: its first commit waits until
    released, and every prepare_raw is recorded (lines, and whether that commit was waiting)."""

    efficient_commit_rows = 4
    reports_rows = True

    def __init__(self, store):
        self.store, self.committing, self.release = store, threading.Event(), threading.Event()
        self.batches: list[int] = []
        self.prepared_while_committing = threading.Event()

    def prepare_raw(self, batch, **kwargs):
        self.batches.append(batch.num_rows)
        if self.committing.is_set() and not self.release.is_set():
            self.prepared_while_committing.set()
        return self.store.prepare_raw(batch, **kwargs)

    def commit_raw(self, prepared, **kwargs):
        if not self.committing.is_set():
            self.committing.set()
            assert self.release.wait(30)
        return self.store.commit_raw(prepared, **kwargs)


def taken(committer: GroupCommitter) -> None:
    """Wait until the committer's parsing thread has taken every queued request."""
    for _ in range(3000):
        if committer._queue._queue.empty():
            return
        time.sleep(0.01)
    raise AssertionError("the parsing thread never took the queued requests")


def test_under_load_a_small_group_waits_for_a_cheap_commits_worth_and_no_more(store_of):
    store = SlowCommits(store_of())
    committer = GroupCommitter(lambda: store, source="api")
    try:
        first = committer.submit("/g/a", "s", framed(RECORDS[0:4]))  # a full group: commits are coming fast
        assert store.committing.wait(30)
        second = committer.submit("/g/a", "s", framed(RECORDS[4:6]))
        taken(committer)  # the parsing thread has it, and holds it: 2 lines, the committer busy
        assert store.batches == [4]
        third = committer.submit("/g/a", "s", framed(RECORDS[6:8]))  # 2 + 2: the group goes
        fourth = committer.submit("/g/a", "s", framed(RECORDS[8:10]))  # ... without this one
        store.release.set()
        outcomes = [future.result(30) for future in (first, second, third, fourth)]
    finally:
        committer.stop()
    assert store.batches == [4, 4, 2]
    assert outcomes == [RequestOutcome(4, 0, []), RequestOutcome(2, 0, []), RequestOutcome(2, 0, []),
                        RequestOutcome(2, 0, [])]
    assert store.store.execute("SELECT count(*) FROM events")[0][0] == 10


def test_under_light_load_a_small_group_is_parsed_while_the_one_before_commits(store_of):
    store = SlowCommits(store_of())
    committer = GroupCommitter(lambda: store, source="api")
    try:
        first = committer.submit("/g/a", "s", framed(RECORDS[0:2]))  # small: requests come slowly
        assert store.committing.wait(30)
        second = committer.submit("/g/a", "s", framed(RECORDS[2:4]))
        assert store.prepared_while_committing.wait(30)
        store.release.set()
        assert [first.result(30), second.result(30)] == [RequestOutcome(2, 0, [])] * 2
    finally:
        committer.stop()
    assert store.batches == [2, 2]
