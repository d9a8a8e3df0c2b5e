"""Counters and latency statistics reported by GetStatus."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int = 0
    mean_ms: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0


class LatencyWindow:
    """All-time count and mean; percentiles and max over the most recent `window` samples."""

    def __init__(self, window: int = 2048) -> None:
        self._recent: deque[float] = deque(maxlen=window)
        self._count = 0
        self._total = 0.0

    def add(self, ms: float) -> None:
        self._recent.append(ms)
        self._count += 1
        self._total += ms

    def summary(self) -> LatencySummary:
        if not self._count:
            return LatencySummary()
        ordered = sorted(self._recent)
        return LatencySummary(
            count=self._count,
            mean_ms=self._total / self._count,
            p50_ms=_percentile(ordered, 0.50),
            p95_ms=_percentile(ordered, 0.95),
            max_ms=ordered[-1],
        )


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


class DetectionStats:
    """Frame and batch counters, written from the event loop and the model thread (hence the
    lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_monotonic = time.monotonic()
        self.frames_received = 0
        self.frames_processed = 0
        self.frames_failed = 0
        self.errors_by_code: Counter[str] = Counter()
        self.model_batches = 0
        self.model_batch_frames = 0
        self.inference_latency = LatencyWindow()
        self.frame_latency = LatencyWindow()

    def frame_received(self) -> None:
        with self._lock:
            self.frames_received += 1

    def frame_processed(self, total_ms: float) -> None:
        with self._lock:
            self.frames_processed += 1
            self.frame_latency.add(total_ms)

    def frame_failed(self, code_name: str) -> None:
        with self._lock:
            self.frames_failed += 1
            self.errors_by_code[code_name] += 1

    def batch_done(self, size: int, ms: float) -> None:
        with self._lock:
            self.model_batches += 1
            self.model_batch_frames += size
            self.inference_latency.add(ms)

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(
                frames_received=self.frames_received,
                frames_processed=self.frames_processed,
                frames_failed=self.frames_failed,
                errors_by_code=dict(self.errors_by_code),
                model_batches=self.model_batches,
                mean_model_batch_size=(
                    self.model_batch_frames / self.model_batches if self.model_batches else 0.0
                ),
                inference_latency=self.inference_latency.summary(),
                frame_latency=self.frame_latency.summary(),
                uptime_s=time.monotonic() - self.started_monotonic,
            )


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    frames_received: int
    frames_processed: int
    frames_failed: int
    errors_by_code: dict[str, int]
    model_batches: int
    mean_model_batch_size: float
    inference_latency: LatencySummary
    frame_latency: LatencySummary
    uptime_s: float
