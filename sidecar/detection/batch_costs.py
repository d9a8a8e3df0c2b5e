"""Forward time per batch size, learned on the device the model runs on, and the batch size that
clears the waiting frames soonest.

Batching pays on a GPU (a batch of 8 costs little more than a batch of 1) and costs on a CPU (a
batch of 4 takes four times as long as one frame, or longer, so frames wait for nothing). Which
one holds is measured, not assumed: the sizes 1, 2, 4, ... up to the cap are timed at warm-up
(`calibration_sizes`), every batch served updates its size's estimate, and a size whose estimate
is older than `refresh_s` is run again when enough frames are waiting, so the estimates follow
the device (another process on the GPU, a throttled CPU). Sizes between measured ones are
interpolated; sizes above the largest measured one are assumed to cost as much per frame as it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

# Sizes that clear the waiting frames within this fraction of the soonest count as equally fast
# (measurement noise); among them the one with the lower mean latency is chosen.
MIN_GAIN = 0.05


@dataclass(frozen=True, slots=True)
class SizeCost:
    """What is known about one batch size (for GetStatus)."""

    size: int
    forward_ms: float  # smoothed forward time of one batch of this size (0: never measured)
    samples: int  # measurements, warm-up included
    batches: int  # batches of this size served


@dataclass(slots=True)
class _Estimate:
    ms: float
    samples: int
    measured_at: float


def calibration_sizes(max_batch: int) -> list[int]:
    """1, 2, 4, ... below the cap, and the cap itself."""
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    sizes.append(max_batch)
    return sizes


class BatchCosts:
    """Per-size forward times and the batching decisions made from them.

    With `adaptive=False` the decisions are the classic dynamic batcher's (fill up to `max_batch`
    or the delay) while the times are still learned, for the status and for comparisons.
    Not thread-safe: the batcher uses it from the event loop only.
    """

    def __init__(
        self,
        max_batch: int,
        *,
        adaptive: bool = True,
        smoothing: float = 0.25,
        refresh_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.max_batch = max_batch
        self.adaptive = adaptive
        self.smoothing = smoothing
        self.refresh_s = refresh_s
        self._clock = clock
        self._estimates: dict[int, _Estimate] = {}
        self.chosen: Counter[int] = Counter()

    # -- learning ----------------------------------------------------------------------------
    def observe(self, size: int, ms: float, *, replace: bool = False) -> None:
        """One batch of `size` took `ms`. `replace` drops what was known (warm-up: the first run
        of a shape pays one-off costs, the second is the measurement)."""
        if size < 1 or ms < 0:
            return
        now = self._clock()
        known = self._estimates.get(size)
        if known is None or replace:
            samples = known.samples + 1 if known else 1
            self._estimates[size] = _Estimate(ms, samples, now)
        else:
            known.ms += self.smoothing * (ms - known.ms)
            known.samples += 1
            known.measured_at = now

    def served(self, size: int) -> None:
        self.chosen[size] += 1

    @property
    def calibrated(self) -> bool:
        return bool(self._estimates)

    def estimate(self, size: int) -> float | None:
        """Forward time of a batch of `size` in ms (measured, interpolated or extrapolated)."""
        if not self._estimates:
            return None
        if size in self._estimates:
            return self._estimates[size].ms
        below = [s for s in self._estimates if s < size]
        above = [s for s in self._estimates if s > size]
        if below and above:
            lo, hi = max(below), min(above)
            t_lo, t_hi = self._estimates[lo].ms, self._estimates[hi].ms
            return t_lo + (t_hi - t_lo) * (size - lo) / (hi - lo)
        nearest = max(below) if below else min(above)
        per_frame = self._estimates[nearest].ms / nearest
        return per_frame * size

    # -- decisions ---------------------------------------------------------------------------
    def clear_time(self, waiting: int, size: int) -> float:
        """Time to run `waiting` frames in batches of `size` (the last one smaller)."""
        return self._finish_times(waiting, size)[-1][0] if waiting else 0.0

    def mean_latency(self, waiting: int, size: int) -> float:
        """The waiting frames' mean time to their result, in batches of `size`."""
        done = self._finish_times(waiting, size)
        return sum(at * n for at, n in done) / max(1, waiting)

    def _finish_times(self, waiting: int, size: int) -> list[tuple[float, int]]:
        """(finish time, frames) of each batch when `waiting` frames run in batches of `size`."""
        out: list[tuple[float, int]] = []
        at, left = 0.0, waiting
        while left > 0:
            n = min(size, left)
            at += self.estimate(n) or 0.0
            out.append((at, n))
            left -= n
        return out

    def plan(self, waiting: int) -> int:
        """The size of the next batch when `waiting` frames are queued: the one that clears them
        soonest (one by one unless a batch is faster; between sizes within `MIN_GAIN` of the
        soonest, the one with the lower mean latency), a stale size to re-measure, or - with
        nothing measured yet - as many as allowed."""
        limit = min(waiting, self.max_batch)
        if limit <= 1 or not self.adaptive or not self._estimates:
            return limit
        stale = self._stale_size(limit)
        if stale is not None:
            return stale
        clear = {size: self.clear_time(waiting, size) for size in range(1, limit + 1)}
        soonest = min(clear.values())
        near = [size for size, t in clear.items() if t <= soonest * (1 + MIN_GAIN)]
        return min(near, key=lambda size: (self.mean_latency(waiting, size), size))

    def worth_waiting(self, waiting: int) -> bool:
        """Whether more frames are worth waiting for: some larger batch would cost less per frame
        than the best batch for the frames waiting now. Without measurements: yes (fill up)."""
        if waiting >= self.max_batch:
            return False
        if not self.adaptive or not self._estimates:
            return True
        now_size = max(1, self.plan(waiting))
        per_frame_now = self.clear_time(waiting, now_size) / max(1, waiting)
        return any(
            (self.estimate(size) or 0.0) / size < per_frame_now * (1 - MIN_GAIN)
            for size in range(waiting + 1, self.max_batch + 1)
        )

    def best_size(self) -> int:
        """The batch size with the most frames per second (the smallest among near-equals)."""
        if not self.adaptive or not self._estimates:
            return self.max_batch
        best, best_per_frame = 1, self.estimate(1) or 0.0
        for size in range(2, self.max_batch + 1):
            per_frame = (self.estimate(size) or 0.0) / size
            if per_frame < best_per_frame * (1 - MIN_GAIN):
                best, best_per_frame = size, per_frame
        return best

    def snapshot(self) -> list[SizeCost]:
        sizes = sorted(set(self._estimates) | set(self.chosen))
        return [
            SizeCost(
                size=s,
                forward_ms=self._estimates[s].ms if s in self._estimates else 0.0,
                samples=self._estimates[s].samples if s in self._estimates else 0,
                batches=self.chosen.get(s, 0),
            )
            for s in sizes
        ]

    def pays(self, size: int) -> bool:
        """Whether a batch of `size` costs clearly less per frame than one frame alone."""
        one, batch = self.estimate(1), self.estimate(size)
        if one is None or batch is None:
            return False
        return batch / size < one * (1 - MIN_GAIN)

    def _stale_size(self, limit: int) -> int | None:
        """A calibration size <= limit to measure (again): not measured within `refresh_s`, and
        at most twice the best size - sizes well beyond it were measured not to pay, and running
        them again would cost latency and, on a CPU, memory (activations grow with the batch)."""
        now = self._clock()
        ceiling = 2 * self.best_size()
        for size in reversed(calibration_sizes(self.max_batch)):
            if size > limit or size > ceiling or size == 1:
                continue
            known = self._estimates.get(size)
            if known is None or now - known.measured_at > self.refresh_s:
                return size
        return None
