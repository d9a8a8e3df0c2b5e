"""The announcement rule and the verdict store (real SQLite): idempotency, current verdict per
camera, snapshot, retention."""

from __future__ import annotations

import io
from collections.abc import Generator
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.storage import verdict_store
from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.frame_queue import FrameQueue, QueuedFrame
from custom_components.secmon.storage.verdict_store import VerdictStore
from custom_components.secmon.verdicts.records import VerdictRecord, level_for_score
from custom_components.secmon.verdicts.rule import PriorVerdict, decide

from .helpers import image_bytes

LEVELS = {
    "low": secmon_pb2.RISK_LEVEL_LOW,
    "medium": secmon_pb2.RISK_LEVEL_MEDIUM,
    "high": secmon_pb2.RISK_LEVEL_HIGH,
    "critical": secmon_pb2.RISK_LEVEL_CRITICAL,
}


def verdict(
    batch: str,
    *,
    fast: bool = False,
    level: str = "medium",
    score: int = 40,
    camera: str = "front_door",
    started: float = 1_000.0,
    snapshot_frame: str = "",
) -> VerdictRecord:
    """A verdict as the sidecar sends it."""
    message = secmon_pb2.Verdict(
        verdict_id=f"{batch}:{'fast' if fast else 'final'}",
        event_id=batch,
        batch_id=batch,
        camera_id=camera,
        camera_name="Front Door",
        risk_score=score,
        risk_level=LEVELS[level],
        summary="Someone at the door",
        fast_path=fast,
        snapshot_frame_id=snapshot_frame,
        snapshot_detections=[
            secmon_pb2.Detection(
                label="person",
                confidence=0.9,
                box=secmon_pb2.Box(x_min=10, y_min=10, x_max=100, y_max=200),
            )
        ],
    )
    message.started_at.FromSeconds(int(started))
    message.created_at.FromSeconds(int(started) + (1 if fast else 60))
    return VerdictRecord.from_message(message)


@pytest.mark.parametrize(
    ("record", "prior", "announce", "update", "show"),
    [
        # First verdict of an event: announce.
        (verdict("b", fast=True), [], True, False, True),
        (verdict("b"), [], True, False, True),
        # Batch verdict after the fast one: announce again only if the level went up.
        (verdict("b", level="high"), [PriorVerdict(True, 1, True)], True, True, True),
        (verdict("b", level="medium"), [PriorVerdict(True, 1, True)], False, True, True),
        (verdict("b", level="low"), [PriorVerdict(True, 2, True)], False, True, True),
        # A fast-path verdict after its batch verdict is stale.
        (verdict("b", fast=True), [PriorVerdict(False, 1, True)], False, True, False),
    ],
)
def test_announcement_rule(
    record: VerdictRecord, prior: list[PriorVerdict], announce: bool, update: bool, show: bool
) -> None:
    """Announce once per event, again only when the risk level rises."""
    decision = decide(record, prior)
    assert (decision.announce, decision.update, decision.show) == (announce, update, show)


def test_level_from_score_when_missing() -> None:
    """A verdict without a level gets the level of its score band; scores are clamped."""
    assert [level_for_score(s) for s in (0, 29, 30, 59, 60, 84, 85, 100)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]
    record = VerdictRecord.from_message(secmon_pb2.Verdict(verdict_id="x", risk_score=130))
    assert (record.risk_score, record.risk_level) == (100, "critical")


@pytest.fixture
def queue(tmp_path: Path) -> Generator[FrameQueue]:
    """An open frame queue (its database is the one verdicts share)."""
    db = Database(tmp_path / "secmon.db")
    db.open()
    queue = FrameQueue(db, max_frames=100)
    queue.prune()
    try:
        yield queue
    finally:
        db.close()


def analysed_frame(queue: FrameQueue, tmp_path: Path, frame_id: str, seed: int) -> bytes:
    """A frame taken from a file, analysed and completed (its image then lives only in the file,
    unless it is the camera's latest)."""
    data = image_bytes(seed, size=(400, 300))
    path = tmp_path / f"{frame_id}.jpg"
    path.write_bytes(data)
    frame = QueuedFrame(frame_id, "front_door", "Front Door", str(path), "image/jpeg", seed, data)
    assert queue.enqueue(frame, content_hash=frame_id).accepted
    assert queue.complete(frame_id, secmon_pb2.FrameResult(frame_id=frame_id).SerializeToString())
    return data


def test_store_is_idempotent_and_tracks_the_current_verdict(
    queue: FrameQueue, tmp_path: Path
) -> None:
    """Stored once; the current verdict is the latest event's, batch over fast; the snapshot is
    rendered from the frame's file and kept for the event when the batch verdict has none."""
    store = VerdictStore(queue.database, queue)
    analysed_frame(queue, tmp_path, "f1", 1)
    analysed_frame(queue, tmp_path, "f2", 2)

    fast = verdict("b1", fast=True, level="high", score=70, snapshot_frame="f1")
    first = store.receive(fast)
    assert first is not None
    assert first.decision.announce and first.current
    assert first.snapshot is not None
    with Image.open(io.BytesIO(first.snapshot)) as img:
        assert img.size == (400, 300)
    assert store.receive(fast) is None, "a verdict stored before is not applied again"

    # The batch verdict's snapshot frame is gone: the event keeps the fast-path picture.
    final = verdict("b1", level="medium", score=45, snapshot_frame="missing")
    second = store.receive(final)
    assert second is not None
    assert not second.decision.announce and second.current
    assert second.snapshot == first.snapshot

    # A later event without a picture does not show the earlier event's.
    later = verdict("b2", level="low", score=5, started=2_000.0, snapshot_frame="missing")
    third = store.receive(later)
    assert third is not None and third.current and third.snapshot is None

    # An older event's verdict arriving late is stored but does not become current.
    stale = verdict("b0", level="critical", score=90, started=500.0, snapshot_frame="f2")
    fourth = store.receive(stale)
    assert fourth is not None and fourth.decision.announce and not fourth.current

    (risk,) = store.camera_risks()
    assert risk.record.verdict_id == "b2:final"
    assert store.count() == 4
    assert [h.record.verdict_id for h in store.history(10)] == [
        "b0:final",
        "b2:final",
        "b1:final",
        "b1:fast",
    ]


def test_retention(queue: FrameQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """History is bounded by count and age; each camera's current verdict survives."""
    monkeypatch.setattr(verdict_store, "VERDICTS_KEPT", 3)
    store = VerdictStore(queue.database, queue)
    for n in range(5):
        assert store.receive(verdict(f"b{n}", started=1_000.0 + n)) is not None
    assert [h.record.verdict_id for h in store.history(10)] == ["b4:final", "b3:final", "b2:final"]

    monkeypatch.setattr(verdict_store, "time", SimpleNamespace(time=lambda: 1e10))
    assert store.receive(verdict("b9", camera="garage")) is not None
    assert [h.record.verdict_id for h in store.history(10)] == ["b9:final"]
    assert {r.camera_id: r.record.verdict_id for r in store.camera_risks()} == {
        "front_door": "b4:final",
        "garage": "b9:final",
    }
