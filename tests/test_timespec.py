"""Points in time as people type them (``parse_time``) and dashcam's one timestamp format (``format_ms``)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from dashcam.errors import ConfigError
from dashcam.timespec import format_ms, parse_time

NOW = 1_772_460_000_000  # 2026-03-02T14:00:00Z
H = 3_600_000


@pytest.mark.parametrize("text, expected", [
    ("2026-03-02T14:00:00Z", NOW),
    ("2026-03-02T14:00:00.250Z", NOW + 250),
    ("2026-03-02T14:00:00+02:00", NOW - 2 * H),
    ("2026-03-02T14:00:00-05:30", NOW + 5 * H + 30 * 60_000),
    ("2026-03-02T14:00:00", NOW),  # no zone: UTC
    ("2026-03-02 14:00", NOW),
    ("2026-03-02", NOW - 14 * H),  # date only: UTC midnight
    ("1772460000", NOW),  # epoch seconds
    ("1772460000123", NOW + 123),  # epoch milliseconds
    ("0", 0),
    ("  2026-03-02T14:00:00Z  ", NOW),
])
def test_absolute_forms(text, expected):
    assert parse_time(text, now_ms=NOW) == expected
    assert parse_time(text, now_ms=NOW + 12345) == expected  # absolute: independent of now


@pytest.mark.parametrize("text, before_now", [
    ("now", 0),
    ("NOW", 0),
    ("15m", 15 * 60_000),
    ("1h", H),
    ("7d", 7 * 24 * H),
    ("2w", 14 * 24 * H),
    ("1h ago", H),
    ("30s", 30_000),
    ("500ms", 500),
    ("90min", 90 * 60_000),
    ("3 days ago", 3 * 24 * H),
    ("1.5h", 3 * H // 2),
    (" 2H ", 2 * H),
])
def test_relative_forms(text, before_now):
    assert parse_time(text, now_ms=NOW) == NOW - before_now


def test_relative_forms_use_the_clock_when_no_now_is_given():
    before = int(time.time() * 1000)
    value = parse_time("1h")
    after = int(time.time() * 1000)
    assert before - H <= value <= after - H


@pytest.mark.parametrize("text", ["", "garbage", "yesterday", "next tuesday", "1x", "h1", "-5", "1e3",
                                  "2026-13-01", "2026-03-02T25:00:00Z", "1h from now", "ago"])
def test_garbage_is_a_clear_config_error(text):
    with pytest.raises(ConfigError) as info:
        parse_time(text, now_ms=NOW)
    message = str(info.value)
    assert repr(text) in message
    assert "ISO-8601" in message and "1h" in message


@pytest.mark.parametrize("text, before_now", [("2 hours ago", 2 * H), ("1 hour", H), ("5 minutes", 300_000)])
def test_relative_forms_with_spelled_out_units(text, before_now):
    assert parse_time(text, now_ms=NOW) == NOW - before_now


def test_iso_milliseconds_are_exact():
    # 2004-03-15T07:55:47.472Z is 1079337347472 ms; float(...) * 1000 gives 1079337347471.9999
    assert parse_time("2004-03-15T07:55:47.472Z") == 1_079_337_347_472
    assert parse_time("2039-03-08T19:46:13.411Z") == 2_183_226_373_411


@pytest.mark.parametrize("ms, text", [
    (0, "1970-01-01 00:00:00.000"),
    (NOW, "2026-03-02 14:00:00.000"),
    (NOW + 7, "2026-03-02 14:00:00.007"),
    (NOW + 999, "2026-03-02 14:00:00.999"),
    (1_079_337_347_472, "2004-03-15 07:55:47.472"),
    (-1, "1969-12-31 23:59:59.999"),
])
def test_format_ms(ms, text):
    assert format_ms(ms) == text


def test_format_ms_is_utc_and_round_trips_through_parse_time():
    for ms in (NOW, NOW + 1, NOW + 86_399_999, 1_700_000_000_000):
        text = format_ms(ms)
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
        assert round(moment.timestamp() * 1000) == ms
        assert parse_time(text.replace(" ", "T") + "Z") == ms
