"""What the tamper check costs per frame, on this machine's CPU.

    .venv-sidecar/bin/python benchmarks/bench_tamper.py --frames 500

Prints, in microseconds per frame (median of the runs): the thumbnail (in the decode worker, from a
decoded 960x540 image, what a 1920x1080 JPEG's draft-mode decode gives for a 640-pixel model) and
the detector's update against the camera's reference; and, for scale, the decode of the 1920x1080
JPEG itself.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sidecar.context.tamper import TamperDetector, thumbnail


def _scene(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(60, 120, (height, width, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = int(rng.integers(0, width - 200)), int(rng.integers(0, height - 200))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.rectangle((x, y, x + int(rng.integers(20, 200)), y + int(rng.integers(20, 200))),
                       fill=colour)
    return image


def _per_frame_us(fn: object, frames: int, repeats: int = 5) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(frames):
            fn(i)  # type: ignore[operator]
        runs.append((time.perf_counter() - start) / frames * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=500)
    args = parser.parse_args()
    big = _scene(1920, 1080)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    decoded = big.resize((960, 540))
    thumbs = [thumbnail(decoded)] * 2
    detector = TamperDetector()
    start = datetime(2026, 12, 7, tzinfo=UTC)

    def decode(_: int) -> None:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (640, 640))
        image.load()

    def thumb(_: int) -> None:
        thumbnail(decoded)

    def update(i: int) -> None:
        detector.update(thumbs[i % 2], start + timedelta(seconds=i))

    decode_us = _per_frame_us(decode, max(1, args.frames // 10))
    thumb_us = _per_frame_us(thumb, args.frames)
    update_us = _per_frame_us(update, args.frames)
    print(f"thumbnail (960x540 -> 128x96 grey): {thumb_us:8.0f} us/frame")
    print(f"detector update (vs reference):     {update_us:8.0f} us/frame")
    print(f"tamper check in all:                {thumb_us + update_us:8.0f} us/frame")
    print(f"for scale, 1920x1080 JPEG draft decode: {decode_us:8.0f} us/frame "
          f"(tamper check = {(thumb_us + update_us) / decode_us:.0%} of it)")


if __name__ == "__main__":
    main()
