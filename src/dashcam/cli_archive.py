"""``dashcam archive status | run [--now T] | configure --hot-days N --to DIR_OR_S3 [--encrypt-key-file F]``.

The settings (``archive.json``) and the manifest live in the data directory, so ``status`` and
``configure`` work on the files directly, server or not (a running server reads the new settings
at its next run). ``run`` needs the store itself: while a server owns it, the server archives on
its own schedule. Kept beside :mod:`dashcam.cli`, which registers the group through
:func:`make_archive_command` (this module imports nothing from the CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import orjson

from dashcam.errors import ConfigError
from dashcam.render import FORMATS, render
from dashcam.service import Dashcam
from dashcam.store import ClickHouseTarget, parse_store_url
from dashcam.store.archive import Archive, archive_once, configure
from dashcam.store.archive.clickhouse import check_server_archive
from dashcam.store.archive.config import KEY_ENV
from dashcam.timespec import parse_time


def make_archive_command(handle_errors: Callable[[Any], Any]) -> click.Group:
    """The ``archive`` command group, with the CLI's error handling (exit codes)."""

    @click.group("archive")
    def archive_group() -> None:
        """Archive: events older than a hot window move to Parquet (a directory or S3) and keep
        answering queries."""

    @archive_group.command("status")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_obj
    @handle_errors
    def archive_status(obj: Any, fmt: str) -> None:
        """The settings, and per log group the archived files, events, bytes and days."""
        status = Archive(obj.data_dir()).status()
        if fmt == "json":
            click.echo(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode())
            return
        config = status["config"]
        if config is None:
            click.echo("archiving is not configured (dashcam archive configure --hot-days N --to DIR_OR_S3)", err=True)
        else:
            encrypted = f", encrypted (key: ${KEY_ENV} or {config['encryptKeyFile']})" if config["encryptKeyFile"] else ""
            click.echo(f"events older than {config['hotDays']} days go to {config['destination']}{encrypted}", err=True)
        columns = ["logGroup", "files", "events", "storedBytes", "firstDay", "lastDay", "pendingDeletes"]
        click.echo(render(columns, status["groups"], fmt), nl=False)

    @archive_group.command("run")
    @click.option("--now", "now", metavar="T", help="Archive as of this time instead of now (ISO date-time or epoch).")
    @click.pass_obj
    @handle_errors
    def archive_run(obj: Any, now: str | None) -> None:
        """Archive what is due now: every log group's days older than the hot window."""
        dashcam = obj.open()
        if not isinstance(dashcam, Dashcam):
            raise ConfigError("a running server owns the data directory and archives on its own schedule; "
                              "stop it to archive now")
        with dashcam:
            if dashcam.archive is None or dashcam.archive.config() is None:
                raise ConfigError("archiving is not configured: dashcam archive configure --hot-days N --to DIR_OR_S3")
            run = archive_once(dashcam.store, parse_time(now) if now else parse_time("now"))
        click.echo(f"archived {run.rows_archived} events to {len(run.files)} files; "
                   f"{run.rows_deleted} events deleted from the store", err=True)
        for key in run.files:
            click.echo(key)

    @archive_group.command("configure")
    @click.option("--hot-days", type=click.IntRange(1, 3653), required=True,
                  help="Events older than this many whole days (UTC) are archived.")
    @click.option("--to", "destination", required=True, metavar="DIR_OR_S3",
                  help="A local directory, or s3://bucket/prefix (boto3's credentials; AWS_ENDPOINT_URL_S3).")
    @click.option("--encrypt-key-file", metavar="F",
                  help=f"Encrypt archive files (AES-256-GCM) with the key in F, created if missing; "
                       f"${KEY_ENV} overrides it.")
    @click.pass_obj
    @handle_errors
    def archive_configure(obj: Any, hot_days: int, destination: str, encrypt_key_file: str | None) -> None:
        """Set where and when events are archived (archive.json in the data directory)."""
        target = parse_store_url(obj.store) if obj.store else None
        if isinstance(target, ClickHouseTarget) and target.interface != "chdb":
            # A server reads archived files itself: only plain S3 reaches it (chDB reads them as DuckDB does).
            check_server_archive(destination, encrypt_key_file is not None, target.describe())
        config = configure(obj.data_dir(), hot_days=hot_days, destination=destination, key_file=encrypt_key_file)
        encrypted = f", encrypted with the key in {config.key_file}" if config.encrypted else ""
        click.echo(f"events older than {config.hot_days} days will go to {config.destination}{encrypted}", err=True)

    return archive_group
