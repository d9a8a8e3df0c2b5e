"""An in-process sidecar that answers the stream the way a failing or hostile one would. Only for
answers a real sidecar gives too rarely or never on purpose (its store failing, a frame that
kills its session); everything else runs against the real sidecar process."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import CONF_ADDRESS, CONF_CAMERA_ROOT, CONF_DEBOUNCE, DOMAIN
from custom_components.secmon.coordinator import SecmonCoordinator
from custom_components.secmon.link.proto import secmon_pb2, secmon_pb2_grpc

# Decides the answer to one frame: results to send, or None to end the session with an error.
Answer = Callable[
    [secmon_pb2.Frame, int], secmon_pb2.FrameResult | list[secmon_pb2.FrameResult] | None
]


def ok_result(frame: secmon_pb2.Frame) -> secmon_pb2.FrameResult:
    """A result without detections."""
    return secmon_pb2.FrameResult(
        frame_id=frame.frame_id, camera_id=frame.camera_id, width=320, height=240
    )


class HostileSidecar(secmon_pb2_grpc.SidecarServicer):
    """Streams frames to `answer(frame, times this frame was seen)`."""

    def __init__(self, answer: Answer, status: secmon_pb2.SidecarStatus | None = None) -> None:
        self.answer = answer
        self.status = status or secmon_pb2.SidecarStatus(ready=True, server_version="hostile")
        self.hello_reply = secmon_pb2.HelloReply(server_version="hostile", status=self.status)
        self.seen: Counter[str] = Counter()
        self.sessions = 0
        # When each session began (time.monotonic()).
        self.started: list[float] = []
        self.frames: list[secmon_pb2.Frame] = []

    async def Stream(
        self,
        request_iterator: AsyncIterator[secmon_pb2.ClientMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[secmon_pb2.ServerMessage]:
        self.sessions += 1
        self.started.append(time.monotonic())
        async for message in request_iterator:
            kind = message.WhichOneof("kind")
            if kind == "hello":
                yield secmon_pb2.ServerMessage(hello=self.hello_reply)
            elif kind == "frame":
                self.seen[message.frame.frame_id] += 1
                self.frames.append(message.frame)
                result = self.answer(message.frame, self.seen[message.frame.frame_id])
                if result is None:
                    await context.abort(grpc.StatusCode.INTERNAL, "this frame broke the session")
                for one in result if isinstance(result, list) else [result]:
                    yield secmon_pb2.ServerMessage(result=one)

    async def Analyze(
        self, request: secmon_pb2.AnalyzeRequest, context: grpc.aio.ServicerContext
    ) -> secmon_pb2.AnalyzeResponse:
        result = self.answer(request.frame, 1)
        if result is None:
            await context.abort(grpc.StatusCode.INTERNAL, "this frame broke the call")
        return secmon_pb2.AnalyzeResponse(result=result[0] if isinstance(result, list) else result)

    async def GetStatus(
        self, request: secmon_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> secmon_pb2.GetStatusResponse:
        return secmon_pb2.GetStatusResponse(status=self.status)


async def start_hostile_sidecar(port: int, servicer: HostileSidecar) -> grpc.aio.Server:
    """Serve `servicer` (and a SERVING health service) on loopback."""
    server = grpc.aio.server()
    checker = health.aio.HealthServicer()
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    secmon_pb2_grpc.add_SidecarServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def set_up_entry(hass: HomeAssistant, port: int, camera_root: Path) -> SecmonCoordinator:
    """An entry for the sidecar on `port`, set up, with a short debounce."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"127.0.0.1:{port}",
        data={CONF_ADDRESS: f"127.0.0.1:{port}", CONF_CAMERA_ROOT: str(camera_root)},
        options={CONF_DEBOUNCE: 0.2},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: SecmonCoordinator = entry.runtime_data
    return coordinator


async def stop(server: grpc.aio.Server) -> None:
    """Stop at once (tests end quickly)."""
    await server.stop(None)
    await asyncio.sleep(0)
