"""`StreamObserver` is the seam for code that reacts to streams (issue 4's event batching): it sees
sessions open and close, `hello`/`config`/`verdict_ack` messages, message kinds this version does
not know, and every successfully processed frame (once per unique frame id).
"""

from __future__ import annotations

from ..domain import FrameOutcome, FrameRequest
from ..proto import secmon_pb2 as pb
from .sessions import StreamSession


class StreamObserver:
    """Hooks into the Stream RPC; every method is optional (the defaults do nothing).

    Hooks run on the event loop: keep them short and never block (send work to a thread).
    An exception in a hook is logged and does not end the stream.
    """

    async def start(self) -> None:
        """The server is listening; the detector is not loaded yet. Keep it quick."""

    async def load(self) -> None:
        """Heavy start-up work (e.g. loading an LLM), run while the detector loads. The server
        reports SERVING only after both finished. Raise domain.StartupError to stop the process
        with that message (exit code 2)."""

    async def close(self) -> None:
        """The server is shutting down; every frame has been answered and streams are ending."""

    async def on_session_open(self, session: StreamSession) -> None: ...

    async def on_session_closed(self, session: StreamSession) -> None: ...

    async def on_hello(self, session: StreamSession, hello: pb.Hello) -> None:
        """After `session.client_id` is set and the HelloReply is queued. If the Hello carried a
        config, `on_config` is called for it first."""

    async def on_config(self, session: StreamSession, config: pb.StreamConfig) -> None:
        """After `session.config` and `session.threshold` are updated."""

    async def on_verdict_ack(self, session: StreamSession, ack: pb.VerdictAck) -> None: ...

    async def on_other_message(self, session: StreamSession, message: pb.ClientMessage) -> None:
        """A ClientMessage whose kind this servicer does not handle (or an empty envelope)."""

    async def on_frame_result(
        self, session: StreamSession, frame: FrameRequest, outcome: FrameOutcome
    ) -> str:
        """A frame processed without error, before its result is sent. Called once per unique
        (camera id, frame id): a re-sent frame gets the stored result. Returns the id of the event
        batch the frame joined, or "" (it goes into FrameResult.batch_id)."""
        return ""

    def fill_status(self, status: pb.SidecarStatus) -> None:
        """Add this observer's figures (llm_model, open_batches, ...) to a status message."""
