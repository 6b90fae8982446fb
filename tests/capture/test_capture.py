"""The capture API (instrument / capture / uninstrument / stats): with the server down, at exit,
after fork, into a data directory, and what ``import dashcam`` costs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import openai
import pytest

import dashcam
import dashcam.capture
from dashcam.capture import state
from dashcam.errors import ConfigError
from dashcam.service import Dashcam

from .conftest import GPT, NOVA, delivered
from .test_botocore_hooks import bedrock, user


def application(simulator) -> list[str]:
    """A small application's model calls; returns the answers it got."""
    client = bedrock(simulator)
    chat = openai.OpenAI(base_url=simulator.openai_url, api_key="sk-test")
    answers = []
    for i in range(6):
        answer = client.converse(modelId=NOVA, messages=user(f"question {i}"))
        answers.append(answer["output"]["message"]["content"][0]["text"])
        completion = chat.chat.completions.create(model=GPT, messages=[{"role": "user", "content": f"question {i}"}])
        answers.append(completion.choices[0].message.content)
    return answers


def test_with_the_server_down_the_application_is_unaffected_and_drops_are_counted(simulator, capture_session):
    expected = application(simulator)
    # The batcher waits a minute before sending and the queue holds 5: most records find it full.
    capture_session(url="http://127.0.0.1:9", queue_size=5, flush_interval=60, send_attempts=1, exit_timeout=1)
    assert application(simulator) == expected
    stats = dashcam.uninstrument(timeout=1)
    assert stats.captured == len(expected) == stats.dropped
    assert stats.queue_full == len(expected) - 5 and stats.sent == 0 and stats.pending == 0
    assert "ConnectError" in stats.last_error


# Instrumented before boto3 is imported: the hooks go in when botocore arrives.
SCRIPT_PREAMBLE = """
import os, sys
import dashcam

url, key, endpoint = sys.argv[1:4]
dashcam.instrument(url=url, key=key, flush_interval=60)  # nothing is sent before exit
assert "botocore" not in sys.modules and "openai" not in sys.modules
import boto3
import openai

client = boto3.client("bedrock-runtime", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="a", aws_secret_access_key="b")

def ask(text):
    client.converse(modelId="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": [{"text": text}]}])
"""


def run_script(body: str, server, simulator) -> subprocess.CompletedProcess:
    key = server.keys.create("ingest")
    code = SCRIPT_PREAMBLE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code, server.url, key.bearer, simulator.url],
                          capture_output=True, text=True, timeout=120)


def test_pending_records_are_flushed_at_exit(simulator, secured_server):
    done = run_script("""
        for i in range(5):
            ask(f"exit {i}")
        openai.OpenAI(base_url=endpoint + "/v1", api_key="sk").embeddings.create(
            model="text-embedding-3-small", input="at exit")
        print(dashcam.capture.stats().pending)
    """, secured_server, simulator)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6"]
    rows = secured_server.dashcam.query("stats count(*) as n by provider, source | sort provider asc",
                                        log_groups=["/dashcam/capture"]).rows
    assert rows == [{"provider": "aws.bedrock", "source": "sdk", "n": 5}, {"provider": "openai", "source": "sdk", "n": 1}]


def test_a_forked_worker_ships_its_own_records(simulator, secured_server):
    done = run_script("""
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: the child only makes calls
        ask("parent, before fork")
        pid = os.fork()
        if pid == 0:
            ask("child")
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        ask("parent, after fork")
        print(os.waitstatus_to_exitcode(status))
    """, secured_server, simulator)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]
    rows = secured_server.dashcam.query("stats count(*) as n, count_distinct(requestId) as ids",
                                        log_groups=["/dashcam/capture"]).rows
    assert rows == [{"n": 3, "ids": 3}]


def test_capture_into_a_data_directory(simulator, capture_session, tmp_path):
    data = tmp_path / "local-data"
    capture_session(data_dir=str(data), app="local-app")
    client = bedrock(simulator)
    answer = client.converse(modelId=NOVA, messages=user("write it locally"))
    dashcam.uninstrument(timeout=30)
    with Dashcam.open(data) as local:
        rows = local.query("fields requestId, app, source, output.outputTokenCount",
                           log_groups=["/dashcam/capture"]).rows
    assert rows == [{"requestId": answer["ResponseMetadata"]["RequestId"], "app": "local-app", "source": "sdk",
                     "output.outputTokenCount": answer["usage"]["outputTokens"]}]


def test_settings_from_the_environment(simulator, secured_server, capture_session, monkeypatch):
    key = secured_server.keys.create("ingest")
    monkeypatch.setenv("DASHCAM_URL", secured_server.url)
    monkeypatch.setenv("DASHCAM_KEY", key.bearer)
    monkeypatch.setenv("DASHCAM_APP", "from-env")
    monkeypatch.setenv("DASHCAM_CAPTURE_BODY", "off")
    settings = capture_session()
    assert (settings.url, settings.body, dict(settings.labels)) == (secured_server.url, "off", {"app": "from-env"})
    bedrock(simulator).converse(modelId=NOVA, messages=user("configured by env"))
    (row,) = delivered(secured_server, "display app, @message")
    assert row["app"] == "from-env" and "configured by env" not in row["@message"]


def test_bad_settings_are_refused_at_start_up():
    with pytest.raises(ConfigError, match="body mode 'full'"):
        dashcam.instrument(url="http://127.0.0.1:9", body="full")
    with pytest.raises(ConfigError, match="unknown capture setting"):
        dashcam.instrument(urll="http://127.0.0.1:9")
    assert state.ACTIVE is None  # nothing started


def test_import_dashcam_stays_light():
    code = ("import sys, dashcam; "
            "print(sorted(m for m in ('dashcam.capture', 'botocore', 'openai', 'httpx', 'orjson') if m in sys.modules)); "
            "dashcam.instrument; print('dashcam.capture' in sys.modules, callable(dashcam.capture))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True True"]
