"""``dashcam query`` with ``unmask()``: the command line acts as an admin, so it shows the kept
originals, audited as ``local:<user>`` like ``dashcam unmask``."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from dashcam.audit import AuditLog, current_actor
from dashcam.cli import main

RECORD = {"timestamp": "2026-03-02T10:00:00Z", "operation": "Converse", "modelId": "m",
          "requestMetadata": {"userId": "pat@example.com"},
          "input": {"inputTokenCount": 5, "inputBodyJson": {"messages": [{"role": "user", "content": [
              {"text": "write to pat@example.com"}]}]}}}


def run(data, *args: str):
    return CliRunner().invoke(main, ["--data", str(data), *args])


def test_the_query_command_unmasks_as_the_local_admin_and_is_audited(tmp_path):
    data = tmp_path / "data"
    assert run(data, "protect", "set", "--log-group", "/app", "--detectors", "email", "--keep-original").exit_code == 0
    logs = tmp_path / "logs.jsonl"
    logs.write_bytes(orjson.dumps(RECORD) + b"\n")
    assert run(data, "import", "--log-group", "/app", str(logs)).exit_code == 0

    text = "fields unmask(@message) as original, unmask(userId) as user, userId"
    result = run(data, "query", "--format", "json", text)
    assert result.exit_code == 0, result.output
    [row] = orjson.loads(result.output)
    assert orjson.loads(row["original"]) == RECORD
    assert (row["user"], row["userId"]) == ("pat@example.com", "****")
    [entry] = AuditLog(data).entries(action="unmask")
    assert (entry.actor, entry.outcome, entry.target, entry.details["found"]) == (current_actor(), "ok", "/app", 1)

    misuse = run(data, "query", "fields unmask(@message) as o | sort o")
    assert misuse.exit_code == 2 and "whole column of `fields`" in misuse.output
