"""Asynchronous queries with ``unmask()``: checked when started, originals swapped in when they
finish (audited as the key that started them, from the worker thread), and their rows readable
only by those who may unmask them."""

from __future__ import annotations

import pytest

from dashcam.audit import AuditLog
from dashcam.errors import ForbiddenError
from dashcam.keys import Principal
from dashcam.protect.policy import Policy
from dashcam.query_jobs import QueryJobs
from dashcam.service import Dashcam

MAIL = "kim.private@example.com"
TEXT = "fields @log, unmask(@message) as original, @message"


def _record(group: str) -> dict:
    return {"timestamp": "2026-03-02T10:00:00Z", "operation": "Converse", "modelId": "m", "requestId": group,
            "requestMetadata": {"user": MAIL}}


@pytest.fixture
def jobs(tmp_path):
    with Dashcam.open(tmp_path) as dashcam:
        for group in ("/a", "/b"):
            dashcam.protection.policies.put(Policy(group, detectors=("email",), keep_original=True))
            dashcam.store.write_records(group, "s", [_record(group)], source="test")
        registry = QueryJobs(dashcam)
        yield registry
        registry.close()


def test_a_job_started_by_an_admin_shows_originals_and_is_audited_as_that_admin(jobs):
    admin = Principal("DKADMIN", "admin")
    job = jobs.wait(jobs.start(TEXT, principal=admin).id, timeout=10)
    assert job.status == "Complete" and job.unmasked_groups == ("/a", "/b")
    assert all(MAIL in row["original"] and MAIL not in row["@message"] for row in job.rows)
    [entry] = AuditLog(jobs.dashcam.data_dir).entries(action="unmask")
    assert (entry.actor, entry.outcome, entry.target, entry.details["found"]) == ("DKADMIN", "ok", "/a,/b", 2)

    job.require_readable(admin)
    job.require_readable(Principal("DKOTHER", "admin", "/*"))
    for other in (Principal("DKREAD", "read"), Principal("DKA", "admin", "/a"), None):
        with pytest.raises(ForbiddenError, match="shows unmasked data"):
            job.require_readable(other)
    plain = jobs.wait(jobs.start("fields @message").id, timeout=10)
    plain.require_readable(Principal("DKREAD", "read"))  # nothing unmasked: the usual rules apply


def test_a_job_is_refused_at_start_or_fails_without_showing_anything(jobs):
    with pytest.raises(ForbiddenError, match="unmask needs the admin role"):
        jobs.start(TEXT, principal=Principal("DKREAD", "read"))
    with pytest.raises(ForbiddenError, match="on log group '/b'"):
        jobs.start(TEXT, log_groups=["/a", "/b"], principal=Principal("DKA", "admin", "/a"))
    # Over all groups, the rows reveal a group the key may not unmask: the job fails, rows withheld.
    job = jobs.wait(jobs.start(TEXT, principal=Principal("DKA", "admin", "/a")).id, timeout=10)
    assert job.status == "Failed" and isinstance(job.error, ForbiddenError) and job.rows == []
    outcomes = [(e.actor, e.outcome) for e in AuditLog(jobs.dashcam.data_dir).entries(action="unmask")]
    assert outcomes == [("DKREAD", "denied"), ("DKA", "denied"), ("DKA", "denied")]
