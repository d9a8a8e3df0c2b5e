"""A failing or hostile sidecar as attacker: a store that cannot keep frames, a frame that kills
every session, results with impossible boxes, limits and capacity it advertises. An in-process
server scripts the answers (a real sidecar gives them too rarely to test against)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import pytest
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from PIL import Image

from custom_components.secmon.const import (
    DOMAIN,
    EVENT_SECURITY,
    MAX_SESSION_BREAKS,
)
from custom_components.secmon.coordinator import SecmonCoordinator
from custom_components.secmon.link import stream as stream_module
from custom_components.secmon.link.convert import MAX_BOXES
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.link.stream import BACKOFF_MIN
from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.event_search import get_verdict
from custom_components.secmon.storage.frame_queue import FrameQueue, QueuedFrame
from custom_components.secmon.verdicts.records import MAX_REASONING_CHARS, MAX_SUMMARY_CHARS

from ..clips import write_test_clip
from ..helpers import image_bytes, state_of, wait_for, write_image
from ..sidecar_process import free_port
from .hostile_sidecar import (
    Answer,
    HostileSidecar,
    ok_result,
    set_up_entry,
    start_hostile_sidecar,
    stop,
)

STORAGE_UNAVAILABLE = 9
_RESULT_FIELDS = secmon_pb2.FrameResult.DESCRIPTOR.fields_by_name
_STATUS_FIELDS = secmon_pb2.SidecarStatus.DESCRIPTOR.fields_by_name
_HELLO_FIELDS = secmon_pb2.HelloReply.DESCRIPTOR.fields_by_name

Start = Callable[..., object]


@pytest.fixture
async def hostile_entry(
    hass: HomeAssistant, config_dir: Path, camera_root: Path
) -> AsyncGenerator[Start]:
    """Start a scripted sidecar and an entry pointing at it."""
    servers = []

    async def start(
        answer: Answer,
        status: secmon_pb2.SidecarStatus | None = None,
        max_frames_in_flight: int = 0,
    ) -> tuple[HostileSidecar, SecmonCoordinator]:
        port = free_port()
        servicer = HostileSidecar(answer, status)
        if max_frames_in_flight:
            setattr(servicer.hello_reply, "max_frames_in_flight", max_frames_in_flight)  # noqa: B010
        servers.append(await start_hostile_sidecar(port, servicer))
        return servicer, await set_up_entry(hass, port, camera_root)

    yield start
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    for server in servers:
        await stop(server)


def _error(frame: secmon_pb2.Frame, code: int, **extra: object) -> secmon_pb2.FrameResult:
    return secmon_pb2.FrameResult(
        frame_id=frame.frame_id,
        camera_id=frame.camera_id,
        error=secmon_pb2.FrameError(code=code, message="scripted"),  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


async def test_storage_unavailable_keeps_the_frame_until_the_sidecar_takes_it(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """STORAGE_UNAVAILABLE (the sidecar's disk is full): the frame stays queued and goes again
    with backoff until it is taken; it is never counted failed, nothing is dropped."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult:
        return _error(frame, STORAGE_UNAVAILABLE) if seen <= 3 else ok_result(frame)

    servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(1))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "taken at last")
    assert max(servicer.seen.values()) == 4
    assert coordinator.counters["frames_failed"] == 0
    assert coordinator.queue_depth == 0


async def test_a_frame_that_keeps_failing_is_given_up_after_its_attempts(
    hass: HomeAssistant,
    camera_root: Path,
    hostile_entry: Start,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """INTERNAL every time: the frame is sent again after a backoff, and after its last attempt
    it leaves the queue counted as failed, with one warning, so it cannot block the queue."""
    monkeypatch.setattr(stream_module, "MAX_FRAME_ATTEMPTS", 2)

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult:
        return _error(frame, secmon_pb2.FRAME_ERROR_CODE_INTERNAL)

    servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(7))
    await wait_for(hass, lambda: coordinator.counters["frames_failed"] == 1, "given up")
    assert list(servicer.seen.values()) == [2]
    assert coordinator.counters["frames_processed"] == 0
    assert coordinator.queue_depth == 0
    assert caplog.text.count("times (scripted); giving up on it") == 1


@pytest.mark.skipif("retryable" not in _RESULT_FIELDS, reason="FrameResult.retryable not in proto")
async def test_retryable_flag_keeps_any_error_queued(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """An error code this version does not know, flagged retryable: kept, sent again."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult:
        if seen <= 2:
            return _error(frame, 15, retryable=True)
        return ok_result(frame)

    servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(2))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "taken at last")
    assert max(servicer.seen.values()) == 3
    assert coordinator.counters["frames_failed"] == 0


async def test_poison_frame_is_set_aside_and_the_queue_moves_on(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """A frame that ends every session it is sent on is set aside after MAX_SESSION_BREAKS
    sessions where it was alone in flight (counted); the frames queued behind it go through."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult | None:
        return None if frame.source_path.endswith("poison.jpg") else ok_result(frame)

    servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    folder = camera_root / "Front Door"
    write_image(folder / "poison.jpg", image_bytes(3), mtime=1_000.0)
    await coordinator.ingestor.async_wait_idle()
    for n in range(3):
        write_image(folder / f"ok{n}.jpg", image_bytes(10 + n), mtime=2_000.0 + n)
    await wait_for(
        hass,
        lambda: (
            coordinator.counters["frames_processed"] == 3
            and coordinator.counters["frames_set_aside"] == 1
        ),
        "poison set aside, the rest through",
    )
    poison = [fid for fid, _ in servicer.seen.items() if servicer.seen[fid] >= MAX_SESSION_BREAKS]
    assert len(poison) == 1
    assert coordinator.counters["frames_failed"] == 1
    assert coordinator.queue_depth == 0


async def test_sessions_broken_by_a_frame_back_off_until_it_is_set_aside(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """A session that connects and is then broken by a frame is not healthy: the wait before the
    next one doubles each time (no tight reconnect loop) until the frame is set aside."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult | None:
        return None

    servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    write_image(camera_root / "Front Door" / "poison.jpg", image_bytes(3))
    await wait_for(hass, lambda: coordinator.counters["frames_set_aside"] == 1, "set aside")
    assert servicer.sessions >= MAX_SESSION_BREAKS + 1
    gaps = [b - a for a, b in zip(servicer.started, servicer.started[1:], strict=False)]
    # asyncio.sleep never returns early: these lower bounds hold however busy the machine is.
    for n, gap in enumerate(gaps[:MAX_SESSION_BREAKS]):
        assert gap >= BACKOFF_MIN * 2**n, gaps


async def test_impossible_boxes_do_not_break_the_camera_image(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """Detections with NaN/inf coordinates: the frame is shown, those boxes are not drawn."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult:
        result = ok_result(frame)
        for value in (float("nan"), float("inf"), -float("inf")):
            result.detections.add(
                label="person",
                confidence=0.9,
                box=secmon_pb2.Box(x_min=value, y_min=1, x_max=value, y_max=5),
            )
        result.detections.add(
            label="person", confidence=0.9, box=secmon_pb2.Box(x_min=1, y_min=1, x_max=50, y_max=50)
        )
        return result

    _servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(4))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "the frame")
    assert len(coordinator.cameras["front_door"].boxes) == 1
    assert await coordinator.async_camera_image("front_door")


async def test_impossible_boxes_are_left_out_of_analyze_image(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """`secmon.analyze_image` answers with the boxes the camera image draws (NaN ones left out)."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult:
        result = ok_result(frame)
        result.detections.add(
            label="person",
            confidence=0.9,
            box=secmon_pb2.Box(x_min=float("nan"), y_min=1, x_max=9, y_max=9),
        )
        result.detections.add(
            label="car", confidence=0.8, box=secmon_pb2.Box(x_min=1, y_min=2, x_max=50, y_max=60)
        )
        return result

    await hostile_entry(answer)
    path = write_image(camera_root / "probe.jpg", image_bytes(6))
    response = await hass.services.async_call(
        DOMAIN, "analyze_image", {"file_path": str(path)}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["detections"] == [
        {
            "label": "car",
            "confidence": 0.8,
            "box": {"x_min": 1.0, "y_min": 2.0, "x_max": 50.0, "y_max": 60.0},
        }
    ]


async def test_results_for_frames_never_sent_are_ignored(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """A result naming another frame id (or another camera) changes nothing it should not."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> list[secmon_pb2.FrameResult]:
        bogus = secmon_pb2.FrameResult(frame_id="not-a-frame", camera_id="other_camera")
        bogus.detections.add(label="person", confidence=1.0)
        return [bogus, ok_result(frame)]

    _servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(5))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "the frame")
    assert "other_camera" not in coordinator.cameras
    assert coordinator.cameras["front_door"].object_count == 0
    assert coordinator.queue_depth == 0


@pytest.mark.skipif("max_frame_bytes" not in _STATUS_FIELDS, reason="no frame limits in status")
async def test_frames_over_the_sidecars_limits_are_answered_here(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """The sidecar's advertised limits apply before sending: too many bytes or pixels never
    leave HA (refused and counted), smaller frames flow."""
    status = secmon_pb2.SidecarStatus(ready=True, max_frame_bytes=20_000, max_pixels=100_000)
    servicer, coordinator = await hostile_entry(lambda f, n: ok_result(f), status)  # type: ignore[misc]
    await wait_for(hass, lambda: coordinator.sidecar.status is not None, "status")
    assert coordinator.max_frame_bytes == 20_000
    assert coordinator.max_pixels == 100_000
    folder = camera_root / "Front Door"
    noise = Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3))
    big = io.BytesIO()
    noise.save(big, format="PNG")
    assert len(big.getvalue()) > 20_000
    write_image(folder / "big.png", big.getvalue())
    write_image(folder / "wide.jpg", image_bytes(7, size=(400, 300)))
    write_image(folder / "small.jpg", image_bytes(8, size=(160, 120)))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "small frame")
    await coordinator.ingestor.async_wait_idle()
    assert coordinator.counters["files_refused_too_large"] == 1
    assert coordinator.counters["frames_skipped"] == 1
    assert len(servicer.seen) == 1


@pytest.mark.skipif("max_pixels" not in _STATUS_FIELDS, reason="no frame limits in status")
async def test_a_clip_over_the_sidecars_pixel_limit_is_not_decoded(
    hass: HomeAssistant, camera_root: Path, tmp_path: Path, hostile_entry: Start
) -> None:
    """A video clip whose pictures have more pixels than the sidecar takes is refused from its
    stream header (a few KB of clip can declare pictures of hundreds of MB), counted as skipped;
    nothing of it is sent, and a clip within the limit goes through."""
    status = secmon_pb2.SidecarStatus(ready=True, max_pixels=100_000)
    servicer, coordinator = await hostile_entry(lambda f, n: ok_result(f), status)  # type: ignore[misc]
    await wait_for(hass, lambda: coordinator.max_pixels == 100_000, "limit known")
    folder = camera_root / "Front Door"
    for name, size in (("wide.mp4", (400, 300)), ("small.mp4", (160, 120))):
        written = tmp_path / name
        write_test_clip(written, frames=5, fps=5, codec="mpeg4", size=size)
        os.replace(written, folder / name)
        await coordinator.ingestor.async_wait_idle()
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] >= 1, "small clip")
    await wait_for(hass, lambda: coordinator.counters["frames_skipped"] == 1, "wide skipped")
    await wait_for(hass, lambda: coordinator.queue_depth == 0, "queue empty")
    assert coordinator.counters["frames_processed"] == len(servicer.seen)
    assert all(f.source_path.endswith("small.mp4") for f in servicer.frames)


@pytest.mark.skipif("max_frames_in_flight" not in _HELLO_FIELDS, reason="no capacity in proto")
async def test_frames_in_flight_follow_the_sidecars_capacity(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """HelloReply.max_frames_in_flight lowers the frames in flight (never above our own)."""
    _servicer, coordinator = await hostile_entry(  # type: ignore[misc]
        lambda f, n: ok_result(f), max_frames_in_flight=2
    )
    await wait_for(hass, lambda: coordinator.stream.sessions == 1, "session")
    await wait_for(hass, lambda: coordinator.stream.max_in_flight == 2, "capacity applied")


@pytest.mark.skipif("storage_error" not in _STATUS_FIELDS, reason="no storage_error in status")
async def test_sidecar_storage_problem_shows_in_home_assistant(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """The sidecar reports that its disk is full: a problem sensor turns on (and off again)."""
    status = secmon_pb2.SidecarStatus(ready=True, storage_error="database or disk is full")
    servicer, coordinator = await hostile_entry(lambda f, n: ok_result(f), status)  # type: ignore[misc]
    entity_id = "binary_sensor.secmon_sidecar_storage_problem"
    await wait_for(hass, lambda: state_of(hass, entity_id) == STATE_ON, "problem on")
    servicer.status.storage_error = ""
    coordinator.async_on_status(servicer.status)
    await hass.async_block_till_done()
    assert state_of(hass, entity_id) == STATE_OFF


async def test_queued_frame_over_the_limit_is_answered_here(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """A frame already queued when the sidecar's (smaller) limit became known never leaves HA:
    answered TOO_LARGE here, counted, off the queue; the one behind it is sent."""
    status = secmon_pb2.SidecarStatus(ready=True, max_frame_bytes=20_000)
    servicer, coordinator = await hostile_entry(lambda f, n: ok_result(f), status)  # type: ignore[misc]
    await wait_for(hass, lambda: coordinator.stream.max_frame_bytes == 20_000, "limit known")
    big = QueuedFrame(
        frame_id="f" * 32,
        camera_id="front_door",
        camera_name="Front Door",
        path=str(camera_root / "Front Door" / "old.jpg"),
        content_type="image/jpeg",
        captured_at=1.0,
        image=b"\xff" * 30_000,
    )
    await hass.async_add_executor_job(coordinator.queue.enqueue, big, "big-hash")
    write_image(camera_root / "Front Door" / "next.jpg", image_bytes(9))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "next frame")
    await wait_for(hass, lambda: coordinator.counters["frames_too_large"] == 1, "too large")
    assert "f" * 32 not in servicer.seen
    assert coordinator.queue_depth == 0


def test_a_full_queue_never_drops_frames_in_flight(tmp_path: Path) -> None:
    """A sidecar slower than the cameras for good: the full queue drops the oldest frames not
    yet sent, never those whose result is on the way (dropping those, every result would arrive
    for a frame already gone and nothing would ever be analysed)."""
    database = Database(tmp_path / "q.db")
    database.open()
    queue = FrameQueue(database, 3)

    def frame(n: int) -> QueuedFrame:
        return QueuedFrame(
            frame_id=f"f{n}",
            camera_id="cam",
            camera_name="Cam",
            path=f"/x/{n}.jpg",
            content_type="image/jpeg",
            captured_at=float(n),
            image=b"x",
        )

    try:
        for n in range(3):
            queue.enqueue(frame(n), f"h{n}")
        outcome = queue.enqueue(frame(3), "h3", in_flight={"f0", "f1"})
        assert outcome.dropped == ("f2",)
        assert queue.complete("f0", b"") is not None
        assert queue.complete("f1", b"") is not None
    finally:
        database.close()


async def test_a_result_being_stored_when_the_session_breaks_is_still_applied(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session breaks while a result is being written to a slow disk: the write finishes,
    and the result is counted and shown, not stored and then forgotten."""
    release = threading.Event()
    writing = threading.Event()
    complete = FrameQueue.complete

    def slow_complete(self: FrameQueue, frame_id: str, result: bytes, **kw: bool) -> object:
        writing.set()
        release.wait(60)
        return complete(self, frame_id, result, **kw)

    monkeypatch.setattr(FrameQueue, "complete", slow_complete)

    def answer(frame: secmon_pb2.Frame, seen: int) -> list[secmon_pb2.FrameResult] | None:
        if not frame.source_path.endswith("first.jpg"):
            return None  # any other frame ends the session
        if seen > 1:
            return []  # answered once only: that one answer must count
        result = ok_result(frame)
        result.detections.add(
            label="person", confidence=0.9, box=secmon_pb2.Box(x_min=1, y_min=1, x_max=50, y_max=50)
        )
        return [result]

    _servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    folder = camera_root / "Front Door"
    write_image(folder / "first.jpg", image_bytes(1), mtime=1_000.0)
    await _poll(writing.is_set, "the result being stored")
    attempts = coordinator.stream.attempts
    # Newer frames go out on the session, end it, and find it ended, while the first result is
    # still being stored.
    for n in range(2, 40):
        write_image(folder / f"later-{n}.jpg", image_bytes(n), mtime=1_000.0 + n)
        with contextlib.suppress(AssertionError):
            await _poll(lambda: coordinator.stream.attempts > attempts, "", limit=2)
        if coordinator.stream.attempts > attempts:
            break
    assert coordinator.stream.attempts > attempts
    release.set()
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "the result")
    assert len(coordinator.cameras["front_door"].boxes) == 1


async def _poll(predicate: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """`wait_for` without `async_block_till_done`, which would wait for the blocked write."""
    for _ in range(int(limit / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_frame_stays_in_flight_until_its_result_is_stored(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a result is being written to a slow disk its frame is still in flight: frames sent
    meanwhile do not include it again (it would be analysed twice)."""
    release = threading.Event()
    writing = threading.Event()
    complete = FrameQueue.complete

    def slow_complete(self: FrameQueue, frame_id: str, result: bytes, **kw: bool) -> object:
        writing.set()
        release.wait(60)
        return complete(self, frame_id, result, **kw)

    monkeypatch.setattr(FrameQueue, "complete", slow_complete)
    servicer, coordinator = await hostile_entry(lambda f, n: ok_result(f))  # type: ignore[misc]
    folder = camera_root / "Front Door"
    try:
        write_image(folder / "first.jpg", image_bytes(1), mtime=1_000.0)
        await _poll(writing.is_set, "the first result being stored")
        (first,) = servicer.seen
        assert first in coordinator.stream.in_flight_ids
        # A new frame wakes the sender while the first result is still being stored.
        write_image(folder / "second.jpg", image_bytes(2), mtime=1_001.0)
        await _poll(lambda: len(servicer.seen) == 2, "the second frame sent")
        assert first in coordinator.stream.in_flight_ids
    finally:
        release.set()
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 2, "both stored")
    assert servicer.seen[first] == 1
    assert all(count == 1 for count in servicer.seen.values())


async def test_an_overlong_model_name_in_the_status_is_cut_to_a_state(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """Home Assistant refuses states over 255 characters: a sidecar reporting a 10,000-character
    model name shows its start, and the status's other sensors still update."""
    status = secmon_pb2.SidecarStatus(ready=True, llm_model="m" * 10_000, open_batches=3)
    _servicer, coordinator = await hostile_entry(lambda f, n: ok_result(f), status)  # type: ignore[misc]
    await wait_for(hass, lambda: coordinator.sidecar.status is not None, "status")
    await wait_for(
        hass,
        lambda: (state_of(hass, "sensor.secmon_sidecar_llm_model") or "").startswith("m"),
        "model",
    )
    model = state_of(hass, "sensor.secmon_sidecar_llm_model")
    assert model is not None and 0 < len(model) <= 255
    assert state_of(hass, "sensor.secmon_sidecar_open_batches") == "3"


async def test_an_overlong_verdict_text_is_cut_before_it_is_stored_or_shown(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """A verdict whose summary and reasoning are megabytes long (the sidecar's own are at most
    200 and 600 characters) is stored, shown and announced with both cut to their bounds."""
    _servicer, coordinator = await hostile_entry(lambda f, n: ok_result(f))  # type: ignore[misc]
    events: list[dict[str, object]] = []
    hass.bus.async_listen(EVENT_SECURITY, lambda event: events.append(dict(event.data)))
    message = secmon_pb2.Verdict(
        verdict_id="v-long",
        event_id="e-long",
        camera_id="front_door",
        camera_name="Front Door",
        risk_score=80,
        summary="s" * 1_000_000,
        reasoning="r" * 1_000_000,
    )
    message.started_at.FromDatetime(dt_util.utcnow())
    message.created_at.FromDatetime(dt_util.utcnow())
    assert await coordinator.async_on_verdict(message)
    await hass.async_block_till_done()
    state = hass.states.get("sensor.front_door_risk_score")
    assert state is not None
    assert 0 < len(state.attributes["summary"]) <= MAX_SUMMARY_CHARS
    stored = await hass.async_add_executor_job(get_verdict, coordinator.database, "v-long")
    assert stored is not None
    assert len(stored.message.summary) <= MAX_SUMMARY_CHARS
    assert len(stored.message.reasoning) <= MAX_REASONING_CHARS
    assert events and all(len(str(e.get("summary", ""))) <= MAX_SUMMARY_CHARS for e in events)


async def test_a_result_with_thousands_of_boxes_draws_the_most_confident(
    hass: HomeAssistant, camera_root: Path, hostile_entry: Start
) -> None:
    """10,000 detections in one result: the camera keeps and draws the MAX_BOXES most confident
    ones, so its picture stays cheap to draw."""

    def answer(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult:
        result = ok_result(frame)
        for n in range(10_000):
            result.detections.add(
                label="person",
                confidence=n / 10_000,
                box=secmon_pb2.Box(x_min=1, y_min=1, x_max=20, y_max=20),
            )
        return result

    _servicer, coordinator = await hostile_entry(answer)  # type: ignore[misc]
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(6))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "the frame")
    boxes = coordinator.cameras["front_door"].boxes
    assert len(boxes) == MAX_BOXES
    assert min(b.confidence for b in boxes) >= (10_000 - MAX_BOXES) / 10_000 - 1e-6
    assert await coordinator.async_camera_image("front_door")
