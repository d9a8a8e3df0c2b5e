"""Stream sessions: one per open `Stream` call.

A session owns the outbound queue of ServerMessages for its call. Frame results are put there in
arrival order per camera (see sidecar/detection/ordering.py). Other code (the event observer, with
verdicts) may push any ServerMessage with `StreamSession.send`. A per-session permit count bounds
the frames a client may have in flight: when it is used up the sidecar stops reading that stream,
and gRPC flow control pushes back on the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from ..context.zones import Zone, zone_hits
from ..detection.ordering import ArrivalOrder, Turn
from ..domain import FrameOutcome, ZoneHit
from ..proto import secmon_pb2 as pb
from . import convert

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Outgoing:
    message: pb.ServerMessage | None  # None: the end of the stream
    frees_permit: bool = False
    shutdown: bool = False


class StreamSession:
    def __init__(self, session_id: int, peer: str, max_inflight: int) -> None:
        self.session_id = session_id
        self.peer = peer
        self.client_id = ""
        self.client_version = ""
        self.config = pb.StreamConfig()
        # The owner's zones per camera (StreamConfig.camera_zones).
        self.zones: dict[str, tuple[Zone, ...]] = {}
        # Minimum detection confidence for this stream's frames; None = the server's default.
        self.threshold: float | None = None
        self._queue: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._permits = asyncio.Semaphore(max_inflight)
        self._result_order: ArrivalOrder[str] = ArrivalOrder()  # a line per camera
        self._emitters: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finished = False

    def __repr__(self) -> str:
        return f"<StreamSession {self.session_id} client={self.client_id!r} peer={self.peer}>"

    @property
    def finished(self) -> bool:
        return self._finished

    # -- for other code ----------------------------------------------------------------------
    def send(self, message: pb.ServerMessage) -> bool:
        """Queue a message for this stream's client. Returns False if the stream has ended
        (the message is dropped: deliver it on the client's next stream instead)."""
        if self._finished:
            return False
        self._queue.put_nowait(_Outgoing(message))
        return True

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run a task for as long as this session lives (cancelled when it closes)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def zone_hits(self, outcome: FrameOutcome) -> tuple[ZoneHit, ...]:
        """The zones of the outcome's camera that its detections are in."""
        zones = self.zones.get(outcome.camera_id)
        if not zones or not outcome.detections:
            return ()
        return zone_hits(zones, outcome.detections, outcome.width, outcome.height)

    # -- for the servicer --------------------------------------------------------------------
    async def acquire_frame_permit(self) -> None:
        await self._permits.acquire()

    def emit_result(self, camera_id: str, result: asyncio.Future[FrameOutcome]) -> None:
        """Send a frame's result when it is ready, after the earlier frames of the same camera."""
        turn = self._result_order.take(camera_id)
        task = asyncio.get_running_loop().create_task(self._emit(result, turn))
        self._emitters.add(task)
        task.add_done_callback(self._emitters.discard)

    async def _emit(self, result: asyncio.Future[FrameOutcome], turn: Turn) -> None:
        try:
            outcome = await asyncio.shield(result)
            await turn.wait()
            self._queue.put_nowait(
                _Outgoing(
                    pb.ServerMessage(result=convert.frame_result(outcome, self.zone_hits(outcome))),
                    frees_permit=True,
                )
            )
        finally:
            turn.end()

    async def finish(self, *, shutdown: bool = False) -> None:
        """End the stream once every accepted frame's result is queued."""
        if self._finished:
            return
        while self._emitters:
            await asyncio.gather(*list(self._emitters), return_exceptions=True)
        self._finished = True
        self._queue.put_nowait(_Outgoing(None, shutdown=shutdown))

    async def outgoing(self) -> AsyncIterator[tuple[pb.ServerMessage | None, bool]]:
        """Messages to write, in order; ends with (None, shutdown) when the stream is finished.
        Each frame result frees its permit once the caller has written it (after the yield)."""
        while True:
            item = await self._queue.get()
            if item.message is None:
                yield None, item.shutdown
                return
            yield item.message, False
            if item.frees_permit:
                self._permits.release()

    async def close(self) -> None:
        """The call is over: stop everything this session runs."""
        self._finished = True
        tasks = list(self._tasks) + list(self._emitters)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class SessionRegistry:
    """The open streams, so that other code can reach a client's stream(s)."""

    def __init__(self, max_inflight_per_stream: int) -> None:
        self._max_inflight = max_inflight_per_stream
        self._ids = itertools.count(1)
        self._sessions: dict[int, StreamSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, peer: str) -> StreamSession:
        session = StreamSession(next(self._ids), peer, self._max_inflight)
        self._sessions[session.session_id] = session
        return session

    def remove(self, session: StreamSession) -> None:
        self._sessions.pop(session.session_id, None)

    def all(self) -> list[StreamSession]:
        return list(self._sessions.values())

    def by_client(self, client_id: str) -> list[StreamSession]:
        """Open sessions of one client (Hello.client_id), oldest first."""
        return [s for s in self._sessions.values() if s.client_id == client_id and not s.finished]

    async def finish_all(self, *, shutdown: bool) -> None:
        await asyncio.gather(*(s.finish(shutdown=shutdown) for s in self.all()))
