"""Arrival order: what the sidecar keeps in order, and the one mechanism that keeps it.

Guaranteed:
1. Frames enter the model in the order they arrived (every stream and every Analyze call
   together), although they are validated, decoded and resized in parallel.
2. For each camera, the frame hook (the stream observer's `on_frame_result`, which feeds event
   batching) runs in arrival order, once per unique frame, after that frame's detections are known.
3. For each stream and camera, results are written back in arrival order: also when a later frame
   fails at once (bad bytes, missing ids) or is a re-send answered from the result cache while
   earlier frames are still in the model.
Nothing else is ordered: different cameras' hooks and results interleave freely, and a frame that
fails its checks or its decode fails at once (only its result waits for the results ahead of it).

How: every arrival takes a `Turn` from an `ArrivalOrder` under a key (the model; a camera; a
stream's camera), synchronously, at the moment it arrives. `await turn.wait()` returns once every
earlier turn under that key has ended; `turn.end()` ends this one. A turn that ends before the
turns ahead of it (a frame that failed at once) counts as ended only when they have ended too, so
no later turn can overtake an earlier one, and a failure holds up the turns behind it no longer
than the turns ahead of it do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Turn:
    """One arrival's place in line under one key."""

    __slots__ = ("_ahead", "_ended")

    def __init__(self, ahead: asyncio.Future[None] | None, ended: asyncio.Future[None]) -> None:
        self._ahead = ahead  # ends when every earlier turn under the key has ended
        self._ended = ended

    async def wait(self) -> None:
        """Until every earlier turn under this key has ended. Cancelling the waiter cancels
        nothing else."""
        if self._ahead is not None and not self._ahead.done():
            await asyncio.wait([self._ahead])

    def end(self) -> None:
        """This turn is over (idempotent); it counts once the turns ahead of it have ended."""
        if self._ended.done():
            return
        if self._ahead is None or self._ahead.done():
            self._ended.set_result(None)
        else:
            self._ahead.add_done_callback(lambda _: self.end())


class ArrivalOrder(Generic[K]):
    """Turns in arrival order, one line per key (see the module docstring)."""

    def __init__(self) -> None:
        self._last: dict[K, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        """Keys with turns that have not all ended."""
        return len(self._last)

    def take(self, key: K) -> Turn:
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ahead = self._last.get(key)
        self._last[key] = ended
        ended.add_done_callback(lambda _: self._forget(key, ended))
        return Turn(ahead, ended)

    def _forget(self, key: K, ended: asyncio.Future[None]) -> None:
        if self._last.get(key) is ended:
            del self._last[key]
