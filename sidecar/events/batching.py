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
- A batch closes ("max_frames") once `max_frames` frames joined it, so no batch (nor its prompt or
  its state) grows without bound.
- Rules are per client (Hello.client_id): a batch follows the rules of the client whose frame
  opened it; clients that sent none get the sidecar's defaults.

Adding a frame is two steps, so the caller can store the change before it happens in memory:
`prepare` (closes what has expired, plans the join) and `commit` (applies the join).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

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
    max_frames: int = 300

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
    # The client whose frame opened the batch: its rules govern it ("" = the defaults).
    client_id: str = ""
    # Kept as frames join, so a join costs the same whatever the batch's size.
    _frame_ids: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    _first_captured: datetime | None = field(default=None, init=False, repr=False, compare=False)
    _last_captured: datetime | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for frame in self.frames:
            self._note(frame)

    @property
    def event_id(self) -> str:
        return self.batch_id

    @property
    def frame_ids(self) -> set[str]:
        return set(self._frame_ids)

    def has_frame(self, frame_id: str) -> bool:
        return frame_id in self._frame_ids

    def append(self, frame: FrameObservation, now: float) -> None:
        self.frames.append(frame)
        self._note(frame)
        self.last_detection_at = now
        self.camera_name = frame.camera_name or self.camera_name

    def capture_span(self) -> tuple[datetime, datetime] | None:
        """Earliest and latest capture time of its frames (None while it has none)."""
        if self._first_captured is None or self._last_captured is None:
            return None
        return self._first_captured, self._last_captured

    def _note(self, frame: FrameObservation) -> None:
        self._frame_ids.add(frame.frame_id)
        first, last = self._first_captured, self._last_captured
        self._first_captured = frame.captured_at if first is None else min(first, frame.captured_at)
        self._last_captured = frame.captured_at if last is None else max(last, frame.captured_at)


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    batch: OpenBatch
    reason: str  # "window", "idle", "shutdown", "flush"


@dataclass(frozen=True, slots=True)
class FastPathRequest:
    batch: OpenBatch
    frame: FrameObservation
    detection: Detection


@dataclass(frozen=True, slots=True)
class Join:
    """A frame about to join `batch` (a new batch is not open until the join is committed)."""

    batch: OpenBatch
    frame: FrameObservation  # with only the detections of interest
    new: bool
    fast_path: Detection | None
    now: float

    @property
    def seq(self) -> int:
        """The frame's position in its batch."""
        return len(self.batch.frames)

    def header(self) -> OpenBatch:
        """The batch as it will be after the join, without its frames."""
        batch = self.batch
        return OpenBatch(
            batch_id=batch.batch_id,
            camera_id=batch.camera_id,
            camera_name=self.frame.camera_name or batch.camera_name,
            opened_at=batch.opened_at,
            last_detection_at=self.now,
            fast_path_sent=batch.fast_path_sent or self.fast_path is not None,
            client_id=batch.client_id,
        )


@dataclass(slots=True)
class AddOutcome:
    batch: OpenBatch | None = None
    closed: list[ClosedBatch] = field(default_factory=list)
    fast_path: FastPathRequest | None = None
    duplicate: bool = False
    join: Join | None = None


class EventBatcher:
    def __init__(self, rules: BatchingRules | None = None) -> None:
        self.rules = rules or BatchingRules()  # for clients that sent none
        self._client_rules: dict[str, BatchingRules] = {}
        self._open: dict[str, OpenBatch] = {}

    @property
    def open_batches(self) -> list[OpenBatch]:
        return list(self._open.values())

    def configure(self, client_id: str, rules: BatchingRules) -> None:
        self._client_rules[client_id] = rules

    def rules_for(self, client_id: str) -> BatchingRules:
        return self._client_rules.get(client_id, self.rules)

    def restore(self, batches: list[OpenBatch]) -> None:
        for batch in batches:
            self._open[batch.camera_id] = batch

    def add(self, frame: FrameObservation, now: float, client_id: str = "") -> AddOutcome:
        """`prepare` and `commit` in one step."""
        outcome = self.prepare(frame, now, client_id)
        if outcome.join is not None:
            outcome.closed += self.commit(outcome.join, outcome)
        return outcome

    def prepare(self, frame: FrameObservation, now: float, client_id: str = "") -> AddOutcome:
        """Close the camera's batch if it has expired (or the frame's capture time is past its
        limits) and plan the frame's join (`outcome.join`; None when the frame joins nothing or is
        already in the batch)."""
        outcome = AddOutcome()
        interesting = self.rules_for(client_id).of_interest(frame.detections)
        if not interesting:
            return outcome
        frame = replace(frame, detections=interesting)
        batch = self._open.get(frame.camera_id)
        if batch is not None and batch.has_frame(frame.frame_id):
            outcome.batch, outcome.duplicate = batch, True
            return outcome
        if batch is not None:
            reason = self._expiry(batch, now) or self._capture_gap(batch, frame)
            if reason:
                outcome.closed.append(ClosedBatch(self._open.pop(frame.camera_id), reason))
                batch = None
        new = batch is None
        if batch is None:
            batch = OpenBatch(
                batch_id=uuid.uuid4().hex,
                camera_id=frame.camera_id,
                camera_name=frame.camera_name,
                opened_at=now,
                last_detection_at=now,
                client_id=client_id,
            )
        hit = None
        if not batch.fast_path_sent:
            hit = self.rules_for(batch.client_id).fast_path_detection(interesting)
        outcome.batch = batch
        outcome.join = Join(batch, frame, new, hit, now)
        return outcome

    def commit(self, join: Join, outcome: AddOutcome | None = None) -> list[ClosedBatch]:
        """Apply a prepared join; returns the batch if the frame filled it (closed at once)."""
        batch = join.batch
        if join.new:
            self._open[batch.camera_id] = batch
        batch.append(join.frame, join.now)
        if join.fast_path is not None:
            batch.fast_path_sent = True
            if outcome is not None:
                outcome.fast_path = FastPathRequest(batch, join.frame, join.fast_path)
        if len(batch.frames) >= self.rules_for(batch.client_id).max_frames:
            if self._open.get(batch.camera_id) is batch:
                del self._open[batch.camera_id]
            return [ClosedBatch(batch, "max_frames")]
        return []

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
        deadlines = []
        for b in self._open.values():
            rules = self.rules_for(b.client_id)
            deadlines.append(min(b.opened_at + rules.window_s, b.last_detection_at + rules.idle_s))
        return min(deadlines, default=None)

    def _expiry(self, batch: OpenBatch, now: float) -> str:
        rules = self.rules_for(batch.client_id)
        if now >= batch.opened_at + rules.window_s:
            return "window"
        if now >= batch.last_detection_at + rules.idle_s:
            return "idle"
        return ""

    def _capture_gap(self, batch: OpenBatch, frame: FrameObservation) -> str:
        span = batch.capture_span()
        if span is None:
            return ""
        first, last = span
        rules = self.rules_for(batch.client_id)
        if (frame.captured_at - first).total_seconds() >= rules.window_s:
            return "window"
        if (frame.captured_at - last).total_seconds() >= rules.idle_s:
            return "idle"
        return ""
