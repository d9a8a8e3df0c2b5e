"""Video clips: sampled by PyAV into frames with their true capture times, through the real
watcher, the durable queue and a real sidecar; bad clips counted; growing clips not read early."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import os
import sqlite3
import time
from collections.abc import Generator
from contextlib import closing
from pathlib import Path

import av
import pytest
from homeassistant.core import Event, HomeAssistant, callback
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_CLIP_MAX_FRAMES,
    CONF_CLIP_RATE,
    DOMAIN,
    EVENT_SECURITY,
)
from custom_components.secmon.ingest import ingestor as ingestor_mod
from custom_components.secmon.ingest.files import REASON_SPECIAL, REASON_TOO_LARGE, RefusedFileError
from custom_components.secmon.ingest.ingestor import frame_id_for
from custom_components.secmon.ingest.video import (
    InvalidClipError,
    clip_frame_hash,
    frame_at,
    sample_clip,
)
from custom_components.secmon.settings import database_path
from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.frame_queue import FrameQueue, QueuedFrame

from .clips import write_test_clip
from .helpers import image_bytes, wait_for, write_image
from .sidecar_process import SidecarProcess
from .verdict_helpers import verdict_options

_names = itertools.count(1)
CREATED = "2026-11-20T10:00:00.000000Z"
CREATED_AT = 1_795_168_800.0  # CREATED as epoch seconds


def _allow_all(_path: str) -> bool:
    return True


def _level(jpeg: bytes) -> float:
    """The mean grey level of a JPEG (the test clips' frame i is a flat grey of i * 20)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        pixels = list(image.convert("L").resize((8, 6)).getdata())
    return sum(pixels) / len(pixels)


def _frame_times(path: Path) -> list[tuple[float, bool]]:
    """Every frame's time and whether it is a key frame, decoded independently."""
    with av.open(str(path)) as container:
        return [(float(f.time), bool(f.key_frame)) for f in container.decode(video=0)]


# -- sampling, on files -----------------------------------------------------------------------

CLIP_KINDS = [("mp4", "mpeg4"), ("mkv", "mpeg4"), ("avi", "mjpeg"), ("mp4", "libx264")]


@pytest.mark.parametrize(("suffix", "codec"), CLIP_KINDS, ids=[f"{s}-{c}" for s, c in CLIP_KINDS])
def test_a_clip_is_sampled_at_the_rate_with_capture_times(
    tmp_path: Path, suffix: str, codec: str
) -> None:
    """3 s at 10 frames/s sampled at 2/s: one frame per half second, a key frame where the half
    second has one; captured from the container's creation time when it has one, else the file's
    mtime minus the duration."""
    path = tmp_path / f"alarm.{suffix}"
    write_test_clip(path, frames=30, fps=10, codec=codec, creation_time=CREATED, gop=7)
    os.utime(path, (CREATED_AT + 100, CREATED_AT + 100))
    clip = sample_clip(path, _allow_all, 10**8, rate=2.0, max_frames=20)
    assert len(clip.frames) == 6
    slots = [int(f.offset // 0.5) for f in clip.frames]
    assert slots == [0, 1, 2, 3, 4, 5]
    # Every half second that holds a key frame gives a key frame; the others their first frame.
    key_slots = {int(t // 0.5) for t, key in _frame_times(path) if key}
    assert {int(f.offset // 0.5) for f in clip.frames if f.key_frame} == key_slots
    for sampled in clip.frames:
        if not sampled.key_frame:
            assert sampled.offset == pytest.approx(int(sampled.offset // 0.5) * 0.5)
    for sampled in clip.frames:
        index = round(sampled.offset * 10)
        assert abs(_level(sampled.jpeg) - (index * 20) % 256) < 12
    assert clip.duration == pytest.approx(3.0, abs=0.15)
    if clip.start_source == "container":
        assert clip.started_at == CREATED_AT
    else:
        assert clip.started_at == pytest.approx(CREATED_AT + 100 - clip.duration)


def test_a_long_clip_is_bounded(tmp_path: Path) -> None:
    """40 s at 2/s would be 80 frames: sampled more sparsely, at most max_frames, spread over it."""
    path = tmp_path / "long.mkv"
    write_test_clip(path, frames=200, fps=5, codec="mpeg4")
    clip = sample_clip(path, _allow_all, 10**8, rate=2.0, max_frames=10)
    assert len(clip.frames) == 10
    assert clip.frames[-1].offset > 30


@pytest.mark.parametrize("damage", ["empty", "truncated", "junk", "no_video"])
def test_clips_that_cannot_be_decoded_are_invalid(tmp_path: Path, damage: str) -> None:
    good = tmp_path / "good.mp4"
    write_test_clip(good, frames=20, codec="mpeg4")
    path = tmp_path / f"{damage}.mp4"
    data = good.read_bytes()
    path.write_bytes(
        {
            "empty": b"",
            "truncated": data[: len(data) // 2],
            "junk": os.urandom(4000),
            "no_video": b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(200),
        }[damage]
    )
    with pytest.raises(InvalidClipError):
        sample_clip(path, _allow_all, 10**8, rate=2.0, max_frames=20)


def test_clips_that_must_not_be_read_are_refused(tmp_path: Path) -> None:
    """A FIFO is refused without blocking, a clip over the cap before it is read, and the
    reasons name the path as the camera wrote it, not where it resolves."""
    os.mkfifo(tmp_path / "pipe.mp4")
    write_test_clip(tmp_path / "big.mp4", frames=20, codec="mpeg4")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "big.mp4")
    cases = [
        ("pipe.mp4", REASON_SPECIAL, "is not a regular file"),
        ("link.mp4", REASON_TOO_LARGE, "bytes, more than 100"),
    ]
    for name, reason, detail in cases:
        with pytest.raises(RefusedFileError) as refused:
            sample_clip(tmp_path / name, _allow_all, 100, rate=2.0, max_frames=20)
        assert refused.value.reason == reason
        assert str(refused.value).startswith(f"{tmp_path / name} ")
        assert detail in str(refused.value)


def test_a_clip_frame_snapshot_is_decoded_from_the_clip(tmp_path: Path) -> None:
    """Once a clip frame is no longer pending nor a camera's latest, its image comes from the
    clip at its offset."""
    clip_path = tmp_path / "alarm.mp4"
    write_test_clip(clip_path, frames=30, fps=10, codec="mpeg4")
    database = Database(tmp_path / "q.db")
    database.open()
    queue = FrameQueue(database, 100)
    try:
        for n, offset in enumerate((1.0, 2.0, 2.5)):
            frame = QueuedFrame(
                frame_id=f"f{n}",
                camera_id="cam",
                camera_name="Cam",
                path=str(clip_path),
                content_type="image/jpeg",
                captured_at=CREATED_AT + offset,
                image=b"\xff\xd8 stand-in",
                clip_offset=offset,
            )
            assert queue.enqueue(frame, f"h{n}").accepted
            assert queue.complete(frame.frame_id, b"r") is not None
        image = queue.frame_image("f0")
        assert image is not None
        assert abs(_level(image) - 200) < 12  # frame 10 (1.0 s): grey 200
        assert queue.frame_image("f2") == b"\xff\xd8 stand-in"  # the camera's latest
        # Several at once (an event's clip): the clip is decoded once for all of them.
        images = queue.frame_images(["f0", "f1", "f2", "unknown"])
        assert set(images) == {"f0", "f1", "f2"}
        assert abs(_level(images["f0"]) - 200) < 12
        assert abs(_level(images["f1"]) - 144) < 12  # frame 20: grey 400 mod 256
        assert images["f2"] == b"\xff\xd8 stand-in"
        assert frame_at(tmp_path / "gone.mp4", 1.0) is None
        # Past the end: the last frame (29: grey 580 mod 256 = 68).
        assert abs(_level(frame_at(clip_path, 9.0) or b"") - 68) < 12
    finally:
        database.close()


# -- through the watcher, the queue and a real sidecar -----------------------------------------


@pytest.fixture(scope="module")
def sidecar() -> Generator[SidecarProcess]:
    """Batches close 1 s after the last detection."""
    process = SidecarProcess(extra_args=("--batch-idle-s", "1", "--batch-window-s", "5"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def camera_name(camera_root: Path) -> str:
    name = f"Driveway {next(_names)}"
    (camera_root / name).mkdir()
    return name


@pytest.fixture
async def entry(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, sidecar: SidecarProcess
) -> MockConfigEntry:
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)},
        options={**verdict_options(), CONF_CLIP_RATE: 2.0, CONF_CLIP_MAX_FRAMES: 20},
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


@pytest.fixture
def monkeypatch_clip_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clips over 50 kB are refused."""
    monkeypatch.setattr(ingestor_mod, "MAX_CLIP_BYTES", 50_000)


def _camera_id(name: str) -> str:
    return name.lower().replace(" ", "_")


def _stored_capture_times(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, float]:
    path = database_path(hass, entry.entry_id)
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT frame_id, captured_at FROM results").fetchall()
    return {str(r[0]): float(r[1]) for r in rows}


def _write_atomically(path: Path, data: bytes) -> None:
    write_image(path, data)


async def test_clip_frames_reach_the_sidecar_and_the_verdict_names_the_clip(
    hass: HomeAssistant, entry: MockConfigEntry, camera_root: Path, camera_name: str, tmp_path: Path
) -> None:
    """A video-only camera: the clip's frames are analysed with capture times from the
    container's creation time plus their offsets, the event's verdict lists the clip, and the
    same clip uploaded again under another name adds no frame."""
    events: list[Event] = []

    @callback
    def record(event: Event) -> None:
        if event.data["camera_id"] == _camera_id(camera_name):
            events.append(event)

    unsubscribe = hass.bus.async_listen(EVENT_SECURITY, record)
    source = tmp_path / "made.mp4"
    write_test_clip(source, frames=30, fps=10, codec="mpeg4", creation_time=CREATED, gop=10)
    data = source.read_bytes()
    clip = sample_clip(source, _allow_all, 10**8, rate=2.0, max_frames=20)
    camera_id = _camera_id(camera_name)
    expected = {
        frame_id_for(camera_id, clip_frame_hash(clip.sha256, f.offset)): CREATED_AT + f.offset
        for f in clip.frames
    }
    assert len(expected) == 6

    _write_atomically(camera_root / camera_name / "alarm_20261120.mp4", data)
    queue = entry.runtime_data.queue
    await wait_for(
        hass, lambda: all(queue.result(i) is not None for i in expected), "clip frame results"
    )
    stored = await hass.async_add_executor_job(_stored_capture_times, hass, entry)
    assert {i: stored[i] for i in expected} == pytest.approx(expected)

    await wait_for(hass, lambda: bool(events), "the clip's event")
    unsubscribe()
    assert events[0].data["source_clips"] == [f"{camera_name}/alarm_20261120.mp4"]
    # Its thumbnail was drawn on a frame of the clip.
    assert "thumbnail_url" in events[0].data
    # The closed event's own clip was made from the clip's frames.
    assert "clip_url" in events[0].data

    duplicates_before = queue.counters().get("duplicates", 0)
    _write_atomically(camera_root / camera_name / "alarm_copy.mp4", data)
    await wait_for(
        hass,
        lambda: queue.counters().get("duplicates", 0) == duplicates_before + len(expected),
        "the copy's frames counted as duplicates",
    )
    assert queue.pending_count() == 0


@pytest.mark.usefixtures("monkeypatch_clip_cap")
async def test_bad_clips_are_counted_and_the_watcher_goes_on(
    hass: HomeAssistant, entry: MockConfigEntry, camera_root: Path, camera_name: str, tmp_path: Path
) -> None:
    """Empty, truncated, junk and unsupported clips are skipped (counted once each), a clip over
    the size cap is refused, and an image dropped after them is analysed."""
    folder = camera_root / camera_name
    good = tmp_path / "good.mp4"
    write_test_clip(good, frames=20, codec="mpeg4")
    data = good.read_bytes()
    huge = tmp_path / "huge.avi"
    write_test_clip(huge, frames=40, codec="mjpeg", size=(320, 240))
    assert huge.stat().st_size > 50_000 > len(data)
    queue = entry.runtime_data.queue
    before = queue.counters()
    _write_atomically(folder / "empty.mp4", b"")
    _write_atomically(folder / "truncated.mp4", data[: len(data) // 2])
    _write_atomically(folder / "junk.mkv", os.urandom(5000))
    _write_atomically(folder / "sound.avi", b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(200))
    _write_atomically(folder / "huge.avi", huge.read_bytes())
    image = image_bytes(4242)
    _write_atomically(folder / "after.jpg", image)
    image_id = frame_id_for(_camera_id(camera_name), hashlib.sha256(image).hexdigest())
    await wait_for(hass, lambda: queue.result(image_id) is not None, "the image after bad clips")

    def grew(name: str) -> int:
        return queue.counters().get(name, 0) - before.get(name, 0)

    await wait_for(
        hass,
        lambda: grew("frames_skipped") == 4 and grew("files_refused_too_large") == 1,
        "bad clips counted",
    )
    assert queue.pending_count() == 0


async def test_a_clip_still_being_written_is_not_read_early(
    hass: HomeAssistant, entry: MockConfigEntry, camera_root: Path, camera_name: str, tmp_path: Path
) -> None:
    """An upload that is still growing (half written, the writer pausing) is not read; once
    finished, its frames arrive and nothing was counted as a bad clip."""
    source = tmp_path / "slow.mkv"
    write_test_clip(source, frames=30, codec="mpeg4")
    data = source.read_bytes()
    clip = sample_clip(source, _allow_all, 10**8, rate=2.0, max_frames=20)
    ids = [
        frame_id_for(_camera_id(camera_name), clip_frame_hash(clip.sha256, f.offset))
        for f in clip.frames
    ]
    queue = entry.runtime_data.queue
    before = queue.counters()
    target = camera_root / camera_name / "slow.mkv"
    half = len(data) // 2
    with target.open("wb") as upload:
        for start in range(0, half, 500):
            upload.write(data[start : min(start + 500, half)])
            upload.flush()
            await hass.async_block_till_done()
        # The writer pauses well past the debounce (0.2 s) with the file open.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            await hass.async_block_till_done()
            await asyncio.sleep(0.1)
        assert not any(queue.result(i) for i in ids)
        assert queue.counters().get("frames_skipped", 0) == before.get("frames_skipped", 0)
        upload.write(data[half:])
    await wait_for(hass, lambda: all(queue.result(i) is not None for i in ids), "slow clip")
    assert queue.counters().get("frames_skipped", 0) == before.get("frames_skipped", 0)
