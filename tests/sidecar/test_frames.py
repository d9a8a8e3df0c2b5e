"""Frame validation and decoding: every error kind, and what valid frames decode to."""

from __future__ import annotations

import pytest
from sidecar_harness import encode, jpeg, png, png_bomb, scene, truncated

from sidecar.detection.frames import FrameLimits, check_size, decode_frame, validate_ids
from sidecar.domain import FrameError, FrameErrorCode

LIMITS = FrameLimits(max_frame_bytes=8_000_000, max_pixels=5_000_000)


def code_of(data: bytes, limits: FrameLimits = LIMITS) -> FrameErrorCode:
    with pytest.raises(FrameError) as info:
        decode_frame(data, limits)
    return info.value.code


def test_empty() -> None:
    assert code_of(b"") is FrameErrorCode.EMPTY


@pytest.mark.parametrize(
    "data",
    [b"garbage", b"\x00" * 1000, b"<html>not an image</html>", b"GIF89a" + b"\x00" * 50],
    ids=["text", "zeros", "html", "gif-not-accepted"],
)
def test_not_an_image(data: bytes) -> None:
    assert code_of(data) is FrameErrorCode.NOT_AN_IMAGE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated(fmt: str) -> None:
    data = encode(scene(200, 150), fmt)
    with pytest.raises(FrameError) as info:
        decode_frame(truncated(data, 0.5), LIMITS)
    error = info.value
    assert error.code is FrameErrorCode.TRUNCATED
    assert fmt in error.message


def test_too_many_pixels_from_the_header_alone() -> None:
    # 100k x 100k 1-bit PNG: 10 G pixels in a few hundred bytes. Refused before decoding.
    bomb = png_bomb(100_000, 100_000)
    assert len(bomb) < 2000
    assert code_of(bomb) is FrameErrorCode.TOO_MANY_PIXELS


def test_too_many_pixels_at_our_limit() -> None:
    limits = FrameLimits(max_frame_bytes=1_000_000, max_pixels=200 * 150 - 1)
    assert code_of(jpeg(200, 150), limits) is FrameErrorCode.TOO_MANY_PIXELS
    assert decode_frame(jpeg(200, 150), FrameLimits(1_000_000, 200 * 150)).width == 200


def test_too_large() -> None:
    data = png(300, 300)
    limits = FrameLimits(max_frame_bytes=len(data) - 1, max_pixels=10**8)
    with pytest.raises(FrameError) as info:
        check_size(data, limits)
    error = info.value
    assert error.code is FrameErrorCode.TOO_LARGE
    assert str(len(data)) in error.message
    assert code_of(data, limits) is FrameErrorCode.TOO_LARGE


@pytest.mark.parametrize(
    ("frame_id", "camera_id"),
    [("", "cam"), ("f1", ""), ("x" * 257, "cam"), ("f1", "cam\nera")],
    ids=["no-frame-id", "no-camera-id", "frame-id-too-long", "control-char"],
)
def test_invalid_request(frame_id: str, camera_id: str) -> None:
    with pytest.raises(FrameError) as info:
        validate_ids(frame_id, camera_id)
    assert info.value.code is FrameErrorCode.INVALID_REQUEST


def test_valid_ids() -> None:
    validate_ids("2024-01-01T10:00:00/front_door/IMG_0001.jpg", "front_door")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_png_modes_decode_to_rgb(mode: str) -> None:
    frame = decode_frame(png(64, 48, mode=mode), LIMITS)
    assert frame.image.mode == "RGB"
    assert (frame.width, frame.height) == (64, 48) == frame.image.size


def test_jpeg_draft_decodes_smaller_but_reports_the_original_size() -> None:
    data = jpeg(1280, 960)
    frame = decode_frame(data, LIMITS, draft_size=(320, 320))
    assert (frame.width, frame.height) == (1280, 960)
    # The largest JPEG scale (1/2, 1/4, 1/8) that keeps both sides >= 320: 960 / 4 < 320, so 1/2.
    assert frame.image.size == (640, 480)
    assert decode_frame(data, LIMITS).image.size == (1280, 960)


def test_draft_is_only_for_jpeg() -> None:
    frame = decode_frame(png(1280, 960), LIMITS, draft_size=(320, 320))
    assert frame.image.size == (1280, 960)
