"""Getting captured records out of the application: a bounded queue, a background batcher, senders.

The application's threads only ever append to a bounded deque (no lock, no wait); when it is full
the attempt is dropped and counted. One daemon thread looks at the queue every 20 ms while records
wait (every 250 ms when it is empty), builds the records
(:func:`dashcam.capture.attempt.build_record`) and delivers them in batches of ``batch_size``, or
sooner once the oldest has waited ``flush_interval``:

* :class:`HttpSender` — ``POST {DASHCAM_URL}/api/v1/records`` as gzip NDJSON with the bearer key,
  short timeouts, and a few retries with exponential backoff (honouring ``Retry-After``) on
  connection errors, 408, 429 and 5xx. A batch still undelivered after that is dropped and counted.
* :class:`LocalSender` — straight into a data directory's store, opened for each batch so the
  application never holds the directory between batches; when a ``dashcam serve`` owns the
  directory (its ``server.json``), through that server instead.

At exit the queue is flushed, waiting at most ``exit_timeout`` seconds; whatever is left is counted
as dropped. Nothing here raises into the application.
"""

from __future__ import annotations

import collections
import email.utils
import gzip
import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from dashcam.capture.attempt import Attempt, build_record
from dashcam.capture.settings import CaptureSettings

log = logging.getLogger("dashcam.capture")

RECORDS_PATH = "/api/v1/records"
SERVER_FILE = "server.json"  # written by `dashcam serve` into the data directory it owns
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_WAIT = 30.0
_POLL_SECONDS = 0.02
_IDLE_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class CaptureStats:
    """Counts since capture started. ``captured = sent + dropped + pending`` at any moment."""

    captured: int     # attempts recorded
    sent: int         # records the destination acknowledged (stored, or already stored)
    dropped: int      # records lost: queue full, refused, undeliverable after retries, or before_send
    queue_full: int   # of those dropped, the ones turned away because the queue was full
    failed: int       # delivery attempts that failed (every retry counts)
    pending: int      # records waiting in the queue or being delivered
    errors: int       # failures inside capture itself, never raised into the application
    last_error: str | None = None  # the latest delivery failure, for people


@dataclass(frozen=True)
class Delivery:
    """What one batch delivery achieved."""

    sent: int
    lost: int
    error: str | None = None


# Told of each failed delivery attempt as it happens (so stats show trouble during retries).
FailureHook = Callable[[str], None]


def _ignore(error: str) -> None:
    """The failure hook of a sender used on its own."""


class Sender(Protocol):
    """Delivers a batch of records before ``deadline`` (a ``time.monotonic()`` reading)."""

    def send(self, records: list[dict[str, Any]], deadline: float, on_failure: FailureHook = _ignore) -> Delivery:
        ...

    def close(self) -> None: ...


class HttpSender:
    """Batches to a dashcam server's native ingest endpoint."""

    def __init__(self, settings: CaptureSettings, url: str | None = None, key: str | None = None) -> None:
        import httpx

        self.settings = settings
        self.url = (url or settings.url or "").rstrip("/") + RECORDS_PATH
        token = key if key is not None else settings.key
        headers = {"content-type": "application/x-ndjson", "content-encoding": "gzip",
                   "user-agent": "dashcam-capture"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._params = {"logGroup": settings.log_group, "logStream": settings.log_stream}
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(settings.send_timeout,
                                                                          connect=settings.connect_timeout))
        self._httpx = httpx

    def send(self, records: list[dict[str, Any]], deadline: float, on_failure: FailureHook = _ignore) -> Delivery:
        """POST the batch; retry what may succeed later until ``send_attempts`` or the deadline."""
        if not records:
            return Delivery(0, 0)
        body = gzip.compress(b"\n".join(orjson.dumps(r) for r in records), compresslevel=5)
        error = None
        for attempt in range(self.settings.send_attempts):
            retry_after = None
            try:
                response = self._http.post(self.url, params=self._params, content=body)
            except self._httpx.HTTPError as exc:
                error, retryable = f"{type(exc).__name__}: {exc}", True
            else:
                if response.is_success:
                    return _accepted(response, len(records))
                error = f"HTTP {response.status_code} from {self.url}: {response.text[:300]}"
                retryable = response.status_code in RETRYABLE_STATUS
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            on_failure(error)
            if not retryable or attempt + 1 >= self.settings.send_attempts:
                break
            delay = retry_after if retry_after is not None else min(0.25 * 2**attempt, 8.0) * (0.5 + random.random())
            if time.monotonic() + delay >= deadline:
                break
            time.sleep(delay)
        return Delivery(0, len(records), error)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()


class LocalSender:
    """Batches into a data directory: through the server that owns it, else into its store."""

    def __init__(self, settings: CaptureSettings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self._remote: HttpSender | None = None
        self._remote_stamp: tuple[float, str] | None = None
        self._prices_loaded = False

    def send(self, records: list[dict[str, Any]], deadline: float, on_failure: FailureHook = _ignore) -> Delivery:
        """Deliver to the owning server if one is announced and answers, else write the store."""
        if not records:
            return Delivery(0, 0)
        remote = self._server()
        if remote is not None:
            delivery = remote.send(records, deadline, on_failure)
            if delivery.sent or "ConnectError" not in (delivery.error or ""):
                return delivery
            # A server.json left by a server that died: the directory is free again.
        return self._write(records, deadline, on_failure)

    def _server(self) -> HttpSender | None:
        path = self.data_dir / SERVER_FILE
        try:
            stamp = (path.stat().st_mtime, str(path))
        except OSError:
            self._remote, self._remote_stamp = None, None
            return None
        if stamp != self._remote_stamp:
            try:
                announced = orjson.loads(path.read_bytes())
                self._remote = HttpSender(self.settings, announced["url"], announced.get("token") or "")
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
                self._remote = None
            self._remote_stamp = stamp
        return self._remote

    def _write(self, records: list[dict[str, Any]], deadline: float, on_failure: FailureHook) -> Delivery:
        from dashcam.errors import DashcamError, StoreBusyError
        from dashcam.store import open_store

        busy, error = 0, None
        while True:
            try:
                self._load_prices()
                with open_store(self.settings.store or self.data_dir) as store:
                    written = store.write_records(self.settings.log_group, self.settings.log_stream, records,
                                                  source="sdk")
                return Delivery(written.written + written.duplicates, 0)
            except StoreBusyError as exc:
                # Another process (an import, a query) holds the directory for a moment: wait for it.
                busy, error = busy + 1, str(exc)
                on_failure(error)
                if time.monotonic() + 0.5 >= deadline or busy >= 10 * self.settings.send_attempts:
                    break
                time.sleep(0.5)
            except (DashcamError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                on_failure(error)
                break
        return Delivery(0, len(records), error)

    def _load_prices(self) -> None:
        """Price records as the data directory's own ``prices.json`` says, as ``dashcam`` does."""
        if self._prices_loaded:
            return
        from dashcam import pricing

        try:
            pricing.use(pricing.PriceCatalog.load(self.data_dir))
        except Exception as exc:  # noqa: BLE001 - shipped prices are still right for most records
            log.warning("dashcam capture: cannot read the prices in %s (%s); using the shipped catalog",
                        self.data_dir, exc)
        self._prices_loaded = True

    def close(self) -> None:
        """Release the connection to an owning server, if any."""
        if self._remote is not None:
            self._remote.close()


def sender_for(settings: CaptureSettings) -> Sender:
    """The server sender when a URL is set, else the data-directory sender."""
    return HttpSender(settings) if settings.url else LocalSender(settings)


class Shipper:
    """The bounded queue and the batcher thread that empties it into a :class:`Sender`."""

    def __init__(self, settings: CaptureSettings, sender: Sender | None = None) -> None:
        self.settings = settings
        self.sender = sender or sender_for(settings)
        self._queue: collections.deque[Attempt] = collections.deque()
        self._limit = settings.queue_size
        self._closed = False
        self._start()

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._flushes: list[tuple[int, threading.Event]] = []
        self._stopping = False
        self._deadline: float | None = None
        self._taken = self._sent = self._dropped = self._queue_full = self._failed = self._errors = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="dashcam-capture", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ application side

    def submit(self, attempt: Attempt) -> None:
        """Queue a finished attempt, or count it dropped when the queue is full or closed."""
        if len(self._queue) < self._limit and not self._closed:
            self._queue.append(attempt)
            return
        with self._lock:
            self._dropped += 1
            self._queue_full += 1

    def count_error(self) -> None:
        """Count a failure inside capture."""
        with self._lock:
            self._errors += 1

    def stats(self) -> CaptureStats:
        """The counters now."""
        with self._lock:
            captured = self._taken + len(self._queue) + self._queue_full
            return CaptureStats(
                captured=captured, sent=self._sent, dropped=self._dropped, queue_full=self._queue_full,
                failed=self._failed, pending=max(captured - self._sent - self._dropped, 0), errors=self._errors,
                last_error=self._last_error,
            )

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything queued so far; True if that finished within ``timeout`` seconds."""
        if not self._thread.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flushes.append((self._taken + len(self._queue), done))
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting records, deliver what is queued within ``timeout`` seconds (default
        ``exit_timeout``), and stop the thread; records still queued after that are dropped."""
        if self._closed:
            return
        timeout = self.settings.exit_timeout if timeout is None else timeout
        self._closed = True
        self._deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout + 0.5)
        left = len(self._queue)
        if left:
            self._queue.clear()
            with self._lock:
                self._taken += left
                self._dropped += left
        try:
            self.sender.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("dashcam capture: closing the sender failed: %r", exc)

    def after_fork_in_child(self) -> None:
        """A forked child starts with an empty queue (the parent ships what it queued) and its
        own batcher thread."""
        self._queue = collections.deque()
        self._closed = False
        self._start()

    # ------------------------------------------------------------------ batcher thread

    def _run(self) -> None:
        settings = self.settings
        last_send = time.monotonic()
        while True:
            # Submitting never signals (that would take a lock on the application's thread), so
            # the batcher looks: often while records wait, rarely while the queue is empty.
            idle = not self._queue
            self._wake.wait(min(_IDLE_POLL_SECONDS if idle else _POLL_SECONDS, settings.flush_interval)
                            if settings.flush_interval else _POLL_SECONDS)
            self._wake.clear()
            stopping = self._stopping
            queued = len(self._queue)
            flushing = bool(self._flushes)
            if queued and (stopping or flushing or queued >= settings.batch_size
                           or time.monotonic() - last_send >= settings.flush_interval):
                self._drain(everything=stopping or flushing)
                last_send = time.monotonic()
            self._answer_flushes()
            if stopping and (not self._queue or time.monotonic() >= (self._deadline or 0)):
                return

    def _drain(self, *, everything: bool) -> None:
        queue, size = self._queue, self.settings.batch_size
        while queue:
            if self._stopping and time.monotonic() >= (self._deadline or 0):
                return
            batch = []
            while queue and len(batch) < size:
                batch.append(queue.popleft())
            self._deliver(batch)
            if not everything and len(queue) < size:
                return

    def _deliver(self, batch: list[Attempt]) -> None:
        records, broken, skipped = [], 0, 0
        before_send = self.settings.before_send
        for attempt in batch:
            try:
                record = build_record(attempt, self.settings)
                if before_send is not None:
                    record = before_send(record)
            except Exception as exc:  # noqa: BLE001 - one odd response must not stop the rest
                broken += 1
                log.debug("dashcam capture: cannot build a record: %r", exc, exc_info=True)
                continue
            if record is None:  # before_send chose to drop it
                skipped += 1
            else:
                records.append(record)
        with self._lock:
            self._taken += len(batch)
            self._dropped += broken + skipped
            self._errors += broken
        deadline = self._deadline if self._stopping and self._deadline else time.monotonic() + MAX_RETRY_WAIT
        try:
            delivery = self.sender.send(records, deadline, self._count_failure)
        except Exception as exc:  # noqa: BLE001 - a sender bug loses this batch, not the thread
            delivery = Delivery(0, len(records), f"{type(exc).__name__}: {exc}")
            self._count_failure(delivery.error)
        with self._lock:
            self._sent += delivery.sent
            self._dropped += delivery.lost
            if delivery.error:
                self._last_error = delivery.error
        if delivery.lost:
            log.debug("dashcam capture: %d records lost: %s", delivery.lost, delivery.error)

    def _count_failure(self, error: str) -> None:
        with self._lock:
            self._failed += 1
            self._last_error = error

    def _answer_flushes(self) -> None:
        with self._lock:
            if not self._flushes:
                return
            done_upto = self._taken
            waiting = []
            for upto, event in self._flushes:
                if done_upto >= upto or self._stopping:
                    event.set()
                else:
                    waiting.append((upto, event))
            self._flushes = waiting


def _accepted(response: Any, count: int) -> Delivery:
    try:
        data = response.json()["data"]
        rejected = len(data.get("rejected") or [])
        sent = int(data.get("written", 0)) + int(data.get("duplicates", 0))
    except (ValueError, KeyError, TypeError):
        return Delivery(count, 0)
    error = f"{rejected} records refused: {data['rejected'][0].get('reason')}" if rejected else None
    return Delivery(sent, count - sent, error)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_WAIT)
