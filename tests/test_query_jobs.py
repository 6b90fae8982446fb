"""Asynchronous queries: the registry (statuses, stop, limits, expiry) and the native start/poll API."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from dashcam.errors import NotFoundError, QuerySyntaxError
from dashcam.query_jobs import QueryJobs, TooManyQueriesError
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, generate_records
from dashcam.store.duckdb import DuckDBStore

RECORDS = list(generate_records(SampleSpec(records=120, seed=5)))


class GatedStore(DuckDBStore):
    """A DuckDB store whose queries wait until the test opens the gate, and are counted."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.executed = 0

    def execute(self, sql: str, *, interrupt=None):
        self.executed += 1
        assert self.gate.wait(10), "the test never opened the gate"
        return super().execute(sql, interrupt=interrupt)


# Hours of work for DuckDB: only an interrupt ends it within a test's lifetime.
ENDLESS_SQL = "SELECT count(*) FROM range(1000000000000) t(i) WHERE hash(i) % 7 = 1"


class EndlessStore(DuckDBStore):
    """A DuckDB store where every query is one that would run for hours, unless interrupted."""

    def execute(self, sql: str, *, interrupt=None):
        return super().execute(ENDLESS_SQL, interrupt=interrupt)


@pytest.fixture
def dashcam(tmp_path):
    with Dashcam.open(tmp_path) as opened:
        opened.store.write_records("g", "s", RECORDS, source="test")
        yield opened


@pytest.fixture
def gated(tmp_path):
    store = GatedStore(tmp_path)
    store.write_records("g", "s", RECORDS, source="test")
    yield Dashcam(store)
    store.gate.set()
    store.close()


def test_a_job_goes_from_scheduled_to_complete_with_the_rows_of_a_synchronous_query(dashcam):
    jobs = QueryJobs(dashcam)
    text = "stats count(*) as n by modelId | sort n desc, modelId"  # ties in a definite order
    job = jobs.wait(jobs.start(text).id, timeout=10)
    assert job.status == "Complete" and job.error is None and job.seconds >= 0
    assert job.rows == dashcam.query(text).rows and job.columns == ["modelId", "n"]
    assert job.statistics == {}  # only measured when asked for
    measured = jobs.wait(jobs.start("filter throttled = 1 | fields @ptr", statistics=True, pointers=True).id, 10)
    assert measured.statistics["recordsScanned"] == len(RECORDS)
    assert measured.statistics["recordsMatched"] == sum(r.get("errorCode") == "ThrottlingException" for r in RECORDS)
    assert [j.id for j in jobs.list()] == [measured.id, job.id]  # newest first
    assert jobs.list(status="Failed") == [] and jobs.list(log_group="g") == []  # started over all groups


def test_pointers_come_last_and_never_change_stats_results(dashcam):
    jobs = QueryJobs(dashcam)
    events = jobs.wait(jobs.start("fields modelId | sort @timestamp desc | limit 3 | dedup modelId",
                                  pointers=True).id, 10)
    assert events.columns == ["modelId", "@ptr"] and all(r["@ptr"].startswith("g:") for r in events.rows)
    shown = jobs.wait(jobs.start("fields @timestamp, requestId | display requestId", pointers=True).id, 10)
    assert shown.columns == ["requestId", "@ptr"]
    stats = jobs.wait(jobs.start("stats count(*) as n", pointers=True).id, 10)
    assert stats.columns == ["n"] and stats.rows == [{"n": len(RECORDS)}]


def test_malformed_queries_fail_at_start_and_engine_errors_fail_the_job(dashcam):
    jobs = QueryJobs(dashcam)
    with pytest.raises(QuerySyntaxError):
        jobs.start("stats count(*) by")
    failed = jobs.wait(jobs.start(r"filter @message =~ /a\Z/").id, 10)
    assert failed.status == "Failed" and "could not run" in str(failed.error) and failed.rows == []


def test_stopping_a_scheduled_job_means_it_never_runs_and_a_running_one_keeps_no_rows(gated):
    jobs = QueryJobs(gated, workers=1)
    running = jobs.start("stats count(*) as n")
    deadline = time.monotonic() + 5
    while running.status != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.005)
    waiting = jobs.start("stats count(*) as n")
    assert waiting.status == "Scheduled"
    assert jobs.stop(waiting.id) is True and jobs.stop(running.id) is True
    assert jobs.stop(running.id) is False  # already finished (cancelled)
    gated.store.gate.set()
    time.sleep(0.2)
    assert running.status == waiting.status == "Cancelled" and running.rows == [] and waiting.rows == []
    assert gated.store.executed == 1


def test_too_many_active_queries_are_refused(gated):
    jobs = QueryJobs(gated, workers=1, max_active=2)
    jobs.start("stats count(*)")
    jobs.start("stats count(*)")
    with pytest.raises(TooManyQueriesError):
        jobs.start("stats count(*)")
    gated.store.gate.set()


def test_finished_jobs_expire_by_age_and_by_count(dashcam):
    jobs = QueryJobs(dashcam, keep_seconds=0.05)
    job = jobs.wait(jobs.start("stats count(*)").id, 10)
    time.sleep(0.1)
    with pytest.raises(NotFoundError):
        jobs.get(job.id)
    jobs = QueryJobs(dashcam, max_finished=2)
    ids = [jobs.wait(jobs.start("stats count(*)").id, 10).id for _ in range(3)]
    assert [j.id for j in jobs.list()] == [ids[2], ids[1]]
    with pytest.raises(NotFoundError):
        jobs.get(ids[0])


def test_native_api_starts_and_polls_queries(server):
    server.dashcam.store.write_records("app", "s", RECORDS, source="test")
    body = {"query": "stats count(*) as n by operation | sort operation asc", "logGroups": ["app"]}
    started = httpx.post(f"{server.url}/api/v1/queries", json=body)
    assert started.status_code == 202, started.text
    query_id = started.json()["data"]["queryId"]
    deadline = time.monotonic() + 10
    while True:
        polled = httpx.get(f"{server.url}/api/v1/queries/{query_id}").json()["data"]
        if polled["status"] == "Complete":
            break
        assert polled["status"] in ("Scheduled", "Running") and time.monotonic() < deadline
        time.sleep(0.02)
    synchronous = httpx.post(f"{server.url}/api/v1/query", json=body).json()["data"]
    assert polled["rows"] == synchronous["rows"] and polled["columns"] == ["operation", "n"]
    assert polled["statistics"]["rows"] == len(synchronous["rows"])

    bad = httpx.post(f"{server.url}/api/v1/queries", json={"query": "stats count(*) by"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "QuerySyntaxError"
    missing = httpx.get(f"{server.url}/api/v1/queries/no-such-query")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFoundError"
    failing = httpx.post(f"{server.url}/api/v1/queries", json={"query": r"filter @message =~ /a\Z/"})
    failing_id = failing.json()["data"]["queryId"]
    for _ in range(500):
        result = httpx.get(f"{server.url}/api/v1/queries/{failing_id}").json()["data"]
        if result["status"] == "Failed":
            break
        time.sleep(0.02)
    assert result["status"] == "Failed" and result["error"]["code"] == "QueryExecutionError"
    assert "/api/v1/queries" in httpx.get(f"{server.url}/openapi.json").json()["paths"]


@pytest.fixture
def endless(tmp_path):
    store = EndlessStore(tmp_path)
    yield Dashcam(store)
    store.close()


def _running(job) -> None:
    deadline = time.monotonic() + 10
    while job.status != "Running":
        assert time.monotonic() < deadline, job.status
        time.sleep(0.005)


def test_stopping_a_running_job_interrupts_the_engine_and_frees_its_worker(endless):
    jobs = QueryJobs(endless, workers=1)
    running = jobs.start("stats count(*) as n")
    _running(running)
    time.sleep(0.2)  # well inside the engine
    assert jobs.stop(running.id) is True
    assert running.future.exception(timeout=60) is None  # the worker returned: the query ended
    assert running.status == "Cancelled" and running.rows == []


def test_a_job_past_its_time_limit_is_interrupted_and_reports_timeout(endless):
    jobs = QueryJobs(endless, workers=1, timeout_seconds=0.3)
    job = jobs.wait(jobs.start("stats count(*) as n").id, timeout=60)
    assert job.status == "Timeout" and job.rows == [] and job.done.is_set()
    assert "ran longer than the 0.3 s" in str(job.error)
    assert job.future.exception(timeout=60) is None
    assert jobs.stop(job.id) is False  # already finished
