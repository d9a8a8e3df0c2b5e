"""The long-lived `Stream` to the sidecar.

One session at a time: Hello, then frames from the durable queue in capture order with at most
MAX_IN_FLIGHT awaiting results, while a reader dispatches what the sidecar pushes by kind. When the
session breaks, every frame still in the queue is simply sent again on the next one (the sidecar
answers a re-sent frame id from its store, and `FrameQueue.complete` applies a result only once).
Reconnects back off exponentially up to RECONNECT_MAX: a few seconds, so a sidecar that comes
back after a long outage is reconnected within seconds of serving again.

Dispatch is by `ServerMessage.kind`; a kind this version does not know is ignored (contract rule).
A verdict is acknowledged (`VerdictAck`) once `StreamHandler.async_on_verdict` says it is stored.
While a session is up, the sidecar's status (batches, verdict counts) is fetched with `GetStatus`
every STATUS_INTERVAL seconds and shortly after each verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import grpc
from homeassistant.core import HomeAssistant, callback

from ..const import (
    CLIENT_VERSION,
    LOGGER,
    MAX_FRAME_ATTEMPTS,
    MAX_FRAME_BYTES,
    MAX_IN_FLIGHT,
    MAX_SESSION_BREAKS,
)
from ..storage.frame_queue import FrameQueue
from .client import SidecarAddress, auth_metadata, create_channel
from .convert import frame_message
from .proto import secmon_pb2, secmon_pb2_grpc

BACKOFF_MIN = 0.5
# Retry delay cap of a frame the sidecar could not analyse for a passing reason.
BACKOFF_MAX = 30.0
# Reconnect delay cap: an attempt every few seconds costs a LAN service nothing.
RECONNECT_MAX = 4.0
HELLO_TIMEOUT = 15.0
# A frame without a result for this long is sent again (the sidecar deduplicates by frame id).
IN_FLIGHT_TIMEOUT = 120.0
STATUS_INTERVAL = 30.0
# After a verdict, wait this long before asking for the status (lets the ack land first).
STATUS_SETTLE = 0.5
STATUS_TIMEOUT = 5.0
# A session that lasted this long (or delivered a result) was healthy: backoff starts over.
HEALTHY_SESSION = 10.0
# At unload, how long results and verdicts already received may take to be stored and applied.
HANDLING_TIMEOUT = 10.0
# Most frames in flight whatever the sidecar advertises.
IN_FLIGHT_CAP = 64

_T = TypeVar("_T")

_RETRYABLE = frozenset(
    {
        secmon_pb2.FRAME_ERROR_CODE_UNSPECIFIED,
        secmon_pb2.FRAME_ERROR_CODE_INTERNAL,
        secmon_pb2.FRAME_ERROR_CODE_UNAVAILABLE,
    }
)
# The sidecar could not keep the frame for now (its store is unavailable, it is shutting down):
# the frame stays queued and goes again later, however often that takes.
_KEEP_QUEUED = frozenset(
    {
        secmon_pb2.FRAME_ERROR_CODE_UNAVAILABLE,
        getattr(secmon_pb2, "FRAME_ERROR_CODE_STORAGE_UNAVAILABLE", 9),
    }
)


def keeps_frame(result: secmon_pb2.FrameResult) -> bool:
    """Whether the sidecar asks us to keep the frame and send it again later."""
    return result.HasField("error") and (
        result.error.code in _KEEP_QUEUED or bool(getattr(result, "retryable", False))
    )


def local_error(
    frame_id: str, camera_id: str, code: secmon_pb2.FrameErrorCode, message: str
) -> secmon_pb2.FrameResult:
    """A result made here, for a frame that must not (or cannot) reach the sidecar."""
    return secmon_pb2.FrameResult(
        frame_id=frame_id,
        camera_id=camera_id,
        error=secmon_pb2.FrameError(code=code, message=message),
    )


class StreamHandler(Protocol):
    """Where the stream delivers what it receives (the entry's coordinator)."""

    def async_on_connected(self, connected: bool, error: str | None) -> None:
        """The session came up (True) or went away (False)."""

    def async_on_status(self, status: secmon_pb2.SidecarStatus) -> None:
        """The sidecar reported its status (in HelloReply or as a status message)."""

    def async_on_token_rejected(self) -> None:
        """The sidecar refused the access token (the stream keeps retrying)."""

    async def async_on_result(
        self, result: secmon_pb2.FrameResult, *, set_aside: bool = False
    ) -> None:
        """A frame's result (or error) arrived; store it and apply it. `set_aside`: the error
        was made here for a frame that kept breaking the session."""

    async def async_on_verdict(self, verdict: secmon_pb2.Verdict) -> bool:
        """A batch verdict arrived; return True once it is stored (it is then acknowledged)."""


class _SessionEndedError(Exception):
    """The sidecar closed the stream."""


# grpc.aio ends each streaming call in a task of its own that takes the call's final status; after a
# cancel it finishes on a later turn of the loop (later still on a busy machine).
_CALL_STATUS_TASK = "_handle_status_once_received"
CALL_TASKS_TIMEOUT = 10.0


async def _async_call_tasks_done() -> None:
    """Wait (bounded) until grpc.aio's status tasks have finished, so that nothing a session
    started outlives it (an unload or reload leaves no task behind)."""
    current = asyncio.current_task()
    pending = [
        task
        for task in asyncio.all_tasks()
        if task is not current and not task.done() and _CALL_STATUS_TASK in repr(task)
    ]
    if pending:
        await asyncio.wait(pending, timeout=CALL_TASKS_TIMEOUT)


class SidecarStream:
    """Keeps one `Stream` session alive and feeds it from the durable queue."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        entry_id: str,
        address: SidecarAddress,
        token: str | None,
        queue: FrameQueue,
        handler: StreamHandler,
        config: secmon_pb2.StreamConfig,
    ) -> None:
        """Prepare; `async_run` does the work."""
        self.hass = hass
        self.entry_id = entry_id
        self.address = address
        self.token = token
        self.queue = queue
        self.handler = handler
        self.config = config
        self._wake = asyncio.Event()
        self._status_wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._in_flight: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        # Per frame, how many sessions ended while it was the newest unanswered frame sent.
        self._breaks: dict[str, int] = {}
        # Frames sent since the sidecar last said anything (the suspects when a session breaks).
        self._unanswered: list[tuple[str, str]] = []
        self._answered = False
        self._probation = False
        # Consecutive "keep it for later" answers (backoff); reset by any other result.
        self._kept_refusals = 0
        self._connected = False
        # Results and verdicts being stored and applied: they finish even if their session ends.
        self._handling: set[asyncio.Task[Any]] = set()
        # Frames in flight at most: the sidecar's advertised capacity where it gives one.
        self.max_in_flight = MAX_IN_FLIGHT
        # Frames larger than this are answered here (TOO_LARGE) instead of sent.
        self.max_frame_bytes = MAX_FRAME_BYTES
        # Connection attempts and established sessions (diagnostics, tests).
        self.attempts = 0
        self.sessions = 0
        # The wait before the next connection attempt (diagnostics, tests).
        self.reconnect_delay = 0.0
        # The home's latest state (home_state.py): sent after each Hello and whenever it changes.
        self.home_state: secmon_pb2.HomeState | None = None
        # Home states written to a session (diagnostics, tests).
        self.home_states_sent = 0
        # Messages every new session sends after the Hello (the owner's feedback), and how many
        # feedback messages were written (tests).
        self.session_messages: Callable[[], Awaitable[list[secmon_pb2.ClientMessage]]] | None = (
            None
        )
        self.feedback_sent = 0
        self._call: grpc.aio.StreamStreamCall | None = None

    @property
    def in_flight(self) -> int:
        """Frames sent in this session and still waiting for a result."""
        return len(self._in_flight)

    @property
    def in_flight_ids(self) -> frozenset[str]:
        """The frames sent in this session and still waiting for a result."""
        return frozenset(self._in_flight)

    @callback
    def wake(self) -> None:
        """New frames are waiting (or a slot freed up)."""
        self._wake.set()

    async def async_run(self) -> None:
        """Connect, run sessions, reconnect with capped exponential backoff; until cancelled
        (then what was received is still stored and applied before it returns)."""
        try:
            await self._async_run_sessions()
        finally:
            if self._handling:
                await asyncio.wait(set(self._handling), timeout=HANDLING_TIMEOUT)

    async def _async_run_sessions(self) -> None:
        backoff = BACKOFF_MIN
        while True:
            self.attempts += 1
            channel = create_channel(self.address)
            error: str
            started = time.monotonic()
            self._answered = False
            self._unanswered.clear()
            try:
                await self._async_session(channel)
                error = "the sidecar closed the stream"
            except grpc.aio.AioRpcError as err:
                error = f"{err.code().name}: {err.details()}"
                if err.code() in (
                    grpc.StatusCode.UNAUTHENTICATED,
                    grpc.StatusCode.PERMISSION_DENIED,
                ):
                    error = "the sidecar rejected the access token"
                    self.handler.async_on_token_rejected()
            except (_SessionEndedError, TimeoutError, asyncio.InvalidStateError) as err:
                # InvalidStateError: grpc.aio refuses a write on a call the peer already ended.
                error = str(err) or type(err).__name__
            except Exception as err:
                # Whatever breaks a session must not end the loop that keeps frames flowing.
                LOGGER.exception("Unexpected error in the sidecar stream; reconnecting")
                error = f"{type(err).__name__}: {err}"
            finally:
                self._in_flight.clear()
                await channel.close()
                await _async_call_tasks_done()
            healthy = self._answered or time.monotonic() - started >= HEALTHY_SESSION
            if self._connected:
                await self._async_suspect(error)
                if healthy:
                    backoff = BACKOFF_MIN
            self._set_connected(False, error)
            self.reconnect_delay = backoff
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX)

    async def _async_suspect(self, error: str) -> None:
        """A session broke with frames unanswered. The next session sends one frame at a time
        (probation) until the sidecar answers one, so a break then points at exactly one frame.
        A frame that broke MAX_SESSION_BREAKS sessions alone is set aside with an error result:
        one poison frame cannot stop every camera."""
        unanswered, self._unanswered = self._unanswered, []
        if not unanswered:
            return
        alone = self._probation and len(unanswered) == 1
        self._probation = True
        if not alone:
            return
        frame_id, camera_id = unanswered[0]
        breaks = self._breaks.get(frame_id, 0) + 1
        self._breaks[frame_id] = breaks
        if breaks < MAX_SESSION_BREAKS:
            return
        del self._breaks[frame_id]
        LOGGER.warning(
            "Frame %s ended %s sessions with the sidecar in a row (%s); setting it aside",
            frame_id,
            breaks,
            error,
        )
        await self.handler.async_on_result(
            local_error(
                frame_id,
                camera_id,
                secmon_pb2.FRAME_ERROR_CODE_INVALID_REQUEST,
                f"set aside after breaking {breaks} sessions with the sidecar ({error})",
            ),
            set_aside=True,
        )

    async def _async_session(self, channel: grpc.aio.Channel) -> None:
        stub = secmon_pb2_grpc.SidecarStub(channel)
        call = stub.Stream(metadata=auth_metadata(self.token))
        try:
            await self._write(
                call,
                secmon_pb2.ClientMessage(
                    hello=secmon_pb2.Hello(
                        client_id=self.entry_id,
                        client_version=CLIENT_VERSION,
                        config=self.config,
                        time_zone=self.hass.config.time_zone,
                    )
                ),
            )
            first = await asyncio.wait_for(call.read(), HELLO_TIMEOUT)
            if first is grpc.aio.EOF:
                raise _SessionEndedError("the sidecar closed the stream before saying hello")
            self.sessions += 1
            self._set_connected(True, None)
            await self._async_dispatch(call, first)
            self._call = call
            if self.home_state is not None:
                await self._write(call, secmon_pb2.ClientMessage(home_state=self.home_state))
                self.home_states_sent += 1
            if self.session_messages is not None:
                for message in await self.session_messages():
                    await self._write(call, message)
                    self.feedback_sent += message.HasField("feedback")
            reader = asyncio.create_task(self._async_read(call))
            poller = asyncio.create_task(self._async_poll_status(stub))
            try:
                await self._async_feed(call, reader)
            finally:
                reader.cancel()
                poller.cancel()
                # Not `suppress(CancelledError)`: that would also swallow a cancellation of this
                # task (unload) arriving here, and the reconnect loop would go on forever.
                await asyncio.gather(reader, poller, return_exceptions=True)
        finally:
            self._call = None
            call.cancel()

    async def async_send(self, messages: list[secmon_pb2.ClientMessage]) -> bool:
        """Send on the current session, if any; False when there is none or the write failed
        (what must reach the sidecar anyway goes again with `session_messages`)."""
        if (call := self._call) is None:
            return False
        try:
            for message in messages:
                await self._write(call, message)
                self.feedback_sent += message.HasField("feedback")
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as err:
            LOGGER.debug("Not sent now (%s); it goes with the next session", err)
            return False
        return True

    async def async_send_home_state(self, state: secmon_pb2.HomeState) -> None:
        """Keep `state` for every new session and send it on the current one, if any (a failed
        write is left to the session: the next one sends the state again)."""
        self.home_state = state
        if (call := self._call) is None:
            return
        try:
            await self._write(call, secmon_pb2.ClientMessage(home_state=state))
            self.home_states_sent += 1
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as err:
            LOGGER.debug("Home state not sent now (%s); it goes with the next session", err)

    async def _async_feed(
        self, call: grpc.aio.StreamStreamCall, reader: asyncio.Task[None]
    ) -> None:
        """Keep up to MAX_IN_FLIGHT queued frames in flight until the reader stops."""
        while not reader.done():
            self._wake.clear()
            now = time.monotonic()
            for frame_id, sent in list(self._in_flight.items()):
                if now - sent > IN_FLIGHT_TIMEOUT:
                    del self._in_flight[frame_id]
            self._retry_at = {k: v for k, v in self._retry_at.items() if v > now}
            limit = 1 if self._probation else max(1, min(self.max_in_flight, IN_FLIGHT_CAP))
            free = limit - len(self._in_flight)
            if free > 0:
                exclude = set(self._in_flight) | set(self._retry_at)
                frames = await self.hass.async_add_executor_job(
                    self.queue.next_pending, exclude, free
                )
                for frame in frames:
                    if len(frame.image) > self.max_frame_bytes:
                        await self.handler.async_on_result(
                            local_error(
                                frame.frame_id,
                                frame.camera_id,
                                secmon_pb2.FRAME_ERROR_CODE_TOO_LARGE,
                                f"{len(frame.image)} bytes, more than the"
                                f" {self.max_frame_bytes} the sidecar takes",
                            )
                        )
                        continue
                    self._in_flight[frame.frame_id] = time.monotonic()
                    self._unanswered.append((frame.frame_id, frame.camera_id))
                    await self._write(call, frame_message(frame))
                if frames:
                    continue
            timeout = min(
                [at - now for at in self._retry_at.values()] + [IN_FLIGHT_TIMEOUT], default=None
            )
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    {reader, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
        reader.result()

    async def _async_read(self, call: grpc.aio.StreamStreamCall) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                raise _SessionEndedError("the sidecar closed the stream")
            await self._async_dispatch(call, message)

    async def _async_dispatch(
        self, call: grpc.aio.StreamStreamCall, message: secmon_pb2.ServerMessage
    ) -> None:
        kind = message.WhichOneof("kind")
        if kind == "result":
            await self._async_to_the_end(self._async_on_result(message.result))
        elif kind == "verdict":
            if await self._async_to_the_end(self.handler.async_on_verdict(message.verdict)):
                await self._write(
                    call,
                    secmon_pb2.ClientMessage(
                        verdict_ack=secmon_pb2.VerdictAck(verdict_ids=[message.verdict.verdict_id])
                    ),
                )
                self._status_wake.set()
        elif kind == "hello":
            self._apply_capacity(message.hello)
            self.handler.async_on_status(message.hello.status)
        elif kind == "status":
            self.handler.async_on_status(message.status)
        else:
            LOGGER.debug("Ignoring a server message of unknown kind")

    async def _async_to_the_end(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run `work` to its end even when the session is torn down meanwhile: a result stored
        in the queue but cancelled before it is counted and shown would be lost to the
        entities, as its frame is no longer pending and never comes back."""
        task = self.hass.async_create_task(work, "secmon stream: store and apply")
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        return await asyncio.shield(task)

    def _apply_capacity(self, hello: secmon_pb2.HelloReply) -> None:
        """Follow the frames in flight the sidecar asks for (0 or absent: an older sidecar, keep
        our own limit)."""
        advertised = int(getattr(hello, "max_frames_in_flight", 0))
        self.max_in_flight = min(MAX_IN_FLIGHT, advertised) if advertised > 0 else MAX_IN_FLIGHT

    async def _async_poll_status(self, stub: secmon_pb2_grpc.SidecarStub) -> None:
        """Refresh the sidecar's status now and then; a failed call waits for the next turn."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_wake.wait(), STATUS_INTERVAL)
                await asyncio.sleep(STATUS_SETTLE)
            self._status_wake.clear()
            try:
                reply = await stub.GetStatus(
                    secmon_pb2.GetStatusRequest(),
                    metadata=auth_metadata(self.token),
                    timeout=STATUS_TIMEOUT,
                )
            except grpc.aio.AioRpcError as err:
                LOGGER.debug("GetStatus failed: %s", err.code().name)
                continue
            self.handler.async_on_status(reply.status)

    async def _async_on_result(self, result: secmon_pb2.FrameResult) -> bool:
        self._answered = True
        self._probation = False
        self._unanswered.clear()
        self._breaks.pop(result.frame_id, None)
        try:
            if keeps_frame(result):
                self._keep_for_later(result)
                return True
            self._kept_refusals = 0
            if result.HasField("error") and result.error.code in _RETRYABLE:
                await self._async_retry_later(result)
            else:
                await self.handler.async_on_result(result)
        finally:
            # Only now (the result is stored, or the retry is scheduled): until then the frame
            # must not look free to send again.
            self._in_flight.pop(result.frame_id, None)
            self._wake.set()
        return True

    def _keep_for_later(self, result: secmon_pb2.FrameResult) -> None:
        """The frame stays queued; it goes again after a backoff that grows while the sidecar
        keeps refusing (the queue keeps it meanwhile; nothing is given up)."""
        self._kept_refusals += 1
        delay = min(BACKOFF_MAX, BACKOFF_MIN * 2.0 ** min(self._kept_refusals, 8))
        LOGGER.debug(
            "The sidecar could not take frame %s now (%s); sending it again in %.1f s",
            result.frame_id,
            result.error.message,
            delay,
        )
        self._retry_at[result.frame_id] = time.monotonic() + delay

    async def _async_retry_later(self, result: secmon_pb2.FrameResult) -> None:
        attempts = await self.hass.async_add_executor_job(
            self.queue.record_attempt, result.frame_id
        )
        if attempts >= MAX_FRAME_ATTEMPTS:
            LOGGER.warning(
                "The sidecar failed frame %s %s times (%s); giving up on it",
                result.frame_id,
                attempts,
                result.error.message,
            )
            await self.handler.async_on_result(result)
            return
        self._retry_at[result.frame_id] = time.monotonic() + min(BACKOFF_MAX, 2.0**attempts)

    async def _write(
        self, call: grpc.aio.StreamStreamCall, message: secmon_pb2.ClientMessage
    ) -> None:
        async with self._write_lock:
            await call.write(message)

    @callback
    def _set_connected(self, connected: bool, error: str | None) -> None:
        self._connected = connected
        self.handler.async_on_connected(connected, error)
