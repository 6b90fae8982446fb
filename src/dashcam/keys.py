"""Keys and roles: who may ingest, who may read, who may administer.

A key has an id, a role and an optional log-group pattern, and one secret, usable two ways:

* as a bearer token ``dk_<id>.<secret>`` (``Authorization: Bearer ...``: the native API, OTLP —
  exporters send it through ``OTEL_EXPORTER_OTLP_HEADERS``);
* as an AWS access key pair, access key id ``<id>`` and secret access key ``<secret>``, for the
  CloudWatch-compatible APIs, which verify SigV4 signatures.

Storage, in ``keys.json`` in the data directory (mode 0600): a bearer check needs only a hash, so
every secret is kept as its SHA-256 (secrets are 240 random bits: a fast hash is as strong as a slow
one). SigV4 cannot be verified from a hash — the signature is an HMAC keyed by the secret — so the
secret is also kept encrypted (Fernet, AES-128-CBC + HMAC) under a master key in ``keys.secret``
(0600) beside it, as AWS itself keeps secrets encrypted, not hashed. Rotate the master key by
deleting both files' encrypted fields and re-issuing keys (documented in the README).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken

from dashcam.audit import AuditLog
from dashcam.errors import AuthError, ConfigError, ForbiddenError, NotFoundError

ROLES = ("ingest", "read", "admin")
KEYS_FILE = "keys.json"
MASTER_KEY_FILE = "keys.secret"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a key's id, role and log-group pattern."""

    key_id: str
    role: str
    log_groups: str = "*"

    def may(self, action: str, log_group: str | None = None) -> bool:
        """Whether this principal may ``ingest``, ``read`` or ``admin`` (on ``log_group``)."""
        allowed = {"ingest": {"ingest"}, "read": {"read"}, "admin": {"ingest", "read", "admin"}}[self.role]
        if action not in allowed:
            return False
        return log_group is None or fnmatch.fnmatchcase(log_group, self.log_groups)

    def require(self, action: str, log_group: str | None = None) -> None:
        """Raise ForbiddenError unless :meth:`may`."""
        if not self.may(action, log_group):
            where = f" on log group {log_group!r}" if log_group else ""
            raise ForbiddenError(f"key {self.key_id} (role {self.role}) may not {action}{where}")


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed (never with its secret)."""

    key_id: str
    role: str
    log_groups: str
    created_ms: int
    revoked_ms: int | None
    description: str


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: the only time its secret is shown."""

    key_id: str
    secret: str
    role: str
    log_groups: str

    @property
    def bearer(self) -> str:
        """The bearer token form of the key."""
        return f"dk_{self.key_id}.{self.secret}"


class KeyRing:
    """The keys of one data directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._cache: tuple[float, dict] | None = None

    # ------------------------------------------------------------------ management

    def create(self, role: str, *, log_groups: str = "*", description: str = "") -> IssuedKey:
        """Issue a new key; its secret is returned once and stored only hashed and encrypted."""
        if role not in ROLES:
            raise ConfigError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not log_groups:
            raise ConfigError("the log-group pattern is empty; use * for every log group")
        key_id = "DK" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(18))
        secret = secrets.token_urlsafe(30)
        with self._lock:
            data = self._load()
            data["keys"][key_id] = {
                "role": role,
                "log_groups": log_groups,
                "created_ms": int(time.time() * 1000),
                "revoked_ms": None,
                "description": description,
                "sha256": _digest(secret),
                "encrypted": self._fernet().encrypt(secret.encode()).decode(),
            }
            self._save(data)
        AuditLog(self.directory).record("key.create", key_id, details={"role": role, "logGroups": log_groups})
        return IssuedKey(key_id, secret, role, log_groups)

    def list(self) -> list[KeyInfo]:
        """Every key, revoked ones included, by creation time."""
        keys = self._load()["keys"]
        infos = [KeyInfo(key_id, k["role"], k["log_groups"], k["created_ms"], k["revoked_ms"], k["description"])
                 for key_id, k in keys.items()]
        return sorted(infos, key=lambda k: (k.created_ms, k.key_id))

    def revoke(self, key_id: str) -> None:
        """Revoke a key: it stops working at once."""
        with self._lock:
            data = self._load()
            if key_id not in data["keys"]:
                AuditLog(self.directory).record("key.revoke", key_id, outcome="failed", details={"error": "no such key"})
                raise NotFoundError(f"no key {key_id!r}")
            data["keys"][key_id]["revoked_ms"] = int(time.time() * 1000)
            self._save(data)
        AuditLog(self.directory).record("key.revoke", key_id)

    def active(self) -> bool:
        """True when at least one key is not revoked (the server then requires credentials)."""
        return any(k["revoked_ms"] is None for k in self._load()["keys"].values())

    # ------------------------------------------------------------------ verification

    def authenticate_bearer(self, token: str) -> Principal:
        """The principal of a ``dk_<id>.<secret>`` token; AuthError when it is not a valid key."""
        if not token.startswith("dk_") or "." not in token:
            raise AuthError("the bearer token is not a dashcam key (dk_<id>.<secret>)")
        key_id, _, secret = token[3:].partition(".")
        record = self._live_record(key_id)
        if not hmac.compare_digest(record["sha256"], _digest(secret)):
            raise AuthError("the bearer token's secret is wrong")
        return Principal(key_id, record["role"], record["log_groups"])

    def aws_secret(self, access_key_id: str) -> tuple[str, Principal]:
        """The secret access key of an active key, to verify a SigV4 signature, and its principal."""
        record = self._live_record(access_key_id)
        try:
            secret = self._fernet().decrypt(record["encrypted"].encode()).decode()
        except InvalidToken:
            raise AuthError("this key's secret cannot be decrypted with the current master key") from None
        return secret, Principal(access_key_id, record["role"], record["log_groups"])

    def _live_record(self, key_id: str) -> dict:
        record = self._load()["keys"].get(key_id)
        if record is None:
            raise AuthError(f"unknown key {key_id!r}")
        if record["revoked_ms"] is not None:
            raise AuthError(f"key {key_id} was revoked")
        return record

    # ------------------------------------------------------------------ files

    def _load(self) -> dict:
        path = self.directory / KEYS_FILE
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return {"keys": {}}
        if self._cache is not None and self._cache[0] == mtime:
            return self._cache[1]
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{path} cannot be read: {exc}") from None
        self._cache = (mtime, data)
        return data

    def _save(self, data: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / KEYS_FILE
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)  # readers see the old file or the new one, never half of one
        self._cache = None

    def _fernet(self) -> Fernet:
        path = self.directory / MASTER_KEY_FILE
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        return Fernet(path.read_bytes().strip())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def describe(key: KeyInfo) -> dict:
    """A key as JSON-friendly data."""
    return asdict(key)
