"""Verdict delivery: from the outbox (the store's verdicts) to the clients' streams.

A client (Hello.client_id) is owed the verdicts of the cameras it sends frames of. A subscription
(one per stream that said Hello) is a queue that first receives what its client has not
acknowledged, then every new verdict of the client's cameras; unacknowledged verdicts are queued
again every `resend_after_s` until the client acknowledges them. Verdicts are published only once
they are stored, so what a stream is sent survives a restart.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from ..domain import Verdict
from .store import EventStore

_LOGGER = logging.getLogger(__name__)


class VerdictDelivery:
    def __init__(self, store: EventStore, *, resend_after_s: float) -> None:
        self._store = store
        self._resend_after_s = resend_after_s
        self._subscribers: dict[asyncio.Queue[Verdict], str] = {}
        self._client_cameras: set[tuple[str, str]] = set()
        self._pending = 0

    async def load(self) -> None:
        self._client_cameras = await self._store.run(self._store.client_cameras)
        await self.refresh_pending()

    def watches(self, client_id: str, camera_id: str) -> bool:
        return (client_id, camera_id) in self._client_cameras

    async def note_camera(self, client_id: str, camera_id: str) -> None:
        """`client_id` sends frames of `camera_id`: it is owed that camera's verdicts."""
        if (client_id, camera_id) not in self._client_cameras:
            await self._store.run(self._store.note_client_camera, client_id, camera_id)
            self._client_cameras.add((client_id, camera_id))

    async def subscribe(self, client_id: str) -> asyncio.Queue[Verdict]:
        queue: asyncio.Queue[Verdict] = asyncio.Queue()
        try:
            await self._store.run(self._store.register_client, client_id)
        except sqlite3.Error:  # a full disk: still deliver what is owed already
            _LOGGER.exception("Could not record client %s", client_id)
        for verdict in await self._store.run(self._store.pending_for, client_id):
            queue.put_nowait(verdict)
        self._subscribers[queue] = client_id
        await self.refresh_pending()
        return queue

    async def unsubscribe(self, queue: asyncio.Queue[Verdict]) -> None:
        if self._subscribers.pop(queue, None) is not None:
            await self.refresh_pending()

    def publish(self, verdict: Verdict) -> None:
        """A verdict just stored: to every subscription whose client watches its camera."""
        for queue, client_id in self._subscribers.items():
            if (client_id, verdict.camera_id) in self._client_cameras:
                queue.put_nowait(verdict)

    async def ack(self, client_id: str, verdict_ids: list[str]) -> int:
        changed = await self._store.run(self._store.ack, client_id, verdict_ids)
        await self.refresh_pending()
        return changed

    @property
    def pending(self) -> int:
        """Verdicts nobody has acknowledged, or a connected client still has to (as of the last
        change: counted on the state file's thread, never on the event loop)."""
        return self._pending

    async def refresh_pending(self) -> None:
        connected = set(self._subscribers.values())
        self._pending = await self._store.run(self._store.pending_count, connected)

    async def resend_unacknowledged(self) -> None:
        """Runs until cancelled."""
        while True:
            await asyncio.sleep(max(self._resend_after_s / 2, 0.05))
            try:
                await self._resend_once()
                await self.refresh_pending()
            except Exception:
                _LOGGER.exception("Re-sending unacknowledged verdicts failed")

    async def _resend_once(self) -> None:
        older_than = self._store.now() - self._resend_after_s
        for client_id in set(self._subscribers.values()):
            pending = await self._store.run(
                self._store.pending_for, client_id, older_than=older_than
            )
            for queue, owner in list(self._subscribers.items()):
                if owner == client_id:
                    for verdict in pending:
                        queue.put_nowait(verdict)
