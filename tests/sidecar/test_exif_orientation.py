"""EXIF orientation: a phone-style photo stored sideways is analysed upright, and its boxes and
size are those of the upright picture."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sidecar_harness import scene

from sidecar.detection.frames import FrameLimits, decode_frame
from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector
from sidecar.detection.preprocess import prepare_frame

LIMITS = FrameLimits(max_frame_bytes=10_000_000, max_pixels=10_000_000)
T = Image.Transpose
# How to store an upright picture so that a viewer applying orientation N shows it upright.
STORED_AS = {
    2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
    6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270,
}


def with_orientation(upright: Image.Image, orientation: int, fmt: str = "PNG") -> bytes:
    stored = upright.transpose(STORED_AS[orientation]) if orientation != 1 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    params: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    stored.save(buf, fmt, exif=exif, **params)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_decodes_upright(orientation: int) -> None:
    upright = scene(200, 120, seed=3)
    decoded = decode_frame(with_orientation(upright, orientation), LIMITS)
    assert (decoded.width, decoded.height) == (200, 120)
    assert np.array_equal(np.asarray(decoded.image), np.asarray(upright))


def test_a_sideways_phone_jpeg_is_analysed_upright() -> None:
    upright = scene(320, 200, seed=5)
    data = with_orientation(upright, 6, "JPEG")
    assert Image.open(io.BytesIO(data)).size == (200, 320)  # stored sideways
    decoded = decode_frame(data, LIMITS, draft_size=(160, 160))
    assert (decoded.width, decoded.height) == (320, 200)
    assert decoded.image.width > decoded.image.height  # upright, also after a draft decode


def test_boxes_are_in_the_upright_frame(tiny_detector: RTDetrV2Detector) -> None:
    upright = scene(240, 160, seed=7)
    spec = tiny_detector.preprocess
    plain = prepare_frame(with_orientation(upright, 1), LIMITS, spec, 0.01, "exact")
    rotated = prepare_frame(with_orientation(upright, 6), LIMITS, spec, 0.01, "exact")
    assert (rotated.width, rotated.height) == (plain.width, plain.height) == (240, 160)
    assert np.array_equal(rotated.pixels, plain.pixels)
    boxes_plain, boxes_rotated = tiny_detector.infer([plain, rotated])
    assert boxes_plain, "the tiny model found nothing to compare"
    assert boxes_rotated == boxes_plain
    assert all(d.box.x_max <= 240 and d.box.y_max <= 160 for d in boxes_rotated)


def test_a_broken_orientation_value_is_ignored() -> None:
    upright = scene(60, 40, seed=1)
    exif = Image.Exif()
    exif[0x0112] = 99
    buf = io.BytesIO()
    upright.save(buf, "PNG", exif=exif)
    decoded = decode_frame(buf.getvalue(), LIMITS)
    assert (decoded.width, decoded.height) == (60, 40)
