"""Starting and stopping the simulator, its stats, and ``dashcam simulate``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.simulate.server import start_simulator

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"


def _ask(client, model_id: str, text: str = "hi") -> dict:
    return client.converse(modelId=model_id, messages=[{"role": "user", "content": [{"text": text}]}])


def test_a_handle_serves_until_stopped(bedrock_client):
    with start_simulator(speed=1000) as sim:
        assert sim.url.startswith("http://127.0.0.1:") and sim.openai_url == sim.url + "/v1"
        _ask(bedrock_client(sim.url), HAIKU)
    with pytest.raises(httpx.TransportError):
        httpx.get(sim.url + "/v1/models", headers={"Authorization": "Bearer x"}, timeout=2)


def test_stats_count_per_model_and_operation(simulator, bedrock):
    for text in ("a", "b"):
        _ask(bedrock, HAIKU, text)
    list(bedrock.converse_stream(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "c"}]}])["stream"])
    with pytest.raises(ClientError):
        _ask(bedrock, NOVA, "#simulate:ServiceUnavailableException")
    stats = simulator.stats()
    assert stats[HAIKU]["operations"] == {"Converse": 2} and stats[HAIKU]["succeeded"] == 2
    assert stats[NOVA]["requests"] == 2 and stats[NOVA]["errors"] == {"ServiceUnavailableException": 1}
    assert stats[NOVA]["operations"] == {"ConverseStream": 1, "Converse": 1}


def test_unknown_routes_answer_like_aws(simulator):
    response = httpx.post(simulator.url + "/nothing/here", headers={"Authorization": "x"})
    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert response.headers["x-amzn-RequestId"]
    openai_style = httpx.get(simulator.url + "/v1/nothing")
    assert openai_style.status_code == 404 and openai_style.json()["error"]["code"] == "unknown_url"


def test_the_cli_command_serves_the_simulator(bedrock_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "dashcam.cli", "simulate", "--port", str(port), "--seed", "3",
                                "--speed", "500"], stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:  # wait until it listens
            try:
                httpx.get(url + "/v1/models", headers={"Authorization": "Bearer x"}, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        served = _ask(bedrock_client(url), HAIKU)
        with start_simulator(seed=3, speed=500) as same_seed:
            assert _ask(bedrock_client(same_seed.url), HAIKU)["output"] == served["output"]
    finally:
        process.terminate()
        process.wait(10)
    assert b"seed 3" in process.stderr.read()


def test_the_cli_refuses_a_bad_speed():
    result = CliRunner().invoke(main, ["simulate", "--speed", "0"])
    assert result.exit_code == 2 and "--speed" in result.output


def test_quota_overrides_change_only_the_named_fields():
    from dashcam.simulate.models import DEFAULT_MODELS
    from dashcam.simulate.server import with_quotas

    before = {m.model_id: m.quota for m in DEFAULT_MODELS}
    after = {m.model_id: m.quota for m in with_quotas([f"{NOVA}=7,,3"])}
    assert after[NOVA].requests_per_minute == 7 and after[NOVA].max_concurrency == 3
    assert after[NOVA].tokens_per_minute == before[NOVA].tokens_per_minute
    assert {k: v for k, v in after.items() if k != NOVA} == {k: v for k, v in before.items() if k != NOVA}


@pytest.mark.parametrize("override", ["nonsense", "no.such-model=1,2,3", f"{NOVA}=1,2", f"{NOVA}=x,2,3",
                                      f"{NOVA}=0,2,3"])
def test_the_cli_refuses_bad_quota_overrides(override):
    result = CliRunner().invoke(main, ["simulate", "--quota", override])
    assert result.exit_code == 2 and "--quota" in result.output
