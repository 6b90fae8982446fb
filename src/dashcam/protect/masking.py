"""Applying one policy to one message: body switches first, then masking.

A message that is a JSON object is parsed, its bodies dropped per the switches, and every string
value (and, for detectors that scan numbers, every integer) masked; it is re-serialized only
when something changed, so untouched events keep their exact bytes. Any other message is masked
as text. The walk over JSON is iterative: records nest as deep as JSON parsers allow. A record
nested too deep to be written back (hundreds of levels; no real log) is replaced by the mask
text as a whole: it is then refused by the store as not JSON, and nothing sensitive is kept.

What is masked is replaced by the policy's mask text (``****``), the same whatever was found,
so masked text says nothing about the length or kind of what it hides.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from dashcam.errors import InputError
from dashcam.protect.bodies import drop_bodies
from dashcam.protect.detectors import Detector
from dashcam.protect.policy import Policy
from dashcam.records import timestamp_ms


@dataclass(frozen=True)
class Protected:
    """One message after its policy: what to store, and the unmasked text to keep (if any)."""

    message: str
    changed: bool
    original: str | None
    ts_ms: int | None
    masked: Counter[str]
    dropped: Counter[str]


class Masker:
    """A policy made ready to run: its detectors compiled, in order."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.detectors: tuple[Detector, ...] = policy.active_detectors()

    def mask_text(self, text: str, counts: Counter[str], context: str = "",
                  detectors: tuple[Detector, ...] | None = None) -> str:
        """``text`` with every finding replaced by the mask; findings are added to ``counts``."""
        for detector in self.detectors if detectors is None else detectors:
            spans = detector.spans(text, context)
            if spans:
                counts[detector.name] += len(spans)
                text = _splice(text, spans, self.policy.mask)
        return text

    def protect(self, message: str, *, source: str, provider: str, ts_ms: int | None = None) -> Protected:
        """Apply the policy to one message (``ts_ms``: the event time, when already known)."""
        masked: Counter[str] = Counter()
        record = _as_object(message)
        if record is None:
            text = self.mask_text(message, masked) if self.policy.masks else message
            changed = text != message
            original = message if changed and self.policy.keep_original else None
            return Protected(text, changed, original, ts_ms, masked, Counter())
        dropped = drop_bodies(record, self.policy.bodies, source=source, provider=provider)
        unmasked = _dumps(record) if dropped else message
        if unmasked is None:  # too deep to write back: keep nothing rather than what should go
            return Protected(self.policy.mask, True, None, ts_ms, masked, dropped)
        if self.policy.masks:
            self._mask_record(record, masked, tuple(d for d in self.detectors if d.may_find(message)))
        stored = (_dumps(record) or self.policy.mask) if masked else unmasked
        original = unmasked if masked and self.policy.keep_original else None
        if original is not None and ts_ms is None:
            ts_ms = _record_time(record)
        return Protected(stored, bool(masked or dropped), original, ts_ms, masked, dropped)

    def _mask_record(self, record: dict[str, Any], counts: Counter[str], detectors: tuple[Detector, ...]) -> None:
        if not detectors:
            return
        numbers = tuple(d for d in detectors if d.scans_numbers)
        pending: list[tuple[Any, str]] = [(record, "")]
        while pending:
            node, context = pending.pop()
            entries = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            for key, value in entries:
                where = key if isinstance(key, str) else context
                if isinstance(value, str):
                    masked = self.mask_text(value, counts, where, detectors)
                    if masked != value:
                        node[key] = masked
                elif isinstance(value, (dict, list)):
                    pending.append((value, where))
                elif type(value) is int and numbers:
                    text = str(value)
                    masked = self.mask_text(text, counts, where, numbers)
                    if masked != text:
                        node[key] = masked


def _splice(text: str, spans: list[tuple[int, int]], mask: str) -> str:
    parts, last = [], 0
    for start, end in spans:
        parts.append(text[last:start])
        parts.append(mask)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _dumps(value: dict[str, Any]) -> str | None:
    """Compact JSON text of a parsed record; None when it nests too deep to write back (orjson
    writes 254 levels and reads 1024; the standard library's encoder recurses in Python)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:
            return None


def _as_object(message: str) -> dict[str, Any] | None:
    if not message.lstrip().startswith("{"):
        return None
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _record_time(record: dict[str, Any]) -> int | None:
    try:
        return timestamp_ms(record["timestamp"]) if record.get("timestamp") is not None else None
    except InputError:
        return None


class MaskStats:
    """Counts of what protection did, per log group, since the process started (for metrics).

    ``masked``: findings per (log group, detector); ``dropped``: bodies or payloads per (log
    group, modality); ``events``: events changed per log group. Counts cover events received,
    re-deliveries included.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._masked: Counter[tuple[str, str]] = Counter()
        self._dropped: Counter[tuple[str, str]] = Counter()
        self._events: Counter[str] = Counter()

    def add(self, log_group: str, outcome: Protected) -> None:
        """Count one protected message."""
        if not outcome.changed:
            return
        with self._lock:
            self._events[log_group] += 1
            for name, n in outcome.masked.items():
                self._masked[log_group, name] += n
            for modality, n in outcome.dropped.items():
                self._dropped[log_group, modality] += n

    def masked_counts(self) -> dict[tuple[str, str], int]:
        """Findings masked, by (log group, detector)."""
        with self._lock:
            return dict(self._masked)

    def dropped_counts(self) -> dict[tuple[str, str], int]:
        """Body data dropped, by (log group, modality)."""
        with self._lock:
            return dict(self._dropped)

    def changed_events(self) -> dict[str, int]:
        """Events that were masked or had bodies dropped, by log group."""
        with self._lock:
            return dict(self._events)

    def as_rows(self) -> list[dict[str, Any]]:
        """Every count as ``{"logGroup", "kind", "name", "count"}`` rows (kind ``masked`` or ``dropped``)."""
        rows = [{"logGroup": g, "kind": "masked", "name": n, "count": c} for (g, n), c in self.masked_counts().items()]
        rows += [{"logGroup": g, "kind": "dropped", "name": n, "count": c}
                 for (g, n), c in self.dropped_counts().items()]
        return sorted(rows, key=lambda r: (r["logGroup"], r["kind"], r["name"]))
