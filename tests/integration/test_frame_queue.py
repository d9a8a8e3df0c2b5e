"""The frame queue on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.frame_queue import FrameQueue, QueuedFrame


def _frame(n: int, captured_at: float, camera: str = "front_door") -> QueuedFrame:
    return QueuedFrame(
        frame_id=f"f{n}",
        camera_id=camera,
        camera_name="Front Door",
        path=f"/cams/Front Door/{n}.jpg",
        content_type="image/jpeg",
        captured_at=captured_at,
        image=f"image-{n}".encode(),
    )


def _open(path: Path, max_frames: int = 100) -> FrameQueue:
    database = Database(path)
    database.open()
    queue = FrameQueue(database, max_frames)
    queue.prune()
    return queue


def test_frames_survive_reopen_in_capture_order(tmp_path: Path) -> None:
    """Pending frames come back after a restart, oldest capture first."""
    db = tmp_path / "q.db"
    queue = _open(db)
    for n, at in ((1, 30.0), (2, 10.0), (3, 20.0)):
        assert queue.enqueue(_frame(n, at), f"hash{n}").accepted
    queue.database.close()

    queue = _open(db)
    assert queue.pending_count() == 3
    assert [f.frame_id for f in queue.next_pending(set(), 10)] == ["f2", "f3", "f1"]
    assert [f.frame_id for f in queue.next_pending({"f2"}, 1)] == ["f3"]
    assert queue.next_pending(set(), 10)[0].image == b"image-2"
    queue.database.close()


def test_duplicates_are_refused_across_restarts(tmp_path: Path) -> None:
    """The same content hash is taken once, also after reopening and after completion."""
    db = tmp_path / "q.db"
    queue = _open(db)
    assert queue.enqueue(_frame(1, 1.0), "same").accepted
    assert queue.complete("f1", b"result") is not None
    queue.database.close()

    queue = _open(db)
    outcome = queue.enqueue(_frame(2, 2.0), "same")
    assert not outcome.accepted
    assert outcome.duplicate_of == "f1"
    assert queue.pending_count() == 0
    queue.database.close()


def test_complete_applies_once_and_keeps_latest_frame(tmp_path: Path) -> None:
    """A result is stored once; the camera's last frame only moves forward in capture time."""
    queue = _open(tmp_path / "q.db")
    queue.enqueue(_frame(1, 50.0), "h1")
    queue.enqueue(_frame(2, 40.0), "h2")

    done = queue.complete("f1", b"r1")
    assert done is not None
    assert done.image == b"image-1"
    assert queue.complete("f1", b"r1") is None  # second delivery: ignored
    assert queue.complete("f2", b"r2") is not None  # older capture, arrives later
    assert queue.result("f2") == b"r2"
    [last] = queue.last_frames()
    assert (last.frame_id, last.result, last.image) == ("f1", b"r1", b"image-1")
    assert queue.counters()["frames_processed"] == 2
    assert queue.pending_count() == 0
    queue.database.close()


def test_failed_results_leave_the_queue_without_becoming_last_frame(tmp_path: Path) -> None:
    """A permanent error is stored and counted, and does not replace the shown frame."""
    queue = _open(tmp_path / "q.db")
    queue.enqueue(_frame(1, 1.0), "h1")
    assert queue.record_attempt("f1") == 1
    assert queue.record_attempt("f1") == 2
    assert queue.complete("f1", b"error", failed=True) is not None
    assert queue.last_frames() == []
    assert queue.counters() == {"frames_failed": 1}
    queue.database.close()


def test_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    """Beyond the bound the oldest captures go, never silently."""
    queue = _open(tmp_path / "q.db", max_frames=3)
    for n in range(1, 4):
        assert queue.enqueue(_frame(n, float(n)), f"h{n}").dropped == ()
    outcome = queue.enqueue(_frame(4, 4.0), "h4")
    assert outcome.accepted
    assert outcome.dropped == ("f1",)
    outcome = queue.enqueue(_frame(5, 0.5), "h5")  # an old capture arriving late
    assert outcome.dropped == ("f5",)
    assert [f.frame_id for f in queue.next_pending(set(), 10)] == ["f2", "f3", "f4"]
    assert queue.counters()["frames_dropped"] == 2
    queue.database.close()


def test_cameras_remember_newest_mtime_and_baseline_is_stable(tmp_path: Path) -> None:
    """Per camera the newest mtime wins; the baseline is set once."""
    db = tmp_path / "q.db"
    queue = _open(db)
    baseline = queue.baseline()
    queue.mark_seen("front_door", "Front Door", 100.0)
    queue.mark_seen("front_door", "Front Door", 50.0)
    queue.mark_seen("garage", "Garage", None)
    queue.database.close()

    queue = _open(db)
    assert queue.baseline() == baseline
    assert queue.cameras() == {"front_door": ("Front Door", 100.0), "garage": ("Garage", None)}
    queue.database.close()
