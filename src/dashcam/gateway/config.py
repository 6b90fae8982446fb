"""The gateway's settings: one table of names, defaults, environment variables and help.

Settings come from, highest first: command-line flags (or keyword arguments), environment
variables, a TOML or JSON file (``--config``), the defaults below. A file holds the same names as
keys, and per-model limits in a ``[limits]`` table::

    bedrock_upstream = "https://bedrock-runtime.us-east-1.amazonaws.com"
    max_queue_wait = 5.0

    [limits]
    "anthropic.claude-3-5-haiku-20241022-v1:0" = "360:360000:36"   # RPM:TPM[:CONCURRENCY]
    "gpt-4o-mini" = { rpm = 450, tpm = 180000 }

A bad value raises :class:`~dashcam.errors.ConfigError` naming the setting and where it came from.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from dashcam.errors import ConfigError
from dashcam.records import check_log_group_name

DEFAULT_PORT = 4320  # next to the server's 4318 and the simulator's 4319
DEFAULT_REGION = "us-east-1"
DEFAULT_OPENAI_UPSTREAM = "https://api.openai.com/v1"
DEFAULT_LOG_GROUP = "/dashcam/gateway"
DISABLED = "none"  # an upstream set to this is not served
KEY_FORWARD = "forward"
KEY_SUBSTITUTE = "substitute"
KEY_MODES = (KEY_FORWARD, KEY_SUBSTITUTE)
BODY_MODES = ("on", "metadata", "off")


@dataclass(frozen=True)
class ModelLimit:
    """What the gateway lets through to one model: requests and tokens per minute, calls at once.
    None means no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None

    @classmethod
    def parse(cls, text: str, where: str) -> "ModelLimit":
        """``RPM:TPM[:CONCURRENCY]``; an empty field (or 0) leaves that kind unlimited."""
        parts = text.split(":")
        if not 2 <= len(parts) <= 3:
            raise ConfigError(f"{where}: limit {text!r} is not RPM:TPM or RPM:TPM:CONCURRENCY")
        numbers = []
        for part in parts:
            part = part.strip()
            if not part:
                numbers.append(None)
                continue
            if not part.isdigit():
                raise ConfigError(f"{where}: limit {text!r} has {part!r}, not a whole number")
            numbers.append(int(part) or None)
        return cls(*numbers)

    @classmethod
    def of(cls, value: Any, where: str) -> "ModelLimit":
        """A limit from a file or flag: ``"RPM:TPM[:CONC]"`` or ``{rpm, tpm, concurrency}``."""
        if isinstance(value, ModelLimit):
            return value
        if isinstance(value, str):
            return cls.parse(value, where)
        if isinstance(value, Mapping):
            unknown = set(value) - {"rpm", "tpm", "concurrency"}
            if unknown:
                raise ConfigError(f"{where}: unknown limit field(s) {', '.join(sorted(unknown))}; "
                                  "use rpm, tpm, concurrency")
            numbers = {}
            for name in ("rpm", "tpm", "concurrency"):
                number = value.get(name)
                if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 0):
                    raise ConfigError(f"{where}: {name} must be a whole number >= 0, got {number!r}")
                numbers[name] = number or None
            return cls(**numbers)
        raise ConfigError(f"{where}: a limit is 'RPM:TPM[:CONCURRENCY]' or a table, not {type(value).__name__}")

    @property
    def active(self) -> bool:
        """True when any kind is limited."""
        return bool(self.rpm or self.tpm or self.concurrency)


def parse_limit_flag(text: str) -> tuple[str, ModelLimit]:
    """``MODEL=RPM:TPM[:CONCURRENCY]`` (model ids contain ``:`` but never ``=``)."""
    model, sep, values = text.partition("=")
    if not sep or not model.strip():
        raise ConfigError(f"--limit {text!r}: expected MODEL=RPM:TPM[:CONCURRENCY]")
    return model.strip(), ModelLimit.parse(values, f"--limit {text!r}")


@dataclass(frozen=True)
class GatewayConfig:
    """Resolved gateway settings (see :data:`SETTINGS` for what each one means)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    region: str | None = None
    bedrock_upstream: str | None = None  # None: Bedrock's regional endpoint
    openai_upstream: str = DEFAULT_OPENAI_UPSTREAM
    openai_key_mode: str | None = None  # None: substitute when openai_api_key is set, else forward
    openai_api_key: str | None = None
    limits: Mapping[str, ModelLimit] = field(default_factory=dict)
    max_queue_wait: float = 5.0
    quota_window: float = 60.0
    max_queue: int = 1000
    burst: float = 0.1
    default_output_tokens: int = 1000
    retry_deadline: float = 10.0
    max_attempts: int = 3
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    dashcam_url: str | None = None
    dashcam_key: str | None = None
    body: str = "on"
    log_group: str = DEFAULT_LOG_GROUP
    app: str | None = None
    record_queue: int = 10_000
    flush_interval: float = 1.0

    @property
    def bedrock_url(self) -> str | None:
        """Where Bedrock calls go (no trailing slash), or None when the Bedrock API is off."""
        if self.bedrock_upstream == DISABLED:
            return None
        return (self.bedrock_upstream or f"https://bedrock-runtime.{self.signing_region}.amazonaws.com").rstrip("/")

    @property
    def openai_url(self) -> str | None:
        """Where OpenAI calls go (the ``/v1`` base, no trailing slash), or None when off."""
        return None if self.openai_upstream == DISABLED else self.openai_upstream.rstrip("/")

    @property
    def signing_region(self) -> str:
        """The region Bedrock requests are signed for."""
        return self.region or DEFAULT_REGION

    @property
    def key_mode(self) -> str:
        """How the OpenAI key reaches the upstream: ``forward`` or ``substitute``."""
        return self.openai_key_mode or (KEY_SUBSTITUTE if self.openai_api_key else KEY_FORWARD)


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    name: str
    kind: Callable[[Any, str], Any]
    env: str | None
    help: str


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value.strip()


def _url(value: Any, where: str) -> str:
    text = _text(value, where)
    if text != DISABLED and not text.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: {text!r} must start with http:// or https:// (or be '{DISABLED}')")
    return text


def _whole(minimum: int) -> Callable[[Any, str], int]:
    def check(value: Any, where: str) -> int:
        try:
            number = int(value) if not isinstance(value, (bool, float)) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number < minimum:
            raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {value!r}")
        return number
    return check


def _seconds(value: Any, where: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not number >= 0 or math.isinf(number):
        raise ConfigError(f"{where}: expected a number of seconds >= 0, got {value!r}")
    return number


def _window(value: Any, where: str) -> float:
    number = _seconds(value, where)
    if number <= 0:
        raise ConfigError(f"{where}: expected a number of seconds > 0, got {value!r}")
    return number


def _share(value: Any, where: str) -> float:
    number = _seconds(value, where)
    if not 0 < number < 1:
        raise ConfigError(f"{where}: expected a share between 0 and 1 (exclusive), got {value!r}")
    return number


def _choice(*options: str) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        text = _text(value, where).lower()
        if text not in options:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(options)}")
        return text
    return check


def _log_group(value: Any, where: str) -> str:
    try:
        return check_log_group_name(_text(value, where))
    except Exception as exc:  # InputError from records: here it is a setting that is wrong
        raise ConfigError(f"{where}: {exc}") from None


def _limits(value: Any, where: str) -> dict[str, ModelLimit]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table of model id -> limit")
    return {str(model): ModelLimit.of(limit, f"{where}.{model}") for model, limit in value.items()}


SETTINGS: tuple[Setting, ...] = (
    Setting("host", _text, None, "address to listen on"),
    Setting("port", _whole(1), None, "port to listen on"),
    Setting("region", _text, "AWS_REGION", "region Bedrock requests are signed for (default: the AWS "
                                           "configuration's, else us-east-1)"),
    Setting("bedrock_upstream", _url, "DASHCAM_GATEWAY_BEDROCK_UPSTREAM",
            "Bedrock runtime endpoint to forward to (default: the region's); 'none' turns the Bedrock API off"),
    Setting("openai_upstream", _url, "DASHCAM_GATEWAY_OPENAI_UPSTREAM",
            "OpenAI-compatible base URL to forward to, with its /v1; 'none' turns the OpenAI API off"),
    Setting("openai_key_mode", _choice(*KEY_MODES), "DASHCAM_GATEWAY_OPENAI_KEY_MODE",
            "forward: pass the caller's Authorization on; substitute: replace it with openai_api_key"),
    Setting("openai_api_key", _text, "DASHCAM_GATEWAY_OPENAI_KEY", "the upstream OpenAI key (substitute mode)"),
    Setting("limits", _limits, None, "per-model limits: model id -> RPM:TPM[:CONCURRENCY]"),
    Setting("max_queue_wait", _seconds, "DASHCAM_GATEWAY_MAX_WAIT",
            "longest a request may wait for its model's limits before it is answered 429"),
    Setting("quota_window", _window, None, "seconds the limits are counted over: 60 for real providers "
                                           "(a time-compressed simulator's minute is shorter)"),
    Setting("max_queue", _whole(0), None, "most requests waiting per model; beyond it, 429 at once"),
    Setting("burst", _share, None, "share of a minute's limit that may go out at once after a quiet spell"),
    Setting("default_output_tokens", _whole(0), None,
            "tokens a request is assumed to produce when it sets no maximum (corrected from its usage)"),
    Setting("retry_deadline", _seconds, "DASHCAM_GATEWAY_RETRY_DEADLINE",
            "seconds after arrival within which upstream throttles are retried (0: never retry)"),
    Setting("max_attempts", _whole(1), None, "most upstream attempts per request, the first included"),
    Setting("connect_timeout", _seconds, None, "seconds to connect to an upstream"),
    Setting("read_timeout", _seconds, None, "seconds an upstream may stay silent while answering"),
    Setting("dashcam_url", _url, "DASHCAM_URL", "dashcam server to send records to (default: the data directory)"),
    Setting("dashcam_key", _text, "DASHCAM_KEY", "ingest key for dashcam_url"),
    Setting("body", _choice(*BODY_MODES), "DASHCAM_CAPTURE_BODY", "request/response bodies in records: on, "
                                                                 "metadata (no content), off"),
    Setting("log_group", _log_group, None, "log group the records go to"),
    Setting("app", _text, "DASHCAM_APP", "app label put on every record"),
    Setting("record_queue", _whole(1), None, "records that may wait for delivery; beyond it they are dropped "
                                             "(and counted)"),
    Setting("flush_interval", _seconds, None, "seconds between record deliveries"),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings in a ``.toml`` or ``.json`` file; ConfigError when unreadable or unknown."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() == ".json":
            data = orjson.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (orjson.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'} "
                          f"({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a table of settings at the top")
    unknown = set(data) - set(_BY_NAME)
    if unknown:
        raise ConfigError(f"--config {path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return data


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                extra_limits: Mapping[str, ModelLimit] | None = None, **given: Any) -> GatewayConfig:
    """Settings from ``given`` (None means "not given") over ``env`` over the file over defaults.

    ``extra_limits`` (from ``--limit`` flags) are added to the file's limits, replacing a model's
    limit where both name it. Raises ConfigError naming any bad value.
    """
    env = os.environ if env is None else env
    unknown = set(given) - set(_BY_NAME)
    if unknown:
        raise ConfigError(f"unknown gateway setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    if path is not None:
        for name, value in read_config_file(path).items():
            values[name] = _BY_NAME[name].kind(value, f"{path}: {name}")
    for setting in SETTINGS:
        if setting.env and env.get(setting.env):
            values[setting.name] = setting.kind(env[setting.env], f"${setting.env}")
    for name, value in given.items():
        if value is not None:
            values[name] = _BY_NAME[name].kind(value, f"--{name.replace('_', '-')}")
    if extra_limits:
        values["limits"] = {**values.get("limits", {}), **extra_limits}
    config = GatewayConfig(**values)
    if config.key_mode == KEY_SUBSTITUTE and not config.openai_api_key:
        raise ConfigError("openai_key_mode is 'substitute' but no openai_api_key is set "
                          "($DASHCAM_GATEWAY_OPENAI_KEY, or openai_api_key in the --config file)")
    if config.bedrock_url is None and config.openai_url is None:
        raise ConfigError("both upstreams are 'none': the gateway would have nothing to forward")
    return config


def with_region(config: GatewayConfig, region: str | None) -> GatewayConfig:
    """``config`` with the region filled in from the AWS configuration when it names none."""
    return config if config.region or not region else replace(config, region=region)

