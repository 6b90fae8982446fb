"""The load driver against the real simulator: what the users counted is what the simulator saw."""

from __future__ import annotations

import pytest

from dashcam.simulate.load import LoadDriver, Stage, default_client_factory, summary_line
from dashcam.simulate.models import DEFAULT_MODELS
from dashcam.simulate.server import start_simulator

SONNET = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-lite-v1:0"


@pytest.fixture(scope="module")
def simulator():
    # A tight Sonnet quota so the busier stage is throttled; time runs 50x faster.
    models = [m.with_quota(requests_per_minute=20, max_concurrency=3) if m.model_id == SONNET else m
              for m in DEFAULT_MODELS]
    with start_simulator(seed=3, speed=50, models=models) as handle:
        yield handle


def test_every_call_is_counted_once_as_the_simulator_saw_it(simulator):
    before = simulator.stats()
    driver = LoadDriver(simulator.url, [Stage(2, 30), Stage(12, 30)], [(SONNET, 0.7), (NOVA, 0.3)],
                        seed=5, think_seconds=1.0, speed=50,
                        client_factory=default_client_factory(attempts=1))  # no retries: exact counts
    reports = driver.run()
    after = simulator.stats()

    def delta(key: str) -> int:
        return sum(after[m][key] - before.get(m, {}).get(key, 0) for m in after)

    assert [r.stage.users for r in reports] == [2, 12]
    assert all(r.calls > 0 for r in reports)
    assert sum(r.calls for r in reports) == delta("requests")
    assert sum(r.ok for r in reports) == delta("succeeded")
    assert sum(r.throttled for r in reports) == delta("throttled")
    assert reports[1].throttled > 0  # 12 users on a model that takes 3 at once
    assert all(len(r.latencies_ms) == r.ok for r in reports)  # every success reports the model's latency
    assert "12 users" in summary_line(reports[1])


class _RecordingClient:
    """Stands in for a bedrock-runtime client to see which requests a user makes."""

    def __init__(self, log: list) -> None:
        self.log = log

    def converse(self, **request):
        self.log.append((request["modelId"], request["messages"][0]["content"][0]["text"]))
        return {"metrics": {"latencyMs": 5}}

    def converse_stream(self, **request):
        self.log.append(("stream", request["modelId"], request["messages"][0]["content"][0]["text"]))
        return {"stream": [{"metadata": {"metrics": {"latencyMs": 7}}}]}


def test_a_user_sends_the_same_requests_under_the_same_seed():
    def requests(seed: int) -> list:
        log: list = []
        LoadDriver("http://unused", [Stage(1, 0.3)], [(SONNET, 0.5), (NOVA, 0.5)], seed=seed,
                   think_seconds=0.001, client_factory=lambda url: _RecordingClient(log)).run()
        return log

    first, again, other = requests(11), requests(11), requests(12)
    shortest = min(len(first), len(again), len(other))
    assert shortest > 5
    assert first[:shortest] == again[:shortest]  # how many calls fit depends on timing; which do not
    assert first[:shortest] != other[:shortest]


def test_a_load_needs_stages_and_models():
    with pytest.raises(ValueError, match="stage"):
        LoadDriver("http://127.0.0.1:9", [], [(NOVA, 1.0)])
    with pytest.raises(ValueError, match="model"):
        LoadDriver("http://127.0.0.1:9", [Stage(1, 1)], [])
