"""``dashcam alarms list | history NAME | put --file FILE | delete NAME...``.

Alarms live in ``alarms.sqlite`` in the data directory, which a running server shares safely, so
these commands work on the file directly, server or not; the server's scheduler picks up a new
definition at its next round. Kept beside :mod:`dashcam.cli`, which registers the group through
:func:`make_alarms_command` (this module imports nothing from the CLI).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from dashcam.alarms.manager import AlarmManager
from dashcam.alarms.model import STATES
from dashcam.alarms.repository import HISTORY_TYPES
from dashcam.errors import InputError, SourceError
from dashcam.render import FORMATS, render
from dashcam.timespec import format_ms


def _manager(obj: Any) -> AlarmManager:
    return AlarmManager.open(obj.data_dir())


def _definitions(path: str) -> list[dict[str, Any]]:
    """The alarm definitions in a JSON file ('-' for stdin): one object, or a list of them."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    try:
        loaded = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc})") from None
    items = loaded if isinstance(loaded, list) else [loaded]
    if not items or not all(isinstance(item, dict) for item in items):
        raise InputError(f"{path} must hold a PutMetricAlarm object, or a list of them")
    return items


def make_alarms_command(handle_errors: Callable[[Any], Any]) -> click.Group:
    """The ``alarms`` command group, with the CLI's error handling (exit codes)."""

    @click.group("alarms")
    def alarms_group() -> None:
        """Alarms: list them and their state, read their history, define and delete them."""

    @alarms_group.command("list")
    @click.option("--state", type=click.Choice(STATES), help="Only alarms in this state.")
    @click.option("--prefix", help="Only alarms whose names start with this.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_obj
    @handle_errors
    def alarms_list(obj: Any, state: str | None, prefix: str | None, fmt: str) -> None:
        """Alarms with their state, since when, and why."""
        with _manager(obj) as manager:
            alarms = manager.describe(prefix=prefix, state=state)
        rows = [{"name": a.name, "kind": a.definition.kind, "state": a.state.value,
                 "since": format_ms(a.state.transitioned_ms), "actions": "on" if a.definition.actions_enabled else "off",
                 "reason": a.state.reason} for a in alarms]
        click.echo(render(["name", "kind", "state", "since", "actions", "reason"], rows, fmt), nl=False)

    @alarms_group.command("history")
    @click.argument("name")
    @click.option("--type", "item_type", type=click.Choice(HISTORY_TYPES), help="Only this kind of item.")
    @click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_obj
    @handle_errors
    def alarms_history(obj: Any, name: str, item_type: str | None, limit: int, fmt: str) -> None:
        """NAME's state changes, configuration changes and action outcomes, newest first."""
        with _manager(obj) as manager:
            items = manager.history(name, item_type=item_type, limit=limit)
        rows = [{"time": format_ms(i.timestamp_ms), "type": i.item_type, "summary": i.summary} for i in items]
        if fmt == "json":
            for row, item in zip(rows, items):
                row["data"] = orjson.loads(item.data)
        click.echo(render(["time", "type", "summary"], rows, fmt), nl=False)

    @alarms_group.command("put")
    @click.option("--file", "path", required=True, metavar="FILE",
                  help="JSON: PutMetricAlarm's members (or a list of such objects); '-' reads stdin.")
    @click.pass_obj
    @handle_errors
    def alarms_put(obj: Any, path: str) -> None:
        """Create or replace alarms (their state is kept when replaced)."""
        definitions = _definitions(path)
        with _manager(obj) as manager:
            for params in definitions:
                existed = isinstance(params.get("AlarmName"), str) and bool(manager.describe(names=[params["AlarmName"]]))
                stored = manager.put(params)
                click.echo(f"{'updated' if existed else 'created'} alarm {stored.name} ({stored.definition.kind}, "
                           f"{stored.state.value})", err=True)

    @alarms_group.command("delete")
    @click.argument("names", nargs=-1, required=True, metavar="NAME...")
    @click.pass_obj
    @handle_errors
    def alarms_delete(obj: Any, names: tuple[str, ...]) -> None:
        """Delete alarms: all of them, or none if any does not exist. Their history stays."""
        with _manager(obj) as manager:
            manager.delete(names)
        click.echo(f"deleted {', '.join(names)}", err=True)

    return alarms_group
