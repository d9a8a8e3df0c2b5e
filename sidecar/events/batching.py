"""Per-camera event batching rules. Pure logic: the caller passes the clock (`now`, epoch seconds).

- At most one open batch per camera.
- A batch closes `window_s` after it opened or `idle_s` after its last detection, whichever is
  first.
- Only frames with detections of interest join (and open) batches.
- Fast path: a detection whose label is a fast-path label with confidence >= the threshold asks for
  an immediate verdict of its own, at most once per batch; the frame still joins the batch. The
  fast-path verdict and the batch's verdict share the batch's event id, so the later one updates
  the event.
- Replayed backlogs (frames captured long ago) are split by capture time with the same window and
  idle limits, so hours of catch-up never collapse into one batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..domain import Detection, FrameObservation


@dataclass(frozen=True, slots=True)
class BatchingRules:
    """How a camera's detections become batches. These defaults are the sidecar's: its flags
    (server/config.py) start from them, and a client's StreamConfig.batching overrides them."""

    window_s: float = 90.0
    idle_s: float = 30.0
    fast_path_labels: frozenset[str] = frozenset({"person"})
    fast_path_confidence: float = 0.90
    fast_path_enabled: bool = True
    # Empty: every label is of interest.
    labels_of_interest: frozenset[str] = frozenset()

    def of_interest(self, detections: tuple[Detection, ...]) -> tuple[Detection, ...]:
        if not self.labels_of_interest:
            return detections
        return tuple(d for d in detections if d.label in self.labels_of_interest)

    def fast_path_detection(self, detections: tuple[Detection, ...]) -> Detection | None:
        if not self.fast_path_enabled:
            return None
        hits = [
            d
            for d in detections
            if d.label in self.fast_path_labels and d.confidence >= self.fast_path_confidence
        ]
        return max(hits, key=lambda d: d.confidence, default=None)


@dataclass(slots=True)
class OpenBatch:
    batch_id: str
    camera_id: str
    camera_name: str
    opened_at: float  # sidecar clock when the batch opened
    last_detection_at: float  # sidecar clock of its last frame
    frames: list[FrameObservation] = field(default_factory=list)
    fast_path_sent: bool = False

    @property
    def event_id(self) -> str:
        return self.batch_id

    @property
    def frame_ids(self) -> set[str]:
        return {f.frame_id for f in self.frames}


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    batch: OpenBatch
    reason: str  # "window", "idle", "shutdown", "flush"


@dataclass(frozen=True, slots=True)
class FastPathRequest:
    batch: OpenBatch
    frame: FrameObservation
    detection: Detection


@dataclass(slots=True)
class AddOutcome:
    batch: OpenBatch | None = None
    closed: list[ClosedBatch] = field(default_factory=list)
    fast_path: FastPathRequest | None = None
    duplicate: bool = False


class EventBatcher:
    def __init__(self, rules: BatchingRules | None = None) -> None:
        self.rules = rules or BatchingRules()
        self._open: dict[str, OpenBatch] = {}

    @property
    def open_batches(self) -> list[OpenBatch]:
        return list(self._open.values())

    def restore(self, batches: list[OpenBatch]) -> None:
        for batch in batches:
            self._open[batch.camera_id] = batch

    def add(self, frame: FrameObservation, now: float) -> AddOutcome:
        outcome = AddOutcome()
        interesting = self.rules.of_interest(frame.detections)
        if not interesting:
            return outcome
        frame = FrameObservation(
            frame.frame_id,
            frame.camera_id,
            frame.camera_name,
            frame.captured_at,
            frame.width,
            frame.height,
            interesting,
        )
        batch = self._open.get(frame.camera_id)
        if batch is not None and frame.frame_id in batch.frame_ids:
            outcome.batch, outcome.duplicate = batch, True
            return outcome
        if batch is not None:
            reason = self._expiry(batch, now) or self._capture_gap(batch, frame)
            if reason:
                outcome.closed.append(ClosedBatch(self._open.pop(frame.camera_id), reason))
                batch = None
        if batch is None:
            batch = OpenBatch(
                batch_id=uuid.uuid4().hex,
                camera_id=frame.camera_id,
                camera_name=frame.camera_name,
                opened_at=now,
                last_detection_at=now,
            )
            self._open[frame.camera_id] = batch
        batch.frames.append(frame)
        batch.last_detection_at = now
        batch.camera_name = frame.camera_name or batch.camera_name
        outcome.batch = batch
        if not batch.fast_path_sent:
            hit = self.rules.fast_path_detection(interesting)
            if hit is not None:
                batch.fast_path_sent = True
                outcome.fast_path = FastPathRequest(batch, frame, hit)
        return outcome

    def due(self, now: float) -> list[ClosedBatch]:
        """Close and return every batch whose window or idle time has run out."""
        closed = []
        for camera_id, batch in list(self._open.items()):
            reason = self._expiry(batch, now)
            if reason:
                closed.append(ClosedBatch(self._open.pop(camera_id), reason))
        return closed

    def close_all(self, reason: str) -> list[ClosedBatch]:
        closed = [ClosedBatch(batch, reason) for batch in self._open.values()]
        self._open.clear()
        return closed

    def next_deadline(self) -> float | None:
        """Sidecar-clock time at which the next batch expires, if any is open."""
        return min(
            (
                min(b.opened_at + self.rules.window_s, b.last_detection_at + self.rules.idle_s)
                for b in self._open.values()
            ),
            default=None,
        )

    def _expiry(self, batch: OpenBatch, now: float) -> str:
        if now >= batch.opened_at + self.rules.window_s:
            return "window"
        if now >= batch.last_detection_at + self.rules.idle_s:
            return "idle"
        return ""

    def _capture_gap(self, batch: OpenBatch, frame: FrameObservation) -> str:
        first = min(f.captured_at for f in batch.frames)
        last = max(f.captured_at for f in batch.frames)
        if (frame.captured_at - first).total_seconds() >= self.rules.window_s:
            return "window"
        if (frame.captured_at - last).total_seconds() >= self.rules.idle_s:
            return "idle"
        return ""
