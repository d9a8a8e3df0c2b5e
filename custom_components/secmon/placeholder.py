"""Pictures shown before there is anything to show, so a dashboard never draws a broken image.

Rendered once per text and kept (blocking: call through the executor).
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageDraw, ImageFont

SIZE = (640, 360)
BACKGROUND = "#1F2933"
FOREGROUND = "#C8D1DC"


@functools.cache
def placeholder_jpeg(text: str) -> bytes:
    """A dark 640 x 360 JPEG with `text` centred."""
    img = Image.new("RGB", SIZE, BACKGROUND)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=28)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = (SIZE[0] - (right - left)) / 2 - left
    y = (SIZE[1] - (bottom - top)) / 2 - top
    draw.text((x, y), text, fill=FOREGROUND, font=font)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()
