"""In-process capture: record every model call an application makes, in the Bedrock record shape.

::

    import dashcam
    dashcam.instrument(app="support-bot")          # every bedrock-runtime and OpenAI client
    client = dashcam.capture(boto3.client("bedrock-runtime"))   # or just this one

    with dashcam.capture.labels(user="alice", session="s-42"):
        client.converse(...)

Each HTTP attempt of ``Converse``, ``ConverseStream``, ``InvokeModel``,
``InvokeModelWithResponseStream`` (boto3 / botocore) and of OpenAI chat completions, embeddings
and responses (``openai`` v1/v2, sync and async) becomes one ``ModelInvocationLog`` record with
latency, TTFT for streams, tokens, stop reason, error code and retry number. Records go through a
bounded queue to a dashcam server (``DASHCAM_URL`` / ``DASHCAM_KEY``) or into a data directory;
settings are in :mod:`dashcam.capture.settings`, the delivery in :mod:`dashcam.capture.shipper`.

Capture never raises into, blocks, retries or changes the application's calls: hooks catch their
own failures (counted in :func:`stats`), time in ``finally``, re-raise the caller's exceptions
unchanged, and drop (and count) records when the queue is full. Bad *settings* are the one thing
that raises — a ConfigError from :func:`instrument` or :func:`capture`, at start-up.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import types
from typing import Any

from dashcam.capture import state
from dashcam.capture.settings import BODY_MODES, CaptureSettings, resolve
from dashcam.capture.shipper import CaptureStats, Shipper, sender_for
from dashcam.capture.state import labels
from dashcam.errors import ConfigError

__all__ = ["BODY_MODES", "CaptureSettings", "CaptureStats", "capture", "flush", "instrument", "labels",
           "stats", "uninstrument"]

_lock = threading.RLock()
_last: state.Runtime | None = None
_process_hooks_installed = False
_wanted = {"botocore": False, "openai": False}


def instrument(*, boto: bool = True, openai: bool = True, existing_clients: bool = True,
               **settings: Any) -> CaptureSettings:
    """Capture every ``bedrock-runtime`` boto3 client and every OpenAI client, made before or after.

    ``settings`` are the keywords of :mod:`dashcam.capture.settings` (``url``, ``key``,
    ``data_dir``, ``body`` = on|metadata|off, ``app``, ``user``, ``session``, ``labels``,
    ``queue_size``, ``batch_size``, ``flush_interval``, ``exit_timeout``, ...). A library that is
    not imported yet is hooked when it is. ``existing_clients`` also hooks clients alive now
    (found by walking the garbage collector's objects once). ``boto=False`` / ``openai=False``
    leave that library alone (and unhook it if an earlier call hooked it). Calling it again
    applies new settings. Returns the settings in effect; raises ConfigError for a bad one.
    """
    resolved = resolve(**settings)
    with _lock:
        _start(resolved)
        # Clients can only exist already if their library is imported already.
        for library, module, wanted in (("botocore", "botocore.client", boto), ("openai", "openai", openai)):
            _wanted[library] = wanted
            if wanted:
                existing = existing_clients and module in sys.modules
                _when_imported(module, lambda _, library=library, e=existing: _install(library, e))
            elif module in sys.modules:
                _hooks(library).uninstall()
    return resolved


def capture(client: Any, **settings: Any) -> Any:
    """Capture one client — a boto3 ``bedrock-runtime`` client, an ``openai.OpenAI`` /
    ``AsyncOpenAI`` — and return it. Starts capture with ``settings`` if it is not running (or
    applies them if given). Raises ConfigError for a client it cannot capture."""
    with _lock:
        if settings or state.ACTIVE is None:
            _start(resolve(**settings))
    from dashcam.capture import botocore_hooks, openai_hooks

    if _is_botocore_client(client):
        if not botocore_hooks.hook_client(client):
            service = client.meta.service_model.service_name
            raise ConfigError(f"dashcam captures bedrock-runtime clients, not {service!r} ones")
    elif not openai_hooks.hook_client(client):
        raise ConfigError(f"dashcam cannot capture a {type(client).__name__}: pass a boto3 "
                          "bedrock-runtime client or an openai.OpenAI / AsyncOpenAI client")
    return client


def uninstrument(timeout: float | None = None) -> CaptureStats:
    """Stop capturing: unhook every client, deliver what is queued (waiting at most ``timeout``
    seconds, default ``exit_timeout``), and return the final counts."""
    global _last
    with _lock:
        _wanted.update(botocore=False, openai=False)
        if "botocore.client" in sys.modules:
            _hooks("botocore").uninstall()
        if "openai" in sys.modules:
            _hooks("openai").uninstall()
        runtime, state.ACTIVE = state.ACTIVE, None
        if runtime is not None:
            runtime.shipper.close(timeout)
            _last = runtime
    return stats()


def stats() -> CaptureStats:
    """Counts of the current (or last) capture session: captured, sent, dropped, failed, ..."""
    runtime = state.ACTIVE or _last
    if runtime is None:
        return CaptureStats(0, 0, 0, 0, 0, 0, 0)
    return runtime.shipper.stats()


def flush(timeout: float = 5.0) -> bool:
    """Deliver every record captured so far; True if that finished within ``timeout`` seconds."""
    runtime = state.ACTIVE
    return True if runtime is None else runtime.shipper.flush(timeout)


def _start(settings: CaptureSettings) -> None:
    global _last, _process_hooks_installed
    old = state.ACTIVE
    state.ACTIVE = state.Runtime(settings, Shipper(settings))
    if old is not None:
        old.shipper.close()
        _last = old
    if not _process_hooks_installed:
        atexit.register(_at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
        _process_hooks_installed = True


def _install(library: str, existing: bool) -> None:
    """Patch ``library`` once it is imported, unless capture was turned off meanwhile."""
    with _lock:
        if not _wanted[library] or state.ACTIVE is None:
            return
        try:
            _hooks(library).install(existing)
        except Exception as error:  # noqa: BLE001 - an unexpected library version: no capture, no crash
            state.ACTIVE.internal_error(f"installing the {library} hooks", error)


def _hooks(library: str) -> Any:
    """The hook module of ``library`` (imported on demand: each imports nothing heavy itself)."""
    from dashcam.capture import botocore_hooks, openai_hooks

    return botocore_hooks if library == "botocore" else openai_hooks


def _when_imported(module: str, hook: Any) -> None:
    import wrapt

    if module in sys.modules:
        hook(sys.modules[module])
    else:
        wrapt.register_post_import_hook(hook, module)


def _is_botocore_client(client: Any) -> bool:
    botocore_client = sys.modules.get("botocore.client")
    return botocore_client is not None and isinstance(client, botocore_client.BaseClient)


def _at_exit() -> None:
    """Deliver what is queued before the interpreter goes, waiting at most ``exit_timeout``."""
    global _last
    runtime, state.ACTIVE = state.ACTIVE, None
    if runtime is not None:
        runtime.shipper.close()
        _last = runtime


def _after_fork_in_child() -> None:
    runtime = state.ACTIVE
    if runtime is not None:
        runtime.shipper.sender = sender_for(runtime.settings)
        runtime.shipper.after_fork_in_child()


class _CallableModule(types.ModuleType):
    """Lets ``dashcam.capture(client)`` work although ``dashcam.capture`` is also this package."""

    def __call__(self, client: Any, **settings: Any) -> Any:
        return capture(client, **settings)


sys.modules[__name__].__class__ = _CallableModule
