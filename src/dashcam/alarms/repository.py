"""Where alarms live: ``alarms.sqlite`` in the data directory, whichever store holds the events.

Two tables: ``alarms`` (one row per alarm: its PutMetricAlarm members as JSON, a version that
each PutMetricAlarm bumps, and its current state — value, reason, reason data, when it was last
updated and last changed, and what the last evaluation saw) and ``alarm_history`` (the items
DescribeAlarmHistory returns: ``ConfigurationUpdate``, ``StateUpdate`` and ``Action``). History
outlives a deleted alarm, as in CloudWatch, and is pruned after :data:`HISTORY_DAYS` days.

One connection per repository, serialized by a lock, in WAL mode: server threads (requests, the
scheduler, action workers) share it safely, and a ``dashcam alarms`` command in another process
can read and write while the server runs. A state change and its history item are one
transaction, and it only applies if the alarm still has the version and state the evaluation
started from, so a change made meanwhile (a new definition, SetAlarmState) is never overwritten.
The file is created readable by its owner only: action URLs may carry tokens.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dashcam.alarms.model import INSUFFICIENT_DATA, AlarmDefinition, parse_definition
from dashcam.errors import NotFoundError, StoreError

ALARMS_FILE = "alarms.sqlite"
HISTORY_DAYS = 30
HISTORY_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action")
INITIAL_REASON = "Unchecked: Initial alarm creation"
_DAY_MS = 86_400_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    configuration_updated_ms INTEGER NOT NULL,
    state_value TEXT NOT NULL,
    state_reason TEXT NOT NULL,
    state_reason_data TEXT,
    state_updated_ms INTEGER NOT NULL,
    state_transitioned_ms INTEGER NOT NULL,
    last_evaluated_ms INTEGER,
    last_value REAL
);
CREATE TABLE IF NOT EXISTS alarm_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alarm_name TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    item_type TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_history_by_alarm ON alarm_history (alarm_name, timestamp_ms);
CREATE INDEX IF NOT EXISTS alarm_history_by_time ON alarm_history (timestamp_ms);
"""


@dataclass(frozen=True)
class AlarmState:
    """An alarm's state as DescribeAlarms shows it, plus what the last evaluation saw."""

    value: str
    reason: str
    reason_data: str | None
    updated_ms: int
    transitioned_ms: int
    last_evaluated_ms: int | None = None
    last_value: float | None = None


@dataclass(frozen=True)
class StoredAlarm:
    """A definition with its bookkeeping and current state."""

    definition: AlarmDefinition
    version: int
    created_ms: int
    configuration_updated_ms: int
    state: AlarmState

    @property
    def name(self) -> str:
        """The alarm's name."""
        return self.definition.name


@dataclass(frozen=True)
class HistoryItem:
    """One DescribeAlarmHistory item; ``data`` is the JSON text of HistoryData."""

    alarm_name: str
    timestamp_ms: int
    item_type: str
    summary: str
    data: str


class AlarmRepository:
    """The alarms of one data directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._parsed: dict[str, AlarmDefinition] = {}  # by definition JSON: parsed once
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the alarms database {self.path}: {exc}") from None

    @classmethod
    def in_directory(cls, data_dir: str | Path) -> "AlarmRepository":
        """The repository of a data directory (``<data_dir>/alarms.sqlite``)."""
        return cls(Path(data_dir) / ALARMS_FILE)

    def close(self) -> None:
        """Close the database (again is harmless)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"the alarms database failed: {exc}") from None

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"the alarms database failed: {exc}") from None

    # ------------------------------------------------------------------ definitions

    def put(self, definition: AlarmDefinition, now_ms: int) -> tuple[StoredAlarm, StoredAlarm | None]:
        """Create or replace an alarm; its state is kept on replace (as CloudWatch does).

        Returns the stored alarm and the one it replaced (None when created). A
        ``ConfigurationUpdate`` history item is written in the same transaction.
        """
        params = orjson.dumps(definition.to_params()).decode()
        with self._write() as db:
            before = self._get(db, definition.name)
            if before is None:
                db.execute(
                    "INSERT INTO alarms (name, definition, version, created_ms, configuration_updated_ms, state_value,"
                    " state_reason, state_reason_data, state_updated_ms, state_transitioned_ms)"
                    " VALUES (?, ?, 1, ?, ?, ?, ?, NULL, ?, ?)",
                    (definition.name, params, now_ms, now_ms, INSUFFICIENT_DATA, INITIAL_REASON, now_ms, now_ms))
                data = {"version": "1.0", "type": "Create", "createdAlarm": definition.to_params()}
                summary = f'Alarm "{definition.name}" created'
            else:
                db.execute("UPDATE alarms SET definition = ?, version = version + 1, configuration_updated_ms = ?"
                           " WHERE name = ?", (params, now_ms, definition.name))
                data = {"version": "1.0", "type": "Update", "updatedAlarm": definition.to_params(),
                        "originalAlarm": before.definition.to_params()}
                summary = f'Alarm "{definition.name}" updated'
            self._add_history(db, HistoryItem(definition.name, now_ms, "ConfigurationUpdate", summary,
                                              orjson.dumps(data).decode()))
            after = self._get(db, definition.name)
        assert after is not None
        return after, before

    def get(self, name: str) -> StoredAlarm | None:
        """One alarm, or None."""
        with self._lock:
            return self._get(self._db, name)

    def require(self, name: str) -> StoredAlarm:
        """One alarm; NotFoundError naming it when it does not exist."""
        found = self.get(name)
        if found is None:
            raise NotFoundError(f"alarm {name!r} does not exist")
        return found

    def list(self, *, names: Iterable[str] | None = None, prefix: str | None = None,
             state: str | None = None) -> list[StoredAlarm]:
        """Alarms in name order, narrowed by exact names, a name prefix and a state value."""
        clauses, args = [], []
        if names is not None:
            wanted = list(names)
            if not wanted:
                return []
            clauses.append(f"name IN ({', '.join('?' for _ in wanted)})")
            args.extend(wanted)
        if prefix:
            clauses.append("substr(name, 1, ?) = ?")
            args.extend([len(prefix), prefix])
        if state is not None:
            clauses.append("state_value = ?")
            args.append(state)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT {_COLUMNS} FROM alarms{where} ORDER BY name", args)
        return [self._alarm(row) for row in rows]

    def delete(self, names: Sequence[str], now_ms: int) -> list[StoredAlarm]:
        """Delete every named alarm, or none: NotFoundError naming the ones that do not exist."""
        with self._write() as db:
            found = {name: self._get(db, name) for name in dict.fromkeys(names)}
            missing = [name for name, alarm in found.items() if alarm is None]
            if missing:
                raise NotFoundError(f"no alarm named {', '.join(repr(n) for n in missing)}; nothing was deleted")
            for name, alarm in found.items():
                assert alarm is not None
                db.execute("DELETE FROM alarms WHERE name = ?", (name,))
                data = {"version": "1.0", "type": "Delete", "deletedAlarm": alarm.definition.to_params()}
                self._add_history(db, HistoryItem(name, now_ms, "ConfigurationUpdate", f'Alarm "{name}" deleted',
                                                  orjson.dumps(data).decode()))
        return [alarm for alarm in found.values() if alarm is not None]

    def set_actions_enabled(self, names: Sequence[str], enabled: bool, now_ms: int) -> None:
        """Switch the actions of the named alarms (names that do not exist are skipped, as in AWS)."""
        with self._write() as db:
            for name in dict.fromkeys(names):
                alarm = self._get(db, name)
                if alarm is None or alarm.definition.actions_enabled == enabled:
                    continue
                params = {**alarm.definition.to_params(), "ActionsEnabled": enabled}
                db.execute("UPDATE alarms SET definition = ?, version = version + 1, configuration_updated_ms = ?"
                           " WHERE name = ?", (orjson.dumps(params).decode(), now_ms, name))
                data = {"version": "1.0", "type": "Update", "updatedAlarm": params,
                        "originalAlarm": alarm.definition.to_params()}
                summary = f'Alarm "{name}" actions {"enabled" if enabled else "disabled"}'
                self._add_history(db, HistoryItem(name, now_ms, "ConfigurationUpdate", summary,
                                                  orjson.dumps(data).decode()))

    # ------------------------------------------------------------------ state

    def change_state(self, name: str, state: str, reason: str, reason_data: str | None, now_ms: int, *,
                     expect_version: int | None = None, expect_state: str | None = None,
                     value: float | None = None) -> tuple[StoredAlarm, AlarmState] | None:
        """Move an alarm to ``state`` (with its reason) and, when the value changes, write its
        ``StateUpdate`` history item, atomically.

        With ``expect_version``/``expect_state`` the change applies only if the alarm still has
        them (None is returned otherwise, and for an alarm that no longer exists). Returns the
        alarm after the change and the state it left.
        """
        with self._write() as db:
            alarm = self._get(db, name)
            if alarm is None or (expect_version is not None and alarm.version != expect_version) or (
                    expect_state is not None and alarm.state.value != expect_state):
                return None
            old = alarm.state
            transitioned = now_ms if state != old.value else old.transitioned_ms
            db.execute("UPDATE alarms SET state_value = ?, state_reason = ?, state_reason_data = ?,"
                       " state_updated_ms = ?, state_transitioned_ms = ?, last_evaluated_ms = ?,"
                       " last_value = coalesce(?, last_value) WHERE name = ?",
                       (state, reason, reason_data, now_ms, transitioned,
                        now_ms if expect_version is not None else old.last_evaluated_ms, value, name))
            if state != old.value:
                data = {"version": "1.0",
                        "oldState": _state_json(old.value, old.reason, old.reason_data),
                        "newState": _state_json(state, reason, reason_data)}
                self._add_history(db, HistoryItem(name, now_ms, "StateUpdate",
                                                  f"Alarm updated from {old.value} to {state}",
                                                  orjson.dumps(data).decode()))
            after = self._get(db, name)
        assert after is not None
        return after, old

    def note_evaluations(self, evaluated: Sequence[tuple[str, int, float | None]]) -> None:
        """Record (name, evaluated_ms, value) of evaluations that changed nothing, in one transaction."""
        if not evaluated:
            return
        with self._write() as db:
            db.executemany("UPDATE alarms SET last_evaluated_ms = ?, last_value = coalesce(?, last_value)"
                           " WHERE name = ?", [(ms, value, name) for name, ms, value in evaluated])

    # ------------------------------------------------------------------ history

    def add_history(self, item: HistoryItem) -> None:
        """Append one history item."""
        with self._write() as db:
            self._add_history(db, item)

    def history(self, *, name: str | None = None, item_type: str | None = None, start_ms: int | None = None,
                end_ms: int | None = None, ascending: bool = False, offset: int = 0,
                limit: int = 100) -> list[HistoryItem]:
        """History items, newest first unless ``ascending``; ``end_ms`` is exclusive."""
        clauses, args = [], []
        for clause, arg in (("alarm_name = ?", name), ("item_type = ?", item_type),
                            ("timestamp_ms >= ?", start_ms), ("timestamp_ms < ?", end_ms)):
            if arg is not None:
                clauses.append(clause)
                args.append(arg)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if ascending else "DESC"
        rows = self._read(f"SELECT alarm_name, timestamp_ms, item_type, summary, data FROM alarm_history{where}"
                          f" ORDER BY timestamp_ms {order}, id {order} LIMIT ? OFFSET ?", [*args, limit, offset])
        return [HistoryItem(*row) for row in rows]

    def prune_history(self, now_ms: int, *, days: int = HISTORY_DAYS) -> int:
        """Drop history older than ``days``; returns how many items went."""
        with self._write() as db:
            return db.execute("DELETE FROM alarm_history WHERE timestamp_ms < ?", (now_ms - days * _DAY_MS,)).rowcount

    # ------------------------------------------------------------------ internals

    def _add_history(self, db: sqlite3.Connection, item: HistoryItem) -> None:
        db.execute("INSERT INTO alarm_history (alarm_name, timestamp_ms, item_type, summary, data)"
                   " VALUES (?, ?, ?, ?, ?)", (item.alarm_name, item.timestamp_ms, item.item_type, item.summary,
                                                item.data))

    def _get(self, db: sqlite3.Connection, name: str) -> StoredAlarm | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM alarms WHERE name = ?", (name,)).fetchone()
        return self._alarm(row) if row else None

    def _alarm(self, row: tuple) -> StoredAlarm:
        (name, definition, version, created, configured, value, reason, reason_data, updated, transitioned,
         evaluated, last_value) = row
        parsed = self._parsed.get(definition)
        if parsed is None:
            parsed = parse_definition(orjson.loads(definition))
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            self._parsed[definition] = parsed
        return StoredAlarm(parsed, version, created, configured,
                           AlarmState(value, reason, reason_data, updated, transitioned, evaluated, last_value))


_COLUMNS = ("name, definition, version, created_ms, configuration_updated_ms, state_value, state_reason,"
            " state_reason_data, state_updated_ms, state_transitioned_ms, last_evaluated_ms, last_value")


def _state_json(value: str, reason: str, reason_data: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {"stateValue": value, "stateReason": reason}
    if reason_data:
        try:
            state["stateReasonData"] = orjson.loads(reason_data)
        except orjson.JSONDecodeError:
            state["stateReasonData"] = reason_data
    return state
