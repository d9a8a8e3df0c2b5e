"""An event's own clip as an H.264 MP4 (yuv420p, `faststart`: plays in browsers and the
companion apps as it downloads).

An event whose frames were all sampled from one uploaded video gets that video's own segment,
re-encoded at its frame rate: from SEGMENT_MARGIN s before its first sampled frame to as long
after its last (at most SEGMENT_MAX_SECONDS). Any other event — or one whose video can no longer
be decoded — gets its frames in capture order with each frame's detections drawn, each shown
for 1/CLIP_FRAMES_PER_SECOND s (an event's frames are seconds apart: a slide show, not real
time). PyAV's FFmpeg build in HA's `av` wheel includes libx264. Blocking: run it in the executor.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from av.video.stream import VideoStream
from PIL import Image

from ..ingest.imaging import render_detections
from ..link.convert import boxes_of
from ..link.proto import secmon_pb2
from .frame_queue import FrameQueue

CLIP_FRAMES_PER_SECOND = 2
CLIP_MAX_FRAMES = 120
# The clip's frame size: at most this wide (even sizes, as H.264 in yuv420p needs).
CLIP_MAX_WIDTH = 1280
CLIP_CODEC = "libx264"
SEGMENT_MARGIN = 1.0
SEGMENT_MAX_SECONDS = 60.0
SEGMENT_PRESET = "veryfast"
# The segment's timestamps, in milliseconds (the source's frame times, whatever its time base).
_SEGMENT_TIME_BASE = Fraction(1, 1000)


def _even(value: int) -> int:
    return max(2, value - value % 2)


def render_event_clip(frames: FrameQueue, frame_ids: list[str], out: Path) -> int | None:
    """Write to `out` the event's MP4: the segment of the one video its frames came from, else
    the frames among `frame_ids` that are still there (their detections drawn); how many frames
    it holds, None (nothing written) if none is."""
    source = frames.single_clip_offsets(frame_ids[:CLIP_MAX_FRAMES])
    if source is not None:
        path, offsets = source
        start = max(0.0, min(offsets) - SEGMENT_MARGIN)
        end = min(max(offsets) + SEGMENT_MARGIN, start + SEGMENT_MAX_SECONDS)
        if (written := render_clip_segment(path, start, end, out)) is not None:
            return written
    pictures: list[Image.Image] = []
    wanted = frame_ids[:CLIP_MAX_FRAMES]
    images = frames.frame_images(wanted)
    for frame_id in wanted:
        image = images.get(frame_id)
        if image is None:
            continue
        stored = frames.result(frame_id)
        boxes = (
            boxes_of(secmon_pb2.FrameResult.FromString(stored).detections)
            if stored is not None
            else []
        )
        try:
            drawn = render_detections(image, boxes)
            with Image.open(io.BytesIO(drawn)) as opened:
                pictures.append(opened.convert("RGB"))
        except (OSError, ValueError, SyntaxError):
            continue
    if not pictures:
        return None
    first = pictures[0]
    scale = min(1.0, CLIP_MAX_WIDTH / first.width)
    size = (_even(round(first.width * scale)), _even(round(first.height * scale)))
    # faststart moves the index to the front in a second pass over the file: a real file.
    container = av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"})
    try:
        stream = container.add_stream(CLIP_CODEC, rate=CLIP_FRAMES_PER_SECOND)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, CLIP_FRAMES_PER_SECOND)
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_image(
                picture if picture.size == size else picture.resize(size)
            )
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return len(pictures)


def render_clip_segment(path: Path, start: float, end: float, out: Path) -> int | None:
    """Write to `out` the frames of the video at `path` from `start` to `end` seconds (offsets
    from its first frame, as sampling counts them), re-encoded; how many frames, None if the
    video cannot be decoded or has none there."""
    try:
        source = av.open(str(path), mode="r")
    except (av.FFmpegError, ValueError, OSError):
        return None
    container: av.container.OutputContainer | None = None
    written = 0
    try:
        stream_in = source.streams.video[0]
        rate = stream_in.average_rate or Fraction(CLIP_FRAMES_PER_SECOND)
        first: float | None = None
        last_pts = -1
        stream: VideoStream | None = None
        for frame in source.decode(stream_in):
            at = cast("float | None", frame.time)
            if at is None:
                continue
            if first is None:
                first = at
            offset = at - first
            if offset < start - 1e-3:
                continue
            if offset > end + 1e-3:
                break
            if container is None or stream is None:
                scale = min(1.0, CLIP_MAX_WIDTH / frame.width)
                size = (_even(round(frame.width * scale)), _even(round(frame.height * scale)))
                container = av.open(
                    str(out), mode="w", format="mp4", options={"movflags": "+faststart"}
                )
                added = container.add_stream(CLIP_CODEC, rate=rate)
                assert isinstance(added, VideoStream)
                stream = added
                stream.width, stream.height = size
                stream.pix_fmt = "yuv420p"
                stream.time_base = _SEGMENT_TIME_BASE
                # Every frame of seconds of video: a faster preset than the slide show's.
                stream.codec_context.options = {"preset": SEGMENT_PRESET}
            picture = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
            picture.pts = last_pts = max(last_pts + 1, round((offset - start) * 1000))
            picture.time_base = _SEGMENT_TIME_BASE
            for packet in stream.encode(picture):
                container.mux(packet)
            written += 1
        if stream is not None and container is not None:
            for packet in stream.encode():
                container.mux(packet)
    except (av.FFmpegError, IndexError, ValueError, OSError, EOFError):
        return None
    finally:
        source.close()
        if container is not None:
            container.close()
    return written or None
