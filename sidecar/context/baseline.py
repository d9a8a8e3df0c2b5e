"""What is normal: per camera, label and hour of the week, a decayed count of the batches that had
that label, kept in the state file.

A batch adds 1 to the slot of each of its labels (the hour of the week of its start, in the home's
time zone); every weight decays exponentially with the time since it was last changed (half-life
`HALF_LIFE_S`). A slot's rate in batches per week is its weight divided by the weeks of history the
weight stands for: `tau * (1 - exp(-age / tau))` weeks, where `tau` is the decay's time constant and
`age` the time since the camera's first recorded batch (at least one week), so a young camera's rate
is not understated.

A batch's normality is read before the batch is recorded (it never counts itself), and recording is
idempotent per batch id (a verdict produced again after a restart counts once). The methods are
synchronous; callers on the event loop run them on the state file's thread (`StateDatabase.run`).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..storage.database import StateDatabase

DAY_S = 24 * 3600.0
WEEK_S = 7 * DAY_S
HALF_LIFE_S = 28 * DAY_S
_TAU_S = HALF_LIFE_S / math.log(2)
# Under this much history the baseline says it is still learning (no anomaly figure).
MIN_HISTORY_S = WEEK_S
# Batch ids recorded are remembered this long (longer than any verdict's re-production).
_RECORDED_RETENTION_S = 2 * DAY_S
# Rates (batches a week at this hour) below which a label is "never", "rare", "occasional".
_NEVER, _RARE, _OCCASIONAL = 0.05, 0.5, 2.0


@dataclass(frozen=True, slots=True)
class LabelNormality:
    label: str
    per_week: float
    # "never", "rare", "occasional" or "usual" (at this camera at this hour of the week).
    level: str


@dataclass(frozen=True, slots=True)
class Normality:
    """How usual a batch's labels are at its camera and hour of the week."""

    hour_of_week: int
    history_days: float
    labels: tuple[LabelNormality, ...]

    @property
    def learning(self) -> bool:
        return self.history_days * DAY_S < MIN_HISTORY_S

    @property
    def anomaly(self) -> float:
        """0 (usual) .. 1 (never seen at this hour): 1 / (1 + rate) of the batch's least usual
        label; 0 while the baseline is learning."""
        if self.learning or not self.labels:
            return 0.0
        return round(max(1.0 / (1.0 + n.per_week) for n in self.labels), 3)


def hour_of_week(moment: datetime) -> int:
    """0 = Monday 00:00-01:00 ... 167 = Sunday 23:00-24:00, of the moment's own time zone."""
    return moment.weekday() * 24 + moment.hour


def level_of(per_week: float) -> str:
    if per_week < _NEVER:
        return "never"
    if per_week < _RARE:
        return "rare"
    if per_week < _OCCASIONAL:
        return "occasional"
    return "usual"


def _decayed(weight: float, since_s: float) -> float:
    return weight * math.exp(-max(0.0, since_s) / _TAU_S)


def _weight_now(db: sqlite3.Connection, camera_id: str, label: str, slot: int, now: float) -> float:
    """The slot's count for `label`, decayed to `now` (0 when it was never counted)."""
    cell = db.execute(
        "SELECT weight, updated_at FROM activity_baseline "
        "WHERE camera_id = ? AND label = ? AND hour_of_week = ?",
        (camera_id, label, slot),
    ).fetchone()
    return _decayed(float(cell[0]), now - float(cell[1])) if cell else 0.0


class ActivityBaseline:
    def __init__(self, database: StateDatabase) -> None:
        self.database = database

    def normality(self, camera_id: str, labels: Iterable[str], local_start: datetime) -> Normality:
        """How usual `labels` are at `camera_id` in the hour of the week of `local_start` (a time
        in the home's time zone), from the batches recorded so far."""
        now = self.database.now()
        db = self.database.connection
        slot = hour_of_week(local_start)
        row = db.execute(
            "SELECT first_seen FROM activity_cameras WHERE camera_id = ?", (camera_id,)
        ).fetchone()
        age_s = max(0.0, now - float(row[0])) if row else 0.0
        weeks = _TAU_S / WEEK_S * (1.0 - math.exp(-max(age_s, WEEK_S) / _TAU_S))
        found: list[LabelNormality] = []
        for label in dict.fromkeys(labels):
            weight = _weight_now(db, camera_id, label, slot, now)
            per_week = round(weight / weeks, 2)
            found.append(LabelNormality(label, per_week, level_of(per_week)))
        return Normality(slot, round(age_s / DAY_S, 1), tuple(found))

    def record(
        self, batch_id: str, camera_id: str, labels: Iterable[str], local_start: datetime
    ) -> bool:
        """Count one batch with `labels` in its camera's slot; False when it was counted before."""
        now = self.database.now()
        slot = hour_of_week(local_start)
        with self.database.transaction() as db:
            added = db.execute(
                "INSERT OR IGNORE INTO activity_batches (batch_id, recorded_at) VALUES (?, ?)",
                (batch_id, now),
            ).rowcount
            if not added:
                return False
            db.execute(
                "INSERT OR IGNORE INTO activity_cameras (camera_id, first_seen) VALUES (?, ?)",
                (camera_id, now),
            )
            for label in dict.fromkeys(labels):
                weight = _weight_now(db, camera_id, label, slot, now)
                db.execute(
                    "INSERT OR REPLACE INTO activity_baseline "
                    "(camera_id, label, hour_of_week, weight, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (camera_id, label, slot, weight + 1.0, now),
                )
            db.execute(
                "DELETE FROM activity_batches WHERE recorded_at < ?",
                (now - _RECORDED_RETENTION_S,),
            )
        return True
