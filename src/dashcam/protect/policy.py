"""Data-protection policies: one per log group (or log-group pattern), kept in the data directory.

A :class:`Policy` says what to mask (built-in detectors and custom patterns), with what text
(``****`` by default), whether an encrypted copy of the unmasked message is kept so admins may
unmask it, and which body data to keep (:class:`~dashcam.protect.bodies.BodySwitches`).

Policies live in ``protection.json`` (mode 0600) beside the store, keyed by log group. A key may
also be a glob (``/aws/bedrock/*``, or ``*`` for every group): a group's policy is the one named
exactly for it, else that of the longest matching pattern — one policy applies, never a merge.
:class:`PolicyBook` re-reads the file when it changes, so a policy set with the CLI reaches a
running server with its next write. Changes are written in one atomic replace under a file lock
and recorded in the audit log.

CloudWatch Logs' policy document (``PutDataProtectionPolicy``) maps onto a policy:
``DataIdentifier`` of the ``Deidentify`` statement -> detectors,
``Configuration.CustomDataIdentifier`` -> custom patterns. What CloudWatch has no words for
travels in ``Configuration.dashcam``: ``keepEncryptedOriginal``, ``maskWith``, ``phoneRegion``
and the three ``*DataDeliveryEnabled`` switches. See docs/data-protection.md.
"""

from __future__ import annotations

import fcntl
import fnmatch
import os
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from dashcam.audit import AuditLog
from dashcam.errors import ConfigError, InputError, NotFoundError
from dashcam.protect.bodies import BodySwitches
from dashcam.protect.detectors import (
    BUILTIN, BY_NAME, DATA_IDENTIFIER_ARN, DEFAULT_PHONE_REGION, MAX_CUSTOM_PATTERNS, Detector, check_region,
    custom_detector, phone_detector, resolve,
)

POLICY_FILE = "protection.json"
DEFAULT_MASK = "****"
POLICY_VERSION = "2021-06-01"  # the CloudWatch Logs data protection policy language version
_GROUP_PATTERN_CHARS = frozenset(".-_/#*?[]" + string.ascii_letters + string.digits)


@dataclass(frozen=True)
class CustomPattern:
    """A named regular expression (CloudWatch's custom data identifier)."""

    name: str
    regex: str


@dataclass(frozen=True)
class Policy:
    """What dashcam does to the events of one log group (or pattern) before storing them."""

    log_group: str
    detectors: tuple[str, ...] = ()
    custom: tuple[CustomPattern, ...] = ()
    mask: str = DEFAULT_MASK
    keep_original: bool = False
    phone_region: str = DEFAULT_PHONE_REGION
    bodies: BodySwitches = field(default_factory=BodySwitches)
    name: str = "data-protection-policy"
    description: str = ""
    updated_ms: int = 0

    def __post_init__(self) -> None:
        check_group_pattern(self.log_group)
        unknown = [d for d in self.detectors if d not in BY_NAME]
        if unknown:
            raise InputError(f"unknown detector {unknown[0]!r}; built-in detectors: {', '.join(BY_NAME)}")
        if len(self.custom) > MAX_CUSTOM_PATTERNS:
            raise InputError(f"a policy has at most {MAX_CUSTOM_PATTERNS} custom patterns")
        if len({c.name for c in self.custom}) != len(self.custom):
            raise InputError("custom pattern names must be distinct")
        for pattern in self.custom:
            custom_detector(pattern.name, pattern.regex)  # raises InputError when unusable
        if not self.mask or len(self.mask) > 64 or any(ord(c) < 32 for c in self.mask):
            raise InputError("the mask must be 1-64 printable characters, e.g. ****")
        check_region(self.phone_region)
        if not (self.detectors or self.custom) and self.bodies.all_on:
            raise InputError("the policy masks nothing and drops nothing: name detectors, custom patterns "
                             "or a body switch to turn off")

    @property
    def masks(self) -> bool:
        """True when the policy masks anything (rather than only dropping bodies)."""
        return bool(self.detectors or self.custom)

    def active_detectors(self) -> tuple[Detector, ...]:
        """The detectors to run, in order: custom patterns first, then built-ins in table order."""
        chosen = [custom_detector(c.name, c.regex) for c in self.custom]
        for detector in BUILTIN:
            if detector.name in self.detectors:
                chosen.append(phone_detector(self.phone_region) if detector.name == "phone" else detector)
        return tuple(chosen)

    # ------------------------------------------------------------------ native JSON

    def as_dict(self) -> dict[str, Any]:
        """The policy as dashcam's API and ``protection.json`` write it."""
        return {
            "logGroup": self.log_group, "detectors": list(self.detectors),
            "custom": [{"name": c.name, "regex": c.regex} for c in self.custom],
            "mask": self.mask, "keepOriginal": self.keep_original, "phoneRegion": self.phone_region,
            "bodies": self.bodies.as_dict(), "name": self.name, "description": self.description,
            "updatedMs": self.updated_ms,
        }

    @classmethod
    def from_dict(cls, data: Any, *, log_group: str | None = None) -> "Policy":
        """A policy from :meth:`as_dict`'s shape (``log_group`` overrides the body's); InputError
        naming what is wrong."""
        if not isinstance(data, dict):
            raise InputError("a policy must be a JSON object")
        allowed = {"logGroup", "detectors", "custom", "mask", "keepOriginal", "phoneRegion", "bodies", "name",
                   "description", "updatedMs"}
        extra = sorted(set(data) - allowed)
        if extra:
            raise InputError(f"unknown policy member {extra[0]!r}; members: {', '.join(sorted(allowed))}")
        group = log_group or data.get("logGroup")
        if not isinstance(group, str):
            raise InputError("the policy names no logGroup")
        detectors, region = _detectors(_strings(data.get("detectors", []), "detectors"))
        custom = data.get("custom", [])
        if not isinstance(custom, list) or not all(isinstance(c, dict) and set(c) == {"name", "regex"} for c in custom):
            raise InputError('custom must be a list of {"name": ..., "regex": ...}')
        bodies = data.get("bodies", {})
        if not isinstance(bodies, dict) or not all(k in ("text", "image", "embedding") and isinstance(v, bool)
                                                   for k, v in bodies.items()):
            raise InputError('bodies must be {"text": true|false, "image": ..., "embedding": ...}')
        return cls(
            log_group=group, detectors=detectors,
            custom=tuple(CustomPattern(str(c["name"]), str(c["regex"])) for c in custom),
            mask=_typed(data, "mask", str, DEFAULT_MASK), keep_original=_typed(data, "keepOriginal", bool, False),
            phone_region=check_region(_typed(data, "phoneRegion", str, region or DEFAULT_PHONE_REGION)),
            bodies=BodySwitches(**bodies), name=_typed(data, "name", str, "data-protection-policy"),
            description=_typed(data, "description", str, ""), updated_ms=_typed(data, "updatedMs", int, 0),
        )

    # ------------------------------------------------------------------ CloudWatch's document

    def to_cloudwatch(self) -> str:
        """The policy as a CloudWatch Logs data protection policy document (JSON text)."""
        identifiers = [DATA_IDENTIFIER_ARN + (f"PhoneNumber-{self.phone_region}" if d == "phone"
                                              else BY_NAME[d].identifier)
                       for d in BY_NAME if d in self.detectors] + [c.name for c in self.custom]
        configuration: dict[str, Any] = {"dashcam": {
            "keepEncryptedOriginal": self.keep_original, "maskWith": self.mask, "phoneRegion": self.phone_region,
            "textDataDeliveryEnabled": self.bodies.text, "imageDataDeliveryEnabled": self.bodies.image,
            "embeddingDataDeliveryEnabled": self.bodies.embedding,
        }}
        if self.custom:
            configuration["CustomDataIdentifier"] = [{"Name": c.name, "Regex": c.regex} for c in self.custom]
        document = {
            "Name": self.name, "Description": self.description, "Version": POLICY_VERSION,
            "Statement": [
                {"Sid": "audit-policy", "DataIdentifier": identifiers,
                 "Operation": {"Audit": {"FindingsDestination": {}}}},
                {"Sid": "redact-policy", "DataIdentifier": identifiers,
                 "Operation": {"Deidentify": {"MaskConfig": {}}}},
            ],
            "Configuration": configuration,
        }
        return orjson.dumps(document).decode()

    @classmethod
    def from_cloudwatch(cls, text: str, log_group: str) -> "Policy":
        """A policy from a CloudWatch Logs data protection policy document; InputError naming
        what dashcam cannot accept."""
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"the policy document is not valid JSON ({exc})") from None
        if not isinstance(document, dict):
            raise InputError("the policy document must be a JSON object")
        statements = document.get("Statement")
        if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
            raise InputError("the policy document needs a Statement list")
        deidentify = [s for s in statements if isinstance(s.get("Operation"), dict) and "Deidentify" in s["Operation"]]
        if len(deidentify) != 1:
            raise InputError("the policy document needs exactly one statement with Operation.Deidentify.MaskConfig")
        configuration = document.get("Configuration") or {}
        if not isinstance(configuration, dict):
            raise InputError("Configuration must be a JSON object")
        custom_defined = {}
        for item in configuration.get("CustomDataIdentifier") or []:
            if not (isinstance(item, dict) and isinstance(item.get("Name"), str) and isinstance(item.get("Regex"), str)):
                raise InputError('each CustomDataIdentifier needs "Name" and "Regex" strings')
            custom_defined[item["Name"]] = item["Regex"]
        builtins, custom = [], []
        for identifier in _strings(deidentify[0].get("DataIdentifier"), "DataIdentifier"):
            if identifier in custom_defined:
                custom.append(CustomPattern(identifier, custom_defined[identifier]))
            else:
                builtins.append(identifier)
        detectors, region = _detectors(builtins)
        extension = configuration.get("dashcam") or {}
        if not isinstance(extension, dict):
            raise InputError("Configuration.dashcam must be a JSON object")
        region = _typed(extension, "phoneRegion", str, region or DEFAULT_PHONE_REGION)
        return cls(
            log_group=log_group, detectors=detectors, custom=tuple(custom),
            mask=_typed(extension, "maskWith", str, DEFAULT_MASK),
            keep_original=_typed(extension, "keepEncryptedOriginal", bool, False),
            phone_region=check_region(region),
            bodies=BodySwitches(_typed(extension, "textDataDeliveryEnabled", bool, True),
                                _typed(extension, "imageDataDeliveryEnabled", bool, True),
                                _typed(extension, "embeddingDataDeliveryEnabled", bool, True)),
            name=_typed(document, "Name", str, "data-protection-policy"),
            description=_typed(document, "Description", str, ""),
        )


def check_group_pattern(pattern: str) -> str:
    """``pattern`` if it is a log group name or a glob over names; InputError otherwise."""
    if not isinstance(pattern, str) or not 1 <= len(pattern) <= 512 or not set(pattern) <= _GROUP_PATTERN_CHARS:
        raise InputError(f"{pattern!r} is not a log group name or pattern (letters, digits, . - _ / # and * ? [ ])")
    return pattern


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{what} must be a list of strings")
    return value


def _typed(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(f"{key} must be a {kind.__name__}, got {value!r}")
    return value


def _detectors(identifiers: list[str]) -> tuple[tuple[str, ...], str | None]:
    """Detector names (deduplicated, in table order) and the phone region an identifier named."""
    names, region = set(), None
    for identifier in identifiers:
        name, named_region = resolve(identifier)
        names.add(name)
        if named_region:
            if region and region != named_region:
                raise InputError(f"phone numbers of one region per policy: {region} and {named_region} were both named")
            region = named_region
    return tuple(n for n in BY_NAME if n in names), region


class PolicyBook:
    """The policies of one data directory, re-read when the file changes."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / POLICY_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._policies: dict[str, Policy] = {}
        self._resolved: dict[str, Policy | None] = {}

    def policies(self) -> list[Policy]:
        """Every policy, by log group (pattern)."""
        return [self._current()[k] for k in sorted(self._current())]

    def get(self, log_group: str) -> Policy:
        """The policy stored under exactly ``log_group``; NotFoundError when there is none."""
        policy = self._current().get(log_group)
        if policy is None:
            raise NotFoundError(f"no data protection policy for {log_group!r}")
        return policy

    def for_group(self, log_group: str) -> Policy | None:
        """The policy that applies to events of ``log_group`` (exact name, else longest pattern)."""
        policies = self._current()
        if not policies:
            return None
        with self._lock:
            if log_group in self._resolved:
                return self._resolved[log_group]
        policy = policies.get(log_group)
        if policy is None:
            patterns = sorted((k for k in policies if fnmatch.fnmatchcase(log_group, k)), key=lambda k: (-len(k), k))
            policy = policies[patterns[0]] if patterns else None
        with self._lock:
            self._resolved[log_group] = policy
        return policy

    def empty(self) -> bool:
        """True when no policy exists (ingest then skips protection entirely)."""
        return not self._current()

    def put(self, policy: Policy) -> Policy:
        """Store ``policy`` (replacing the group's previous one) and audit the change."""
        stamped = replace(policy, updated_ms=int(time.time() * 1000))
        with self._file_lock():
            data = self._read_file()
            data[policy.log_group] = stamped.as_dict()
            self._write_file(data)
        AuditLog(self.directory).record("protection.put", policy.log_group, details={
            "detectors": list(policy.detectors), "custom": [c.name for c in policy.custom],
            "keepOriginal": policy.keep_original, "bodies": policy.bodies.as_dict()})
        return stamped

    def remove(self, log_group: str) -> None:
        """Delete the policy stored under ``log_group`` (NotFoundError if none) and audit it.

        Events stored earlier stay as they were stored (masked), and their encrypted originals
        stay unmaskable until the events expire or the group is deleted.
        """
        with self._file_lock():
            data = self._read_file()
            if log_group not in data:
                raise NotFoundError(f"no data protection policy for {log_group!r}")
            del data[log_group]
            self._write_file(data)
        AuditLog(self.directory).record("protection.delete", log_group)

    # ------------------------------------------------------------------ the file

    def _current(self) -> dict[str, Policy]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except (FileNotFoundError, NotADirectoryError):  # no policies (or a store file, not a directory)
            stamp = None
        with self._lock:
            if stamp == self._stamp:
                return self._policies
        policies = {} if stamp is None else {
            key: Policy.from_dict(value, log_group=key) for key, value in self._read_file().items()}
        with self._lock:
            self._stamp, self._policies, self._resolved = stamp, policies, {}
        return policies

    def _read_file(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path} cannot be read: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("policies", {}), dict):
            raise ConfigError(f"{self.path} is not a dashcam policy file")
        return dict(data.get("policies", {}))

    def _write_file(self, policies: dict[str, Any]) -> None:
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps({"version": 1, "policies": policies}, option=orjson.OPT_INDENT_2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Read-modify-write across processes (a server and the CLI): one writer at a time.
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / (POLICY_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
