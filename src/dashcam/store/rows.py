"""Events gathered row by row in plain Python, before they become an Arrow table.

:class:`~dashcam.store.batch.EventBatchBuilder` builds on this. It is apart so that a process
without Arrow can gather events and hand them over: OTLP's mapping workers do, and Arrow with
numpy is about 40 MB of every process that imports it.
"""

from __future__ import annotations

from typing import Any

from dashcam.records import hot_values, stable_event_id


class EventRows:
    """Events as column lists; an event already gathered (same id) is dropped and counted."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._groups: list[str] = []
        self._streams: list[str] = []
        self._ts: list[int] = []
        self._messages: list[str] = []
        self._hot: list[tuple[Any, ...]] = []
        self._seen: set[int] = set()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def offered(self) -> int:
        """Events given to :meth:`add` (and :meth:`extend`): those kept and the repeats dropped."""
        return len(self._ids) + self.duplicates

    def add(self, log_group: str, log_stream: str, ts_ms: int, message: str, record: dict[str, Any]) -> bool:
        """Add one event whose ``record`` is already normalized; False if the batch has it already."""
        event_id = stable_event_id(log_group, message.encode())
        if event_id in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(event_id)
        self._ids.append(event_id)
        self._groups.append(log_group)
        self._streams.append(log_stream)
        self._ts.append(ts_ms)
        self._messages.append(message)
        self._hot.append(hot_values(record))
        return True

    def extend(self, other: EventRows) -> None:
        """Add the events of ``other`` (and count its duplicates as this batch's)."""
        self.duplicates += other.duplicates
        for row in zip(*other.columns()):
            if row[0] in self._seen:
                self.duplicates += 1
                continue
            self._seen.add(row[0])
            for column, value in zip(self.columns(), row):
                column.append(value)

    def columns(self) -> tuple[list[int], list[str], list[str], list[int], list[str], list[tuple[Any, ...]]]:
        """(event ids, log groups, log streams, timestamps in ms, messages, hot values per event)."""
        return self._ids, self._groups, self._streams, self._ts, self._messages, self._hot

    def log_groups(self) -> set[str]:
        """The log groups of the events gathered."""
        return set(self._groups)

    def __getstate__(self) -> dict[str, Any]:
        # The ids seen are the ids kept: not worth sending to another process twice.
        return {name: value for name, value in vars(self).items() if name != "_seen"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._seen = set(self._ids)
