"""Running the gateway: ``dashcam gateway`` as a process, AWS credentials from the standard chain."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from dashcam.errors import ConfigError
from dashcam.gateway.config import load_config
from dashcam.gateway.server import build_gateway
from dashcam.service import Dashcam

NOVA = "amazon.nova-lite-v1:0"


def _no_aws_anywhere(monkeypatch, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_credentials_and_region_come_from_the_standard_chain(monkeypatch, tmp_path):
    _no_aws_anywhere(monkeypatch, tmp_path)
    with pytest.raises(ConfigError, match="--bedrock-upstream none"):
        build_gateway(load_config(None, env={}), tmp_path, record=False)
    openai_only = build_gateway(load_config(None, env={}, bedrock_upstream="none"), tmp_path, record=False)
    assert openai_only.upstreams.credentials is None

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    gateway = build_gateway(load_config(None, env={}), tmp_path, record=False)
    assert gateway.upstreams.credentials.get_frozen_credentials().access_key == "AKIDFROMENV"
    assert gateway.upstreams.region == "ap-southeast-2"
    assert gateway.upstreams.bedrock_url == "https://bedrock-runtime.ap-southeast-2.amazonaws.com"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_forwards_records_into_its_data_directory_and_flushes_on_exit(
        tmp_path, simulator, bedrock_client):
    port = _free_port()
    data = tmp_path / "data"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDGATEWAY", "AWS_SECRET_ACCESS_KEY": "gateway-secret"}
    env.pop("DASHCAM_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dashcam.cli", "--data", str(data), "gateway", "--port", str(port),
         "--bedrock-upstream", simulator.url, "--openai-upstream", "none", "--limit", f"{NOVA}=600:"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.1)
        answer = bedrock_client(url).converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert "dashcam_gateway_shaping_in_flight" in httpx.get(url + "/metrics").text
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    with Dashcam.open(data) as stored:
        rows = stored.query("fields operation, modelId, output.outputTokenCount, source").rows
    assert rows == [{"operation": "Converse", "modelId": NOVA, "source": "gateway",
                     "output.outputTokenCount": answer["usage"]["outputTokens"]}]


def test_the_command_reports_bad_settings_with_exit_code_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dashcam.cli", "--data", str(tmp_path), "gateway",
                             "--limit", "model=fast"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--limit 'model=fast'" in result.stderr
