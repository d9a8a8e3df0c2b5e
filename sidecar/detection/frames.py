"""Frame validation and decoding: encoded bytes -> a decoded RGB image, or a typed FrameError.

Checks run cheapest first: size limits on the bytes, then the image header (format and pixel count,
without decoding), and only then the decode itself, so a decompression bomb is refused before it
allocates anything.

The EXIF orientation is applied after decoding (a phone's portrait photo is stored sideways with
orientation 6): the model sees the image upright, and boxes and sizes are in the upright frame.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..domain import FrameError, FrameErrorCode

# EXIF orientations that swap width and height (transpose, rotations by 90 or 270 degrees).
_SWAPS_AXES = frozenset({5, 6, 7, 8})

# Formats the sidecar decodes; PIL does not even try the others.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
MAX_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class FrameLimits:
    max_frame_bytes: int
    max_pixels: int


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """A decoded RGB image, upright, and the size of the upright original (the image may be
    smaller after a JPEG draft-mode decode)."""

    image: Image.Image
    width: int
    height: int


def validate_ids(frame_id: str, camera_id: str) -> None:
    """Stream frames must name themselves: the frame id is the idempotency key."""
    for name, value in (("frame_id", frame_id), ("camera_id", camera_id)):
        if not value:
            raise FrameError(FrameErrorCode.INVALID_REQUEST, f"{name} is required")
        if len(value) > MAX_ID_LENGTH:
            raise FrameError(
                FrameErrorCode.INVALID_REQUEST, f"{name} is longer than {MAX_ID_LENGTH} characters"
            )
        if not value.isprintable():
            raise FrameError(FrameErrorCode.INVALID_REQUEST, f"{name} contains control characters")


def check_size(data: bytes, limits: FrameLimits) -> None:
    if not data:
        raise FrameError(FrameErrorCode.EMPTY, "the frame has no image bytes")
    if len(data) > limits.max_frame_bytes:
        raise FrameError(
            FrameErrorCode.TOO_LARGE,
            f"the frame is {len(data)} bytes; the limit is {limits.max_frame_bytes}",
        )


def open_image(data: bytes, limits: FrameLimits) -> Image.Image:
    """Read the header only; refuse non-images and images over the pixel limit."""
    check_size(data, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as err:
        raise FrameError(FrameErrorCode.TOO_MANY_PIXELS, str(err)) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise FrameError(
            FrameErrorCode.NOT_AN_IMAGE,
            f"not a decodable image (accepted: {', '.join(ACCEPTED_FORMATS)})",
        ) from err
    width, height = image.size
    if width <= 0 or height <= 0:
        raise FrameError(FrameErrorCode.NOT_AN_IMAGE, f"the image is {width}x{height} pixels")
    if width * height > limits.max_pixels:
        raise FrameError(
            FrameErrorCode.TOO_MANY_PIXELS,
            f"the image is {width}x{height} = {width * height} pixels; "
            f"the limit is {limits.max_pixels}",
        )
    return image


def decode_frame(
    data: bytes, limits: FrameLimits, draft_size: tuple[int, int] | None = None
) -> DecodedFrame:
    """Validate and decode one frame to RGB.

    `draft_size` (width, height) lets the JPEG decoder scale down by 1/2, 1/4 or 1/8 while
    decoding, as long as the result stays at least that large: much less work for big frames
    that will be resized to the model's input anyway.
    """
    image = open_image(data, limits)
    width, height = image.size
    if draft_size is not None and image.format == "JPEG":
        image.draft("RGB", draft_size)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        text = str(err)
        code = (
            FrameErrorCode.TRUNCATED
            if isinstance(err, EOFError) or "truncat" in text.lower()
            else FrameErrorCode.NOT_AN_IMAGE
        )
        raise FrameError(code, f"the {image.format} data cannot be decoded: {text}") from err
    orientation = exif_orientation(image)
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
        if orientation in _SWAPS_AXES:
            width, height = height, width
    if image.mode != "RGB":
        image = image.convert("RGB")
    return DecodedFrame(image, width, height)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8); 1 (as stored) when there is none or it is unreadable."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, TypeError, struct.error):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
