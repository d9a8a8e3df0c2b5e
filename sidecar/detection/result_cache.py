"""Idempotency: recent frame results by (camera id, frame id), bounded LRU.

A frame re-sent after a reconnect gets the stored result (or joins the still-running processing of
the first copy) instead of being processed, and counted, twice. Results that may succeed on a retry
(INTERNAL, UNAVAILABLE) are not kept.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from ..domain import FrameOutcome

Key = tuple[str, str]


class ResultCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._entries: OrderedDict[Key, asyncio.Future[FrameOutcome]] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> asyncio.Future[FrameOutcome] | None:
        future = self._entries.get(key)
        if future is not None:
            self._entries.move_to_end(key)
        return future

    def get_or_start(
        self, key: Key, start: Callable[[], Awaitable[FrameOutcome]]
    ) -> tuple[asyncio.Future[FrameOutcome], bool]:
        """The future for `key`; `start()` runs (as a task) only if there is none yet.
        Returns (future, started)."""
        existing = self.get(key)
        if existing is not None:
            self.hits += 1
            return existing, False
        future: asyncio.Future[FrameOutcome] = asyncio.ensure_future(start())
        self._entries[key] = future
        future.add_done_callback(lambda f: self._forget_if_retryable(key, f))
        while len(self._entries) > self.capacity:
            oldest_key, oldest = next(iter(self._entries.items()))
            if not oldest.done():  # never evict work in progress; the cache may briefly overflow
                break
            del self._entries[oldest_key]
        return future, True

    def _forget_if_retryable(self, key: Key, future: asyncio.Future[FrameOutcome]) -> None:
        if future.cancelled() or future.exception() is not None:
            retry = True
        else:
            error = future.result().error
            retry = error is not None and error.code.retryable
        if retry and self._entries.get(key) is future:
            del self._entries[key]
