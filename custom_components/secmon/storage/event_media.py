"""Each security event's own pictures on disk: its full snapshot and a small thumbnail, both
with the detections drawn, in one folder per event under the entry's media folder.

Written when a verdict arrives, from the frame the verdict names, so they stay when the camera's
uploads are cleaned up. The folder's name is a hash of the event id (the id comes from the
sidecar: never part of a path). Every method blocks: run them in the executor.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageOps

from ..ingest.imaging import Box, render_detections
from ..verdicts.records import VerdictRecord
from .event_clip import render_event_clip
from .frame_queue import FrameQueue

THUMBNAIL_SIZE = (320, 240)
SNAPSHOT_NAME = "snapshot.jpg"
THUMBNAIL_NAME = "thumbnail.jpg"
CLIP_NAME = "clip.mp4"


def render_thumbnail(image: bytes, boxes: list[Box]) -> bytes:
    """The image shrunk to fit THUMBNAIL_SIZE (aspect kept), its boxes drawn at that size."""
    with Image.open(io.BytesIO(image)) as src:
        upright = (ImageOps.exif_transpose(src) or src).convert("RGB")
    width = upright.width
    upright.thumbnail(THUMBNAIL_SIZE)
    scale = upright.width / width
    small = io.BytesIO()
    upright.save(small, "JPEG", quality=85)
    scaled = [
        replace(
            box,
            x_min=box.x_min * scale,
            y_min=box.y_min * scale,
            x_max=box.x_max * scale,
            y_max=box.y_max * scale,
        )
        for box in boxes
    ]
    return render_detections(small.getvalue(), scaled)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class EventMedia:
    """The media folder of one entry."""

    def __init__(self, root: Path, frames: FrameQueue) -> None:
        """`root`: the entry's media folder; pictures are drawn on `frames`' images."""
        self.root = root
        self.frames = frames

    def folder(self, event_id: str) -> Path:
        """Where an event's files live (not created)."""
        name = hashlib.sha256(event_id.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.root / "events" / name

    def store_pictures(self, record: VerdictRecord) -> bool:
        """Draw and store the verdict's snapshot and thumbnail in its event's folder (the
        event's newest verdict with a picture wins); False if its frame is gone."""
        frame_id = record.message.snapshot_frame_id
        image = self.frames.frame_image(frame_id) if frame_id else None
        if image is None:
            return False
        boxes = record.snapshot_boxes
        try:
            snapshot = render_detections(image, boxes)
            thumbnail = render_thumbnail(image, boxes)
        except (OSError, ValueError, SyntaxError):
            return False
        folder = self.folder(record.event_id)
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / SNAPSHOT_NAME, snapshot)
        _write_atomically(folder / THUMBNAIL_NAME, thumbnail)
        self._record(
            record.event_id, record.camera_id, picture_bytes=len(snapshot) + len(thumbnail)
        )
        return True

    def store_event_clip(self, record: VerdictRecord) -> bool:
        """Make and store the event's clip from the verdict's frames (see event_clip.py);
        False if none of its frames is left."""
        folder = self.folder(record.event_id)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{folder.name}.{CLIP_NAME}.tmp"
        try:
            if render_event_clip(self.frames, list(record.message.frame_ids), tmp) is None:
                return False
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, folder / CLIP_NAME)
        finally:
            tmp.unlink(missing_ok=True)
        self._record(
            record.event_id, record.camera_id, clip_bytes=(folder / CLIP_NAME).stat().st_size
        )
        return True

    def store_clip(self, event_id: str, camera_id: str, clip: bytes) -> None:
        """Store an event's clip (CLIP_NAME) in its folder."""
        folder = self.folder(event_id)
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / CLIP_NAME, clip)
        self._record(event_id, camera_id, clip_bytes=len(clip))

    def remove_clip(self, event_id: str) -> None:
        """Remove an event's clip (its pictures stay)."""
        (self.folder(event_id) / CLIP_NAME).unlink(missing_ok=True)
        with self.frames.database.connection() as db:
            db.execute("UPDATE event_media SET clip_bytes = 0 WHERE event_id = ?", (event_id,))

    def _record(
        self,
        event_id: str,
        camera_id: str,
        *,
        picture_bytes: int | None = None,
        clip_bytes: int | None = None,
    ) -> None:
        """Note an event's media sizes (the disk cap adds them up)."""
        with self.frames.database.connection() as db:
            db.execute(
                "INSERT INTO event_media (event_id, camera_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                (event_id, camera_id, time.time()),
            )
            if picture_bytes is not None:
                db.execute(
                    "UPDATE event_media SET picture_bytes = ? WHERE event_id = ?",
                    (picture_bytes, event_id),
                )
            if clip_bytes is not None:
                db.execute(
                    "UPDATE event_media SET clip_bytes = ? WHERE event_id = ?",
                    (clip_bytes, event_id),
                )

    def with_clips(self, event_ids: list[str]) -> set[str]:
        """Which of these events have a stored clip."""
        if not event_ids:
            return set()
        marks = ",".join("?" * len(event_ids))
        with self.frames.database.connection() as db:
            rows = db.execute(
                f"SELECT event_id FROM event_media WHERE clip_bytes > 0 AND event_id IN ({marks})",
                event_ids,
            ).fetchall()
        return {str(row[0]) for row in rows}

    def read(self, event_id: str, name: str) -> bytes | None:
        """One of an event's files (SNAPSHOT_NAME, THUMBNAIL_NAME, ...), None if it has none."""
        try:
            return (self.folder(event_id) / name).read_bytes()
        except OSError:
            return None
