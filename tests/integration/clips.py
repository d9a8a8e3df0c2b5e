"""Small synthetic clips written with PyAV, for the video tests and the decode benchmark."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.video.stream import VideoStream


def write_test_clip(
    path: Path,
    *,
    frames: int,
    fps: int = 10,
    codec: str = "mpeg4",
    size: tuple[int, int] = (64, 48),
    creation_time: str | None = None,
    gop: int | None = None,
) -> None:
    """Write a small synthetic clip (tests and benchmarks): frame i is a flat grey of level
    i * 20 mod 256 with a white square moving across it."""
    width, height = size
    with av.open(str(path), mode="w") as container:
        if creation_time is not None:
            container.metadata["creation_time"] = creation_time
        stream = cast(VideoStream, container.add_stream(codec, rate=fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        stream.time_base = Fraction(1, fps)
        for i in range(frames):
            pixels = np.full((height, width, 3), (i * 20) % 256, dtype=np.uint8)
            x = (i * 4) % max(1, width - 8)
            pixels[8:16, x : x + 8] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
