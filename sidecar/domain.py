"""The sidecar's vocabulary: plain data types shared by detection, events, the LLM and the server,
independent of protobuf and torch. server/convert.py converts them to and from protobufs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .context.tamper import TamperState

# "fast": JPEG draft decode + torch resize; "exact": bit-identical to RTDetrImageProcessorPil.
PreprocessMode = Literal["fast", "exact"]
# "latency": batch only when it pays on the device; "fill": always fill batches.
BatchingPolicy = Literal["latency", "fill"]
# torch.compile mode for the detector ("off": eager PyTorch).
CompileMode = Literal["off", "default", "reduce-overhead"]


class FrameErrorCode(enum.Enum):
    """Why a frame could not be processed. Names match the proto's FRAME_ERROR_CODE_* suffixes."""

    NOT_AN_IMAGE = "NOT_AN_IMAGE"
    TRUNCATED = "TRUNCATED"
    EMPTY = "EMPTY"
    TOO_MANY_PIXELS = "TOO_MANY_PIXELS"
    TOO_LARGE = "TOO_LARGE"
    INVALID_REQUEST = "INVALID_REQUEST"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"

    @property
    def retryable(self) -> bool:
        """Whether sending the same frame again may succeed (so its result must not be cached)."""
        return self in (
            FrameErrorCode.INTERNAL,
            FrameErrorCode.UNAVAILABLE,
            FrameErrorCode.STORAGE_UNAVAILABLE,
        )


class StartupError(RuntimeError):
    """Start-up cannot continue (a model that cannot be loaded, ...). The message is shown to the
    user as the one error line before the process exits with `exit_code`, so it says what to do."""

    exit_code = 2


class StateStorageError(StartupError):
    """The state file cannot be written at all (read-only or missing data directory, ...): the
    sidecar cannot keep its promise not to lose batches, so it does not start."""

    exit_code = 4


class FrameError(Exception):
    """A frame that cannot be processed, with the typed reason sent back to the client."""

    def __init__(self, code: FrameErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"FrameError({self.code.name}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class Box:
    """Pixel box in the original image, clipped to [0, width] x [0, height]."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object. `label_id` is the model's class index (-1 where it is not known)."""

    label: str
    label_id: int
    confidence: float
    box: Box


@dataclass(frozen=True, slots=True)
class FrameRequest:
    """One frame as received (from a Stream or Analyze), before any processing."""

    frame_id: str
    camera_id: str
    image: bytes
    content_type: str = ""
    captured_at: datetime | None = None
    source_path: str = ""
    camera_name: str = ""
    # Minimum confidence; None means the server's default.
    threshold: float | None = None
    # The stream's client (its Hello's client id); "" for Analyze, whose frames are not watched for
    # tampering.
    client_id: str = ""


@dataclass(frozen=True, slots=True)
class FrameOutcome:
    """The result of one frame: detections, or a typed error (then no detections)."""

    frame_id: str
    camera_id: str
    width: int = 0
    height: int = 0
    detections: tuple[Detection, ...] = ()
    error: FrameError | None = None
    # Model batch time / batch size, and arrival-to-result time.
    inference_ms: float = 0.0
    total_ms: float = 0.0
    model_batch_size: int = 0
    captured_at: datetime | None = None
    # The event batch this frame joined, "" if none.
    batch_id: str = ""
    # The camera's tamper state after this frame (stream frames only).
    tamper: TamperState | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ZoneHit:
    """The detections of one frame (indexes into its detections) inside one named zone."""

    zone: str
    kind: str
    priority: int
    detections: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FrameObservation:
    """A processed frame as the event path sees it: one camera's detections at one moment."""

    frame_id: str
    camera_id: str
    camera_name: str
    captured_at: datetime  # timezone-aware
    width: int
    height: int
    detections: tuple[Detection, ...]
    # The owner's zones its detections are in (StreamConfig.camera_zones), by priority.
    zones: tuple[ZoneHit, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelCount:
    label: str
    count: int
    max_confidence: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the sidecar tells Home Assistant about an event batch (or a fast-path detection)."""

    verdict_id: str
    event_id: str
    batch_id: str
    camera_id: str
    camera_name: str
    risk_score: int
    risk_level: str
    summary: str
    reasoning: str
    fast_path: bool
    fallback: bool
    started_at: datetime
    ended_at: datetime
    labels: tuple[LabelCount, ...]
    frame_ids: tuple[str, ...]
    snapshot_frame_id: str
    snapshot_detections: tuple[Detection, ...]
    close_reason: str
    model: str
    llm_ms: float
    completion_tokens: int
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    enrichment: Enrichment | None = None
    # How unusual the batch's labels are at its camera and hour of the week (context/baseline.py):
    # 0 usual .. 1 never seen; 0 while the baseline has under a week of history (baseline_days).
    anomaly: float = 0.0
    baseline_days: float = 0.0
    # The user message the LLM was given ("" when none was built).
    prompt: str = ""
    # The zones detections of the batch were in, by priority.
    zones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ObjectAttribute:
    """A zero-shot attribute: the best option of one group (e.g. clothing: black, 0.61)."""

    name: str
    value: str
    score: float


@dataclass(frozen=True, slots=True)
class IdentityMatch:
    """Another sighting of the same anonymous identity (another camera, or an earlier visit)."""

    camera_id: str
    camera_name: str
    seen_at: datetime
    similarity: float


@dataclass(frozen=True, slots=True)
class EnrichedObject:
    """One distinct object of a batch (its best crop) and what the enrichers found about it.
    Text fields are empty where the enricher did not run or found nothing. `plate` is OCR output:
    untrusted text."""

    label: str
    frame_id: str
    confidence: float
    box: Box
    attributes: tuple[ObjectAttribute, ...] = ()
    identity_id: int = 0
    identity: str = ""  # "person 7"
    visits_24h: int = 0
    matches: tuple[IdentityMatch, ...] = ()
    plate: str = ""
    plate_score: float = 0.0
    known_plate: str = ""  # the name the home gave this plate
    posture: str = ""  # standing, crouching, lying, arms raised
    distance: str = ""  # near, mid, far
    movement: str = ""  # approaching, leaving, steady


@dataclass(frozen=True, slots=True)
class EnricherRun:
    """Whether one enricher ran for a batch: status ran / skipped / failed / off, why, how long."""

    name: str
    status: str
    reason: str = ""
    ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Enrichment:
    """What the enrichment models saw in a batch's key frames."""

    caption: str = ""
    scene: tuple[ObjectAttribute, ...] = ()
    objects: tuple[EnrichedObject, ...] = ()
    runs: tuple[EnricherRun, ...] = ()
    total_ms: float = 0.0

    @property
    def empty(self) -> bool:
        return not (self.caption or self.scene or self.objects)
