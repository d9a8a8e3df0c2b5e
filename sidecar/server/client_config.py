"""What a client may set in its StreamConfig, and what happens to values outside the limits.

A client's settings are untrusted input: a NaN window would keep every batch open forever, a
negative one would run the LLM once per frame. Every value is checked here; one that cannot be
used is replaced by the sidecar's default (not a number, negative) or clamped to the nearest limit
(too small, too large), and each change is described in one sentence that goes back to the client
(HelloReply.config_warnings / ConfigReply) and into the log. Zero and empty keep meaning "the
sidecar's default", as the proto says.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from ..events.batching import BatchingRules

WINDOW_S_LIMITS = (1.0, 3600.0)
IDLE_S_LIMITS = (1.0, 3600.0)  # and never above the window
MAX_FRAMES_LIMITS = (1, 2000)
MAX_LABELS = 100
MAX_LABEL_CHARS = 64
MAX_CLIENT_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class RequestedRules:
    """Batching settings as a client sent them (0 / empty: the sidecar's default)."""

    window_s: float = 0.0
    idle_s: float = 0.0
    fast_path_labels: tuple[str, ...] = ()
    fast_path_confidence: float = 0.0
    fast_path_enabled: bool = True
    labels_of_interest: tuple[str, ...] = ()
    max_frames: int = 0


def resolve_client_id(value: str) -> tuple[str, list[str]]:
    """Hello.client_id keys the client's deliveries and rules: a long or unprintable one is
    replaced by a digest of it (stable, and distinct for distinct ids)."""
    if len(value) <= MAX_CLIENT_ID_CHARS and value.isprintable():
        return value, []
    digest = "sha256-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return digest, [
        f"client_id is longer than {MAX_CLIENT_ID_CHARS} characters or not printable; "
        f"using {digest}"
    ]


def resolve_threshold(value: float) -> tuple[float | None, list[str]]:
    """StreamConfig.detection_threshold: None means the server's default."""
    if value == 0:
        return None, []
    if not math.isfinite(value) or value < 0:
        return None, [f"detection_threshold {value!r} is not within [0, 1]; using the default"]
    if value > 1:
        return 1.0, [f"detection_threshold {value!r} is above 1; using 1"]
    return float(value), []


def resolve_batching(
    requested: RequestedRules, defaults: BatchingRules
) -> tuple[BatchingRules, list[str]]:
    """The rules to use for a client, and what was changed to get them."""
    warnings: list[str] = []
    window = _seconds("window_seconds", requested.window_s, defaults.window_s, WINDOW_S_LIMITS,
                      warnings)
    idle = _seconds("idle_seconds", requested.idle_s, defaults.idle_s, IDLE_S_LIMITS, warnings)
    if idle > window:
        warnings.append(
            f"idle_seconds {idle:g} is above window_seconds {window:g}; using {window:g}"
        )
        idle = window
    confidence = defaults.fast_path_confidence
    value = requested.fast_path_confidence
    if value != 0:
        if not math.isfinite(value) or value < 0:
            warnings.append(
                f"fast_path_confidence {value!r} is not within [0, 1]; using the default "
                f"{confidence:g}"
            )
        elif value > 1:
            warnings.append(f"fast_path_confidence {value!r} is above 1; using 1")
            confidence = 1.0
        else:
            confidence = float(value)
    max_frames = defaults.max_frames
    if requested.max_frames:
        low, high = MAX_FRAMES_LIMITS
        max_frames = min(max(requested.max_frames, low), high)
        if max_frames != requested.max_frames:
            warnings.append(
                f"max_frames_per_batch {requested.max_frames} is outside [{low}, {high}]; "
                f"using {max_frames}"
            )
    fast_labels = _labels("fast_path_labels", requested.fast_path_labels, warnings)
    interest = _labels("labels_of_interest", requested.labels_of_interest, warnings)
    return (
        BatchingRules(
            window_s=window,
            idle_s=idle,
            fast_path_labels=fast_labels or defaults.fast_path_labels,
            fast_path_confidence=confidence,
            fast_path_enabled=requested.fast_path_enabled,
            labels_of_interest=interest or defaults.labels_of_interest,
            max_frames=max_frames,
        ),
        warnings,
    )


def _seconds(
    name: str, value: float, default: float, limits: tuple[float, float], warnings: list[str]
) -> float:
    if value == 0:
        return default
    low, high = limits
    if not math.isfinite(value) or value < 0:
        warnings.append(f"{name} {value!r} is not a duration in seconds; using the default "
                        f"{default:g}")
        return default
    if value < low or value > high:
        clamped = min(max(value, low), high)
        warnings.append(f"{name} {value:g} is outside [{low:g}, {high:g}]; using {clamped:g}")
        return clamped
    return float(value)


def _labels(name: str, labels: tuple[str, ...], warnings: list[str]) -> frozenset[str]:
    kept: list[str] = []
    dropped = 0
    for label in labels:
        text = label.strip()
        if not text or len(text) > MAX_LABEL_CHARS or not text.isprintable():
            dropped += 1
        elif text not in kept:
            kept.append(text)
    if dropped:
        warnings.append(
            f"{name}: ignored {dropped} label(s) that were empty, longer than "
            f"{MAX_LABEL_CHARS} characters or not printable"
        )
    if len(kept) > MAX_LABELS:
        warnings.append(f"{name}: {len(kept)} labels; kept the first {MAX_LABELS}")
        kept = kept[:MAX_LABELS]
    return frozenset(kept)
