"""Capture settings: where records go, what they contain, and how much may wait in memory.

Every setting has a keyword of :func:`dashcam.capture.instrument` and most have an environment
variable, so an application can be instrumented without code changes to its configuration::

    keyword          env var                  default
    url              DASHCAM_URL              (none: write into data_dir instead)
    key              DASHCAM_KEY              (none: no Authorization header)
    data_dir         DASHCAM_DATA             ./dashcam-data (used only without a url)
    store            DASHCAM_STORE            (none: the DuckDB file in data_dir)
    body             DASHCAM_CAPTURE_BODY     on            (on | metadata | off)
    log_group        DASHCAM_LOG_GROUP        /dashcam/capture
    log_stream       -                        sdk
    app              DASHCAM_APP              (none)        -> requestMetadata.app
    user, session    -                        (none)        -> requestMetadata.userId / sessionId
    labels           -                        {}            more requestMetadata entries
    account_id       -                        (from an ARN model id)    Bedrock records' accountId
    identity_arn     -                        (none)        Bedrock records' identity.arn
    queue_size       DASHCAM_CAPTURE_QUEUE    10000 records
    batch_size       -                        500 records
    flush_interval   -                        1.0 s         longest a record waits in the queue
    exit_timeout     -                        2.0 s         longest exit waits for the queue to drain
    connect_timeout  -                        2.0 s
    send_timeout     -                        5.0 s
    send_attempts    -                        3             per batch, with backoff

Explicit keywords win over the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from dashcam.errors import ConfigError, InputError
from dashcam.records import check_log_group_name

BODY_ON = "on"
BODY_METADATA = "metadata"
BODY_OFF = "off"
BODY_MODES = (BODY_ON, BODY_METADATA, BODY_OFF)

DEFAULT_DATA_DIR = "./dashcam-data"  # the CLI's default, so `dashcam query` finds the records
DEFAULT_LOG_GROUP = "/dashcam/capture"
DEFAULT_LOG_STREAM = "sdk"

# Label keywords and the requestMetadata keys they fill: the keys records.normalize() turns into
# the derived app / userId / sessionId fields.
LABEL_KEYS = {"app": "app", "user": "userId", "session": "sessionId"}


@dataclass(frozen=True)
class CaptureSettings:
    """The resolved settings of a capture session (see the module docstring for each one)."""

    url: str | None = None
    key: str | None = None
    data_dir: str = DEFAULT_DATA_DIR
    store: str | None = None
    body: str = BODY_ON
    log_group: str = DEFAULT_LOG_GROUP
    log_stream: str = DEFAULT_LOG_STREAM
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    account_id: str | None = None
    identity_arn: str | None = None
    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval: float = 1.0
    exit_timeout: float = 2.0
    connect_timeout: float = 2.0
    send_timeout: float = 5.0
    send_attempts: int = 3
    before_send: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None

    @property
    def destination(self) -> str:
        """Where records go, for messages: the server URL or the data directory."""
        return self.url or (self.store or self.data_dir)


def resolve(**given: Any) -> CaptureSettings:
    """Settings from keywords (None meaning "not given") over environment variables over defaults.

    ``app``, ``user``, ``session`` and ``labels`` (a mapping) become :attr:`CaptureSettings.labels`,
    which every record carries in ``requestMetadata``. Raises ConfigError naming a bad value.
    """
    env = os.environ
    unknown = set(given) - _KEYWORDS
    if unknown:
        raise ConfigError(f"unknown capture setting(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {k: v for k, v in given.items() if v is not None and k in _FIELDS}

    for name, variable in (("url", "DASHCAM_URL"), ("key", "DASHCAM_KEY"), ("data_dir", "DASHCAM_DATA"),
                           ("store", "DASHCAM_STORE"), ("body", "DASHCAM_CAPTURE_BODY"),
                           ("log_group", "DASHCAM_LOG_GROUP")):
        if name not in values and env.get(variable):
            values[name] = env[variable]
    if "queue_size" not in values and env.get("DASHCAM_CAPTURE_QUEUE"):
        values["queue_size"] = _integer("DASHCAM_CAPTURE_QUEUE", env["DASHCAM_CAPTURE_QUEUE"])

    values["labels"] = MappingProxyType(_labels(given, env))
    if "url" in values:
        values["url"] = str(values["url"]).rstrip("/")
        if not values["url"].startswith(("http://", "https://")):
            raise ConfigError(f"capture url {values['url']!r} must start with http:// or https://")
    if "data_dir" in values:
        values["data_dir"] = str(values["data_dir"])
    body = str(values.get("body", BODY_ON)).lower()
    if body not in BODY_MODES:
        raise ConfigError(f"capture body mode {body!r} is not one of {', '.join(BODY_MODES)}")
    values["body"] = body
    try:
        check_log_group_name(values.get("log_group", DEFAULT_LOG_GROUP))
    except InputError as exc:
        raise ConfigError(f"capture setting log_group: {exc}") from None
    if values.get("before_send") is not None and not callable(values["before_send"]):
        raise ConfigError(f"capture setting before_send must be a function, got {values['before_send']!r}")
    for name in ("queue_size", "batch_size", "send_attempts"):
        if name in values and (not isinstance(values[name], int) or values[name] < 1):
            raise ConfigError(f"capture setting {name} must be a positive whole number, got {values[name]!r}")
    for name in ("flush_interval", "exit_timeout", "connect_timeout", "send_timeout"):
        if name in values and (not isinstance(values[name], (int, float)) or values[name] < 0):
            raise ConfigError(f"capture setting {name} must be a number of seconds >= 0, got {values[name]!r}")
    return CaptureSettings(**values)


_FIELDS = set(CaptureSettings.__dataclass_fields__) - {"labels"}
_KEYWORDS = _FIELDS | {"labels", *LABEL_KEYS}


def _labels(given: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    app = given.get("app") or env.get("DASHCAM_APP")
    for keyword, key in LABEL_KEYS.items():
        value = app if keyword == "app" else given.get(keyword)
        if value is not None:
            labels[key] = str(value)
    extra = given.get("labels") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError(f"capture labels must be a mapping of names to text, got {type(extra).__name__}")
    labels.update({str(k): str(v) for k, v in extra.items()})
    return labels


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a whole number") from None
