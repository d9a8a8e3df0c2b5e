"""A latency-aware dynamic batcher: requests from all streams and cameras share model batches
when, and only when, a batch finishes the waiting requests sooner than running them one by one.

The forward time of each batch size is learned on the running device (`batch_costs.py`: timed at
`calibrate`, refreshed by every batch served). When the model is free, the next batch takes the
size that clears the waiting requests soonest (at most `max_batch`). It waits for more requests
(at most `max_delay_s` after the oldest arrived) only while a larger batch would cost less per
request: on a GPU that fills batches, on a CPU it runs each request at once. Before anything is
measured it behaves as a classic dynamic batcher (fill up to `max_batch` or the delay).

One batch runs at a time, in a dedicated worker thread, so the asyncio loop (health, status,
reading streams) keeps answering while the model works. Requests are served first-in first-out,
so results for one camera come back in the order they were submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from .batch_costs import BatchCosts, calibration_sizes

_LOGGER = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class Batched(Generic[Out]):
    """One request's output plus the batch it ran in."""

    value: Out
    batch_size: int
    batch_ms: float


class BatcherClosedError(RuntimeError):
    """Raised by `submit` once the batcher has been told to stop."""


@dataclass(slots=True)
class _Pending(Generic[In, Out]):
    item: In
    future: asyncio.Future[Batched[Out]]
    enqueued: float


class DynamicBatcher(Generic[In, Out]):
    """Collects single requests into batches for `run_batch`.

    `run_batch(items)` runs in the worker thread and returns one output per item, in order. If it
    raises for a batch of several items, each item is retried on its own so that one bad request
    fails alone; its exception is raised to its own submitter only.
    """

    def __init__(
        self,
        run_batch: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch: int,
        max_delay_s: float,
        on_batch: Callable[[int, float], None] | None = None,
        thread_name: str = "secmon-model",
        costs: BatchCosts | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_delay_s = max(0.0, max_delay_s)
        # Without a cost model of the caller's: the classic policy, times learned for the status.
        self.costs = costs or BatchCosts(max_batch, adaptive=False)
        self._clock = clock  # times forward passes (tests pass a controllable one)
        self._on_batch = on_batch
        self._queue: deque[_Pending[In, Out]] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # set whenever a batch finishes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._task: asyncio.Task[None] | None = None
        self._running = 0
        self._closing = False
        self._flush = False

    # -- public ------------------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Requests submitted but not finished (waiting or in the running batch)."""
        return len(self._queue) + self._running

    @property
    def in_model(self) -> int:
        """Requests in the batch the model is running now."""
        return self._running

    async def calibrate(
        self, sample: In, sizes: Sequence[int] | None = None, rounds: int = 2
    ) -> None:
        """Time batches of growing size (`sample` repeated) in the worker thread: per size one
        run to warm the shape up, then the fastest of `rounds` runs. Stops at the first size that
        does not pay (no cheaper per frame than one frame alone): larger ones would not either,
        and their activations would only raise the memory peak. Call before serving."""
        loop = asyncio.get_running_loop()
        for size in sizes or calibration_sizes(self.max_batch):
            times = [
                await loop.run_in_executor(self._executor, self._time_batch, [sample] * size)
                for _ in range(rounds + 1)
            ]
            self.costs.observe(size, min(times[1:]), replace=True)
            _LOGGER.info("Model batch of %d: %.1f ms", size, min(times[1:]))
            if size > 1 and not self.costs.pays(size):
                break

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._dispatch_loop(), name="secmon-dynamic-batcher"
            )

    async def submit(self, item: In) -> Batched[Out]:
        """Queue one request and wait for its output."""
        return await self.enqueue(item)

    def enqueue(self, item: In) -> asyncio.Future[Batched[Out]]:
        """Queue one request now; the future gets its output."""
        if self._closing:
            raise BatcherClosedError("the batcher is shutting down")
        if self._task is None:
            self.start()
        future: asyncio.Future[Batched[Out]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(item, future, time.monotonic()))
        self._wakeup.set()
        return future

    def expedite(self) -> None:
        """Run what is queued now instead of waiting for batches to fill (used when draining)."""
        self._flush = True
        self._wakeup.set()

    async def close(self) -> None:
        """Refuse new requests, run everything already queued without waiting for the delay,
        then stop the worker thread."""
        self._closing = True
        self._flush = True
        self._wakeup.set()
        if self._task is not None:
            while self._queue or self._running:
                self._idle.clear()
                await self._idle.wait()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    # -- internals ---------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            self._running = len(batch)
            try:
                items = [p.item for p in batch]
                outputs, batch_ms = await loop.run_in_executor(self._executor, self._run, items)
            finally:
                self._running = 0
                self._idle.set()
            if not any(isinstance(o, BaseException) for o in outputs):
                self.costs.observe(len(batch), batch_ms)
            self.costs.served(len(batch))
            if self._on_batch is not None:
                self._on_batch(len(batch), batch_ms)
            for pending, output in zip(batch, outputs, strict=True):
                if pending.future.done():  # the submitter went away
                    continue
                if isinstance(output, BaseException):
                    pending.future.set_exception(output)
                else:
                    pending.future.set_result(Batched(output, len(batch), batch_ms))

    async def _next_batch(self) -> list[_Pending[In, Out]]:
        while not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = self._queue[0].enqueued + self.max_delay_s
        while not self._flush and self.costs.worth_waiting(len(self._queue)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)
        size = self.costs.plan(len(self._queue))
        batch: list[_Pending[In, Out]] = []
        while self._queue and len(batch) < size:
            pending = self._queue.popleft()
            if not pending.future.cancelled():
                batch.append(pending)
        return batch

    def _time_batch(self, items: list[In]) -> float:
        t0 = self._clock()
        _check_count(list(self._run_batch(items)), items)
        return (self._clock() - t0) * 1000.0

    def _run(self, items: list[In]) -> tuple[list[Out | BaseException], float]:
        """Worker thread: the whole batch, or each item alone if the batch fails."""
        t0 = self._clock()
        try:
            outputs: list[Out | BaseException] = list(self._run_batch(items))
            _check_count(outputs, items)
        except Exception as err:
            if len(items) == 1:
                outputs = [err]
            else:
                _LOGGER.warning("Batch of %d failed (%s); retrying one by one", len(items), err)
                outputs = []
                for item in items:
                    try:
                        (output,) = self._run_batch([item])
                    except Exception as item_err:
                        outputs.append(item_err)
                    else:
                        outputs.append(output)
        return outputs, (self._clock() - t0) * 1000.0


def _check_count(outputs: Sequence[object], items: Sequence[object]) -> None:
    if len(outputs) != len(items):
        raise RuntimeError(f"run_batch returned {len(outputs)} outputs for {len(items)} items")
