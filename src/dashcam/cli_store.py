"""``dashcam store encrypt --key-file F`` and ``dashcam store rotate-key --old-key-file A
--new-key-file B``: encryption at rest of the embedded DuckDB store, and the global
``--store-key-file`` option. Kept beside :mod:`dashcam.cli`, which registers them.

Both commands rewrite the store file (see :func:`dashcam.store.duckdb_encryption.rekey`), so the
server must be stopped first: a store in use is refused, never copied half-written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dashcam.errors import ConfigError
from dashcam.store import ClickHouseTarget, parse_store_url
from dashcam.store.duckdb import DATABASE_FILE
from dashcam.store.duckdb_encryption import STORE_KEY_FILE_ENV, read_key_file, rekey


def _export_key_file(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    # Dashcam.open reads the key from the environment, so every command (and `serve`) sees it.
    if value:
        os.environ[STORE_KEY_FILE_ENV] = value


store_key_file_option = click.option(
    "--store-key-file", metavar="FILE", envvar=STORE_KEY_FILE_ENV, expose_value=False, is_eager=True,
    callback=_export_key_file,
    help="Key of an encrypted embedded store [env DASHCAM_STORE_KEY_FILE; or the key itself in DASHCAM_STORE_KEY].")


def make_store_command(handle_errors: Callable[[Any], Any]) -> click.Group:
    """The ``store`` command group, with the CLI's error handling (exit codes)."""

    @click.group("store")
    def store_group() -> None:
        """Encryption at rest of the embedded store (stop the server first)."""

    def store_file(obj: Any) -> Path:
        target = parse_store_url(obj.store) if obj.store else None
        if isinstance(target, ClickHouseTarget):
            raise ConfigError(f"dashcam store encrypts the embedded DuckDB store; the store is {target.describe()} "
                              "(--store / DASHCAM_STORE): encrypt ClickHouse's disks instead")
        path = obj.data_dir() / DATABASE_FILE
        if not path.exists():
            raise click.UsageError(f"there is no store at {path}")
        return path

    def report(counts: dict[str, int], what: str) -> None:
        rows = ", ".join(f"{table} {count}" for table, count in counts.items())
        click.echo(f"{what}; rows verified: {rows}", err=True)

    @store_group.command("encrypt")
    @click.option("--key-file", required=True, type=click.Path(dir_okay=False), help="File holding the new key.")
    @click.pass_obj
    @handle_errors
    def store_encrypt(obj: Any, key_file: str) -> None:
        """Encrypt an unencrypted store under the key in KEY_FILE (then serve with --store-key-file)."""
        path = store_file(obj)
        report(rekey(path, None, read_key_file(key_file)), f"encrypted {path}")

    @store_group.command("rotate-key")
    @click.option("--old-key-file", required=True, type=click.Path(dir_okay=False), help="File holding the current key.")
    @click.option("--new-key-file", required=True, type=click.Path(dir_okay=False), help="File holding the new key.")
    @click.pass_obj
    @handle_errors
    def store_rotate_key(obj: Any, old_key_file: str, new_key_file: str) -> None:
        """Re-encrypt the store under a new key; the old key stops opening it."""
        path = store_file(obj)
        old_key, new_key = read_key_file(old_key_file), read_key_file(new_key_file)
        if old_key == new_key:
            raise click.UsageError("the old and new key files hold the same key")
        report(rekey(path, old_key, new_key), f"re-encrypted {path} under the new key")

    return store_group
