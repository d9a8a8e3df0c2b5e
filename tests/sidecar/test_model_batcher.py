"""The dynamic batcher: batch filling, the delay flush, order, error isolation, off-loop work,
and latency-aware batch sizes learned from the forward times it measures."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from sidecar_harness import eventually

from sidecar.detection.batch_costs import BatchCosts
from sidecar.detection.model_batcher import BatcherClosedError, DynamicBatcher

HOUR = 3600.0


async def _true(value: bool) -> bool:
    return value


class Recorder:
    """A batch function that records the batches it was given (runs in the worker thread)."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on or set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        if self.fail_on & set(items):
            raise ValueError(f"poisoned item in {items}")
        return [i * 10 for i in items]


async def test_fills_up_to_max_batch_before_the_delay() -> None:
    recorder = Recorder()
    # The delay is an hour: only reaching max_batch can dispatch these batches.
    batcher = DynamicBatcher(recorder, max_batch=4, max_delay_s=HOUR)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert recorder.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [r.value for r in results] == [i * 10 for i in range(8)]
    assert {r.batch_size for r in results} == {4}
    await batcher.close()


async def test_flushes_a_partial_batch_after_the_delay() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch=64, max_delay_s=0.05)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)))
    assert recorder.batches == [[0, 1, 2]]
    assert [r.batch_size for r in results] == [3, 3, 3]
    await batcher.close()


async def test_frames_arriving_while_the_model_is_busy_share_the_next_batch() -> None:
    gate = threading.Event()
    recorder = Recorder()

    def run(items: list[int]) -> list[int]:
        if items == [0]:
            gate.wait(30)
        return recorder(items)

    batcher = DynamicBatcher(run, max_batch=8, max_delay_s=0)
    first = asyncio.create_task(batcher.submit(0))
    await eventually(lambda: _true(batcher.in_model > 0))  # item 0 is in the (blocked) model
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.05)
    assert batcher.queue_depth == 6  # one in the model, five waiting
    gate.set()
    await asyncio.gather(first, *rest)
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]
    await batcher.close()


async def test_results_keep_submission_order() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch=3, max_delay_s=0.01)
    order: list[int] = []

    async def submit(i: int) -> None:
        result = await batcher.submit(i)
        order.append(result.value // 10)

    await asyncio.gather(*(submit(i) for i in range(10)))
    assert order == list(range(10))
    assert [i for batch in recorder.batches for i in batch] == list(range(10))
    await batcher.close()


async def test_a_failing_item_fails_alone() -> None:
    recorder = Recorder(fail_on={2})
    batcher = DynamicBatcher(recorder, max_batch=4, max_delay_s=HOUR)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
    assert [r if isinstance(r, Exception) else r.value for r in results][:2] == [0, 10]
    assert isinstance(results[2], ValueError)
    assert not isinstance(results[3], Exception)
    assert results[3].value == 30
    # The batch failed, then each item ran alone.
    assert recorder.batches == [[0, 1, 2, 3], [0], [1], [2], [3]]
    # And the batcher goes on (close() flushes it without waiting for the hour-long delay).
    after = asyncio.create_task(batcher.submit(5))
    await asyncio.sleep(0)
    await batcher.close()
    assert after.result().value == 50


async def test_a_wrong_number_of_outputs_is_an_error() -> None:
    batcher = DynamicBatcher(lambda items: [1], max_batch=2, max_delay_s=HOUR)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    # Each item alone gets exactly one output, so the retry succeeds.
    assert [r.value for r in results if not isinstance(r, BaseException)] == [1, 1]
    await batcher.close()


async def test_model_work_runs_off_the_event_loop() -> None:
    gate = threading.Event()
    recorder = Recorder()

    def slow(items: list[int]) -> list[int]:
        gate.wait(30)
        return recorder(items)

    batcher = DynamicBatcher(slow, max_batch=1, max_delay_s=0)
    pending = asyncio.create_task(batcher.submit(1))
    ticks = 0
    while ticks < 5:  # the loop keeps running while the model thread is blocked
        await asyncio.sleep(0.01)
        ticks += 1
    assert not pending.done()
    assert batcher.queue_depth == 1
    gate.set()
    assert (await pending).value == 10
    assert recorder.threads and all(t.startswith("secmon-model") for t in recorder.threads)
    await batcher.close()


async def test_close_runs_queued_work_without_waiting_for_the_delay() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch=64, max_delay_s=HOUR)
    pending = [asyncio.create_task(batcher.submit(i)) for i in range(5)]
    await asyncio.sleep(0.05)
    assert batcher.queue_depth == 5 and not recorder.batches
    await batcher.close()
    assert [p.result().value for p in pending] == [0, 10, 20, 30, 40]
    with pytest.raises(BatcherClosedError):
        await batcher.submit(9)


async def test_cancelled_requests_are_skipped() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch=3, max_delay_s=0.05)
    keep = asyncio.create_task(batcher.submit(1))
    drop = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    drop.cancel()
    assert (await keep).value == 10
    assert recorder.batches == [[1]]
    await batcher.close()


# -- latency-aware batching: the real batcher, a model whose cost a test controls ---------------
class CostModel:
    """A batch function whose forward time is `cost(size)` ms on a clock the batcher reads: the
    batcher measures exactly those times, however busy the machine is."""

    def __init__(self, cost: Callable[[int], float]) -> None:
        self.cost = cost
        self.now = 0.0
        self.batches: list[int] = []
        self.calibration: list[int] = []
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.now += self.cost(len(items)) / 1000.0
        # Negative items: calibration samples.
        (self.batches if items[0] >= 0 else self.calibration).append(len(items))
        return [i * 10 for i in items]


def cpu_like(size: int) -> float:
    return 500.0 * size * (1 + 0.1 * (size - 1))


def gpu_like(size: int) -> float:
    return 20.0 + 2.5 * size


def latency_batcher(
    model: CostModel, max_batch: int, delay_s: float = HOUR, **kw: object
) -> DynamicBatcher[int, int]:
    return DynamicBatcher(
        model, max_batch=max_batch, max_delay_s=delay_s, clock=model.clock,
        costs=BatchCosts(max_batch, **kw),  # type: ignore[arg-type]
    )


async def test_calibration_times_batch_sizes_up_to_the_first_that_does_not_pay() -> None:
    model = CostModel(gpu_like)
    batcher = latency_batcher(model, 4)
    await batcher.calibrate(-1)
    rows = {c.size: c for c in batcher.costs.snapshot()}
    assert sorted(rows) == [1, 2, 4]
    assert rows[4].forward_ms == pytest.approx(gpu_like(4))
    await batcher.close()
    # On a CPU a batch of 2 does not pay, so 4 is never run (its activations would only raise
    # the memory peak).
    model = CostModel(cpu_like)
    batcher = latency_batcher(model, 4)
    await batcher.calibrate(-1)
    assert sorted(c.size for c in batcher.costs.snapshot()) == [1, 2]
    assert set(model.calibration) == {1, 2}
    await batcher.close()


async def test_on_a_cpu_waiting_frames_run_one_by_one_without_waiting_for_the_delay() -> None:
    model = CostModel(cpu_like)
    batcher = latency_batcher(model, 4)
    await batcher.calibrate(-1)
    # Eight frames at once and an hour-long delay: only "do not wait" lets them finish.
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert [r.value for r in results] == [i * 10 for i in range(8)]
    assert model.batches == [1] * 8
    assert {c.size: c.batches for c in batcher.costs.snapshot() if c.batches} == {1: 8}
    await batcher.close()


async def test_on_a_gpu_waiting_frames_share_full_batches() -> None:
    model = CostModel(gpu_like)
    batcher = latency_batcher(model, 4)
    await batcher.calibrate(-1)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert [r.value for r in results] == [i * 10 for i in range(8)]
    assert model.batches == [4, 4]
    assert {r.batch_size for r in results} == {4}
    await batcher.close()


async def test_batch_sizes_follow_the_device_as_it_changes() -> None:
    """Calibrated on a device where batching pays; then batches get as slow as on a CPU. The
    times measured while serving move the batcher to one frame at a time."""
    model = CostModel(gpu_like)
    # While estimates are mixed, a lone frame may wait for company: a short delay bounds that.
    batcher = latency_batcher(model, 4, delay_s=0.02, smoothing=0.5)
    await batcher.calibrate(-1)
    model.cost = lambda size: 10 * cpu_like(size)
    waves = []
    for wave in range(12):
        model.batches.clear()
        await asyncio.gather(*(batcher.submit(wave * 4 + i) for i in range(4)))
        waves.append(list(model.batches))
    assert waves[0] == [4]
    assert waves[-1] == [1, 1, 1, 1]
    await batcher.close()


async def test_without_calibration_the_batcher_fills_batches() -> None:
    """The classic policy (and the latency-aware one before anything is measured)."""
    model = CostModel(cpu_like)
    batcher = DynamicBatcher(model, max_batch=4, max_delay_s=HOUR, clock=model.clock)
    await asyncio.gather(*(batcher.submit(i) for i in range(8)))
    assert model.batches == [4, 4]
    assert not batcher.costs.adaptive
    assert batcher.costs.estimate(4) == pytest.approx(cpu_like(4))  # learned all the same
    await batcher.close()
