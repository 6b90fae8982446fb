"""Capture settings: keywords over environment over defaults, and clear errors."""

from __future__ import annotations

import pytest

from dashcam.capture.settings import DEFAULT_DATA_DIR, DEFAULT_LOG_GROUP, resolve
from dashcam.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("DASHCAM_URL", "DASHCAM_KEY", "DASHCAM_DATA", "DASHCAM_STORE", "DASHCAM_CAPTURE_BODY",
                 "DASHCAM_LOG_GROUP", "DASHCAM_APP", "DASHCAM_CAPTURE_QUEUE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    settings = resolve()
    assert (settings.url, settings.data_dir, settings.body, settings.log_group, dict(settings.labels)) == (
        None, DEFAULT_DATA_DIR, "on", DEFAULT_LOG_GROUP, {})
    assert settings.destination == DEFAULT_DATA_DIR


def test_keywords_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("DASHCAM_URL", "http://env:4318/")
    monkeypatch.setenv("DASHCAM_KEY", "dk_env")
    monkeypatch.setenv("DASHCAM_CAPTURE_BODY", "METADATA")
    monkeypatch.setenv("DASHCAM_CAPTURE_QUEUE", "77")
    monkeypatch.setenv("DASHCAM_APP", "env-app")
    from_env = resolve()
    assert (from_env.url, from_env.key, from_env.body, from_env.queue_size, dict(from_env.labels)) == (
        "http://env:4318", "dk_env", "metadata", 77, {"app": "env-app"})
    given = resolve(url="https://given", body="off", app="mine", user="u", session="s", labels={"team": 7})
    assert (given.url, given.key, given.body) == ("https://given", "dk_env", "off")
    assert dict(given.labels) == {"app": "mine", "userId": "u", "sessionId": "s", "team": "7"}


@pytest.mark.parametrize("settings, message", [
    ({"body": "full"}, "body mode 'full'"),
    ({"url": "ftp://x"}, "must start with http"),
    ({"queue_size": 0}, "queue_size must be a positive whole number"),
    ({"flush_interval": -1}, "flush_interval must be a number of seconds"),
    ({"labels": ["a"]}, "labels must be a mapping"),
    ({"colour": "red"}, "unknown capture setting"),
])
def test_bad_values_are_named(settings, message):
    with pytest.raises(ConfigError, match=message):
        resolve(**settings)


def test_bad_environment_values_are_named(monkeypatch):
    monkeypatch.setenv("DASHCAM_CAPTURE_QUEUE", "lots")
    with pytest.raises(ConfigError, match="DASHCAM_CAPTURE_QUEUE='lots'"):
        resolve()


def test_a_bad_log_group_is_refused():
    with pytest.raises(ConfigError, match="log_group: log group name"):
        resolve(log_group="no spaces allowed")
