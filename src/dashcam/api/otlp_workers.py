"""OTLP trace mapping in worker processes: the receiver's CPU beyond one core.

Decoding an export and mapping its spans is Python, so in the server's process it runs on one
core at a time (the interpreter lock), and that core is the receiver's limit. A worker process
takes the raw body and gives back what the receiver commits: the event table, the counts, and
notes for the join buffer.

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
sets the number of workers (default: one on a machine with more than one core, else none; 0 turns
them off). The workers are the process's, shared by its receivers, and end with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dashcam.api.otlp_decode import decode, request_table
from dashcam.errors import ConfigError
from dashcam.sources.otlp import TraceResult, attributes, service_name

log = logging.getLogger("dashcam.otlp")

WORKERS_ENV = "DASHCAM_OTLP_WORKERS"
QUEUED_PER_WORKER = 2  # one mapping, one waiting: a worker never idles between requests
_PARENT_CHECK_SECONDS = 1.0


def configured_workers() -> int:
    """The number of mapping worker processes: ``DASHCAM_OTLP_WORKERS``, or one when there is a
    core to spare."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return 1 if (os.cpu_count() or 1) > 1 else 0
    if not text.isdigit() or int(text) > 64:
        raise ConfigError(f"{WORKERS_ENV}={text!r} is not a number of worker processes from 0 to 64")
    return int(text)


@dataclass
class MappedElsewhere:
    """What a worker made of a trace export."""

    result: TraceResult  # counts and errors (its records are in ``table``)
    table: pa.Table
    written: int  # records in the table, and repeats within the request
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
    result, table, written = request_table(request, notes, hold=False)
    return MappedElsewhere(result, table, written, notes.notes, deferred)


class WorkerLost(Exception):
    """A mapping worker died (killed, out of memory): the request is mapped in the receiver."""


class MappingPool:
    """Worker processes mapping trace exports, with a count of requests given to them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.busy = 0
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def has_room(self) -> bool:
        """True when a request given now would start soon (else the receiver maps it itself)."""
        return self.busy < self.workers * QUEUED_PER_WORKER

    async def map(self, raw: bytes, content_encoding: str, encoding: str,
                  content_services: frozenset[str | None]) -> MappedElsewhere:
        """:func:`map_export` in a worker. Raises what it raises, or :class:`WorkerLost`."""
        executor = self._executor_now()
        self.busy += 1
        try:
            future = executor.submit(map_export, raw, content_encoding, encoding, content_services)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            with self._lock:
                if self._executor is executor:
                    self._executor = None  # the next request starts new workers
            log.warning("otlp: a mapping worker process died; mapping this export in the server")
            raise WorkerLost() from None
        finally:
            self.busy -= 1

    def _executor_now(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # spawn, not fork: the server has threads (a forked child could inherit a held lock).
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_watch_parent, initargs=(os.getpid(),))
            return self._executor


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


def _watch_parent(parent: int) -> None:
    """In a worker: exit when the server is gone (a worker blocked on its queue would otherwise
    outlive a server that was killed)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="dashcam-otlp-parent-watch", daemon=True).start()
