"""Fixtures shared across the test suite."""

from __future__ import annotations

import pytest

from dashcam.service import ImportProgress


class ProgressRecorder(ImportProgress):
    """Keeps every progress call an import makes."""

    def __init__(self) -> None:
        self.starts: list[tuple[int, int]] = []
        self.advances: list[int] = []

    def start(self, files: int, total_bytes: int) -> None:
        self.starts.append((files, total_bytes))

    def advance(self, bytes_read: int) -> None:
        assert self.starts, "advance() before start()"
        self.advances.append(bytes_read)


@pytest.fixture
def progress_recorder() -> ProgressRecorder:
    """A fresh recorder of import progress calls."""
    return ProgressRecorder()
