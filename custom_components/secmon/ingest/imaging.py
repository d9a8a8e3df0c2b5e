"""Image checks and drawing. Everything here blocks: run it in the executor."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

# Box colours per class; everything else is drawn white.
LABEL_COLOURS: dict[str, str] = {
    "person": "#E74856",
    "car": "#3B82F6",
    "truck": "#3B82F6",
    "dog": "#76B900",
    "cat": "#76B900",
    "bicycle": "#FFB800",
    "motorcycle": "#FFB800",
    "bird": "#A855F7",
}
OTHER_COLOUR = "#FFFFFF"

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}

# Pixels an image may have when the sidecar does not say (its own default limit).
DEFAULT_MAX_PIXELS = 40_000_000


class InvalidImageError(Exception):
    """The bytes are not a complete JPEG or PNG image."""


@dataclass(frozen=True, slots=True)
class CheckedImage:
    """An image that decoded completely."""

    content_type: str
    width: int
    height: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Box:
    """One detection to draw, in pixel coordinates of the original image."""

    label: str
    confidence: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float


class TooManyPixelsError(InvalidImageError):
    """The image header declares more pixels than the sidecar takes."""


def check_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> CheckedImage:
    """Decode `data` fully; raise InvalidImageError for empty, corrupt or truncated images, and
    TooManyPixelsError (from the header, before anything is decoded) for images over
    `max_pixels`."""
    if not data:
        raise InvalidImageError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            if width * height > max_pixels:
                raise TooManyPixelsError(
                    f"{width}x{height} pixels, more than the {max_pixels} the sidecar takes"
                )
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            width, height = img.size
    except UnidentifiedImageError as err:
        # PIL's own message names an in-memory buffer object, which says nothing to a user.
        raise InvalidImageError("not an image in a format secmon reads (JPEG or PNG)") from err
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as err:
        raise InvalidImageError(str(err) or type(err).__name__) from err
    if fmt not in CONTENT_TYPES:
        raise InvalidImageError(f"unsupported image format {fmt or 'unknown'}")
    return CheckedImage(
        content_type=CONTENT_TYPES[fmt],
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def colour_for(label: str) -> str:
    """The box colour of a class."""
    return LABEL_COLOURS.get(label, OTHER_COLOUR)


Rect = tuple[float, float, float, float]


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    boxes: Sequence[Rect], sizes: Sequence[tuple[float, float]], width: int, height: int
) -> list[Rect | None]:
    """Where each box's label goes (x0, y0, x1, y1), or None where it would cover another label.

    Boxes come most important first: each label tries above its box, inside its top edge, inside
    its bottom edge and below it, and takes the first spot inside the image that no earlier label
    covers. So labels never print over each other; with many boxes the least important go
    unlabelled.
    """
    placed: list[Rect] = []
    spots: list[Rect | None] = []
    for (x0, y0, _x1, y1), (w, h) in zip(boxes, sizes, strict=True):
        spot: Rect | None = None
        if w <= width and h <= height:
            left = min(max(x0, 0.0), width - w)
            for top in (y0 - h, y0, y1 - h, y1):
                if top < 0 or top + h > height:
                    continue
                rect = (left, top, left + w, top + h)
                if not any(_overlap(rect, other) for other in placed):
                    spot = rect
                    break
        if spot is not None:
            placed.append(spot)
        spots.append(spot)
    return spots


ZONE_COLOUR = "#00B0FF"


def render_detections(
    data: bytes,
    boxes: Iterable[Box],
    zones: Iterable[tuple[str, Sequence[Sequence[float]]]] = (),
) -> bytes:
    """The image with its detections drawn (box plus a `label confidence` tag where it fits
    without covering another tag; the most confident detections are labelled first), as JPEG.
    `zones` (name, points as fractions of the image) are outlined underneath, with their names."""
    # Boxes are in the coordinates of the upright image (the sidecar applies EXIF orientation
    # before detection), so draw on the image turned the same way.
    with Image.open(io.BytesIO(data)) as src:
        img = (ImageOps.exif_transpose(src) or src).convert("RGB")
    draw = ImageDraw.Draw(img)
    width, height = img.size
    line = max(2, round(min(width, height) / 240))
    font = ImageFont.load_default(size=max(12, round(min(width, height) / 30)))
    for name, points in zones:
        outline = [(x * (width - 1), y * (height - 1)) for x, y in points]
        if len(outline) >= 3:
            draw.polygon(outline, outline=ZONE_COLOUR, width=line)
            draw.text(
                (outline[0][0] + 2 * line, outline[0][1] + 2 * line),
                name,
                fill=ZONE_COLOUR,
                font=font,
            )
    ordered = sorted(boxes, key=lambda box: box.confidence, reverse=True)
    rects: list[Rect] = []
    tags: list[tuple[str, float, float, tuple[float, float]]] = []
    for box in ordered:
        x0 = min(max(box.x_min, 0.0), width - 1)
        y0 = min(max(box.y_min, 0.0), height - 1)
        x1 = min(max(box.x_max, x0), width - 1)
        y1 = min(max(box.y_max, y0), height - 1)
        rects.append((x0, y0, x1, y1))
        tag = f"{box.label} {box.confidence:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), tag, font=font)
        tags.append((tag, left, top, (right - left + 2 * line, bottom - top + 2 * line)))
    # Boxes first (least confident underneath), then the labels on top of every box.
    for box, rect in reversed(list(zip(ordered, rects, strict=True))):
        draw.rectangle(rect, outline=colour_for(box.label), width=line)
    spots = place_labels(rects, [size for *_, size in tags], width, height)
    for box, (tag, left, top, _size), spot in zip(ordered, tags, spots, strict=True):
        if spot is None:
            continue
        colour = colour_for(box.label)
        draw.rectangle(spot, fill=colour)
        text_colour = "#000000" if colour in {OTHER_COLOUR, "#FFB800", "#76B900"} else "#FFFFFF"
        draw.text((spot[0] + line - left, spot[1] + line - top), tag, fill=text_colour, font=font)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()
