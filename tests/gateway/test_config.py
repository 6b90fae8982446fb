"""Gateway settings: flags over environment over file over defaults, and errors that name the setting."""

from __future__ import annotations

import json

import pytest

from dashcam.errors import ConfigError
from dashcam.gateway.config import (DEFAULT_OPENAI_UPSTREAM, KEY_FORWARD, KEY_SUBSTITUTE, ModelLimit, load_config,
                                    parse_limit_flag)

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


def test_defaults_point_at_the_real_providers():
    config = load_config(None, env={})
    assert config.bedrock_url == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert config.openai_url == DEFAULT_OPENAI_UPSTREAM
    assert config.key_mode == KEY_FORWARD and config.limits == {}
    assert load_config(None, env={}, region="eu-central-1").bedrock_url == \
        "https://bedrock-runtime.eu-central-1.amazonaws.com"


def test_flags_win_over_environment_over_file(tmp_path):
    file = tmp_path / "gateway.toml"
    file.write_text(f'max_queue_wait = 1.5\nretry_deadline = 3\nport = 5000\n'
                    f'[limits]\n"{HAIKU}" = "100:50000:10"\n"gpt-4o-mini" = {{ rpm = 450, tpm = 180000 }}\n')
    env = {"DASHCAM_GATEWAY_MAX_WAIT": "2.5", "DASHCAM_GATEWAY_OPENAI_KEY": "sk-gw"}
    config = load_config(file, env=env, retry_deadline=7, extra_limits={"gpt-4o-mini": ModelLimit(rpm=1)})
    assert (config.port, config.max_queue_wait, config.retry_deadline) == (5000, 2.5, 7.0)
    assert config.limits == {HAIKU: ModelLimit(100, 50_000, 10), "gpt-4o-mini": ModelLimit(rpm=1)}
    assert config.key_mode == KEY_SUBSTITUTE  # a configured key is substituted unless told otherwise


def test_json_files_and_disabled_upstreams(tmp_path):
    file = tmp_path / "gateway.json"
    file.write_text(json.dumps({"openai_upstream": "none", "limits": {HAIKU: ":2000"}}))
    config = load_config(file, env={})
    assert config.openai_url is None and config.limits[HAIKU] == ModelLimit(tpm=2000)


def test_limit_flags_keep_colons_in_model_ids():
    assert parse_limit_flag(f"{HAIKU}=360:360000") == (HAIKU, ModelLimit(360, 360_000))
    assert parse_limit_flag("m=0::8") == ("m", ModelLimit(concurrency=8))
    assert not ModelLimit().active


@pytest.mark.parametrize("given, named", [
    ({"max_queue_wait": -1}, "--max-queue-wait"),
    ({"bedrock_upstream": "ftp://x"}, "--bedrock-upstream"),
    ({"openai_key_mode": "steal"}, "--openai-key-mode"),
    ({"openai_key_mode": "substitute"}, "openai_api_key"),
    ({"burst": 1.5}, "--burst"),
    ({"quota_window": 0}, "--quota-window"),
    ({"log_group": "bad group!"}, "--log-group"),
    ({"bedrock_upstream": "none", "openai_upstream": "none"}, "nothing to forward"),
])
def test_bad_settings_are_named(given, named):
    with pytest.raises(ConfigError, match=named.replace("-", r"\-")):
        load_config(None, env={}, **given)


@pytest.mark.parametrize("text, named", [
    ("retry_deadline = 'soon'\n", "retry_deadline"),
    ("colour = 'blue'\n", "unknown setting"),
    ("[limits]\nm = '1:2:3:4'\n", "limits.m"),
    ("[limits]\nm = { rpm = -1 }\n", "rpm"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_files_are_named(tmp_path, text, named):
    file = tmp_path / "gateway.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=named):
        load_config(file, env={})


def test_bad_environment_and_missing_file_are_named(tmp_path):
    with pytest.raises(ConfigError, match="DASHCAM_GATEWAY_RETRY_DEADLINE"):
        load_config(None, env={"DASHCAM_GATEWAY_RETRY_DEADLINE": "later"})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="--limit"):
        parse_limit_flag("no-equals-sign")
