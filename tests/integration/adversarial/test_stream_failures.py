"""The frame stream against a sidecar that misbehaves on the stream itself: it swallows a frame
without answering, pushes messages of a kind this side does not know, and fails its status
calls. An in-process scripted server (a real sidecar does none of this on purpose)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from homeassistant.core import HomeAssistant

from custom_components.secmon.const import DOMAIN
from custom_components.secmon.coordinator import SecmonCoordinator
from custom_components.secmon.link import stream as stream_module
from custom_components.secmon.link.proto import secmon_pb2

from ..helpers import image_bytes, wait_for, write_image
from ..sidecar_process import free_port
from .hostile_sidecar import HostileSidecar, ok_result, set_up_entry, start_hostile_sidecar, stop

Start = Callable[[HostileSidecar], object]


class PushingSidecar(HostileSidecar):
    """After its hello, pushes a message of no known kind and then a status of its own."""

    def __init__(self) -> None:
        super().__init__(lambda frame, _seen: ok_result(frame))
        self.pushed = secmon_pb2.SidecarStatus(ready=True, server_version="pushed on the stream")

    async def Stream(
        self,
        request_iterator: AsyncIterator[secmon_pb2.ClientMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[secmon_pb2.ServerMessage]:
        async for message in super().Stream(request_iterator, context):
            yield message
            if message.WhichOneof("kind") == "hello":
                yield secmon_pb2.ServerMessage()
                yield secmon_pb2.ServerMessage(status=self.pushed)


class StatusFailingSidecar(HostileSidecar):
    """Answers frames, fails every GetStatus."""

    def __init__(self) -> None:
        super().__init__(lambda frame, _seen: ok_result(frame))
        self.status_calls = 0

    async def GetStatus(
        self, request: secmon_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> secmon_pb2.GetStatusResponse:
        self.status_calls += 1
        await context.abort(grpc.StatusCode.UNAVAILABLE, "status is down")
        raise AssertionError("abort returns by raising")


def _server_version(coordinator: SecmonCoordinator) -> str | None:
    status = coordinator.sidecar.status
    return None if status is None else status.server_version


@pytest.fixture
async def scripted_entry(
    hass: HomeAssistant, config_dir: Path, camera_root: Path
) -> AsyncGenerator[Start]:
    servers: list[grpc.aio.Server] = []

    async def start(servicer: HostileSidecar) -> SecmonCoordinator:
        port = free_port()
        servers.append(await start_hostile_sidecar(port, servicer))
        return await set_up_entry(hass, port, camera_root)

    yield start
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    for server in servers:
        await stop(server)


async def test_a_frame_the_sidecar_never_answers_is_sent_again_once_overdue(
    hass: HomeAssistant,
    camera_root: Path,
    scripted_entry: Start,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sidecar takes the frame and says nothing (no result, no error, the session stays
    up): once its answer is overdue the frame is no longer counted in flight and goes again."""
    monkeypatch.setattr(stream_module, "IN_FLIGHT_TIMEOUT", 1.0)

    def answer(frame: secmon_pb2.Frame, seen: int) -> list[secmon_pb2.FrameResult]:
        return [] if seen == 1 else [ok_result(frame)]

    servicer = HostileSidecar(answer)
    coordinator: SecmonCoordinator = await scripted_entry(servicer)  # type: ignore[assignment]
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(1))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "answered at last")
    assert list(servicer.seen.values()) == [2]
    assert servicer.sessions == 1
    assert coordinator.queue_depth == 0


async def test_messages_of_unknown_kind_are_ignored_and_a_pushed_status_is_kept(
    hass: HomeAssistant, camera_root: Path, scripted_entry: Start
) -> None:
    """A newer sidecar may send kinds this side does not know: the session goes on. A status
    it pushes on the stream replaces the one from its hello."""
    servicer = PushingSidecar()
    coordinator: SecmonCoordinator = await scripted_entry(servicer)  # type: ignore[assignment]
    await wait_for(
        hass,
        lambda: _server_version(coordinator) == "pushed on the stream",
        "the pushed status",
    )
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(1))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "a frame answered")
    assert servicer.sessions == 1


async def test_failing_status_calls_leave_the_stream_up(
    hass: HomeAssistant,
    camera_root: Path,
    scripted_entry: Start,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GetStatus failing (while the stream works) is tried again at the next turn; frames keep
    flowing on the same session and the hello's status stays."""
    monkeypatch.setattr(stream_module, "STATUS_INTERVAL", 0.2)
    servicer = StatusFailingSidecar()
    coordinator: SecmonCoordinator = await scripted_entry(servicer)  # type: ignore[assignment]
    await wait_for(hass, lambda: servicer.status_calls >= 2, "status polled twice")
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(1))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "a frame answered")
    assert servicer.sessions == 1
    assert _server_version(coordinator) == "hostile"
