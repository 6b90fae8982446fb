"""The audit log: every admin action recorded with who did it, queryable, and tamper-evident."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import threading

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from click.testing import CliRunner

from dashcam.audit import AUDIT_FILE, AuditLog, acting_as, current_actor
from dashcam.cli import main
from dashcam.errors import ConfigError, NotFoundError
from dashcam.keys import KeyRing


def test_each_admin_action_over_the_apis_is_recorded_under_the_callers_key(secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    client = boto3.client("logs", endpoint_url=secured_server.url, region_name="us-east-1",
                          aws_access_key_id=admin.key_id, aws_secret_access_key=admin.secret,
                          config=Config(retries={"max_attempts": 1}))
    client.create_log_group(logGroupName="/app")
    client.put_retention_policy(logGroupName="/app", retentionInDays=30)
    client.delete_retention_policy(logGroupName="/app")
    with pytest.raises(ClientError):
        client.put_retention_policy(logGroupName="/missing", retentionInDays=7)
    policy = {"Name": "p", "Statement": [{"DataIdentifier": ["EmailAddress"],
                                          "Operation": {"Deidentify": {"MaskConfig": {}}}}]}
    client.put_data_protection_policy(logGroupIdentifier="/app", policyDocument=orjson.dumps(policy).decode())
    client.delete_data_protection_policy(logGroupIdentifier="/app")
    client.delete_log_group(logGroupName="/app")
    secured_server.keys.revoke(reader.key_id)

    local = current_actor()
    entries = [(e.actor, e.action, e.target, e.outcome) for e in AuditLog(secured_server.dashcam.data_dir).entries()]
    assert entries == [
        (local, "key.create", admin.key_id, "ok"),
        (local, "key.create", reader.key_id, "ok"),
        (admin.key_id, "retention.put", "/app", "ok"),
        (admin.key_id, "retention.delete", "/app", "ok"),
        (admin.key_id, "retention.put", "/missing", "failed"),
        (admin.key_id, "protection.put", "/app", "ok"),
        (admin.key_id, "protection.delete", "/app", "ok"),
        (admin.key_id, "log-group.delete", "/app", "ok"),
        (local, "key.revoke", reader.key_id, "ok"),
    ]
    assert AuditLog(secured_server.dashcam.data_dir).entries(action="retention.put")[0].details == {"days": 30}


def test_the_command_line_records_and_shows_actions_as_the_local_user(tmp_path):
    data = str(tmp_path / "data")
    runner = CliRunner()
    created = runner.invoke(main, ["--data", data, "keys", "create", "--role", "read"])
    key_id = created.output.split("key id:")[1].split()[0]
    assert runner.invoke(main, ["--data", data, "keys", "revoke", key_id]).exit_code == 0
    assert runner.invoke(main, ["--data", data, "keys", "revoke", "DKNOSUCHKEY"]).exit_code == 1
    assert runner.invoke(main, ["--data", data, "protect", "set", "--log-group", "/app", "--detectors", "email"]).exit_code == 0
    shown = runner.invoke(main, ["--data", data, "audit", "--format", "json"])
    assert shown.exit_code == 0
    entries = orjson.loads(shown.output)
    assert [(e["action"], e["target"], e["outcome"]) for e in entries] == [
        ("key.create", key_id, "ok"), ("key.revoke", key_id, "ok"), ("key.revoke", "DKNOSUCHKEY", "failed"),
        ("protection.put", "/app", "ok")]
    assert {e["actor"] for e in entries} == {f"local:{getpass.getuser()}"}
    only_keys = orjson.loads(runner.invoke(main, ["--data", data, "audit", "--action", "key.", "--limit", "1",
                                                  "--format", "json"]).output)
    assert [e["target"] for e in only_keys] == ["DKNOSUCHKEY"]
    table = runner.invoke(main, ["--data", data, "audit"]).output
    assert "protection.put" in table and "/app" in table


def test_the_hash_chain_shows_an_edited_or_removed_line(tmp_path):
    log = AuditLog(tmp_path)
    for n in range(5):
        log.record("key.create", f"K{n}")
    assert log.verify() == 5
    assert oct(os.stat(tmp_path / AUDIT_FILE).st_mode & 0o777) == "0o600"
    lines = (tmp_path / AUDIT_FILE).read_bytes().splitlines()
    edited = orjson.loads(lines[2])
    edited["target"] = "someone-else"
    (tmp_path / AUDIT_FILE).write_bytes(b"\n".join([*lines[:2], orjson.dumps(edited), *lines[3:]]) + b"\n")
    with pytest.raises(ConfigError, match="line 3"):
        log.verify()
    (tmp_path / AUDIT_FILE).write_bytes(b"\n".join([*lines[:1], *lines[2:]]) + b"\n")
    with pytest.raises(ConfigError, match="line 2"):
        log.verify()
    verified = CliRunner().invoke(main, ["--data", str(tmp_path), "audit", "--verify"])
    assert verified.exit_code == 2 and "line 2" in verified.output


def test_appends_from_threads_and_processes_keep_one_chain(tmp_path):
    log = AuditLog(tmp_path)

    def append(n: int) -> None:
        with acting_as(f"thread-{n}"):
            for i in range(20):
                AuditLog(tmp_path).record("unmask", f"/g{n}", details={"i": i})

    script = ("import sys; from dashcam.audit import AuditLog\n"
              "for i in range(20): AuditLog(sys.argv[1]).record('key.create', 'from-a-process')")
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert process.wait(60) == 0
    assert log.verify() == 4 * 20 + 20
    assert {e.actor for e in log.entries(action="unmask")} == {f"thread-{n}" for n in range(4)}


def test_key_actions_need_no_store_and_unknown_keys_are_still_refused(tmp_path):
    ring = KeyRing(tmp_path)
    with pytest.raises(NotFoundError):
        ring.revoke("DKNOPE")
    assert [(e.action, e.outcome) for e in AuditLog(tmp_path).entries()] == [("key.revoke", "failed")]
