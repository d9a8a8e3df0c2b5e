"""Batching rules with a controlled clock: window, idle, fast path, one batch per camera."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sidecar.domain import Box, Detection, FrameObservation
from sidecar.events.batching import BatchingRules, EventBatcher
from sidecar.events.payloads import (
    batch_from_json,
    batch_to_json,
    frame_row_from_json,
    frame_row_to_json,
)

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def frame(
    fid: str, camera: str = "front_door", *labels: tuple[str, float], at: float = 0.0
) -> FrameObservation:
    dets = tuple(Detection(label, 0, conf, Box(10, 10, 50, 80)) for label, conf in labels)
    return FrameObservation(
        fid, camera, camera.replace("_", " ").title(), T0 + timedelta(seconds=at), 100, 100, dets
    )


def test_empty_frames_open_no_batch() -> None:
    batcher = EventBatcher()
    outcome = batcher.add(frame("f1"), now=0)
    assert outcome.batch is None and batcher.open_batches == []


def test_labels_of_interest_filter_detections() -> None:
    batcher = EventBatcher(BatchingRules(labels_of_interest=frozenset({"person"})))
    assert batcher.add(frame("f1", "yard", ("bird", 0.9)), now=0).batch is None
    outcome = batcher.add(frame("f2", "yard", ("bird", 0.9), ("person", 0.6)), now=1)
    assert outcome.batch is not None
    assert [d.label for d in outcome.batch.frames[0].detections] == ["person"]


def test_one_batch_per_camera_and_idle_close() -> None:
    batcher = EventBatcher(BatchingRules(window_s=90, idle_s=30))
    a = batcher.add(frame("a1", "front_door", ("car", 0.6)), now=0).batch
    b = batcher.add(frame("b1", "garage", ("car", 0.6)), now=1).batch
    a2 = batcher.add(frame("a2", "front_door", ("car", 0.7), at=20), now=20).batch
    assert a is a2 and a is not b
    assert {x.camera_id for x in batcher.open_batches} == {"front_door", "garage"}
    assert batcher.due(now=30.9) == []
    closed = batcher.due(now=31)  # garage idle since 1
    assert [(c.batch.camera_id, c.reason) for c in closed] == [("garage", "idle")]
    closed = batcher.due(now=50)  # front door idle since 20
    assert [(c.batch.batch_id, c.reason) for c in closed] == [(a.batch_id, "idle")]
    assert a.frame_ids == {"a1", "a2"}


def test_window_closes_busy_batch() -> None:
    batcher = EventBatcher(BatchingRules(window_s=90, idle_s=30))
    first = batcher.add(frame("f0", "drive", ("car", 0.6)), now=0).batch
    for t in range(10, 90, 10):
        assert batcher.add(frame(f"f{t}", "drive", ("car", 0.6), at=t), now=t).batch is first
        assert batcher.due(now=t) == []
    assert batcher.next_deadline() == 90
    closed = batcher.due(now=90)
    assert [(c.batch.batch_id, c.reason) for c in closed] == [(first.batch_id, "window")]
    # The next detection opens a new batch.
    nxt = batcher.add(frame("g", "drive", ("car", 0.6), at=91), now=91).batch
    assert nxt is not None and nxt.batch_id != first.batch_id


def test_expired_batch_closes_when_next_frame_arrives_before_the_timer() -> None:
    batcher = EventBatcher(BatchingRules(window_s=90, idle_s=30))
    first = batcher.add(frame("f0", "drive", ("car", 0.6)), now=0).batch
    outcome = batcher.add(frame("f1", "drive", ("car", 0.6), at=40), now=40)
    assert [(c.batch.batch_id, c.reason) for c in outcome.closed] == [(first.batch_id, "idle")]
    assert outcome.batch is not None and outcome.batch.batch_id != first.batch_id


def test_replayed_backlog_is_split_by_capture_time() -> None:
    """Frames captured an hour apart arriving together are different events."""
    batcher = EventBatcher(BatchingRules(window_s=90, idle_s=30))
    first = batcher.add(frame("old", "drive", ("car", 0.6), at=0), now=5000).batch
    outcome = batcher.add(frame("new", "drive", ("car", 0.6), at=3600), now=5000.1)
    assert [c.batch.batch_id for c in outcome.closed] == [first.batch_id]
    assert outcome.batch is not first


def test_fast_path_once_per_batch_and_frame_stays_in_batch() -> None:
    batcher = EventBatcher(BatchingRules(fast_path_confidence=0.9))
    low = batcher.add(frame("f1", "door", ("person", 0.85)), now=0)
    assert low.fast_path is None
    hit = batcher.add(frame("f2", "door", ("person", 0.95), ("car", 0.99)), now=1)
    assert hit.fast_path is not None
    assert hit.fast_path.detection.label == "person" and hit.fast_path.detection.confidence == 0.95
    assert hit.fast_path.frame.frame_id == "f2"
    assert "f2" in hit.batch.frame_ids if hit.batch else False
    again = batcher.add(frame("f3", "door", ("person", 0.99)), now=2)
    assert again.fast_path is None  # the event already has its fast verdict
    # A car with 0.99 is not a fast-path label by default.
    other = EventBatcher().add(frame("c1", "yard", ("car", 0.99)), now=0)
    assert other.fast_path is None


def test_fast_path_configurable_and_disableable() -> None:
    rules = BatchingRules(fast_path_labels=frozenset({"car"}), fast_path_confidence=0.5)
    assert EventBatcher(rules).add(frame("c", "yard", ("car", 0.6)), now=0).fast_path is not None
    off = BatchingRules(fast_path_enabled=False)
    assert EventBatcher(off).add(frame("p", "yard", ("person", 0.99)), now=0).fast_path is None


def test_duplicate_frame_is_not_added_twice() -> None:
    batcher = EventBatcher()
    batcher.add(frame("f1", "door", ("person", 0.95)), now=0)
    dup = batcher.add(frame("f1", "door", ("person", 0.95)), now=1)
    assert dup.duplicate and dup.fast_path is None
    assert dup.batch is not None and len(dup.batch.frames) == 1


def test_batch_round_trips_through_json() -> None:
    batcher = EventBatcher()
    batch = batcher.add(frame("f1", "door", ("person", 0.95)), now=3).batch
    assert batch is not None
    # The header goes into the batch row, each frame into a row of its own.
    rows = [frame_row_to_json(f) for f in batch.frames]
    again = batch_from_json(batch_to_json(batch), [frame_row_from_json(r) for r in rows])
    assert again == batch
    assert again.has_frame("f1") and again.capture_span() == batch.capture_span()
    restored = EventBatcher()
    restored.restore([again])
    assert restored.due(now=3 + 30) and not restored.open_batches
