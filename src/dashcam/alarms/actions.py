"""Alarm actions: what runs when an alarm changes state, delivered in the background with retries.

An action string (in OKActions, AlarmActions, InsufficientDataActions) picks its adapter:

``https://host/path`` or ``http://...``
    Webhook: POST the state change as JSON, in the shape of the SNS message CloudWatch publishes
    for an alarm (AlarmName, NewStateValue, OldStateValue, NewStateReason, StateChangeTime,
    Trigger, ...), so receivers written for CloudWatch read it as they are. A URL fragment
    ``#secret=NAME`` signs it: ``X-Dashcam-Timestamp: <unix seconds>`` and
    ``X-Dashcam-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret>``.
    The fragment is never sent. The secret NAME is read at delivery time from the environment
    variable ``DASHCAM_WEBHOOK_SECRET_<NAME>`` (upper-cased, ``-`` as ``_``), else from
    ``webhook-secrets.json`` in the data directory (``{"NAME": "secret"}``): secrets stay out of
    alarm definitions, which any reader can list.
``slack+https://hooks.slack.com/services/...``
    Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, ...): POST ``{"text": ...}``.
``exec:NAME [ARG ...]``
    Run the program NAME from the ``alarm-commands`` folder of the data directory with the
    arguments, the JSON message on stdin and ``DASHCAM_ALARM_NAME``, ``DASHCAM_ALARM_STATE``,
    ``DASHCAM_ALARM_OLD_STATE``, ``DASHCAM_ALARM_REASON`` in its environment; exit 0 is success.
    Only programs someone placed in that folder can run: whoever may define alarms over the API
    cannot make the server run arbitrary commands.
``arn:aws:...``
    CloudWatch's own actions (SNS, Auto Scaling, EC2, Systems Manager, Lambda) are accepted, so
    definitions written for AWS load unchanged, and each is recorded as not deliverable here.

Every attempt's outcome is recorded (as an ``Action`` history item). Network errors, timeouts,
HTTP 408/429/5xx and failed commands are retried with exponential backoff; other HTTP answers
are final.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import logging
import os
import random
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import orjson

from dashcam import __version__
from dashcam.errors import InputError

log = logging.getLogger("dashcam.alarms")

COMMANDS_DIR = "alarm-commands"
SECRETS_FILE = "webhook-secrets.json"
SECRET_ENV_PREFIX = "DASHCAM_WEBHOOK_SECRET_"
SIGNATURE_HEADER = "X-Dashcam-Signature"
TIMESTAMP_HEADER = "X-Dashcam-Timestamp"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_STATE_MARK = {"ALARM": ":red_circle:", "OK": ":large_green_circle:", "INSUFFICIENT_DATA": ":grey_question:"}


# ---------------------------------------------------------------------- action strings


@dataclass(frozen=True)
class WebhookAction:
    """POST the JSON message to ``url``, signed when ``secret_name`` is set."""

    text: str
    url: str
    secret_name: str | None = None


@dataclass(frozen=True)
class SlackAction:
    """POST ``{"text": ...}`` to a Slack-compatible incoming webhook."""

    text: str
    url: str


@dataclass(frozen=True)
class CommandAction:
    """Run ``program`` from the data directory's alarm-commands folder with ``args``."""

    text: str
    program: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArnAction:
    """A CloudWatch action ARN: accepted, recorded as not deliverable by dashcam."""

    text: str


Action = WebhookAction | SlackAction | CommandAction | ArnAction


def parse_action(text: str) -> Action:
    """The adapter an action string selects; InputError saying which forms exist when none fits."""
    if text.startswith("arn:"):
        if len(text.split(":")) < 6:
            raise InputError(f"{text!r} is not an ARN (arn:partition:service:region:account:resource)")
        return ArnAction(text)
    if text.startswith("exec:"):
        try:
            argv = shlex.split(text[5:])
        except ValueError as exc:
            raise InputError(f"cannot split the command in {text!r}: {exc}") from None
        if not argv:
            raise InputError(f"{text!r} names no command; write exec:NAME [ARG ...]")
        if not _NAME.fullmatch(argv[0]):
            raise InputError(f"the command {argv[0]!r} must be a plain file name (letters, digits, . _ -) "
                             f"of a program in the data directory's {COMMANDS_DIR} folder")
        return CommandAction(text, argv[0], tuple(argv[1:]))
    slack = text.startswith("slack+")
    url = text[6:] if slack else text
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{text!r} is not an action dashcam can run: use an http(s):// webhook URL, "
                         "slack+https://..., exec:NAME [ARG ...], or a CloudWatch action ARN")
    target = urlunsplit(parts._replace(fragment=""))
    if slack:
        if parts.fragment:
            raise InputError(f"{text!r}: Slack webhooks are not signed; remove the #fragment")
        return SlackAction(text, target)
    secret_name = None
    if parts.fragment:
        options = parse_qs(parts.fragment, keep_blank_values=True)
        unknown = sorted(set(options) - {"secret"})
        if unknown or len(options.get("secret", [])) != 1:
            raise InputError(f"{text!r}: the only webhook option is #secret=NAME")
        secret_name = options["secret"][0]
        if not _NAME.fullmatch(secret_name):
            raise InputError(f"{text!r}: the secret name {secret_name!r} must be letters, digits, . _ -")
    return WebhookAction(text, target, secret_name)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# ---------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class Outcome:
    """How one attempt went; ``retry_after`` (seconds) when the receiver asked for a pause."""

    succeeded: bool
    detail: str
    retryable: bool = False
    retry_after: float | None = None


@dataclass
class ActionSettings:
    """Where actions find their secrets and programs, and how long an attempt may take."""

    data_dir: Path
    http_timeout_s: float = 10.0
    command_timeout_s: float = 30.0
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def secret(self, name: str) -> str | None:
        """The webhook secret called ``name``: environment first, then ``webhook-secrets.json``."""
        from_env = self.environ.get(SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper())
        if from_env:
            return from_env
        try:
            stored = orjson.loads((self.data_dir / SECRETS_FILE).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        value = stored.get(name) if isinstance(stored, dict) else None
        return value if isinstance(value, str) and value else None


def slack_text(message: Mapping[str, Any]) -> str:
    """The one-message summary a Slack-compatible webhook shows."""
    state = message.get("NewStateValue", "?")
    lines = [f"{_STATE_MARK.get(state, '')} *{state}*: alarm \"{message.get('AlarmName')}\" in "
             f"{message.get('Region')} ({message.get('OldStateValue')} \u2192 {state})".strip()]
    if message.get("AlarmDescription"):
        lines.append(str(message["AlarmDescription"]))
    lines.append(f"> {message.get('NewStateReason', '')}")
    lines.append(f"at {message.get('StateChangeTime')}")
    return "\n".join(lines)


def deliver(action: Action, message: Mapping[str, Any], settings: ActionSettings,
            http: httpx.Client) -> Outcome:
    """Run ``action`` once for ``message``; never raises."""
    try:
        if isinstance(action, WebhookAction):
            return _post_webhook(action, message, settings, http)
        if isinstance(action, SlackAction):
            return _post(http, action.url, orjson.dumps({"text": slack_text(message)}), {})
        if isinstance(action, CommandAction):
            return _run_command(action, message, settings)
        return Outcome(False, f"{action.text} is a CloudWatch action; dashcam has no AWS account to run it in "
                              "(use an http(s):// webhook, slack+https://, or exec: action)")
    except Exception as exc:  # noqa: BLE001 - an adapter bug must become a recorded failure, not a dead thread
        log.exception("alarm action %s failed", action.text)
        return Outcome(False, f"{type(exc).__name__}: {exc}")


def _post_webhook(action: WebhookAction, message: Mapping[str, Any], settings: ActionSettings,
                  http: httpx.Client) -> Outcome:
    body = orjson.dumps(message)
    headers: dict[str, str] = {}
    if action.secret_name is not None:
        secret = settings.secret(action.secret_name)
        if secret is None:
            variable = SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", action.secret_name).upper()
            return Outcome(False, f"the webhook secret {action.secret_name!r} is not configured: set {variable} "
                                  f"or add it to {SECRETS_FILE} in the data directory")
        timestamp = str(int(time.time()))
        headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}
    return _post(http, action.url, body, headers)


def _post(http: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    try:
        response = http.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    except httpx.HTTPError as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc or 'no answer'}", retryable=True)
    if 200 <= response.status_code < 300:
        return Outcome(True, f"HTTP {response.status_code}")
    retry_after = None
    if response.headers.get("retry-after", "").strip().isdigit():
        retry_after = float(response.headers["retry-after"])
    excerpt = response.text[:200].strip()
    return Outcome(False, f"HTTP {response.status_code}{': ' + excerpt if excerpt else ''}",
                   retryable=response.status_code in _RETRY_STATUS, retry_after=retry_after)


def _run_command(action: CommandAction, message: Mapping[str, Any], settings: ActionSettings) -> Outcome:
    folder = settings.data_dir / COMMANDS_DIR
    program = folder / action.program
    if not program.is_file() or not os.access(program, os.X_OK):
        return Outcome(False, f"no executable {action.program!r} in {folder}; put the program there "
                              "(only programs in that folder can run as alarm actions)")
    env = {**settings.environ,
           "DASHCAM_ALARM_NAME": str(message.get("AlarmName", "")),
           "DASHCAM_ALARM_STATE": str(message.get("NewStateValue", "")),
           "DASHCAM_ALARM_OLD_STATE": str(message.get("OldStateValue", "")),
           "DASHCAM_ALARM_REASON": str(message.get("NewStateReason", ""))}
    try:
        finished = subprocess.run([str(program), *action.args], input=orjson.dumps(message), env=env,
                                  cwd=folder, capture_output=True, timeout=settings.command_timeout_s)
    except subprocess.TimeoutExpired:
        return Outcome(False, f"{action.program} did not finish within {settings.command_timeout_s:g} s "
                              "and was killed", retryable=True)
    except OSError as exc:
        return Outcome(False, f"cannot run {action.program}: {exc}", retryable=True)
    if finished.returncode == 0:
        return Outcome(True, "exit status 0")
    error = finished.stderr.decode(errors="replace").strip()[-300:]
    return Outcome(False, f"exit status {finished.returncode}{': ' + error if error else ''}", retryable=True)


# ---------------------------------------------------------------------- background dispatch


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt, as the dispatcher reports it to be recorded in the alarm's history."""

    alarm_name: str
    timestamp_ms: int
    action: str
    attempt: int
    outcome: Outcome
    will_retry: bool
    message: Mapping[str, Any]


@dataclass
class _Job:
    action: Action
    message: Mapping[str, Any]
    attempt: int = 1


class ActionDispatcher:
    """Runs actions on a small thread pool; failed attempts are retried with exponential backoff.

    ``record`` is called once per attempt (from a worker thread). Retries wait on a timer heap,
    not in a worker, so one unreachable receiver does not hold up the others.
    """

    def __init__(self, settings: ActionSettings, record: Callable[[AttemptRecord], None], *,
                 max_attempts: int = 5, backoff_s: float = 2.0, max_backoff_s: float = 300.0,
                 workers: int = 4) -> None:
        self.settings = settings
        self.record = record
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._workers = workers
        self._changed = threading.Condition()
        self._waiting: list[tuple[float, int, _Job]] = []
        self._order = itertools.count()
        self._unfinished = 0
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        self._timer: threading.Thread | None = None
        self._http: httpx.Client | None = None

    def dispatch(self, message: Mapping[str, Any], actions: Sequence[str]) -> None:
        """Start delivering ``message`` to each action; returns at once."""
        jobs = [_Job(parse_action(text), message) for text in actions]
        with self._changed:
            if self._closed:
                raise RuntimeError("the action dispatcher is closed")
            self._start()
            assert self._pool is not None
            for job in jobs:
                self._unfinished += 1
                self._pool.submit(self._attempt, job)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every dispatched action succeeded or gave up; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self) -> None:
        """Stop: attempts under way finish; retries still waiting are recorded as abandoned."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
            abandoned = [job for _, _, job in self._waiting]
            self._waiting.clear()
            self._changed.notify_all()
        for job in abandoned:
            self._report(job, Outcome(False, "dashcam stopped before this retry was made"), will_retry=False)
            self._finish()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._timer is not None:
            self._timer.join(5)
        if self._http is not None:
            self._http.close()

    # ------------------------------------------------------------------ internals

    def _start(self) -> None:
        if self._pool is None:
            self._http = httpx.Client(timeout=self.settings.http_timeout_s, follow_redirects=False,
                                      headers={"User-Agent": f"dashcam/{__version__} (alarm action)"})
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="dashcam-alarm-action")
            self._timer = threading.Thread(target=self._release_due, name="dashcam-alarm-retries", daemon=True)
            self._timer.start()

    def _attempt(self, job: _Job) -> None:
        assert self._http is not None
        outcome = deliver(job.action, job.message, self.settings, self._http)
        will_retry = not outcome.succeeded and outcome.retryable and job.attempt < self.max_attempts
        self._report(job, outcome, will_retry=will_retry)
        with self._changed:
            if will_retry and not self._closed:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (job.attempt - 1))
                delay = max(delay * random.uniform(0.8, 1.2), min(outcome.retry_after or 0.0, self.max_backoff_s))
                job.attempt += 1
                heapq.heappush(self._waiting, (time.monotonic() + delay, next(self._order), job))
                self._changed.notify_all()
                return
        if will_retry:  # closed while this attempt ran
            self._report(job, Outcome(False, "dashcam stopped before this retry was made"), will_retry=False)
        self._finish()

    def _release_due(self) -> None:
        with self._changed:
            while not self._closed:
                if not self._waiting:
                    self._changed.wait()
                    continue
                due, _, job = self._waiting[0]
                pause = due - time.monotonic()
                if pause > 0:
                    self._changed.wait(pause)
                    continue
                heapq.heappop(self._waiting)
                assert self._pool is not None
                self._pool.submit(self._attempt, job)

    def _report(self, job: _Job, outcome: Outcome, *, will_retry: bool) -> None:
        try:
            self.record(AttemptRecord(str(job.message.get("AlarmName", "")), int(time.time() * 1000),
                                      job.action.text, job.attempt, outcome, will_retry, job.message))
        except Exception:  # noqa: BLE001 - losing one history row must not stop deliveries
            log.exception("could not record the outcome of alarm action %s", job.action.text)

    def _finish(self) -> None:
        with self._changed:
            self._unfinished -= 1
            self._changed.notify_all()
