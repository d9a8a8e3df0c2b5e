"""The gRPC servicer: protobuf <-> domain only; the work happens in the pipeline and sessions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from .. import __version__
from ..detection.models.rtdetr_v2 import RANDOM_PREFIX
from ..detection.pipeline import DetectionPipeline
from ..domain import FrameOutcome, FrameRequest
from ..proto import secmon_pb2 as pb
from ..proto import secmon_pb2_grpc
from . import convert
from .client_config import MAX_CLIENT_ID_CHARS, resolve_client_id, resolve_threshold
from .gpu import GpuMonitor
from .memory import read_memory
from .observer import NoObserver, StreamObserver
from .sessions import SessionRegistry, StreamSession

_LOGGER = logging.getLogger(__name__)


class SidecarServicer(secmon_pb2_grpc.SidecarServicer):  # type: ignore[misc]
    def __init__(
        self,
        pipeline: DetectionPipeline,
        sessions: SessionRegistry,
        *,
        max_batch: int,
        max_delay_ms: float,
        observer: StreamObserver | None = None,
        gpus: GpuMonitor | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._sessions = sessions
        self._max_batch = max_batch
        self._max_delay_ms = max_delay_ms
        self._observer = observer or NoObserver()
        self._gpus = gpus or GpuMonitor()

    # -- Stream ------------------------------------------------------------------------------
    async def Stream(
        self,
        request_iterator: AsyncIterator[pb.ClientMessage],
        context: grpc.aio.ServicerContext[pb.ClientMessage, pb.ServerMessage],
    ) -> AsyncIterator[pb.ServerMessage]:
        session = self._sessions.open(context.peer())
        _LOGGER.info("Stream %d opened by %s", session.session_id, session.peer)
        await self._notify(self._observer.on_session_open(session))
        reader = asyncio.create_task(self._read(session, request_iterator))
        shutdown = False
        try:
            async for message, ending_for_shutdown in session.outgoing():
                if message is None:
                    shutdown = ending_for_shutdown
                    break
                yield message
        finally:
            reader.cancel()
            await session.close()
            self._sessions.remove(session)
            await self._notify(self._observer.on_session_closed(session))
            _LOGGER.info("Stream %d closed", session.session_id)
        if shutdown:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the sidecar is shutting down")

    async def _read(
        self, session: StreamSession, request_iterator: AsyncIterator[pb.ClientMessage]
    ) -> None:
        try:
            async for message in request_iterator:
                await self._dispatch(session, message)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the client went away mid-read
            _LOGGER.debug("Stream %d read ended: %s", session.session_id, err)
        # Half-closed by the client (or gone): answer what was accepted, then end the stream.
        await session.finish()

    async def _dispatch(self, session: StreamSession, message: pb.ClientMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "frame":
            await session.acquire_frame_permit()
            request = convert.frame_request(
                message.frame, session.threshold, session.client_id or "anonymous"
            )
            result = self._pipeline.submit_stream_frame(request, self._frame_hook(session))
            session.emit_result(request.camera_id, result)
        elif kind == "hello":
            hello = message.hello
            session.client_id, warnings = resolve_client_id(hello.client_id)
            session.client_version = hello.client_version[:MAX_CLIENT_ID_CHARS]
            if hello.HasField("config"):
                warnings += await self._apply_config(session, hello.config)
            status = await self._status()
            session.send(
                pb.ServerMessage(
                    hello=pb.HelloReply(
                        server_version=__version__,
                        status=status,
                        config_warnings=warnings,
                        max_frames_in_flight=status.max_frames_in_flight,
                    )
                )
            )
            await self._notify(self._observer.on_hello(session, hello))
        elif kind == "config":
            warnings = await self._apply_config(session, message.config)
            session.send(
                pb.ServerMessage(config_reply=pb.ConfigReply(config_warnings=warnings))
            )
        elif kind == "verdict_ack":
            await self._notify(self._observer.on_verdict_ack(session, message.verdict_ack))
        else:  # a newer client's message kind, or an empty envelope: ignore
            _LOGGER.debug("Stream %d: ignoring message kind %s", session.session_id, kind)
            await self._notify(self._observer.on_other_message(session, message))

    async def _apply_config(self, session: StreamSession, config: pb.StreamConfig) -> list[str]:
        """Take a client's settings; returns what had to be changed to use them."""
        session.config = config
        session.threshold, warnings = resolve_threshold(config.detection_threshold)
        zones, zone_warnings = convert.camera_zones(config)
        if zones is not None:
            session.zones = zones
        warnings += zone_warnings
        try:
            warnings += await self._observer.on_config(session, config)
        except Exception:
            _LOGGER.exception("Stream observer hook failed")
        for warning in warnings:
            _LOGGER.warning("Config from %s: %s", session.client_id or session.peer, warning)
        return warnings

    def _frame_hook(
        self, session: StreamSession
    ) -> Callable[[FrameRequest, FrameOutcome], Awaitable[str]]:
        async def hook(request: FrameRequest, outcome: FrameOutcome) -> str:
            return await self._observer.on_frame_result(session, request, outcome)

        return hook

    @staticmethod
    async def _notify(hook: Awaitable[None]) -> None:
        """Run one observer hook; its failure is logged (the traceback names it), never raised."""
        try:
            await hook
        except Exception:
            _LOGGER.exception("Stream observer hook failed")

    # -- unary -------------------------------------------------------------------------------
    async def Analyze(
        self,
        request: pb.AnalyzeRequest,
        context: grpc.aio.ServicerContext[pb.AnalyzeRequest, pb.AnalyzeResponse],
    ) -> pb.AnalyzeResponse:
        # Analyze is a plain query: frame_id/camera_id are optional and only echoed back.
        frame = convert.frame_request(request.frame, convert.threshold_or_none(request.threshold))
        outcome = await self._pipeline.detect(frame)
        return pb.AnalyzeResponse(result=convert.frame_result(outcome))

    async def GetStatus(
        self,
        request: pb.GetStatusRequest,
        context: grpc.aio.ServicerContext[pb.GetStatusRequest, pb.GetStatusResponse],
    ) -> pb.GetStatusResponse:
        return pb.GetStatusResponse(status=await self._status())

    async def _status(self) -> pb.SidecarStatus:
        pipeline = self._pipeline
        detector = pipeline.detector
        ready = pipeline.ready.is_set()
        status = convert.sidecar_status(
            ready=ready,
            detector_model=detector.model_name,
            device=detector.device_name if ready else "",
            dtype=detector.dtype_name if ready else "",
            default_threshold=pipeline.default_threshold,
            max_batch=self._max_batch,
            max_delay_ms=self._max_delay_ms,
            queue_depth=pipeline.queue_depth,
            active_streams=len(self._sessions),
            stats=pipeline.stats.snapshot(),
            gpus=await asyncio.to_thread(self._gpus.read),
            max_frame_bytes=pipeline.limits.max_frame_bytes,
            max_pixels=pipeline.limits.max_pixels,
        )
        memory = read_memory()
        costs = pipeline.batch_costs
        convert.add_capacity(
            status,
            max_frames_in_flight=pipeline.frames_in_flight_wanted if ready else 0,
            batch_costs=costs.snapshot(),
            batching_policy="latency" if costs.adaptive else "fill",
            decode_workers=pipeline.decode_workers,
            max_decoded_frames=pipeline.max_decoded,
            rss_bytes=memory.rss_bytes,
            peak_rss_bytes=memory.peak_rss_bytes,
            compile_mode=detector.compile_mode,
        )
        status.tampered_cameras = await asyncio.to_thread(pipeline.tamper.tampered_count)
        try:
            self._observer.fill_status(status)
        except Exception:
            _LOGGER.exception("Stream observer failed to fill the status")
        status.random_models.extend(
            role
            for role, spec in (("detector", status.detector_model), ("llm", status.llm_model))
            if spec.startswith(RANDOM_PREFIX)
        )
        return status
