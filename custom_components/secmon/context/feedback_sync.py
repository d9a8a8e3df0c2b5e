"""The owner's feedback (secmon.feedback) as the sidecar takes it: each judgement with what its
event was (camera, labels, start, score, identities), sent when given and again on every new
session (the sidecar keeps one per event, so re-sending is harmless); and the counts per camera
for diagnostics and the risk level sensor."""

from __future__ import annotations

import time

from ..link.proto import secmon_pb2
from ..storage.database import Database
from ..verdicts.records import VerdictRecord

# Judgements older than this are not sent again on a new session (the sidecar uses 90 days).
RESEND_S = 90 * 24 * 3600.0
RESEND_MAX = 500


def feedback_messages(
    database: Database, event_id: str | None = None
) -> list[secmon_pb2.ClientMessage]:
    """The judgement of `event_id` (None: every recent one) as stream messages."""
    where: str = "WHERE f.given_at >= ?"
    args: tuple[float | str, ...] = (time.time() - RESEND_S,)
    if event_id is not None:
        where, args = "WHERE f.event_id = ?", (event_id,)
    with database.connection() as db:
        rows = db.execute(
            "SELECT f.event_id, f.verdict, f.note, f.given_at, v.verdict FROM feedback f "
            f"JOIN verdicts v ON v.event_id = f.event_id {where} "
            "ORDER BY f.given_at DESC, v.fast_path ASC LIMIT ?",
            (*args, RESEND_MAX * 2),
        ).fetchall()
    messages: dict[str, secmon_pb2.ClientMessage] = {}
    for found_id, verdict, note, given_at, blob in rows:
        if found_id in messages:  # the batch verdict came first; its fast one adds nothing
            continue
        record = VerdictRecord.from_bytes(bytes(blob))
        feedback = secmon_pb2.Feedback(
            event_id=found_id,
            camera_id=record.camera_id,
            labels=list(record.labels),
            verdict=verdict,
            note=note,
            risk_score=record.risk_score,
            identities=[o.identity for o in record.message.objects if o.identity],
        )
        feedback.started_at.CopyFrom(record.message.started_at)
        feedback.given_at.FromNanoseconds(int(float(given_at) * 1e9))
        messages[found_id] = secmon_pb2.ClientMessage(feedback=feedback)
    return list(messages.values())[:RESEND_MAX]


def feedback_counts(database: Database) -> dict[str, dict[str, int]]:
    """Judged events per camera and verdict ("false_alarm", "confirmed")."""
    with database.connection() as db:
        rows = db.execute(
            "SELECT v.camera_id, f.verdict, COUNT(DISTINCT f.event_id) FROM feedback f "
            "JOIN verdicts v ON v.event_id = f.event_id GROUP BY v.camera_id, f.verdict"
        ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for camera_id, verdict, count in rows:
        counts.setdefault(camera_id, {})[verdict] = int(count)
    return counts
