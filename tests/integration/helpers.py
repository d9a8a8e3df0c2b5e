"""Shared test helpers: images, waiting for asynchronous outcomes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from homeassistant.core import HomeAssistant
from PIL import Image, ImageDraw

from custom_components.secmon.ingest.ingestor import frame_id_for

# Upper bound for things that happen "soon" (file settles, sidecar answers). Not a performance
# assertion: only a guard so a broken pipeline fails instead of hanging.
WAIT_LIMIT = 120.0  # only a failing test waits this long; CI machines are shared


def frame_id_of(camera_id: str, data: bytes) -> str:
    """The integration's frame id of an image dropped into a camera's folder."""
    return frame_id_for(camera_id, hashlib.sha256(data).hexdigest())


def image_bytes(n: int, size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> bytes:
    """A distinct, valid image per `n`."""
    img = Image.new("RGB", size, (40 + n * 37 % 200, 90, 140))
    draw = ImageDraw.Draw(img)
    draw.rectangle((10 + n % 50, 20, 120 + n % 90, 200), fill=(220, 200 - n % 100, 30))
    draw.text((5, 5), f"frame {n}", fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def write_image(path: Path, data: bytes, mtime: float | None = None) -> Path:
    """Write an image (atomically, like an FTP server finishing an upload) and set its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    tmp.rename(path)
    return path


async def wait_for(
    hass: HomeAssistant, predicate: Callable[[], bool], what: str, limit: float = WAIT_LIMIT
) -> None:
    """Let the loop run until `predicate()` holds (fails after `limit` seconds)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
        await hass.async_block_till_done()


def state_of(hass: HomeAssistant, entity_id: str) -> str | None:
    """An entity's state string, None if it does not exist."""
    state = hass.states.get(entity_id)
    return state.state if state is not None else None


async def async_wait_for(
    hass: HomeAssistant,
    predicate: Callable[[], Awaitable[bool]],
    what: str,
    limit: float = WAIT_LIMIT,
) -> None:
    """`wait_for` for a predicate that must await (e.g. read the database in the executor)."""
    deadline = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
        await hass.async_block_till_done()
