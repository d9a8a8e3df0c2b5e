"""An event's own clip: its frames, in capture order, with each frame's detections drawn, as an
H.264 MP4 (yuv420p, `faststart`: plays in browsers and the companion apps as it downloads).

PyAV's FFmpeg build in HA's `av` wheel includes libx264; each frame is shown for
1/CLIP_FRAMES_PER_SECOND s (an event's frames are seconds apart: a slide show, not real time).
Blocking: run it in the executor.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

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


def _even(value: int) -> int:
    return max(2, value - value % 2)


def render_event_clip(frames: FrameQueue, frame_ids: list[str], out: Path) -> int | None:
    """Write to `out` the MP4 of the frames among `frame_ids` that are still there (their
    detections drawn); how many frames it holds, None (nothing written) if none is."""
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
