"""Copy everything from one store to another: log groups (creation time, retention), streams and
events, in Arrow batches. ``dashcam migrate --from DUCKDB_DIR --to URL`` calls it.

Events are read a batch at a time (:meth:`~dashcam.store.base.Store.scan_events`) and written
with the target's ordinary :meth:`~dashcam.store.base.Store.write_batch`, so the target's own
rules hold: an event already there (same group, same message) is counted, not stored twice —
which makes an interrupted migration safe to run again — and each batch is durable before the
next is read. Events keep their ``@timestamp`` and ``@ingestionTime``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dashcam.errors import ConfigError
from dashcam.store.base import Store, WriteResult

DEFAULT_BATCH_ROWS = 100_000


@dataclass
class MigrationSummary:
    """What a migration did."""

    log_groups: int = 0
    log_streams: int = 0
    events: int = 0       # read from the source
    written: int = 0      # newly stored in the target
    duplicates: int = 0   # already in the target
    seconds: float = 0.0


def migrate(
    source: Store,
    target: Store,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    start: Callable[[int], None] | None = None,
    advance: Callable[[int], None] | None = None,
) -> MigrationSummary:
    """Copy every log group, stream and event of ``source`` into ``target``.

    ``start(total_events)`` is called once before copying, ``advance(events)`` after each batch
    is committed (for a progress bar).
    """
    if source is target:
        raise ConfigError("the source and the target of a migration are the same store")
    if batch_rows < 1:
        raise ConfigError("the batch size must be at least 1")
    began = time.perf_counter()
    groups = source.list_log_groups()
    if start:
        start(sum(g.events for g in groups))
    summary = MigrationSummary()
    for group in groups:
        streams = source.list_log_streams(group.name)
        target.restore_log_group(group, streams)
        summary.log_groups += 1
        summary.log_streams += len(streams)
        for batch in source.scan_events(group.name, batch_rows):
            result: WriteResult = target.write_batch(batch)
            summary.events += batch.num_rows
            summary.written += result.written
            summary.duplicates += result.duplicates
            if advance:
                advance(batch.num_rows)
    summary.seconds = time.perf_counter() - began
    return summary
