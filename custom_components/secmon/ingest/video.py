"""Video clips from camera folders: sampled into JPEG frames with their true capture times.

Decoding happens here, in HA's executor, with PyAV (which HA ships for its `stream` component):
the sidecar then sees ordinary frames, so nothing about the contract, the durable queue or
idempotency changes, and a clip never crosses the network whole. Everything here blocks.

A clip is read through the same checks as an image (resolved inside the allow-list, a regular
file, size capped before decoding starts) and decoded from the open file. Frames are sampled at
`rate` per second: the clip is cut into slots of 1/rate seconds and each slot gives one frame,
a key frame when the slot has one (those are complete pictures, not predicted ones), else its
first frame. A long clip gets a lower rate so that it gives at most `max_frames` frames.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import av
from av.video.stream import VideoStream
from PIL import Image

from .files import open_capped, resolve_allowed

JPEG_QUALITY = 85
# How far after the file's mtime a container's creation time may lie (camera clock skew).
CREATION_TIME_SLACK_S = 300.0
_HASH_CHUNK = 1024 * 1024


class InvalidClipError(Exception):
    """The file is not a clip we can decode (corrupt, truncated, empty, unsupported codec)."""


@dataclass(frozen=True, slots=True)
class ClipFrame:
    """One sampled frame: seconds from the clip's first frame, JPEG bytes, whether a key frame."""

    offset: float
    jpeg: bytes
    key_frame: bool


@dataclass(frozen=True, slots=True)
class SampledClip:
    """What sampling a clip found."""

    sha256: str
    size: int
    mtime: float
    # When the clip's first frame was captured (epoch seconds).
    started_at: float
    # From the container's creation time, or else the file's mtime minus the duration.
    start_source: str
    duration: float | None
    codec: str
    frames: tuple[ClipFrame, ...]


def clip_frame_hash(clip_sha256: str, offset: float) -> str:
    """The content hash of a frame sampled from a clip (dedupe key input: clip bytes + offset in
    milliseconds, so re-reading a clip gives the same ids)."""
    return hashlib.sha256(f"{clip_sha256}@{round(offset * 1000)}".encode()).hexdigest()


def _open_clip(path: Path, is_allowed: Callable[[str], bool], max_bytes: int) -> BinaryIO:
    """The open file of a regular file inside the allow-list of at most `max_bytes` (like
    `files.read_untrusted`, without reading it into memory)."""
    fd, _info = open_capped(resolve_allowed(path, is_allowed), max_bytes, shown=path)
    try:
        # Blocking reads from here on (a regular file never blocks for long).
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _creation_time(container: Any) -> float | None:
    value = container.metadata.get("creation_time") or container.metadata.get("CREATION_TIME")
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    # Muxers write 1970 (or 1904) when they were not told a time.
    return parsed.timestamp() if parsed.year >= 2000 else None


def _jpeg(frame: av.VideoFrame) -> bytes:
    out = io.BytesIO()
    image: Image.Image = frame.to_image()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def sample_clip(
    path: Path,
    is_allowed: Callable[[str], bool],
    max_bytes: int,
    rate: float,
    max_frames: int,
    *,
    max_pixels: int | None = None,
) -> SampledClip:
    """Sample a clip (see the module docstring). RefusedFileError for a file that must not be
    read, InvalidClipError for one that cannot be decoded or whose pictures have more than
    `max_pixels` pixels (checked from the stream's header before decoding, and on each decoded
    frame, as the size may change inside a stream), OSError if it cannot be opened."""
    with _open_clip(path, is_allowed, max_bytes) as file:
        info = os.fstat(file.fileno())
        digest = hashlib.sha256()
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
        if info.st_size == 0:
            raise InvalidClipError("the file is empty")
        file.seek(0)
        sha256 = digest.hexdigest()
        try:
            return _decode(
                file,
                sha256=sha256,
                size=info.st_size,
                mtime=info.st_mtime,
                rate=rate,
                max_frames=max_frames,
                max_pixels=max_pixels,
            )
        except (av.FFmpegError, ValueError, OSError, EOFError) as err:
            raise InvalidClipError(f"cannot decode: {err}") from err


def _has_codec(stream: VideoStream) -> bool:
    # A clip cut off inside its index can open with a video stream that has no codec (PyAV's
    # stubs say it always has one): decoding such a stream crashes FFmpeg.
    return cast("object | None", stream.codec_context) is not None


def _time_of(frame: av.VideoFrame) -> float | None:
    # PyAV's stubs say float; a frame without a timestamp has None.
    return cast("float | None", frame.time)


def _check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise InvalidClipError(
            f"{width}x{height} pixels, more than the {max_pixels} the sidecar takes"
        )


def _decode(
    file: BinaryIO,
    *,
    sha256: str,
    size: int,
    mtime: float,
    rate: float,
    max_frames: int,
    max_pixels: int | None,
) -> SampledClip:
    container = av.open(file, mode="r")
    try:
        if not container.streams.video:
            raise InvalidClipError("no video stream")
        stream = container.streams.video[0]
        if not _has_codec(stream):
            raise InvalidClipError("the video stream has no codec parameters")
        codec = stream.codec_context.name
        _check_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels)
        duration: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        if duration is not None and duration > 0 and duration * rate > max_frames:
            rate = max_frames / duration
        slot_length = 1.0 / rate
        first_pts: float | None = None
        frames: list[ClipFrame] = []
        current_slot = -1
        chosen: tuple[float, av.VideoFrame, bool] | None = None
        decoded = 0
        for frame in container.decode(stream):
            decoded += 1
            _check_pixels(frame.width, frame.height, max_pixels)
            at = _time_of(frame)
            if at is None:
                continue
            if first_pts is None:
                first_pts = at
            offset = max(0.0, at - first_pts)
            slot = math.floor(offset / slot_length + 1e-9)
            if slot != current_slot:
                if chosen is not None:
                    frames.append(ClipFrame(chosen[0], _jpeg(chosen[1]), chosen[2]))
                    if len(frames) >= max_frames:
                        chosen = None
                        break
                current_slot, chosen = slot, (offset, frame, bool(frame.key_frame))
            elif chosen is not None and frame.key_frame and not chosen[2]:
                chosen = (offset, frame, True)
        if chosen is not None and len(frames) < max_frames:
            frames.append(ClipFrame(chosen[0], _jpeg(chosen[1]), chosen[2]))
        if not frames:
            raise InvalidClipError(
                f"no picture could be decoded ({decoded} frame(s) of codec {codec})"
            )
        if duration is None or duration <= 0:
            duration = frames[-1].offset + slot_length if frames else None
        created = _creation_time(container)
        # A clip cannot start after its file was last written: a later creation time (a wrong
        # camera clock, or metadata written to place events in the future) is not believed.
        if created is not None and created <= mtime + CREATION_TIME_SLACK_S:
            started_at, source = created, "container"
        else:
            started_at, source = mtime - (duration or 0.0), "file_mtime"
        return SampledClip(
            sha256=sha256,
            size=size,
            mtime=mtime,
            started_at=started_at,
            start_source=source,
            duration=duration,
            codec=codec,
            frames=tuple(frames),
        )
    finally:
        container.close()


def frame_at(path: Path, offset: float) -> bytes | None:
    """The JPEG of the frame shown `offset` seconds after a clip's first frame (an event's
    snapshot taken from a clip); None if the clip is gone or cannot be decoded."""
    return frames_at(path, [offset]).get(offset)


def frames_at(path: Path, offsets: list[float]) -> dict[float, bytes]:
    """`frame_at` for several offsets of one clip, in one pass; offsets whose frame cannot be
    had are left out."""
    wanted = sorted(set(offsets))
    found: dict[float, bytes] = {}
    if not wanted:
        return found
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, ValueError, OSError):
        return found
    try:
        stream = container.streams.video[0]
        if not _has_codec(stream):
            return found
        first: float | None = None
        last: av.VideoFrame | None = None
        for frame in container.decode(stream):
            at = _time_of(frame)
            if at is None:
                continue
            if first is None:
                first = at
            # Every wanted offset before this frame is shown by the previous one.
            while wanted and at - first > wanted[0] + 1e-3:
                if last is not None:
                    found[wanted[0]] = _jpeg(last)
                wanted.pop(0)
            if not wanted:
                break
            last = frame
        if last is not None:
            for offset in wanted:
                found[offset] = _jpeg(last)
    except (av.FFmpegError, IndexError, ValueError, OSError, EOFError):
        pass
    finally:
        container.close()
    return found
