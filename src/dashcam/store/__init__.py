"""Stores: the :class:`~dashcam.store.base.Store` port and its adapters, and the one place where
a store setting (``--store URL`` / ``DASHCAM_STORE``, or a data directory) becomes a store.

Accepted forms (:func:`parse_store_url`)::

    DIR or FILE.duckdb                          embedded DuckDB (the default: ./dashcam-data)
    duckdb://DIR                                the same, spelled as a URL
    clickhouse://[USER[:PASS]@]HOST[:PORT][/DATABASE][?OPTIONS]    a ClickHouse server (HTTP)
    clickhouses://...                           the same over HTTPS (default port 8443)
    chdb:///ABS/DIR[?OPTIONS]  chdb://REL/DIR   ClickHouse's engine in-process (chDB), data in DIR
    chdb://memory                               chDB in memory (tests)

ClickHouse options (query parameters): ``database`` (chDB; default ``dashcam``), ``cluster=NAME``
(cluster mode: ON CLUSTER, ReplicatedMergeTree + Distributed), ``final=0|1`` (FINAL on reads:
on by default for servers, off for chDB — see :mod:`dashcam.store.clickhouse`), ``fsync=0``
(acknowledge inserts before they are fsynced), ``secure=1`` (HTTPS); any other parameter is
passed to ClickHouse as a setting of dashcam's queries (``max_threads=8``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from dashcam.errors import ConfigError

if TYPE_CHECKING:
    from dashcam.store.base import Store

DEFAULT_CLICKHOUSE_DATABASE = "dashcam"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where and how to reach ClickHouse: a server over HTTP(S), or chDB in-process (``path``)."""

    interface: str                      # "http", "https" or "chdb"
    database: str = DEFAULT_CLICKHOUSE_DATABASE
    host: str = "localhost"
    port: int | None = None
    username: str | None = None
    password: str = ""
    path: str | None = None             # chDB data directory; None = in memory
    cluster: str | None = None
    final: bool | None = None           # None: FINAL on reads for servers, not for chDB
    fsync: bool = True
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def reads_final(self) -> bool:
        """Whether reads collapse re-delivered copies with FINAL (see ClickHouseStore)."""
        return self.final if self.final is not None else self.interface != "chdb"

    def describe(self) -> str:
        """The target for messages, without the password."""
        if self.interface == "chdb":
            return f"chdb://{self.path or 'memory'} (database {self.database})"
        user = f"{self.username}@" if self.username else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.interface}://{user}{self.host}{port}/{self.database}"


@dataclass(frozen=True)
class DuckDBTarget:
    """The embedded store: a data directory or a ``.duckdb`` file."""

    path: Path


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"store option {name}={value!r} must be 1/0 (or true/false)")


def parse_store_url(text: str | Path) -> ClickHouseTarget | DuckDBTarget:
    """What a ``--store`` value (or a data directory) names; ConfigError when it is malformed."""
    text = str(text)
    scheme, sep, _ = text.partition("://")
    if not sep or "/" in scheme or "\\" in scheme:
        return DuckDBTarget(Path(text))
    scheme = scheme.lower()
    if scheme == "duckdb":
        rest = text[len("duckdb://"):]
        if not rest:
            raise ConfigError("duckdb:// needs a directory, e.g. duckdb://./dashcam-data")
        return DuckDBTarget(Path(rest))
    if scheme not in ("clickhouse", "clickhouses", "chdb"):
        raise ConfigError(f"unknown store {text!r}: use a directory, clickhouse://host:8123/db or chdb:///dir")
    parts = urlsplit(text)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    cluster = options.pop("cluster", None) or None
    final = _flag("final", options.pop("final")) if "final" in options else None
    fsync = _flag("fsync", options.pop("fsync", "1"))
    secure = _flag("secure", options.pop("secure", "0")) or scheme == "clickhouses"
    database = options.pop("database", None)
    common = dict(cluster=cluster, final=final, fsync=fsync, settings=options)
    if scheme == "chdb":
        if cluster:
            raise ConfigError("chDB is one process: cluster= needs a clickhouse:// server")
        location = unquote(parts.netloc + parts.path)
        path = None if location in ("", "memory", ":memory:") else str(Path(location).expanduser().resolve())
        return ClickHouseTarget("chdb", database=database or DEFAULT_CLICKHOUSE_DATABASE, path=path, **common)
    if not parts.hostname:
        raise ConfigError(f"{text!r} names no ClickHouse host")
    path_db = unquote(parts.path.strip("/"))
    if "/" in path_db:
        raise ConfigError(f"{text!r}: the path must be just the database name")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{text!r} has an invalid port") from None
    return ClickHouseTarget(
        "https" if secure else "http",
        database=database or path_db or DEFAULT_CLICKHOUSE_DATABASE,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else "",
        **common,
    )


def open_store(target: str | Path) -> "Store":
    """Open the store a ``--store`` value or data directory names (see the module docstring)."""
    parsed = parse_store_url(target)
    if isinstance(parsed, DuckDBTarget):
        from dashcam.store.duckdb import DuckDBStore

        return DuckDBStore(parsed.path)
    from dashcam.store.clickhouse import ClickHouseStore

    return ClickHouseStore(parsed)
