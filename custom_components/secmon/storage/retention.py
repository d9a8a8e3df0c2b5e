"""Retention: how long events and their media stay, a disk cap on the media, and (optionally)
removing camera uploads once analysed.

Run periodically in bounded steps: each `step` does at most `budget` removals and says whether
there is more to do, so the caller can yield between steps. Every method blocks: run them in the
executor. `now` is passed in (tests move the clock).

- Events older than `keep_events_days` leave the verdict history, with their media.
- Event clips older than `keep_clips_days` are removed (the event's pictures stay).
- While the media (snapshots, thumbnails, clips) take more than `cap_bytes`, the oldest events'
  media are removed; those younger than `keep_events_days` are reported (repair issue).
- With `delete_uploads_days`, uploaded files analysed (every frame of them has its result, none
  is waiting) more than that many days ago are deleted from the camera folders. A file never
  analysed is never deleted.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .database import Database
from .event_media import EventMedia

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The options, in the units retention works in."""

    keep_events_days: float
    keep_clips_days: float
    cap_bytes: int
    # None: never delete uploads.
    delete_uploads_days: float | None = None


@dataclass(slots=True)
class RetentionReport:
    """What one run removed, and the media's size after it."""

    events_removed: int = 0
    clips_removed: int = 0
    media_removed_by_cap: int = 0
    # Of those, events younger than keep_events_days.
    removed_early: list[str] = field(default_factory=list)
    uploads_removed: int = 0
    media_bytes: int = 0


class Retention:
    """Retention for one entry: its database, media folder and camera root."""

    def __init__(
        self,
        database: Database,
        media: EventMedia,
        camera_root: Path,
        is_allowed: Callable[[str], bool],
    ) -> None:
        """`is_allowed` is `hass.config.is_allowed_path` (uploads are deleted only inside)."""
        self.database = database
        self.media = media
        self.camera_root = camera_root
        self.is_allowed = is_allowed

    def media_bytes(self) -> int:
        """Bytes the events' media take (as recorded when written)."""
        with self.database.connection() as db:
            (total,) = db.execute(
                "SELECT COALESCE(SUM(picture_bytes + clip_bytes), 0) FROM event_media"
            ).fetchone()
        return int(total)

    def step(
        self, policy: RetentionPolicy, now: float, report: RetentionReport, budget: int = 100
    ) -> bool:
        """Up to `budget` removals, added to `report`; True when nothing is left to do."""
        left = budget
        for task in (self._old_events, self._old_clips, self._over_cap, self._old_uploads):
            left -= task(policy, now, report, left)
            if left <= 0:
                report.media_bytes = self.media_bytes()
                return False
        report.media_bytes = self.media_bytes()
        return True

    def _old_events(
        self, policy: RetentionPolicy, now: float, report: RetentionReport, budget: int
    ) -> int:
        cutoff = now - policy.keep_events_days * DAY
        with self.database.transaction() as db:
            rows = db.execute(
                "SELECT DISTINCT event_id FROM verdicts WHERE received_at < ?"
                " AND event_id NOT IN (SELECT event_id FROM verdicts WHERE received_at >= ?)"
                " LIMIT ?",
                (cutoff, cutoff, budget),
            ).fetchall()
            events = [str(r[0]) for r in rows]
            # Media of events no longer in the history (pruned by count, or above).
            orphans = db.execute(
                "SELECT event_id FROM event_media WHERE created_at < ? AND event_id NOT IN"
                " (SELECT event_id FROM verdicts) LIMIT ?",
                (cutoff, budget),
            ).fetchall()
            for event_id in events:
                # A camera's current verdict stays in camera_risk regardless (its sensors).
                db.execute("DELETE FROM verdicts WHERE event_id = ?", (event_id,))
        for event_id in {*events, *(str(r[0]) for r in orphans)}:
            self._remove_media(event_id)
        report.events_removed += len(events)
        return max(len(events), len(orphans))

    def _old_clips(
        self, policy: RetentionPolicy, now: float, report: RetentionReport, budget: int
    ) -> int:
        cutoff = now - policy.keep_clips_days * DAY
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT event_id FROM event_media WHERE clip_bytes > 0 AND created_at < ?"
                " ORDER BY created_at LIMIT ?",
                (cutoff, budget),
            ).fetchall()
        for (event_id,) in rows:
            self.media.remove_clip(str(event_id))
        report.clips_removed += len(rows)
        return len(rows)

    def _over_cap(
        self, policy: RetentionPolicy, now: float, report: RetentionReport, budget: int
    ) -> int:
        young = now - policy.keep_events_days * DAY
        removed = 0
        total = self.media_bytes()
        while total > policy.cap_bytes and removed < budget:
            with self.database.connection() as db:
                row = db.execute(
                    "SELECT event_id, created_at, picture_bytes + clip_bytes FROM event_media"
                    " ORDER BY created_at, rowid LIMIT 1"
                ).fetchone()
            if row is None:
                break
            event_id, created_at, size = str(row[0]), float(row[1]), int(row[2])
            self._remove_media(event_id)
            total -= size
            removed += 1
            report.media_removed_by_cap += 1
            if created_at >= young:
                report.removed_early.append(event_id)
        return removed

    def _old_uploads(
        self, policy: RetentionPolicy, now: float, report: RetentionReport, budget: int
    ) -> int:
        if policy.delete_uploads_days is None:
            return 0
        cutoff = now - policy.delete_uploads_days * DAY
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT path FROM analysed_files WHERE analysed_at < ?"
                " AND path NOT IN (SELECT path FROM frames) ORDER BY analysed_at LIMIT ?",
                (cutoff, budget),
            ).fetchall()
        root = os.path.realpath(self.camera_root)
        for (path,) in rows:
            if self._delete_upload(str(path), root, cutoff):
                report.uploads_removed += 1
            with self.database.connection() as db:
                db.execute("DELETE FROM analysed_files WHERE path = ?", (path,))
        return len(rows)

    def _delete_upload(self, path: str, root: str, cutoff: float) -> bool:
        """Delete an analysed upload: a regular file (not a link) inside the camera root and the
        allowed folders, itself older than the cutoff (a file replaced since is kept)."""
        resolved = os.path.realpath(path)
        if os.path.commonpath([resolved, root]) != root or not self.is_allowed(resolved):
            return False
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
            return False
        try:
            os.unlink(path)
        except OSError:
            return False
        return True

    def _remove_media(self, event_id: str) -> None:
        shutil.rmtree(self.media.folder(event_id), ignore_errors=True)
        with self.database.connection() as db:
            db.execute("DELETE FROM event_media WHERE event_id = ?", (event_id,))
