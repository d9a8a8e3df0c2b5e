"""What decoding an uploaded video clip costs in Home Assistant's process (PyAV, one core).

    .venv/bin/python benchmarks/bench_clip_decode.py            # 720p and 1080p, 10 s clips
    .venv/bin/python benchmarks/bench_clip_decode.py --short    # smoke run: small clips

Writes camera-like clips (15 frames/s, a textured scene with a moving block, the codecs cameras
use: H.264, MPEG-4 part 2, MJPEG) with PyAV, then times `ingest.video.sample_clip` on each (the
integration's own code: hash, decode, sample at 2 frames/s, JPEG-encode the sampled frames), the
median of three runs. Prints the clip's size, the time per clip, per sampled frame, and as a share
of the clip's own duration. Then, per clip, what making an event's clip from it costs
(`storage.event_clip.render_clip_segment`: decode and re-encode as H.264 a 6 s segment, as for
an event sampled from 3 s to 7 s of the upload). Not a test: the figures are what this machine
measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.video.stream import VideoStream

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from custom_components.secmon.ingest.video import sample_clip  # noqa: E402
from custom_components.secmon.storage.event_clip import render_clip_segment  # noqa: E402

SEGMENT = (2.0, 8.0)


def write_clip(path: Path, codec: str, size: tuple[int, int], seconds: float, fps: int) -> None:
    """A clip with texture (noise that compresses like a real scene) and a moving block."""
    width, height = size
    rng = np.random.default_rng(1)
    background = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    background = (background // 4 + 96).astype(np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = cast(VideoStream, container.add_stream(codec, rate=fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = fps * 2
        stream.time_base = Fraction(1, fps)
        for i in range(int(seconds * fps)):
            pixels = background.copy()
            x = (i * 8) % (width - 120)
            pixels[height // 3 : height // 3 + 160, x : x + 120] = (200, 60, 40)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    """Write the clips, time sampling them, print one line per clip."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="small clips (smoke run)")
    args = parser.parse_args()
    sizes = [(320, 240)] if args.short else [(1280, 720), (1920, 1080)]
    seconds = 2.0 if args.short else 10.0
    fps = 15
    print(f"PyAV {av.__version__}; {seconds:.0f} s clips at {fps} frames/s, sampled at 2/s")
    print(f"{'clip':<22}{'MB':>7}{'ms/clip':>10}{'frames':>8}{'ms/frame':>10}{'of real time':>14}")
    segments: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in sizes:
            for codec, suffix in (("libx264", "mp4"), ("mpeg4", "avi"), ("mjpeg", "avi")):
                path = Path(tmp, f"{codec}_{height}p.{suffix}")
                write_clip(path, codec, (width, height), seconds, fps)
                times = []
                frames = 0
                for _ in range(3):
                    start = time.perf_counter()
                    clip = sample_clip(path, lambda _p: True, 2**31, 2.0, 20)
                    times.append(time.perf_counter() - start)
                    frames = len(clip.frames)
                median = statistics.median(times)
                print(
                    f"{path.name:<22}{path.stat().st_size / 1e6:>7.1f}{median * 1000:>10.0f}"
                    f"{frames:>8}{median * 1000 / frames:>10.1f}{median / seconds:>13.1%}"
                )
                start_s, end_s = SEGMENT if not args.short else (0.5, 1.5)
                out = Path(tmp, "segment.mp4")
                times = []
                written = 0
                for _ in range(3):
                    start = time.perf_counter()
                    written = render_clip_segment(path, start_s, end_s, out) or 0
                    times.append(time.perf_counter() - start)
                median = statistics.median(times)
                segments.append(
                    f"{path.name:<22}{end_s - start_s:>6.0f}s{written:>8}{median * 1000:>10.0f}"
                    f"{out.stat().st_size / 1e6:>8.2f}{median / (end_s - start_s):>13.1%}"
                )
    print("\nEvent clip from the upload's segment (decode + H.264 encode)")
    print(f"{'clip':<22}{'span':>7}{'frames':>8}{'ms':>10}{'MB out':>8}{'of real time':>14}")
    for line in segments:
        print(line)


if __name__ == "__main__":
    main()
