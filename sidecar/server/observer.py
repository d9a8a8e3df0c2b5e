"""The seam for code that reacts to the Stream RPC: a typed interface the servicer calls.

An observer sees sessions open and close, the client's `hello`, `config` and `verdict_ack`
messages, message kinds this version does not know, and every successfully processed frame (once
per unique frame id). The event pipeline plugs in here (server/event_observer.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..domain import FrameOutcome, FrameRequest
from ..proto import secmon_pb2 as pb
from .config import Settings
from .sessions import SessionRegistry, StreamSession


class StreamObserver(Protocol):
    """Hooks into the Stream RPC. Implementations subclass this and override what they need; the
    defaults do nothing.

    Hooks run on the event loop: keep them short and never block (send work to a thread).
    The servicer logs an exception raised by a hook; it does not end the stream (for
    `on_frame_result`, see there).
    """

    async def start(self) -> None:
        """The server is listening; the detector is not loaded yet. Keep it quick."""
        return

    async def load(self) -> None:
        """Heavy start-up work (e.g. loading an LLM), run while the detector loads. The server
        reports SERVING only after both finished. Raise domain.StartupError to stop the process
        with that message (exit code 2)."""
        return

    async def close(self) -> None:
        """The server is shutting down; every frame has been answered and streams are ending."""
        return

    async def on_session_open(self, session: StreamSession) -> None:
        return

    async def on_session_closed(self, session: StreamSession) -> None:
        return

    async def on_hello(self, session: StreamSession, hello: pb.Hello) -> None:
        """After `session.client_id` is set and the HelloReply is queued. If the Hello carried a
        config, `on_config` is called for it first."""
        return

    async def on_config(self, session: StreamSession, config: pb.StreamConfig) -> list[str]:
        """After `session.config` and `session.threshold` are updated. Returns what it had to
        change to use the config (a value replaced or clamped), one sentence each; they go back
        to the client."""
        return []

    async def on_verdict_ack(self, session: StreamSession, ack: pb.VerdictAck) -> None:
        return

    async def on_other_message(self, session: StreamSession, message: pb.ClientMessage) -> None:
        """A ClientMessage whose kind this servicer does not handle (or an empty envelope)."""
        return

    async def on_frame_result(
        self, session: StreamSession, frame: FrameRequest, outcome: FrameOutcome
    ) -> str:
        """A frame processed without error, before its result is sent. Called once per unique
        (camera id, frame id), in arrival order per camera: a re-sent frame gets the stored
        result. Returns the id of the event batch the frame joined, or "" (it goes into
        FrameResult.batch_id). Raising domain.FrameError answers the frame with that error
        instead (STORAGE_UNAVAILABLE when it could not be recorded); any other exception gives
        INTERNAL. Both are retryable: the client sends the frame again and this runs again."""
        return ""

    def fill_status(self, status: pb.SidecarStatus) -> None:
        """Add this observer's figures (llm_model, open_batches, ...) to a status message."""
        return


class NoObserver(StreamObserver):
    """The observer of a server built without one: every hook does nothing."""


# Builds the server's observer once the settings are known.
ObserverFactory = Callable[[Settings, SessionRegistry], StreamObserver]
