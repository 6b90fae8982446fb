"""The audit log: an append-only record of every admin action, kept in the data directory.

Admin actions are the ones that change who may do what, or what is kept: keys created and
revoked, data-protection policies set and removed, retention set and removed, log groups deleted,
originals unmasked, the unmask key rotated. Each becomes one JSON line in ``audit.jsonl`` (mode
0600) with who (the key id of the caller, or ``local:<user>`` for the command line), what (an
action name such as ``key.create``), when (epoch ms), the target, the outcome (``ok``,
``denied``, ``failed``) and details.

Lines are chained: each carries the SHA-256 of its own content and the previous line's hash, so an
edited, removed or reordered line is found by :meth:`AuditLog.verify` (``dashcam audit --verify``).
The chain shows tampering by someone who cannot rewrite the whole file consistently; it is
evidence, not prevention. Appends from several processes (a server and the CLI) are serialized
with an exclusive ``flock`` on the file, and every line is fsynced before the action reports
success.

Who is acting is carried by the context variable :data:`ACTOR`: the HTTP layer sets it from the
authenticated key for the duration of a request; code that records an action never needs to be
told the caller explicitly.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dashcam.errors import ConfigError

AUDIT_FILE = "audit.jsonl"
OUTCOMES = ("ok", "denied", "failed")
_GENESIS = "0" * 64
_TAIL_BYTES = 1 << 16

ACTOR: ContextVar[str | None] = ContextVar("dashcam_audit_actor", default=None)
"""Who the current request or command acts as (a key id); None means the local user."""


def current_actor() -> str:
    """The actor of the running request (:data:`ACTOR`), else ``local:<OS user>``."""
    actor = ACTOR.get()
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = str(os.getuid())
    return f"local:{user}"


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Attribute the admin actions inside the block to ``actor``."""
    token = ACTOR.set(actor)
    try:
        yield
    finally:
        ACTOR.reset(token)


@dataclass(frozen=True)
class AuditEntry:
    """One admin action as recorded."""

    seq: int
    time_ms: int
    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)
    prev: str = _GENESIS
    hash: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as the API and ``dashcam audit --format json`` show it."""
        return asdict(self)


def _digest(fields: dict[str, Any]) -> str:
    content = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


class AuditLog:
    """The audit log of one data directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / AUDIT_FILE

    def record(self, action: str, target: str = "", *, outcome: str = "ok", details: dict[str, Any] | None = None,
               actor: str | None = None) -> AuditEntry:
        """Append one entry and fsync it; returns the entry as written."""
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            last = _last_line(file)
            prev_seq, prev_hash = (last["seq"], last["hash"]) if last else (0, _GENESIS)
            fields = {"seq": prev_seq + 1, "time_ms": int(time.time() * 1000), "actor": actor or current_actor(),
                      "action": action, "target": target, "outcome": outcome, "details": details or {},
                      "prev": prev_hash}
            fields["hash"] = _digest(fields)
            file.write(orjson.dumps(fields) + b"\n")
            file.flush()
            os.fsync(file.fileno())
        return AuditEntry(**fields)

    def entries(self, *, start_ms: int | None = None, end_ms: int | None = None, action: str | None = None,
                actor: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Entries oldest first, filtered by time (``start_ms`` inclusive, ``end_ms`` exclusive),
        action (exact, or a prefix ending in ``.`` such as ``key.``) and actor; ``limit`` keeps
        the newest ones."""
        chosen = []
        for entry in self._read():
            if start_ms is not None and entry.time_ms < start_ms:
                continue
            if end_ms is not None and entry.time_ms >= end_ms:
                continue
            if action and not (entry.action == action or (action.endswith(".") and entry.action.startswith(action))):
                continue
            if actor and entry.actor != actor:
                continue
            chosen.append(entry)
        return chosen[-limit:] if limit else chosen

    def verify(self) -> int:
        """Check the hash chain; returns the number of entries, ConfigError naming the first bad line."""
        prev_hash, count = _GENESIS, 0
        for number, entry in enumerate(self._read(), start=1):
            fields = entry.as_dict()
            if entry.prev != prev_hash or entry.seq != number or _digest(fields) != entry.hash:
                raise ConfigError(f"{self.path}: line {number} was changed, removed or reordered "
                                  "(its hash chain does not hold)")
            prev_hash, count = entry.hash, number
        return count

    def _read(self) -> Iterator[AuditEntry]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield AuditEntry(**orjson.loads(line))
            except (orjson.JSONDecodeError, TypeError):
                raise ConfigError(f"{self.path}: line {number} is not an audit entry") from None


def _last_line(file: Any) -> dict[str, Any] | None:
    """The last entry of an open audit file (read from its tail only)."""
    size = file.seek(0, os.SEEK_END)
    if size == 0:
        return None
    file.seek(max(0, size - _TAIL_BYTES))
    lines = [line for line in file.read().splitlines() if line.strip()]
    try:
        return orjson.loads(lines[-1]) if lines else None
    except orjson.JSONDecodeError:
        raise ConfigError(f"the last line of {AUDIT_FILE} is not an audit entry; the log cannot be extended") from None
