"""``dashcam migrate --from DIR_OR_URL --to DIR_OR_URL``: move a store's data to another store.

Kept beside :mod:`dashcam.cli`, which registers it through :func:`make_migrate_command` and hands
it its error handling and console (this module imports nothing from the CLI, so ``python -m
dashcam.cli`` does not import the CLI twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dashcam.errors import ConfigError
from dashcam.store import open_store, parse_store_url
from dashcam.store.migrate import DEFAULT_BATCH_ROWS, migrate


def make_migrate_command(handle_errors: Callable[[Any], Any], stderr: Console) -> click.Command:
    """The ``migrate`` command, with the CLI's error handling (exit codes) and stderr console."""

    @click.command("migrate")
    @click.option("--from", "source", required=True, metavar="DIR_OR_URL",
                  help="The store to copy from: a data directory (DuckDB) or a store URL.")
    @click.option("--to", "target", required=True, metavar="DIR_OR_URL",
                  help="The store to copy into, e.g. clickhouse://user:pass@host:8123/db or chdb:///path.")
    @click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH_ROWS, show_default=True,
                  help="Events per batch (each batch is committed before the next is read).")
    def migrate_command(source: str, target: str, batch_size: int) -> None:
        """Copy every log group, stream and event from one store to another (safe to re-run)."""
        if parse_store_url(source) == parse_store_url(target):
            raise ConfigError("--from and --to name the same store")
        with open_store(source) as src, open_store(target) as dst, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=stderr, transient=True,
        ) as progress:
            task: Any = None

            def start(total: int) -> None:
                nonlocal task
                task = progress.add_task("migrating events", total=total)

            summary = migrate(src, dst, batch_rows=batch_size, start=start,
                              advance=lambda n: progress.advance(task, n))
        rate = summary.events / summary.seconds if summary.seconds else 0.0
        click.echo(
            f"migrated {summary.log_groups:,} log group{'s' if summary.log_groups != 1 else ''}, "
            f"{summary.log_streams:,} stream{'s' if summary.log_streams != 1 else ''} and {summary.events:,} events "
            f"in {summary.seconds:.1f}s ({rate:,.0f} events/s): {summary.written:,} new, "
            f"{summary.duplicates:,} already there",
            err=True,
        )

    migrate_command.callback = handle_errors(migrate_command.callback)
    return migrate_command
