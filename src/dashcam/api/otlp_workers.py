"""OTLP trace mapping in worker processes: the receiver's CPU beyond one core.

Decoding an export and mapping its spans is Python, so in the server's process it runs on one
core at a time (the interpreter lock), and that core is the receiver's limit. A worker process
takes the raw body and gives back what the receiver commits: the events (as plain lists: a
worker imports neither Arrow nor the web framework), the counts, and notes for the join buffer.

The join buffer (:class:`dashcam.sources.otlp.JoinBuffer`) stays in the server's process. In a
worker nothing is waiting for a span, so the worker maps only spans that need nothing from it:
those of services that have not sent GenAI content log records recently (the receiver passes that
set along). Spans of services that do send content may be held for their content, so the worker
hands them back unmapped, as a protobuf request of their own, and the receiver maps them itself
as before. A span mapped in a worker that lacks some content is noted, so content that follows it
is recognised as late (:meth:`JoinBuffer.written_elsewhere`).

The receiver maps a request itself when every worker already has one running and one queued and
its own mapping thread is free, so that the server's core maps too, but never more than one
request at a time: mapping there takes the interpreter lock from the requests and commits it also
serves (measured on 2 cores, mapping more there starved the workers). ``DASHCAM_OTLP_WORKERS``
sets the number of workers (default: one per core up to four on a machine with more than one
core, else none; 0 turns them off). The workers (:mod:`dashcam.api.pipe_workers`) are the
process's, shared by its receivers, and end with it.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dashcam.api.otlp_decode import decode, request_rows
from dashcam.api.pipe_workers import WorkerLost, WorkerProcess
from dashcam.errors import ConfigError
from dashcam.sources.otlp import TraceResult, attributes, service_name
from dashcam.store.rows import EventRows

log = logging.getLogger("dashcam.otlp")

WORKERS_ENV = "DASHCAM_OTLP_WORKERS"
QUEUED_PER_WORKER = 2  # one mapping, one waiting: a worker never idles between requests
RESTART_AFTER_SECONDS = 60  # after a worker that could not start (it answered nothing)
# Workers by default: one per core, this many at most. A worker holds ~35 MB; measured on 2 cores
# (4 senders), two workers mapped ~10% more spans than one, the server's own thread mapping the rest.
DEFAULT_MAX_WORKERS = 4


def configured_workers() -> int:
    """The number of mapping worker processes: ``DASHCAM_OTLP_WORKERS``, or one per core (at most
    :data:`DEFAULT_MAX_WORKERS`) when there is more than one."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        cores = os.cpu_count() or 1
        return min(cores, DEFAULT_MAX_WORKERS) if cores > 1 else 0
    if not text.isdigit() or int(text) > 64:
        raise ConfigError(f"{WORKERS_ENV}={text!r} is not a number of worker processes from 0 to 64")
    return int(text)


@dataclass
class MappedElsewhere:
    """What a worker made of a trace export."""

    result: TraceResult  # counts and errors (its records are in ``rows``)
    rows: EventRows
    notes: list[tuple]  # JoinBuffer.written_elsewhere's notes
    deferred: bytes | None  # the resource spans left to the receiver, as an ExportTraceServiceRequest


class JoinNotes:
    """The join buffer as a worker sees it: nothing waits there, and each span written is noted."""

    def __init__(self) -> None:
        self.notes: list[tuple] = []

    def take(self, key: bytes) -> None:
        return None

    def has_output(self, key: bytes) -> bool:
        return False

    def sends_content(self, app: str | None) -> bool:
        return False  # services that do were handed back to the receiver

    def written(self, key: bytes, log_group: str, log_stream: str, record: dict[str, Any], content: Any) -> None:
        self.notes.append((key, log_group, log_stream, record.get("app"), record.get("provider") or "unknown",
                           record["timestamp"], content.has_input, content.has_output))


def map_export(raw: bytes, content_encoding: str, encoding: str,
               content_services: frozenset[str | None]) -> MappedElsewhere:
    """In a worker: decode a ``/v1/traces`` body and map the spans of services not in
    ``content_services``; hand the others back. Undecodable input raises ``OtlpError``."""
    request = decode(raw, content_encoding, encoding, ExportTraceServiceRequest)
    deferred = None
    if content_services:
        kept, handed_back = ExportTraceServiceRequest(), ExportTraceServiceRequest()
        for resource_spans in request.resource_spans:
            app = service_name(attributes(resource_spans.resource.attributes))
            (handed_back if app in content_services else kept).resource_spans.append(resource_spans)
        if handed_back.resource_spans:
            request, deferred = kept, handed_back.SerializeToString()
    notes = JoinNotes()
    result, rows = request_rows(request, notes, hold=False)
    return MappedElsewhere(result, rows, notes.notes, deferred)


class MappingPool:
    """Worker processes mapping trace exports, with a count of requests given to them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.busy = 0
        self.target = f"{__name__}:map_export"
        self._processes: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._start_after = 0.0  # monotonic time before which no worker is started
        atexit.register(self.close)

    def has_room(self) -> bool:
        """True when a request given now would start soon (else the receiver maps it itself)."""
        return self.busy < self.workers * QUEUED_PER_WORKER

    async def map(self, raw: bytes, content_encoding: str, encoding: str,
                  content_services: frozenset[str | None]) -> MappedElsewhere:
        """:func:`map_export` in a worker. Raises what it raises, or :class:`WorkerLost` (also
        when no worker can be started now)."""
        worker = self._worker_now()
        if worker is None:
            raise WorkerLost()
        self.busy += 1
        try:
            return await asyncio.wrap_future(worker.call(raw, content_encoding, encoding, content_services))
        except WorkerLost:
            log.warning("otlp: mapping worker process %d died; mapping this export in the server", worker.pid)
            raise
        finally:
            self.busy -= 1

    def close(self) -> None:
        """End the workers (each finishes what it was given first)."""
        with self._lock:
            processes, self._processes = self._processes, []
        for process in processes:
            process.close()

    def _worker_now(self) -> WorkerProcess | None:
        """The worker with the fewest requests, started first if there are fewer than ``workers``
        (at the first request, or because one died); None when there is none to be had."""
        with self._lock:
            for process in self._processes:
                if process.lost and not process.answered and time.monotonic() >= self._start_after:
                    # It died before answering anything: starting another for every export
                    # would only start processes.
                    log.error("otlp: mapping worker process %d ended before answering; the server maps "
                              "exports itself for the next %d s", process.pid, RESTART_AFTER_SECONDS)
                    self._start_after = time.monotonic() + RESTART_AFTER_SECONDS
            self._processes = [process for process in self._processes if not process.lost]
            if len(self._processes) < self.workers and time.monotonic() >= self._start_after:
                self._processes.append(WorkerProcess(self.target))
            return min(self._processes, key=lambda process: process.outstanding, default=None)


_POOLS: dict[int, MappingPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int) -> MappingPool | None:
    """The process's pool of ``workers`` mapping workers (None for none), shared by every receiver
    in it: workers keep no state between requests, and end with the process."""
    if workers <= 0:
        return None
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = MappingPool(workers)
        return pool
