"""Retention per log group, enforced by a sweep with an injected clock, on both engines; the
encrypted originals of protected groups expire with their events."""

from __future__ import annotations

import time

import pytest

from dashcam.errors import ConfigError
from dashcam.protect import Policy, ProtectedStore, Protection
from dashcam.store.base import RETENTION_DAYS
from dashcam.store.batch import EventBatchBuilder
from dashcam.store.retention import RetentionEnforcer

DAY = 86_400_000
# The injected "now", events placed relative to it. Far ahead of the wall clock: ClickHouse also
# keeps a TTL by the wall clock, which must not delete these events before the sweep under test.
NOW = (int(time.time()) // 86_400 + 1000) * DAY


def write_ages(store, group: str, ages_days: list[float], *, text: str = "event") -> None:
    """One event per age, ``age`` days before NOW."""
    builder = EventBatchBuilder()
    for n, age in enumerate(ages_days):
        ts = NOW - int(age * DAY)
        builder.add_record(group, "s", {"timestamp": ts, "modelId": "m", "operation": "Converse",
                                        "note": f"{text} {n} aged {age}"}, source="api")
    store.write_batch(builder.build())


def ages_left(store, group: str) -> list[float]:
    rows = store.execute(f"SELECT epoch_ms(ts) FROM events WHERE log_group = '{group}'" if store.dialect == "duckdb"
                         else f"SELECT toUnixTimestamp64Milli(ts) FROM events WHERE log_group = '{group}'")
    return sorted((NOW - int(ms)) / DAY for (ms,) in rows)


def test_expired_events_go_and_the_rest_stay_per_group(store_of):
    store = store_of()
    ages = [0, 0.5, 0.99, 1.01, 2.5, 3.5, 40, 400]
    for group in ("/one-day", "/three-days", "/forever"):
        write_ages(store, group, ages)
    store.set_retention("/one-day", 1)
    store.set_retention("/three-days", 3)
    enforcer = RetentionEnforcer(store, clock=lambda: NOW)
    assert enforcer.run_once() == 5 + 3
    assert ages_left(store, "/one-day") == [a for a in ages if a < 1]
    assert ages_left(store, "/three-days") == [a for a in ages if a < 3]
    assert ages_left(store, "/forever") == ages
    assert enforcer.run_once() == 0  # nothing more expired at the same instant
    assert [(g.name, g.events) for g in store.list_log_groups()] == [("/forever", 8), ("/one-day", 3),
                                                                     ("/three-days", 5)]


def test_time_moving_on_expires_more_and_removing_retention_keeps_the_rest(store_of):
    store = store_of()
    write_ages(store, "/g", [0, 2, 4, 6])
    store.set_retention("/g", 5)
    now = [NOW]
    enforcer = RetentionEnforcer(store, clock=lambda: now[0])
    assert enforcer.run_once() == 1
    now[0] += 2 * DAY  # two days later the events aged 4 and 2 are 6 and 4 days old
    assert enforcer.run_once() == 1
    assert ages_left(store, "/g") == [0, 2]  # ages as of NOW
    store.set_retention("/g", None)
    now[0] += 3650 * DAY
    assert enforcer.run_once() == 0 and len(ages_left(store, "/g")) == 2


def test_only_cloudwatch_day_values_are_accepted(store_of):
    store = store_of()
    store.create_log_group("/g")
    for days in RETENTION_DAYS:
        store.set_retention("/g", days)
    with pytest.raises(ConfigError, match="not one of"):
        store.set_retention("/g", 2)


def test_the_sweep_runs_in_the_background_until_stopped(store_of):
    store = store_of()
    write_ages(store, "/g", [0, 10])
    store.set_retention("/g", 1)
    enforcer = RetentionEnforcer(store, interval_s=0.05, clock=lambda: NOW).start()
    try:
        deadline = time.monotonic() + 30
        while ages_left(store, "/g") != [0]:
            assert time.monotonic() < deadline, "the background sweep never deleted the expired event"
            time.sleep(0.05)
        write_ages(store, "/g", [20], text="arrived later")
        while ages_left(store, "/g") != [0]:
            assert time.monotonic() < deadline, "the sweep did not run again"
            time.sleep(0.05)
    finally:
        enforcer.stop()
    assert enforcer.sweeps >= 2 and enforcer.deleted == 2


def test_originals_of_protected_groups_expire_with_their_events(store_of, tmp_path):
    protection = Protection(tmp_path / "data")
    protection.policies.put(Policy("/p", detectors=("email",), keep_original=True))
    store = ProtectedStore(store_of(), protection)
    write_ages(store, "/p", [0, 5], text="from mo@example.com")
    assert protection.vault.count() == 2
    store.set_retention("/p", 3)
    assert RetentionEnforcer(store, clock=lambda: NOW).run_once() == 1
    assert protection.vault.count() == 1
    store.delete_log_group("/p")
    assert protection.vault.count() == 0
    protection.close()
