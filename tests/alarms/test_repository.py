"""alarms.sqlite (dashcam.alarms.repository): round trips, state changes, history, concurrent use."""

from __future__ import annotations

import stat
import threading

import orjson
import pytest

from dashcam.alarms.model import ALARM, INSUFFICIENT_DATA, OK, parse_definition
from dashcam.alarms.repository import INITIAL_REASON, AlarmRepository, HistoryItem
from dashcam.errors import NotFoundError

T0 = 1_772_460_000_000


def definition(name: str = "throttles", threshold: float = 0, **members):
    params = {"AlarmName": name, "MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock",
              "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": threshold,
              "ComparisonOperator": "GreaterThanThreshold", "AlarmActions": ["https://example.com/hook"]}
    params.update(members)
    return parse_definition(params)


@pytest.fixture
def repo(tmp_path):
    repository = AlarmRepository.in_directory(tmp_path)
    yield repository
    repository.close()


def test_a_new_alarm_round_trips_and_starts_unchecked(repo, tmp_path):
    stored, replaced = repo.put(definition(), T0)
    assert replaced is None
    assert stored.definition == definition() and stored.version == 1
    assert (stored.state.value, stored.state.reason, stored.state.updated_ms) == (INSUFFICIENT_DATA, INITIAL_REASON, T0)
    assert repo.get("throttles") == stored
    reopened = AlarmRepository.in_directory(tmp_path)
    try:
        assert reopened.get("throttles") == stored
    finally:
        reopened.close()
    assert stat.S_IMODE((tmp_path / "alarms.sqlite").stat().st_mode) == 0o600
    [created] = repo.history(name="throttles")
    assert (created.item_type, created.summary) == ("ConfigurationUpdate", 'Alarm "throttles" created')
    assert orjson.loads(created.data)["createdAlarm"] == definition().to_params()


def test_replacing_keeps_the_state_and_records_both_versions(repo):
    repo.put(definition(), T0)
    repo.change_state("throttles", ALARM, "because", None, T0 + 1)
    stored, replaced = repo.put(definition(threshold=5), T0 + 2)
    assert replaced.definition.threshold == 0 and stored.definition.threshold == 5
    assert stored.version == 2 and stored.state.value == ALARM and stored.configuration_updated_ms == T0 + 2
    update = repo.history(name="throttles", item_type="ConfigurationUpdate")[0]
    data = orjson.loads(update.data)
    assert (data["type"], data["originalAlarm"]["Threshold"], data["updatedAlarm"]["Threshold"]) == ("Update", 0, 5)


def test_listing_filters(repo):
    for name in ("api_5xx", "api%latency", "apiary", "batch"):
        repo.put(definition(name), T0)
    repo.change_state("batch", OK, "fine", None, T0)
    assert [a.name for a in repo.list()] == ["api%latency", "api_5xx", "apiary", "batch"]
    assert [a.name for a in repo.list(prefix="api_")] == ["api_5xx"]  # no LIKE wildcards
    assert [a.name for a in repo.list(prefix="api%")] == ["api%latency"]
    assert [a.name for a in repo.list(names=["batch", "nope"])] == ["batch"]
    assert [a.name for a in repo.list(state=OK)] == ["batch"]
    assert repo.list(names=[]) == []


def test_delete_is_all_or_nothing_and_history_stays(repo):
    repo.put(definition("a"), T0)
    repo.put(definition("b"), T0)
    with pytest.raises(NotFoundError, match="'c'"):
        repo.delete(["a", "c"], T0 + 1)
    assert [a.name for a in repo.list()] == ["a", "b"]
    repo.delete(["a", "b"], T0 + 1)
    assert repo.list() == []
    assert [h.summary for h in repo.history(name="a")] == ['Alarm "a" deleted', 'Alarm "a" created']


def test_a_state_change_applies_only_to_what_was_evaluated(repo):
    repo.put(definition(), T0)
    assert repo.change_state("throttles", ALARM, "r", None, T0 + 1, expect_version=2,
                             expect_state=INSUFFICIENT_DATA) is None  # a newer definition was evaluated
    assert repo.change_state("throttles", ALARM, "r", None, T0 + 1, expect_version=1, expect_state=OK) is None
    assert repo.change_state("gone", ALARM, "r", None, T0 + 1) is None
    after, old = repo.change_state("throttles", ALARM, "Threshold Crossed", '{"a": 1}', T0 + 1, expect_version=1,
                                   expect_state=INSUFFICIENT_DATA, value=3.0)
    assert old.value == INSUFFICIENT_DATA
    assert (after.state.value, after.state.transitioned_ms, after.state.last_value) == (ALARM, T0 + 1, 3.0)
    [update] = repo.history(name="throttles", item_type="StateUpdate")
    assert update.summary == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    data = orjson.loads(update.data)
    assert data["oldState"] == {"stateValue": INSUFFICIENT_DATA, "stateReason": INITIAL_REASON}
    assert data["newState"] == {"stateValue": ALARM, "stateReason": "Threshold Crossed", "stateReasonData": {"a": 1}}
    # Same value again: the reason is updated, the transition time and history are not.
    same, _ = repo.change_state("throttles", ALARM, "again", None, T0 + 5)
    assert (same.state.reason, same.state.updated_ms, same.state.transitioned_ms) == ("again", T0 + 5, T0 + 1)
    assert len(repo.history(name="throttles", item_type="StateUpdate")) == 1


def test_unchanged_evaluations_are_noted(repo):
    repo.put(definition("a"), T0)
    repo.put(definition("b"), T0)
    repo.note_evaluations([("a", T0 + 60_000, 4.0), ("b", T0 + 60_000, None), ("gone", T0, 1.0)])
    a, b = repo.list()
    assert (a.state.last_evaluated_ms, a.state.last_value) == (T0 + 60_000, 4.0)
    assert (b.state.last_evaluated_ms, b.state.last_value) == (T0 + 60_000, None)


def test_history_order_paging_range_and_pruning(repo):
    for i in range(7):
        repo.add_history(HistoryItem("x", T0 + i * 1000, "Action", f"item {i}", "{}"))
    repo.add_history(HistoryItem("y", T0, "Action", "other alarm", "{}"))
    newest = [h.summary for h in repo.history(name="x", limit=3)]
    assert newest == ["item 6", "item 5", "item 4"]
    assert [h.summary for h in repo.history(name="x", limit=3, offset=3)] == ["item 3", "item 2", "item 1"]
    assert [h.summary for h in repo.history(name="x", ascending=True, limit=2)] == ["item 0", "item 1"]
    assert [h.summary for h in repo.history(name="x", start_ms=T0 + 2000, end_ms=T0 + 4000)] == ["item 3", "item 2"]
    assert len(repo.history()) == 8
    assert repo.prune_history(T0 + 30 * 86_400_000 + 3500) == 5  # items 0-3 and y are older than 30 days
    assert [h.summary for h in repo.history()] == ["item 6", "item 5", "item 4"]


def test_threads_and_a_second_connection_share_the_file(repo, tmp_path):
    names = [f"alarm-{i}" for i in range(8)]
    for name in names:
        repo.put(definition(name), T0)
    other = AlarmRepository.in_directory(tmp_path)  # as the CLI would, while the server runs
    errors: list[BaseException] = []

    def flip(name: str, use) -> None:
        try:
            state = INSUFFICIENT_DATA
            for i in range(25):
                new = ALARM if state != ALARM else OK
                assert use.change_state(name, new, f"flip {i}", None, T0 + i, expect_state=state) is not None
                state = new
                use.add_history(HistoryItem(name, T0 + i, "Action", "sent", "{}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(name, repo if i % 2 else other)) for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert errors == []
    for name in names:
        assert len(repo.history(name=name, item_type="StateUpdate", limit=1000)) == 25
        assert len(repo.history(name=name, item_type="Action", limit=1000)) == 25
        assert repo.get(name).state.value == ALARM  # 25 flips from INSUFFICIENT_DATA end in ALARM
