"""Alarm actions (dashcam.alarms.actions) delivered to a real HTTP server and a real local program."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import sys
import textwrap
import time

import orjson
import pytest

from dashcam.alarms.actions import (
    ActionDispatcher, ActionSettings, ArnAction, CommandAction, SlackAction, WebhookAction, parse_action,
)
from dashcam.errors import InputError

MESSAGE = {"AlarmName": "throttles", "AlarmDescription": "Bedrock throttling", "NewStateValue": "ALARM",
           "OldStateValue": "OK", "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [4.0] was "
           "greater than the threshold (0.0)", "StateChangeTime": "2026-03-02T14:05:00.000+0000",
           "Region": "us-east-1", "Trigger": {"MetricName": "InvocationThrottles", "Threshold": 0.0}}


class Recorder:
    def __init__(self) -> None:
        self.attempts = []

    def __call__(self, attempt) -> None:
        self.attempts.append(attempt)


def dispatcher(tmp_path, environ=None, **options):
    settings = ActionSettings(tmp_path, http_timeout_s=5, command_timeout_s=options.pop("command_timeout_s", 10),
                              environ=environ if environ is not None else {"PATH": os.environ.get("PATH", "")})
    recorder = Recorder()
    return ActionDispatcher(settings, recorder, backoff_s=options.pop("backoff_s", 0.01), **options), recorder


def test_action_strings_choose_their_adapter():
    assert parse_action("https://hooks.example.com/x?a=1") == WebhookAction("https://hooks.example.com/x?a=1",
                                                                            "https://hooks.example.com/x?a=1")
    assert parse_action("http://127.0.0.1:9/h#secret=ops-2").secret_name == "ops-2"
    assert parse_action("http://127.0.0.1:9/h#secret=ops-2").url == "http://127.0.0.1:9/h"
    assert parse_action("slack+https://hooks.slack.com/services/T/B/C") == SlackAction(
        "slack+https://hooks.slack.com/services/T/B/C", "https://hooks.slack.com/services/T/B/C")
    assert parse_action("exec:notify.sh --to 'on call'") == CommandAction("exec:notify.sh --to 'on call'",
                                                                          "notify.sh", ("--to", "on call"))
    assert isinstance(parse_action("arn:aws:sns:us-east-1:123456789012:ops"), ArnAction)
    for bad in ("ftp://example.com", "https://", "exec:", "exec:/bin/sh", "exec:..", "slack+https://x.example/#secret=a",
                "https://x.example/#secret=a&secret=b", "https://x.example/#secret=", "arn:aws", "page the team"):
        with pytest.raises(InputError):
            parse_action(bad)


def test_a_webhook_gets_the_message_as_json(tmp_path, receiver):
    actions, recorder = dispatcher(tmp_path)
    try:
        actions.dispatch(MESSAGE, [f"{receiver.url}/hooks/a?team=ml"])
        assert actions.wait_idle(10)
    finally:
        actions.close()
    [request] = receiver.requests
    assert request.path == "/hooks/a?team=ml"
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.body) == MESSAGE
    assert "x-dashcam-signature" not in request.headers
    [attempt] = recorder.attempts
    assert attempt.outcome.succeeded and attempt.attempt == 1 and not attempt.will_retry
    assert attempt.alarm_name == "throttles" and attempt.outcome.detail == "HTTP 200"


@pytest.mark.parametrize("where", ["environment", "file"])
def test_a_signed_webhook_verifies_with_the_shared_secret(tmp_path, receiver, where):
    secret = "s3cr3t-" + where
    environ = {"DASHCAM_WEBHOOK_SECRET_OPS_TEAM": secret} if where == "environment" else {}
    if where == "file":
        (tmp_path / "webhook-secrets.json").write_bytes(orjson.dumps({"ops-team": secret}))
    actions, recorder = dispatcher(tmp_path, environ)
    try:
        before = int(time.time())
        actions.dispatch(MESSAGE, [f"{receiver.url}/signed#secret=ops-team"])
        assert actions.wait_idle(10)
    finally:
        actions.close()
    [request] = receiver.requests
    assert request.path == "/signed"  # the fragment stays on this side
    timestamp = request.headers["x-dashcam-timestamp"]
    assert before <= int(timestamp) <= time.time()
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-dashcam-signature"], f"sha256={expected}")
    assert recorder.attempts[0].outcome.succeeded


def test_a_missing_secret_fails_without_sending(tmp_path, receiver):
    actions, recorder = dispatcher(tmp_path)
    try:
        actions.dispatch(MESSAGE, [f"{receiver.url}/signed#secret=nowhere"])
        assert actions.wait_idle(10)
    finally:
        actions.close()
    assert receiver.requests == []
    [attempt] = recorder.attempts
    assert not attempt.outcome.succeeded and not attempt.will_retry
    assert "DASHCAM_WEBHOOK_SECRET_NOWHERE" in attempt.outcome.detail


def test_slack_gets_a_text_message(tmp_path, receiver):
    actions, _ = dispatcher(tmp_path)
    try:
        actions.dispatch(MESSAGE, [f"slack+{receiver.url}/services/T0/B0/xyz"])
        assert actions.wait_idle(10)
    finally:
        actions.close()
    [request] = receiver.requests
    body = orjson.loads(request.body)
    assert list(body) == ["text"]
    for part in ("*ALARM*", '"throttles"', "OK \u2192 ALARM", "Bedrock throttling", MESSAGE["NewStateReason"]):
        assert part in body["text"]


def test_a_failing_endpoint_is_retried_and_every_attempt_recorded(tmp_path, receiver):
    receiver.statuses["/flaky"] = [500, 503]
    receiver.statuses["/gone"] = [404]
    actions, recorder = dispatcher(tmp_path)
    try:
        actions.dispatch(MESSAGE, [f"{receiver.url}/flaky", f"{receiver.url}/gone"])
        assert actions.wait_idle(10)
    finally:
        actions.close()
    flaky = [a for a in recorder.attempts if a.action.endswith("/flaky")]
    assert [(a.attempt, a.outcome.succeeded, a.will_retry) for a in flaky] == [
        (1, False, True), (2, False, True), (3, True, False)]
    assert [a.outcome.detail.split(":")[0] for a in flaky] == ["HTTP 500", "HTTP 503", "HTTP 200"]
    gone = [a for a in recorder.attempts if a.action.endswith("/gone")]
    assert [(a.attempt, a.outcome.succeeded, a.will_retry) for a in gone] == [(1, False, False)]
    assert len([r for r in receiver.requests if r.path == "/flaky"]) == 3


def test_retries_give_up_after_the_last_attempt(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    actions, recorder = dispatcher(tmp_path, max_attempts=3)
    try:
        actions.dispatch(MESSAGE, [f"http://127.0.0.1:{port}/down"])
        assert actions.wait_idle(20)
    finally:
        actions.close()
    assert [(a.attempt, a.will_retry) for a in recorder.attempts] == [(1, True), (2, True), (3, False)]
    assert all("ConnectError" in a.outcome.detail for a in recorder.attempts)


def test_closing_abandons_waiting_retries_on_the_record(tmp_path, receiver):
    receiver.statuses["/later"] = [503]
    actions, recorder = dispatcher(tmp_path, backoff_s=60)
    actions.dispatch(MESSAGE, [f"{receiver.url}/later"])
    receiver.wait_for(1)
    deadline = time.monotonic() + 10
    while len(recorder.attempts) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    actions.close()
    assert [(a.attempt, a.outcome.succeeded, a.will_retry) for a in recorder.attempts] == [
        (1, False, True), (2, False, False)]
    assert recorder.attempts[1].outcome.detail == "dashcam stopped before this retry was made"
    assert actions.wait_idle(0)


def write_program(tmp_path, name: str, body: str) -> None:
    folder = tmp_path / "alarm-commands"
    folder.mkdir(exist_ok=True)
    program = folder / name
    program.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    program.chmod(0o755)


def test_a_local_command_gets_the_change_on_stdin_and_in_its_environment(tmp_path):
    out = tmp_path / "seen.json"
    write_program(tmp_path, "record.py", f"""
        import json, os, sys
        json.dump({{"stdin": json.load(sys.stdin), "argv": sys.argv[1:],
                   "env": {{k: v for k, v in os.environ.items() if k.startswith("DASHCAM_ALARM_")}}}},
                  open({str(out)!r}, "w"))
        """)
    actions, recorder = dispatcher(tmp_path)
    try:
        actions.dispatch(MESSAGE, ["exec:record.py --severity 'page now'"])
        assert actions.wait_idle(20)
    finally:
        actions.close()
    seen = orjson.loads(out.read_bytes())
    assert seen["stdin"] == MESSAGE
    assert seen["argv"] == ["--severity", "page now"]
    assert seen["env"] == {"DASHCAM_ALARM_NAME": "throttles", "DASHCAM_ALARM_STATE": "ALARM",
                           "DASHCAM_ALARM_OLD_STATE": "OK", "DASHCAM_ALARM_REASON": MESSAGE["NewStateReason"]}
    assert recorder.attempts[0].outcome.succeeded


def test_failing_missing_and_slow_commands_are_recorded(tmp_path):
    write_program(tmp_path, "fail.py", """
        import sys
        sys.stdin.read()
        print("pager service said no", file=sys.stderr)
        sys.exit(3)
        """)
    write_program(tmp_path, "slow.py", """
        import time
        time.sleep(30)
        """)
    actions, recorder = dispatcher(tmp_path, max_attempts=2, command_timeout_s=0.5)
    try:
        actions.dispatch(MESSAGE, ["exec:fail.py", "exec:absent.py", "exec:slow.py",
                                   "arn:aws:sns:us-east-1:123456789012:ops"])
        assert actions.wait_idle(30)
    finally:
        actions.close()
    by_action = {}
    for attempt in recorder.attempts:
        by_action.setdefault(attempt.action, []).append(attempt)
    assert [a.outcome.detail for a in by_action["exec:fail.py"]] == ["exit status 3: pager service said no"] * 2
    assert "no executable 'absent.py'" in by_action["exec:absent.py"][0].outcome.detail
    assert len(by_action["exec:absent.py"]) == 1
    assert "did not finish within 0.5 s" in by_action["exec:slow.py"][0].outcome.detail
    assert "CloudWatch action" in by_action["arn:aws:sns:us-east-1:123456789012:ops"][0].outcome.detail
    assert not any(a.outcome.succeeded for a in recorder.attempts)
