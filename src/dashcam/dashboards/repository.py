"""Where dashboards live: ``dashboards.sqlite`` in the data directory, whichever store holds the events.

One table, ``dashboards``: the name, the body exactly as it was put (the text, so a dashboard
exported from AWS comes back byte for byte), when it was last modified and its size in bytes, as
ListDashboards reports them. Dashboards are global, as in CloudWatch: names are unique per data
directory, 1 to 255 letters, digits, ``-`` and ``_``. Example dashboards ship in ``examples/``
(:func:`example_names`, :func:`example_body`).

Each operation opens its own connection (WAL mode), so server threads and a ``dashcam
dashboards`` command in another process can read and write at the same time; a put or a delete
is one transaction.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dashcam.alarms.manager import ACCOUNT_ID
from dashcam.dashboards.body import BodyCheck, ValidationMessage, check_body
from dashcam.errors import InputError, NotFoundError, StoreError

DASHBOARDS_FILE = "dashboards.sqlite"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,255}")
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9._-]{0,255}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboards (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    size INTEGER NOT NULL
);
"""


def dashboard_arn(name: str, account: str = ACCOUNT_ID) -> str:
    """``arn:aws:cloudwatch::<account>:dashboard/<name>`` (dashboards have no region)."""
    return f"arn:aws:cloudwatch::{account}:dashboard/{name}"


def example_names() -> list[str]:
    """The example dashboards shipped with dashcam (``dashcam/dashboards/examples/<name>.json``)."""
    folder = resources.files("dashcam.dashboards") / "examples"
    return sorted(item.name[:-5] for item in folder.iterdir() if item.name.endswith(".json"))


def example_body(name: str) -> str:
    """The body text of a shipped example dashboard; NotFoundError listing the examples otherwise."""
    if name not in example_names():
        raise NotFoundError(f"no example dashboard {name!r}; the examples are {', '.join(example_names())}")
    return (resources.files("dashcam.dashboards") / "examples" / f"{name}.json").read_text(encoding="utf-8")


def check_dashboard_name(name: object) -> str:
    """``name`` if it is a valid dashboard name; InputError saying what is allowed otherwise."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise InputError(f"the dashboard name {name!r} is not valid: use 1 to 255 letters, digits, '-' and '_'")
    return name


@dataclass(frozen=True)
class StoredDashboard:
    """A dashboard as stored: its body text, when it was last modified (epoch ms), its size in bytes."""

    name: str
    body: str
    last_modified_ms: int
    size: int

    @property
    def arn(self) -> str:
        """The dashboard's ARN."""
        return dashboard_arn(self.name)


class DashboardRepository:
    """The dashboards of one data directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {self.path}: {exc}") from None
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @classmethod
    def in_directory(cls, data_dir: str | Path) -> "DashboardRepository":
        """The repository of a data directory (``<data_dir>/dashboards.sqlite``)."""
        return cls(Path(data_dir) / DASHBOARDS_FILE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the dashboards database {self.path}: {exc}") from None
        try:
            yield db
        except sqlite3.Error as exc:
            raise StoreError(f"the dashboards database failed: {exc}") from None
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------------ changes

    def put(self, name: str, body: str | BodyCheck, *, now_ms: int | None = None) -> tuple[StoredDashboard,
                                                                                          list[ValidationMessage]]:
        """Create or replace a dashboard; returns it and the body's warnings.

        ``body`` is the body text, or what :func:`~dashcam.dashboards.body.check_body` found for
        it. InputError for a bad name or a body with errors (nothing is stored then).
        """
        check_dashboard_name(name)
        check = body if isinstance(body, BodyCheck) else check_body(body)
        check.require()
        stored = StoredDashboard(name, check.text, int(time.time() * 1000) if now_ms is None else now_ms,
                                 len(check.text.encode()))
        with self._transaction() as db:
            db.execute("INSERT INTO dashboards (name, body, last_modified_ms, size) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (name) DO UPDATE SET body = excluded.body,"
                       " last_modified_ms = excluded.last_modified_ms, size = excluded.size",
                       (stored.name, stored.body, stored.last_modified_ms, stored.size))
        return stored, check.warnings

    def delete(self, names: Sequence[str]) -> None:
        """Delete every named dashboard, or none: NotFoundError naming the ones that do not exist."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            raise InputError("name at least one dashboard to delete")
        with self._transaction() as db:
            marks = ", ".join("?" for _ in wanted)
            present = {row[0] for row in db.execute(f"SELECT name FROM dashboards WHERE name IN ({marks})", wanted)}
            missing = [name for name in wanted if name not in present]
            if missing:
                raise NotFoundError(f"Dashboard{'s' if len(missing) > 1 else ''} "
                                    f"{', '.join(missing)} do{'' if len(missing) > 1 else 'es'} not exist; "
                                    "nothing was deleted")
            db.execute(f"DELETE FROM dashboards WHERE name IN ({marks})", wanted)

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> StoredDashboard | None:
        """One dashboard, or None."""
        with self._connect() as db:
            row = db.execute("SELECT name, body, last_modified_ms, size FROM dashboards WHERE name = ?",
                             (name,)).fetchone()
        return StoredDashboard(*row) if row else None

    def require(self, name: str) -> StoredDashboard:
        """One dashboard; NotFoundError naming it when it does not exist."""
        found = self.get(name)
        if found is None:
            raise NotFoundError(f"Dashboard {name} does not exist")
        return found

    def list(self, prefix: str = "", *, after: str | None = None, limit: int | None = None) -> list[StoredDashboard]:
        """Dashboards in name order whose names start with ``prefix``, after the name ``after``."""
        if not isinstance(prefix, str) or PREFIX_PATTERN.fullmatch(prefix) is None:
            raise InputError(f"the dashboard name prefix {prefix!r} is not valid: use up to 255 letters, digits, "
                             "'.', '-' and '_'")
        clauses, args = [], []
        if prefix:
            clauses.append("substr(name, 1, ?) = ?")
            args.extend([len(prefix), prefix])
        if after is not None:
            clauses.append("name > ?")
            args.append(after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = " LIMIT ?" if limit is not None else ""
        with self._connect() as db:
            rows = db.execute(f"SELECT name, body, last_modified_ms, size FROM dashboards{where} ORDER BY name{tail}",
                              [*args, *([limit] if limit is not None else [])]).fetchall()
        return [StoredDashboard(*row) for row in rows]
