"""Worker processes answering calls over pipes (dashcam.api.pipe_workers): answers in order,
exceptions that cross, what a worker imports, and what happens when either side dies."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from dashcam.api.otlp_decode import OtlpError
from dashcam.api.pipe_workers import WorkerLost, WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
HERE = "tests.api.test_pipe_workers"


# Targets run in the worker (imported there by module name).

def echo(body: bytes, *args):
    return len(body), bytes(body[:4]), args


def chatty(body: bytes, label: str):
    print("a stray line on stdout", label)
    return label


def refuse(body: bytes, status: int):
    raise OtlpError(status, f"refused {len(body)} bytes")


def sleep_then_echo(body: bytes, seconds: float):
    time.sleep(seconds)
    return bytes(body)


def loaded_modules(body: bytes):
    return sorted(name for name in sys.modules if name.split(".")[0] in {"pyarrow", "numpy", "duckdb", "fastapi",
                                                                         "multiprocessing"})


class AnswerError(Exception):
    def __init__(self, a, b):  # cannot be rebuilt from its args: pickling it back fails
        super().__init__(a)


def raise_unpicklable(body: bytes):
    raise AnswerError("x", "y")


@pytest.fixture
def worker(monkeypatch):
    made: list[WorkerProcess] = []

    def start(target: str) -> WorkerProcess:
        made.append(WorkerProcess(f"{HERE}:{target}"))
        return made[-1]

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    yield start
    for process in made:
        process.close()


def test_calls_are_answered_in_order_with_their_bodies_and_arguments(worker):
    process = worker("echo")
    bodies = [bytes([i]) * (i * 70_001) for i in range(12)]  # up to 770 KB: far past a pipe's buffer
    futures = [process.call(body, i, "x") for i, body in enumerate(bodies)]
    assert [f.result(30) for f in futures] == [(len(b), b[:4], (i, "x")) for i, b in enumerate(bodies)]
    assert process.call(bytearray(b"abcdef")).result(30) == (6, b"abcd", ())
    assert process.outstanding == 0


def test_an_exception_crosses_as_itself_and_the_worker_goes_on(worker):
    process = worker("refuse")
    with pytest.raises(OtlpError) as raised:
        process.call(b"12345", 400).result(30)
    assert (raised.value.status, str(raised.value)) == (400, "refused 5 bytes")
    with pytest.raises(OtlpError):
        process.call(b"", 413).result(30)


def test_an_exception_that_cannot_cross_becomes_one_naming_it(worker):
    process = worker("raise_unpicklable")
    with pytest.raises(RuntimeError, match="AnswerError"):
        process.call(b"").result(30)
    with pytest.raises(RuntimeError):  # and the worker still answers
        process.call(b"").result(30)


def test_printing_in_a_worker_does_not_corrupt_its_answers(worker):
    process = worker("chatty")
    assert [process.call(b"", str(i)).result(30) for i in range(3)] == ["0", "1", "2"]


def test_a_worker_imports_only_what_its_target_needs():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # Started the way ``dashcam serve`` runs, from a script whose module imports the whole CLI.
    code = ("import dashcam.cli, concurrent.futures as f, sys; from dashcam.api.pipe_workers import WorkerProcess; "
            f"w = WorkerProcess('{HERE}:loaded_modules'); print(w.call(b'').result(60)); w.close()")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_killed_worker_fails_what_it_held_and_everything_after(worker):
    process = worker("sleep_then_echo")
    held = [process.call(b"a", 30.0), process.call(b"b", 0.0)]
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    for future in held:
        with pytest.raises(WorkerLost):
            future.result(30)
    assert process.lost
    with pytest.raises(WorkerLost):
        process.call(b"c", 0.0).result(30)


def test_a_call_given_up_before_it_was_sent_is_skipped(worker):
    process = worker("sleep_then_echo")
    first = process.call(b"first", 2.0)
    blocking = process.call(b"b" * (8 << 20), 0.0)  # the sender is stuck writing this until the worker reads
    given_up = process.call(b"given up", 0.0)
    assert given_up.cancel()
    assert process.call(b"next", 0.0).result(30) == b"next"
    assert (first.result(30), len(blocking.result(30))) == (b"first", 8 << 20)
    with pytest.raises(concurrent.futures.CancelledError):
        given_up.result(0)


def test_a_worker_ends_with_its_parent(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    code = ("from dashcam.api.pipe_workers import WorkerProcess; import time; "
            f"w = WorkerProcess('{HERE}:echo'); w.call(b'x').result(60); print(w.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        parent.kill()
        parent.wait(10)
        child.wait(10)  # psutil.TimeoutExpired if it outlives its parent
    finally:
        parent.kill()
