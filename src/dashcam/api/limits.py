"""Backpressure: when writes back up, say so (503 + Retry-After) instead of buffering without bound."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from dashcam.errors import OverloadedError

DEFAULT_WRITES_IN_FLIGHT = 8
RETRY_AFTER_SECONDS = 1


class WriteGate:
    """Counts write requests in flight; past ``limit`` a new one is refused at once.

    Requests are admitted or refused on the event loop's thread, so a plain counter suffices.
    A refused request has stored nothing, and a client retrying it later loses nothing.
    """

    def __init__(self, limit: int = DEFAULT_WRITES_IN_FLIGHT) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one write slot for the duration of the block, or raise OverloadedError."""
        if self.in_flight >= self.limit:
            self.refused += 1
            raise OverloadedError(
                f"{self.in_flight} writes are already waiting to be committed; retry in "
                f"{RETRY_AFTER_SECONDS}s", retry_after=RETRY_AFTER_SECONDS)
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
