"""Worker processes that answer calls over a pipe, one at a time each, in the order given.

A worker is a plain ``python -c`` child running :func:`serve`: it imports only the module of the
function it runs (``multiprocessing``'s spawn would import the parent's ``__main__`` too, which for
``dashcam serve`` is the whole command line and its store; and it adds a resource-tracker process).
The parent writes each call to the child's stdin and a thread reads the answers from its stdout.

A call is a body (bytes, passed as they are) and a few arguments (pickled); the answer is what the
function returned or the exception it raised, pickled. A child whose parent is gone reads the end
of its stdin and exits; a parent whose child is gone gets :class:`WorkerLost` for every call that
child had not answered.

Frames: a call is ``<II`` (arguments length, body length), the pickled arguments, the body; an
answer is ``<Q`` (length) and the pickled ``(ok, value)``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import importlib
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from typing import Any, BinaryIO

log = logging.getLogger("dashcam.workers")

_CALL = struct.Struct("<II")
_ANSWER = struct.Struct("<Q")


class WorkerLost(Exception):
    """The worker process ended (killed, out of memory) before answering."""


class WorkerProcess:
    """One child process running ``target`` (``"module:function"``) for each call given to it."""

    def __init__(self, target: str) -> None:
        code = f"from dashcam.api.pipe_workers import serve; serve({target!r})"
        # -P: the working directory is not put first on the worker's import path.
        self._process = subprocess.Popen([sys.executable, "-P", "-c", code], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE)
        self._calls: queue.SimpleQueue[tuple[bytes, Any, concurrent.futures.Future] | None] = queue.SimpleQueue()
        self._waiting: collections.deque[concurrent.futures.Future] = collections.deque()
        self._lock = threading.Lock()
        self._lost = False
        self.outstanding = 0  # calls given and not yet answered
        self.answered = 0  # calls answered (a worker lost before its first could not start)
        name = f"dashcam-worker-{self._process.pid}"
        threading.Thread(target=self._write_calls, name=f"{name}-send", daemon=True).start()
        threading.Thread(target=self._read_answers, name=f"{name}-receive", daemon=True).start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def lost(self) -> bool:
        """True once the process has ended: it answers nothing more."""
        return self._lost

    def call(self, body: bytes | bytearray, *args: Any) -> concurrent.futures.Future:
        """Run the target with ``(body, *args)`` in the process; the future gives what it returned
        or raises what it raised, or :class:`WorkerLost`."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._lost:
                future.set_exception(WorkerLost())
                return future
            self.outstanding += 1
            future.add_done_callback(self._answered)
            self._calls.put((body, args, future))
        return future

    def close(self, timeout: float = 5) -> None:
        """Let the process finish the calls it has, then end it (killed if it takes longer)."""
        self._calls.put(None)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _answered(self, _: concurrent.futures.Future) -> None:
        with self._lock:
            self.outstanding -= 1

    def _write_calls(self) -> None:
        stdin = self._process.stdin
        while (item := self._calls.get()) is not None:
            body, args, future = item
            if not future.set_running_or_notify_cancel():
                continue  # the caller stopped waiting for it
            with self._lock:
                lost = self._lost
                if not lost:
                    self._waiting.append(future)  # before writing: the answer may come at once
            if lost:  # (outside the lock: the future's callbacks take it)
                future.set_exception(WorkerLost())
                continue
            arguments = pickle.dumps(args, pickle.HIGHEST_PROTOCOL)
            try:
                stdin.write(_CALL.pack(len(arguments), len(body)))
                stdin.write(arguments)
                stdin.write(body)
                stdin.flush()
            except (OSError, ValueError):  # the process is gone: the reader fails what waits
                break
        try:
            stdin.close()
        except OSError:
            pass

    def _read_answers(self) -> None:
        stdout = self._process.stdout
        while (header := _read_exactly(stdout, _ANSWER.size)) is not None:
            data = _read_exactly(stdout, _ANSWER.unpack(header)[0])
            if data is None:
                break
            try:
                ok, value = pickle.loads(data)
            except Exception as exc:  # e.g. an exception class that cannot be rebuilt here
                ok, value = False, RuntimeError(f"a worker's answer could not be read: {exc}")
            with self._lock:
                future = self._waiting.popleft()
                self.answered += 1
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._process.wait()
        with self._lock:
            self._lost = True
            waiting, self._waiting = list(self._waiting), collections.deque()
        for future in waiting:
            future.set_exception(WorkerLost())
        while True:  # calls not yet written: the writer may be blocked on the queue
            try:
                item = self._calls.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                _fail(item[2], WorkerLost())
        self._calls.put(None)


def _fail(future: concurrent.futures.Future, error: Exception) -> None:
    try:
        future.set_exception(error)
    except concurrent.futures.InvalidStateError:  # cancelled meanwhile: nobody waits for it
        pass


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    """``size`` bytes from ``stream``, or None at its end."""
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def serve(target: str) -> None:
    """In a worker: answer calls of ``target`` read from stdin until it ends (the parent closed it
    or is gone)."""
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    # Ctrl-C in a terminal reaches the whole process group: the server decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    calls = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not corrupt an answer
    while (header := _read_exactly(calls, _CALL.size)) is not None:
        arguments_size, body_size = _CALL.unpack(header)
        arguments = _read_exactly(calls, arguments_size) if arguments_size else b""
        body = _read_exactly(calls, body_size) if body_size else b""
        if arguments is None or body is None:
            return
        try:
            answer = (True, function(body, *pickle.loads(arguments)))
        except Exception as exc:  # the caller's to handle, as if raised there
            answer = (False, exc)
        try:
            data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an exception that cannot cross: its text can
            data = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")), pickle.HIGHEST_PROTOCOL)
        try:
            answers.write(_ANSWER.pack(len(data)))
            answers.write(data)
            answers.flush()
        except OSError:  # the parent is gone
            return
