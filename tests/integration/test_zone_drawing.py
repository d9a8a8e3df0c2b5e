"""The camera image outlines the owner's zones (under the boxes), so they can see what they
defined."""

from __future__ import annotations

import io

from PIL import Image

from custom_components.secmon.ingest.imaging import ZONE_COLOUR, render_detections


def _grey(size: tuple[int, int] = (400, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(out, format="JPEG")
    return out.getvalue()


def _near(pixel: tuple[int, ...], colour: str) -> bool:
    """Tinted towards `colour` (a blue) on the grey picture (JPEG blurs a thin line)."""
    assert colour == "#00B0FF"
    return pixel[2] - pixel[0] > 60


def test_zones_are_outlined() -> None:
    porch = ("Porch", [[0.25, 0.5], [0.75, 0.5], [0.75, 1.0], [0.25, 1.0]])
    with Image.open(io.BytesIO(render_detections(_grey(), [], [porch]))) as img:
        rgb = img.convert("RGB")
        edge = rgb.getpixel((200, 150))  # on the top edge, (0.5, 0.5) of the image
        inside = rgb.getpixel((200, 220))
        outside = rgb.getpixel((50, 50))
    assert _near(edge, ZONE_COLOUR)
    assert not _near(inside, ZONE_COLOUR) and not _near(outside, ZONE_COLOUR)
    with Image.open(io.BytesIO(render_detections(_grey(), []))) as plain:
        assert not _near(plain.convert("RGB").getpixel((200, 150)), ZONE_COLOUR)
