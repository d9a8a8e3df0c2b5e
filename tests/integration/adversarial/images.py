"""Hostile image files built byte by byte (no pixels are ever allocated for them)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` grey pixels, with a few bytes of (deflated,
    all-zero) data: tiny on disk, huge when decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\0" * (width + 1)
    data = zlib.compress(row * 4, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    )


def jpeg_with_orientation(size: tuple[int, int], orientation: int) -> bytes:
    """A JPEG stored `size` (w, h) with the EXIF orientation tag set (6: turn 90° clockwise)."""
    img = Image.new("RGB", size, (40, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()
