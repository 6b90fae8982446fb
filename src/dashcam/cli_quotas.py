"""``dashcam quotas list | set MODEL [--rpm N] [--tpm N] | remove MODEL``.

Quotas live in ``quotas.json`` in the data directory (see :mod:`dashcam.metrics.quota`); a running
server re-reads the file when it changes, so these commands work on it directly, server or not.
Kept beside :mod:`dashcam.cli`, which registers the group through :func:`make_quotas_command`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dashcam.errors import InputError
from dashcam.metrics import quota
from dashcam.render import FORMATS, render


def make_quotas_command(handle_errors: Callable[[Any], Any]) -> click.Group:
    """The ``quotas`` command group, with the CLI's error handling (exit codes)."""

    @click.group("quotas")
    def quotas_group() -> None:
        """Per-model requests- and tokens-per-minute quotas (for QuotaHeadroomPct and alarms on it)."""

    @quotas_group.command("list")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_obj
    @handle_errors
    def quotas_list(obj: Any, fmt: str) -> None:
        """List the quotas in quotas.json of the data directory."""
        rows = [{"model": q["model"], "rpm": q.get("rpm"), "tpm": q.get("tpm")}
                for q in quota.load(obj.data_dir()).to_json()]
        click.echo(render(["model", "rpm", "tpm"], rows, fmt), nl=False)

    @quotas_group.command("set")
    @click.argument("model")
    @click.option("--rpm", type=float, help="Requests per minute (every attempt counts, throttled ones too).")
    @click.option("--tpm", type=float, help="Tokens per minute, counted as EstimatedTPMQuotaUsage counts them.")
    @click.pass_obj
    @handle_errors
    def quotas_set(obj: Any, model: str, rpm: float | None, tpm: float | None) -> None:
        """Set MODEL's quotas (replacing any it had)."""
        if rpm is None and tpm is None:
            raise InputError("give --rpm, --tpm or both")
        saved = quota.set_quota(obj.data_dir(), model, rpm=rpm, tpm=tpm)
        click.echo(f"quota for {saved.model}: rpm {saved.rpm or '-'}, tpm {saved.tpm or '-'}", err=True)

    @quotas_group.command("remove")
    @click.argument("model")
    @click.pass_obj
    @handle_errors
    def quotas_remove(obj: Any, model: str) -> None:
        """Remove MODEL's quotas."""
        quota.remove_quota(obj.data_dir(), model)
        click.echo(f"removed the quota for {model}", err=True)

    return quotas_group
