"""The servicer and stream sessions, in-process on loopback with the tiny model: readiness, the
model thread, idempotency, ordering, flow control, the stream observer seam, draining."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sidecar_harness import eventually, jpeg

from sidecar.detection.models.base import Detector
from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector
from sidecar.detection.preprocess import PreparedFrame, PreprocessSpec
from sidecar.domain import Detection, FrameOutcome, FrameRequest, StartupError
from sidecar.proto import secmon_pb2 as pb
from sidecar.proto import secmon_pb2_grpc
from sidecar.server.app import SidecarServer
from sidecar.server.config import Settings
from sidecar.server.observer import StreamObserver
from sidecar.server.sessions import SessionRegistry, StreamSession

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GatedDetector(Detector):
    """The real tiny detector, with gates the test opens: lets a test hold the model in `load` or
    in `infer` to observe what the server does meanwhile."""

    def __init__(self, inner: RTDetrV2Detector) -> None:
        self.inner = inner
        self.load_gate = threading.Event()
        self.infer_gate = threading.Event()
        self.load_gate.set()
        self.infer_gate.set()
        self.batches: list[int] = []
        self.widths: list[int] = []  # of every frame, in the order the model got them

    model_name = property(lambda self: self.inner.model_name)
    device_name = property(lambda self: self.inner.device_name)
    dtype_name = property(lambda self: self.inner.dtype_name)

    @property
    def preprocess(self) -> PreprocessSpec:
        return self.inner.preprocess

    def load(self) -> None:
        self.load_gate.wait(60)
        self.inner.load()

    def warmup(self) -> None:
        self.inner.warmup()

    def infer(self, batch: Sequence[PreparedFrame]) -> list[list[Detection]]:
        self.infer_gate.wait(60)
        self.batches.append(len(batch))
        self.widths.extend(f.width for f in batch)
        return self.inner.infer(batch)


@dataclass
class RecordingObserver(StreamObserver):
    sessions: SessionRegistry
    events: list[tuple[str, object]] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    fail_frames: bool = False
    fail_messages: bool = False
    load_gate: asyncio.Event | None = None
    load_error: Exception | None = None

    async def load(self) -> None:
        if self.load_gate is not None:
            await self.load_gate.wait()
        if self.load_error is not None:
            raise self.load_error

    async def on_session_open(self, session: StreamSession) -> None:
        self.events.append(("open", session.session_id))

    async def on_session_closed(self, session: StreamSession) -> None:
        self.events.append(("closed", session.session_id))

    async def on_hello(self, session: StreamSession, hello: pb.Hello) -> None:
        self.events.append(("hello", session.client_id))
        # As the event observer does: push pending verdicts to the client after its hello.
        session.send(pb.ServerMessage(verdict=pb.Verdict(verdict_id="v1", camera_id="cam")))

    async def on_config(self, session: StreamSession, config: pb.StreamConfig) -> list[str]:
        self.events.append(("config", session.threshold))
        if self.fail_messages:
            raise RuntimeError("observer bug")
        return []

    async def on_verdict_ack(self, session: StreamSession, ack: pb.VerdictAck) -> None:
        self.events.append(("ack", list(ack.verdict_ids)))

    async def on_other_message(self, session: StreamSession, message: pb.ClientMessage) -> None:
        self.events.append(("other", message.WhichOneof("kind")))

    async def on_frame_result(
        self, session: StreamSession, frame: FrameRequest, outcome: FrameOutcome
    ) -> str:
        self.frames.append(frame.frame_id)
        if self.fail_frames:
            raise RuntimeError("observer bug")
        return f"batch-{frame.camera_id}"

    def fill_status(self, status: pb.SidecarStatus) -> None:
        status.llm_model = "test-llm"
        status.open_batches = 2


@dataclass
class Running:
    server: SidecarServer
    detector: GatedDetector
    channel: grpc.aio.Channel
    observer: RecordingObserver | None

    @property
    def stub(self) -> secmon_pb2_grpc.SidecarStub:
        return secmon_pb2_grpc.SidecarStub(self.channel)

    async def health(self) -> int:
        reply = await health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(service="secmon.v1.Sidecar")
        )
        return int(reply.status)

    async def status(self) -> pb.SidecarStatus:
        return (await self.stub.GetStatus(pb.GetStatusRequest())).status


@pytest.fixture
def gated(tiny_detector: RTDetrV2Detector) -> GatedDetector:
    return GatedDetector(tiny_detector)


async def start_server(
    detector: GatedDetector,
    *,
    observe: bool = True,
    wait_ready: bool = True,
    observer_gate: asyncio.Event | None = None,
    observer_error: Exception | None = None,
    **overrides: object,
) -> Running:
    values: dict[str, object] = {
        "listen": "127.0.0.1:0", "detector": "unused", "device": "cpu", "threshold": 0.05,
        "max_batch": 4, "max_delay_ms": 5, "shutdown_grace_s": 10, **overrides,
    }
    settings = Settings(**values)  # type: ignore[arg-type]
    holder: list[RecordingObserver] = []

    def factory(_: Settings, sessions: SessionRegistry) -> StreamObserver:
        holder.append(RecordingObserver(sessions, load_gate=observer_gate,
                                        load_error=observer_error))
        return holder[0]

    server = SidecarServer(
        settings, detector=detector, observer_factory=factory if observe else None
    )
    port = await server.start()
    loading = asyncio.create_task(server.load_model())
    if wait_ready:
        await loading
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    server._loading = loading  # type: ignore[attr-defined]
    return Running(server, detector, channel, holder[0] if holder else None)


@pytest.fixture
async def running(gated: GatedDetector) -> AsyncIterator[Running]:
    r = await start_server(gated)
    yield r
    await r.channel.close()
    await r.server.shutdown(grace_s=5)


async def queue_depth_at_least(r: Running, n: int) -> bool:
    return (await r.status()).queue_depth >= n


async def received_at_least(r: Running, n: int) -> bool:
    return (await r.status()).frames_received >= n


def frame_msg(frame_id: str, camera: str, image: bytes) -> pb.ClientMessage:
    return pb.ClientMessage(frame=pb.Frame(frame_id=frame_id, camera_id=camera, image=image))


async def collect(call: grpc.aio.StreamStreamCall, count: int) -> list[pb.ServerMessage]:
    out = []
    while len(out) < count:
        out.append(await call.read())
    return out


# -- readiness and the model thread ------------------------------------------------------------
async def test_not_serving_until_the_model_is_loaded(gated: GatedDetector) -> None:
    gated.load_gate.clear()
    r = await start_server(gated, wait_ready=False)
    try:
        assert await r.health() == NOT_SERVING
        status = await r.status()
        assert not status.ready and status.detector_model == gated.model_name
        gated.load_gate.set()
        await r.server._loading  # type: ignore[attr-defined]
        assert await r.health() == SERVING
        assert (await r.status()).ready
    finally:
        gated.load_gate.set()
        await r.channel.close()
        await r.server.shutdown(grace_s=5)


async def test_not_serving_until_the_observer_has_loaded(gated: GatedDetector) -> None:
    gate = asyncio.Event()
    r = await start_server(gated, wait_ready=False, observer_gate=gate)
    try:
        await eventually(lambda: _ready(r.server))  # the detector is loaded and warm ...
        assert await r.health() == NOT_SERVING  # ... but the observer (its LLM) is not
        gate.set()
        await r.server._loading  # type: ignore[attr-defined]
        assert await r.health() == SERVING
    finally:
        gate.set()
        await r.channel.close()
        await r.server.shutdown(grace_s=5)


async def test_an_observer_startup_error_fails_loading(gated: GatedDetector) -> None:
    r = await start_server(gated, wait_ready=False, observer_error=StartupError("no LLM"))
    try:
        with pytest.raises(StartupError, match="no LLM"):
            await r.server._loading  # type: ignore[attr-defined]
        assert await r.health() == NOT_SERVING
    finally:
        await r.channel.close()
        await r.server.shutdown(grace_s=5)


async def _ready(server: SidecarServer) -> bool:
    return server.pipeline.ready.is_set()


async def test_frames_sent_while_loading_wait_for_the_model(gated: GatedDetector) -> None:
    gated.load_gate.clear()
    r = await start_server(gated, wait_ready=False)
    try:
        analyze = asyncio.ensure_future(
            r.stub.Analyze(pb.AnalyzeRequest(frame=pb.Frame(image=jpeg(64, 48))))
        )
        await asyncio.sleep(0.1)
        assert not analyze.done()
        gated.load_gate.set()
        result = (await analyze).result
        assert not result.HasField("error") and result.width == 64
    finally:
        gated.load_gate.set()
        await r.channel.close()
        await r.server.shutdown(grace_s=5)


async def test_health_and_status_answer_while_the_model_works(running: Running) -> None:
    running.detector.infer_gate.clear()
    analyze = asyncio.ensure_future(
        running.stub.Analyze(pb.AnalyzeRequest(frame=pb.Frame(image=jpeg(64, 48))))
    )
    await eventually(lambda: queue_depth_at_least(running, 1))
    assert await running.health() == SERVING
    assert (await running.status()).queue_depth == 1
    running.detector.infer_gate.set()
    assert (await analyze).result.model_batch_size == 1
    assert (await running.status()).queue_depth == 0


# -- the stream --------------------------------------------------------------------------------
async def test_hello_config_ack_and_unknown_kinds_reach_the_observer(running: Running) -> None:
    call = running.stub.Stream()
    await call.write(pb.ClientMessage(hello=pb.Hello(client_id="entry-1", client_version="0.1")))
    reply, pushed = await collect(call, 2)
    assert reply.WhichOneof("kind") == "hello"
    assert reply.hello.server_version and reply.hello.status.ready
    assert reply.hello.status.llm_model == "test-llm"  # fill_status
    assert pushed.verdict.verdict_id == "v1"  # session.send from on_hello, after the reply

    await call.write(pb.ClientMessage(config=pb.StreamConfig(detection_threshold=0.2)))
    await call.write(pb.ClientMessage(verdict_ack=pb.VerdictAck(verdict_ids=["v1"])))
    await call.write(pb.ClientMessage())  # an envelope of a kind this version does not know
    await call.write(frame_msg("f1", "cam", jpeg(64, 48)))
    config_reply, result = await collect(call, 2)
    assert config_reply.WhichOneof("kind") == "config_reply"
    assert list(config_reply.config_reply.config_warnings) == []
    assert all(d.confidence > 0.2 for d in result.result.detections)

    observer = running.observer
    assert observer is not None
    sessions = observer.sessions.by_client("entry-1")
    assert len(sessions) == 1 and sessions[0].client_version == "0.1"
    # A push from outside the stream's own handlers, as verdict delivery does:
    assert sessions[0].send(pb.ServerMessage(verdict=pb.Verdict(verdict_id="v2")))
    (pushed,) = await collect(call, 1)
    assert pushed.verdict.verdict_id == "v2"

    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
    kinds = [e[0] for e in observer.events]
    assert kinds == ["open", "hello", "config", "ack", "other", "closed"]
    assert ("config", pytest.approx(0.2)) in observer.events
    assert ("ack", ["v1"]) in observer.events
    assert observer.sessions.by_client("entry-1") == []


async def test_hello_with_config_applies_it_first(running: Running) -> None:
    call = running.stub.Stream()
    await call.write(pb.ClientMessage(hello=pb.Hello(
        client_id="c", config=pb.StreamConfig(detection_threshold=0.5))))
    await collect(call, 2)
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
    assert running.observer is not None
    assert [e[0] for e in running.observer.events][1:3] == ["config", "hello"]


async def test_observer_sees_each_unique_frame_once_and_sets_batch_ids(running: Running) -> None:
    image = jpeg(80, 60)
    call = running.stub.Stream()
    for frame_id in ("a", "b", "a"):  # "a" is re-sent (e.g. after a reconnect)
        await call.write(frame_msg(frame_id, "door", image))
    results = [m.result for m in await collect(call, 3)]
    await call.done_writing()
    assert [r.frame_id for r in results] == ["a", "b", "a"]
    assert all(r.batch_id == "batch-door" for r in results)
    assert results[0] == results[2]  # the stored result, not a second run

    # A new stream (the client reconnected) re-sends "b": still the stored result.
    again = running.stub.Stream()
    await again.write(frame_msg("b", "door", image))
    (replay,) = await collect(again, 1)
    await again.done_writing()
    assert replay.result == results[1]
    assert running.observer is not None
    assert running.observer.frames == ["a", "b"]
    status = await running.status()
    assert status.frames_received == 2 == status.frames_processed


async def test_an_observer_failure_gives_a_retryable_error_and_the_retry_joins(
    running: Running,
) -> None:
    """A frame the event path could not take is never answered OK (the client would drop it): it
    gets a retryable error, is not kept as the frame's result, and its re-send joins."""
    assert running.observer is not None
    running.observer.fail_frames = True
    call = running.stub.Stream()
    await call.write(frame_msg("x", "cam", jpeg(64, 48)))
    (message,) = await collect(call, 1)
    assert message.result.error.code == pb.FRAME_ERROR_CODE_INTERNAL
    assert message.result.retryable and not message.result.detections
    running.observer.fail_frames = False
    await call.write(frame_msg("x", "cam", jpeg(64, 48)))
    (again,) = await collect(call, 1)
    await call.done_writing()
    assert not again.result.HasField("error") and not again.result.retryable
    assert again.result.batch_id == "batch-cam" and again.result.detections


async def test_a_failing_observer_hook_does_not_end_the_stream(running: Running) -> None:
    assert running.observer is not None
    running.observer.fail_messages = True
    call = running.stub.Stream()
    await call.write(pb.ClientMessage(config=pb.StreamConfig(detection_threshold=0.3)))
    await call.write(frame_msg("after", "cam", jpeg(64, 48)))
    _config_reply, message = await collect(call, 2)
    await call.done_writing()
    assert message.result.frame_id == "after" and not message.result.HasField("error")
    assert all(d.confidence > 0.3 for d in message.result.detections)  # the config still applied
    assert await call.read() == grpc.aio.EOF
    assert ("config", pytest.approx(0.3)) in running.observer.events


async def test_results_are_in_order_per_camera_even_when_errors_are_quicker(
    running: Running,
) -> None:
    running.detector.infer_gate.clear()  # hold the good frames in the model
    call = running.stub.Stream()
    plan = [("1", "a", True), ("2", "a", False), ("3", "b", False), ("4", "a", True),
            ("5", "b", True), ("6", "a", False)]
    for frame_id, camera, good in plan:
        await call.write(frame_msg(frame_id, camera, jpeg(64, 48) if good else b"junk"))
    (first,) = await collect(call, 1)
    assert first.result.frame_id == "3"  # camera b's bad frame: nothing of b before it
    running.detector.infer_gate.set()
    rest = [m.result for m in await collect(call, 5)]
    await call.done_writing()
    by_camera: dict[str, list[str]] = {}
    for r in [first.result, *rest]:
        by_camera.setdefault(r.camera_id, []).append(r.frame_id)
    assert by_camera == {"a": ["1", "2", "4", "6"], "b": ["3", "5"]}


async def test_frames_enter_the_model_in_arrival_order(running: Running) -> None:
    """A large frame decodes for longer than the small ones sent after it; they still reach the
    model after it, whichever stream or RPC they came by."""
    widths = [1920, 64, 1280, 72, 80]
    call = running.stub.Stream()
    for i, width in enumerate(widths[:3]):
        await call.write(frame_msg(f"f{i}", f"cam{i}", jpeg(width, width * 3 // 4)))
    await eventually(lambda: received_at_least(running, 3))
    analyzed = [
        asyncio.ensure_future(running.stub.Analyze(pb.AnalyzeRequest(
            frame=pb.Frame(image=jpeg(width, width * 3 // 4)))))
        for width in widths[3:]
    ]
    await collect(call, 3)
    await asyncio.gather(*analyzed)
    await call.done_writing()
    assert running.detector.widths == widths


async def test_a_stream_with_too_many_frames_in_flight_is_not_read(gated: GatedDetector) -> None:
    r = await start_server(gated, max_inflight_per_stream=2)
    try:
        gated.infer_gate.clear()
        call = r.stub.Stream()
        for i in range(5):
            await call.write(frame_msg(f"f{i}", "cam", jpeg(64, 48)))
        await eventually(lambda: received_at_least(r, 2))
        await asyncio.sleep(0.2)  # time in which a third frame would have been read
        assert (await r.status()).frames_received == 2  # the rest wait in the client/transport
        gated.infer_gate.set()
        assert [m.result.frame_id for m in await collect(call, 5)] == [f"f{i}" for i in range(5)]
        await call.done_writing()
    finally:
        gated.infer_gate.set()
        await r.channel.close()
        await r.server.shutdown(grace_s=5)


async def test_shutdown_answers_in_flight_frames_then_ends_streams(gated: GatedDetector) -> None:
    r = await start_server(gated, max_delay_ms=3_600_000, max_batch=64)
    try:
        call = r.stub.Stream()
        for i in range(3):
            await call.write(frame_msg(f"f{i}", "cam", jpeg(64, 48)))
        await eventually(lambda: queue_depth_at_least(r, 3))  # waiting for an hour-long delay
        assert gated.batches == []  # nothing ran: the batch delay is an hour
        shutdown = asyncio.create_task(r.server.shutdown(grace_s=10))
        results = [m.result for m in await collect(call, 3)]
        assert [x.frame_id for x in results] == ["f0", "f1", "f2"]
        assert not any(x.HasField("error") for x in results)
        assert sum(gated.batches) == 3  # flushed without waiting for the delay
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        await shutdown
    finally:
        await r.channel.close()


async def test_frames_after_shutdown_began_get_unavailable(gated: GatedDetector) -> None:
    r = await start_server(gated)
    try:
        r.server.pipeline.stop_accepting()
        reply = await r.stub.Analyze(pb.AnalyzeRequest(frame=pb.Frame(image=jpeg(64, 48))))
        assert reply.result.error.code == pb.FRAME_ERROR_CODE_UNAVAILABLE
    finally:
        await r.channel.close()
        await r.server.shutdown(grace_s=5)


async def test_stream_frame_needs_ids_but_analyze_does_not(running: Running) -> None:
    call = running.stub.Stream()
    await call.write(frame_msg("", "cam", jpeg(64, 48)))
    (message,) = await collect(call, 1)
    await call.done_writing()
    assert message.result.error.code == pb.FRAME_ERROR_CODE_INVALID_REQUEST
    reply = await running.stub.Analyze(pb.AnalyzeRequest(frame=pb.Frame(image=jpeg(64, 48))))
    assert not reply.result.HasField("error")


def test_settings_path_default_is_relative() -> None:
    assert Settings().data_dir == Path("sidecar-data")
