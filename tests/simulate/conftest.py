"""Fixtures for the model simulator's tests: running simulators and real clients pointed at them.

pytest runs with --import-mode=importlib, so helpers are handed out as fixtures, not imported.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from dashcam.simulate.models import ModelSpec, Quota
from dashcam.simulate.server import start_simulator

FAST = 1000.0  # latencies and quota windows 1000x shorter: a 2 s answer takes 2 ms


def _tokens_by_rule(text: str) -> int:
    """The documented tokenization rule, computed independently of the simulator's regex: every run
    of word characters costs ceil(length / 4) tokens, every other non-space character one."""
    count = run = 0
    for ch in text + " ":
        if ch.isalnum() or ch == "_":
            run += 1
            continue
        count += -(-run // 4)
        run = 0
        if not ch.isspace():
            count += 1
    return count


def _bedrock_client(url: str):
    return boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDSIMULATOR", aws_secret_access_key="secret",
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _quick_model(model_id: str, family: str = "nova", *, rpm: int = 10_000, tpm: int = 10_000_000,
                 concurrency: int = 1_000, first_token_ms: float = 5.0, **kwargs) -> ModelSpec:
    return ModelSpec(model_id, family, Quota(rpm, tpm, concurrency), first_token_ms, 0.05, 40, **kwargs)


@pytest.fixture(scope="session")
def tokens_by_rule():
    """count(text) under the documented rule, written independently of the simulator."""
    return _tokens_by_rule


@pytest.fixture
def bedrock_client():
    """make(url): the real boto3 bedrock-runtime client on ``url`` (dummy credentials, no retries)."""
    return _bedrock_client


@pytest.fixture
def quick_model():
    """make(model_id, family, rpm=, tpm=, concurrency=, first_token_ms=, ...): a fast model with given quotas."""
    return _quick_model


@pytest.fixture
def start_sim():
    """start(**kwargs): a simulator (``start_simulator`` arguments, speed 1000 by default), stopped after the test."""
    started = []

    def start(**kwargs):
        kwargs.setdefault("speed", FAST)
        handle = start_simulator(**kwargs)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def simulator(start_sim):
    """The default catalog at 1000x speed, seed 7."""
    return start_sim(seed=7)


@pytest.fixture
def bedrock(simulator):
    """A boto3 bedrock-runtime client on the ``simulator`` fixture."""
    return _bedrock_client(simulator.url)
