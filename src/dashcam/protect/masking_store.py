"""The store decorator that applies data protection on every write, whatever the source.

:class:`ProtectedStore` implements the :class:`~dashcam.store.base.Store` port around the real
adapter. Every ingest path — file import, the native API, OTLP, CloudWatch ``PutLogEvents``, SDK
capture — ends in ``write_batch`` or ``write_raw``, so protecting those two protects everything:
for rows of log groups with a policy, the ``message`` column is replaced by its masked text
(and, in ``write_batch``, the typed string columns derived from it are masked too) before the
batch reaches the engine. Event ids are those of the message as it arrived, so re-deliveries are
still recognised and ``@ptr`` finds the encrypted original. With no policy at all, writes go
straight through: protection costs nothing then.

It also keeps the side data consistent: deleting a log group deletes its encrypted originals,
retention expires them with the events, and retention changes and group deletions are audited.
Everything else is delegated unchanged (adapter extras such as ``path`` too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dashcam.audit import AuditLog
from dashcam.errors import DashcamError
from dashcam.protect.masking import Masker, MaskStats
from dashcam.protect.policy import Policy, PolicyBook
from dashcam.protect.vault import OriginalsVault
from dashcam.records import RECORD_FIELDS
from dashcam.store.base import Interrupt, LogGroupInfo, LogStreamInfo, PreparedRaw, RawWriteResult, Store, WriteResult
from dashcam.store.schema import LOG_GROUPS_TABLE

_STRING_HOT_COLUMNS = tuple(f.column for f in RECORD_FIELDS if f.kind == "string" and f.column not in
                            ("provider", "source"))
_SCAN_CHUNK = 16_384  # as RawBatchBuilder: engines scan one record batch per thread


class Protection:
    """The data-protection state of one data directory: policies, encrypted originals, counts."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.policies = PolicyBook(self.directory)
        self.vault = OriginalsVault(self.directory)
        self.stats = MaskStats()
        self.audit = AuditLog(self.directory)
        self._maskers: dict[Policy, Masker] = {}

    def masker(self, log_group: str) -> Masker | None:
        """The ready-to-run policy for events of ``log_group``, or None."""
        policy = self.policies.for_group(log_group)
        if policy is None:
            return None
        masker = self._maskers.get(policy)
        if masker is None:
            if len(self._maskers) > 256:
                self._maskers.clear()  # policies replaced many times over: drop stale ones
            masker = self._maskers[policy] = Masker(policy)
        return masker

    def unmask(self, log_group: str, event_ids: list[int]) -> dict[int, str]:
        """The kept originals of these events (the caller checks the right and audits)."""
        return self.vault.get(log_group, event_ids)

    def protect_raw(self, batch: pa.Table, *, source: str, provider: str) -> tuple[pa.Table, list]:
        """A raw batch (row_idx, event_id, log_group, log_stream, message) with its messages
        protected, and the originals to keep as (group, event id, ts ms, text)."""
        maskers = self._maskers_for(batch)
        if not maskers:
            return batch, []
        messages = batch.column("message").to_pylist()
        groups, ids = batch.column("log_group").to_pylist(), batch.column("event_id").to_pylist()
        originals = []
        for row, (group, message) in enumerate(zip(groups, messages)):
            masker = maskers.get(group)
            if masker is None or message is None or not message.strip():
                continue
            outcome = masker.protect(message, source=source, provider=provider)
            self.stats.add(group, outcome)
            if outcome.changed:
                messages[row] = outcome.message
            if outcome.original is not None:
                originals.append((group, ids[row], outcome.ts_ms, outcome.original))
        return _replaced(batch, {"message": messages}), originals

    def protect_events(self, batch: pa.Table) -> tuple[pa.Table, list]:
        """An event batch (the store schema) with messages and typed string columns protected,
        and the originals to keep."""
        maskers = self._maskers_for(batch)
        if not maskers:
            return batch, []
        messages = batch.column("message").to_pylist()
        groups, ids = batch.column("log_group").to_pylist(), batch.column("event_id").to_pylist()
        stamps = batch.column("ts").cast(pa.int64()).to_pylist()
        sources, providers = batch.column("source").to_pylist(), batch.column("provider").to_pylist()
        hot = {name: batch.column(name).to_pylist() for name in _STRING_HOT_COLUMNS}
        originals = []
        for row, group in enumerate(groups):
            masker = maskers.get(group)
            if masker is None:
                continue
            outcome = masker.protect(messages[row], source=sources[row] or "api", provider=providers[row] or "",
                                     ts_ms=stamps[row])
            self.stats.add(group, outcome)
            if outcome.changed:
                messages[row] = outcome.message
            if outcome.original is not None:
                originals.append((group, ids[row], outcome.ts_ms, outcome.original))
            if masker.policy.masks:
                for values in hot.values():
                    if values[row]:
                        values[row] = masker.mask_text(values[row], Counter())  # counted once, in the message
        return _replaced(batch, {"message": messages, **hot}), originals

    def _maskers_for(self, batch: pa.Table) -> dict[str, Masker]:
        if batch.num_rows == 0 or self.policies.empty():
            return {}
        maskers = {}
        for group in pc.unique(batch.column("log_group")).to_pylist():
            masker = self.masker(group)
            if masker is not None:
                maskers[group] = masker
        return maskers

    def close(self) -> None:
        """Release the originals database."""
        self.vault.close()


def _replaced(batch: pa.Table, columns: dict[str, list]) -> pa.Table:
    for name, values in columns.items():
        index = batch.schema.get_field_index(name)
        batch = batch.set_column(index, batch.schema.field(index), pa.array(values, batch.schema.field(index).type))
    return pa.Table.from_batches(batch.to_batches(max_chunksize=_SCAN_CHUNK))


class ProtectedStore(Store):
    """A store whose writes pass through :class:`Protection` first (see the module docstring)."""

    def __init__(self, inner: Store, protection: Protection) -> None:
        self.inner = inner
        self.protection = protection
        self.dialect = inner.dialect  # type: ignore[misc]  (per instance: whatever the adapter speaks)

    def __getattr__(self, name: str) -> Any:
        # Adapter extras (path, execute_arrow, target, ...) are the adapter's.
        if name in ("inner", "protection"):
            raise AttributeError(name)  # not set yet (during construction or unpickling)
        return getattr(self.inner, name)

    # ------------------------------------------------------------------ writes: protected

    def write_batch(self, batch: pa.Table) -> WriteResult:
        batch, originals = self.protection.protect_events(batch)
        if originals:
            self.protection.vault.put(originals)  # committed before the events: an acknowledged event can be unmasked
        return self.inner.write_batch(batch)

    @property
    def reports_rows(self) -> bool:  # type: ignore[override]
        return self.inner.reports_rows

    @property
    def efficient_commit_rows(self) -> int:  # type: ignore[override]
        return self.inner.efficient_commit_rows

    def write_raw(
        self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock", report_rows: bool = False
    ) -> RawWriteResult:
        return self.commit_raw(self.prepare_raw(batch, source=source, provider=provider), report_rows=report_rows)

    def prepare_raw(self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock") -> PreparedRaw:
        batch, originals = self.protection.protect_raw(batch, source=source, provider=provider)
        if originals:
            self.protection.vault.put(originals)  # before the events' commit, as in write_batch
        return self.inner.prepare_raw(batch, source=source, provider=provider)

    def commit_raw(self, prepared: PreparedRaw, *, report_rows: bool = False) -> RawWriteResult:
        return self.inner.commit_raw(prepared, report_rows=report_rows)

    def bulk_writes(self) -> AbstractContextManager[None]:
        return self.inner.bulk_writes()

    # ------------------------------------------------------------------ admin actions: audited

    def set_retention(self, log_group: str, days: int | None) -> None:
        action = "retention.put" if days is not None else "retention.delete"
        try:
            self.inner.set_retention(log_group, days)
        except DashcamError as exc:
            self.protection.audit.record(action, log_group, outcome="failed", details={"days": days, "error": str(exc)})
            raise
        self.protection.audit.record(action, log_group, details={"days": days})

    def delete_log_group(self, name: str) -> None:
        try:
            self.inner.delete_log_group(name)
        except DashcamError as exc:
            self.protection.audit.record("log-group.delete", name, outcome="failed", details={"error": str(exc)})
            raise
        forgotten = self.protection.vault.delete_group(name)
        self.protection.audit.record("log-group.delete", name, details={"originalsForgotten": forgotten})

    def delete_expired(self, now_ms: int) -> int:
        deleted = self.inner.delete_expired(now_ms)
        if self.protection.vault.path.exists():
            rows = self.inner.execute(
                f"SELECT name, retention_days FROM {LOG_GROUPS_TABLE} WHERE retention_days IS NOT NULL")
            self.protection.vault.delete_expired({str(name): int(days) for name, days in rows}, now_ms)
        return deleted

    # ------------------------------------------------------------------ everything else: delegated

    def execute(self, sql: str, *, interrupt: Interrupt | None = None) -> list[tuple[Any, ...]]:
        return self.inner.execute(sql, interrupt=interrupt)

    def create_log_group(self, name: str, *, exist_ok: bool = False) -> None:
        self.inner.create_log_group(name, exist_ok=exist_ok)

    def list_log_groups(self, prefix: str = "") -> list[LogGroupInfo]:
        return self.inner.list_log_groups(prefix)

    def list_log_streams(self, log_group: str, prefix: str = "") -> list[LogStreamInfo]:
        return self.inner.list_log_streams(log_group, prefix)

    def create_log_stream(self, log_group: str, name: str) -> None:
        self.inner.create_log_stream(log_group, name)

    def reprice(self, start_ms: int | None = None, end_ms: int | None = None) -> int:
        return self.inner.reprice(start_ms, end_ms)

    def scan_events(self, log_group: str, batch_rows: int = 100_000) -> Iterator[pa.Table]:
        return self.inner.scan_events(log_group, batch_rows)

    def restore_log_group(self, info: LogGroupInfo, streams: list[LogStreamInfo]) -> None:
        self.inner.restore_log_group(info, streams)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.protection.close()
