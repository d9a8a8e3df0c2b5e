"""Batch costs: what is learned per batch size and the batch sizes chosen from it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from manual_clock import Clock

from sidecar.detection.batch_costs import BatchCosts, calibration_sizes


def cpu_like(size: int) -> float:
    """Measured shape on 2 CPU cores: per-frame time grows with the batch."""
    return 500.0 * size * (1 + 0.1 * (size - 1))


def gpu_like(size: int) -> float:
    """A GPU: a batch of 8 costs little more than a batch of 1."""
    return 20.0 + 2.5 * size


def learned(cost: Callable[[int], float], max_batch: int = 8, **kw: object) -> BatchCosts:
    costs = BatchCosts(max_batch, **kw)  # type: ignore[arg-type]
    for size in calibration_sizes(max_batch):
        costs.observe(size, cost(size))
    return costs


def test_calibration_sizes() -> None:
    assert calibration_sizes(1) == [1]
    assert calibration_sizes(4) == [1, 2, 4]
    assert calibration_sizes(6) == [1, 2, 4, 6]
    assert calibration_sizes(8) == [1, 2, 4, 8]


def test_on_a_cpu_frames_run_one_by_one_and_never_wait() -> None:
    costs = learned(cpu_like)
    assert [costs.plan(n) for n in (1, 2, 3, 4, 8, 20)] == [1] * 6
    assert not any(costs.worth_waiting(n) for n in range(1, 8))
    assert costs.best_size() == 1


def test_on_a_gpu_batches_fill_up_to_the_cap() -> None:
    costs = learned(gpu_like)
    assert costs.plan(3) == 3
    assert costs.plan(8) == 8
    assert costs.plan(20) == 8  # --max-batch stays a cap
    assert costs.worth_waiting(3)  # a fuller batch is cheaper per frame
    assert not costs.worth_waiting(8)
    assert costs.best_size() == 8


def test_a_batch_is_formed_only_when_it_clears_the_frames_sooner() -> None:
    # Batch 2 is exactly as fast as two singles (no gain), batch 4 clearly faster than four.
    costs = BatchCosts(4)
    for size, ms in ((1, 100.0), (2, 200.0), (4, 240.0)):
        costs.observe(size, ms)
    assert costs.plan(2) == 1
    assert costs.clear_time(4, 4) == 240.0 < costs.clear_time(4, 1) == 400.0
    assert costs.plan(4) == 4
    assert costs.plan(3) == 3  # 3 interpolated between 2 and 4: 220 ms < 300 ms


def test_sizes_between_and_beyond_measured_ones_are_estimated() -> None:
    costs = BatchCosts(8)
    assert costs.estimate(1) is None
    costs.observe(2, 100.0)
    costs.observe(4, 300.0)
    assert costs.estimate(3) == pytest.approx(200.0)  # interpolated
    assert costs.estimate(1) == pytest.approx(50.0)  # the nearest size's cost per frame
    assert costs.estimate(8) == pytest.approx(600.0)


def test_serving_refreshes_the_estimates() -> None:
    costs = learned(gpu_like, smoothing=0.5)
    before = costs.estimate(8)
    for _ in range(10):  # the device got ten times slower for batches of 8
        costs.observe(8, 10 * gpu_like(8))
    after = costs.estimate(8)
    assert before is not None and after is not None
    assert after == pytest.approx(10 * gpu_like(8), rel=0.01)
    assert costs.plan(8) < 8


def test_an_old_estimate_is_measured_again_when_frames_are_waiting() -> None:
    clock = Clock(0.0)
    costs = learned(gpu_like, refresh_s=60.0, clock=clock)
    assert costs.plan(8) == 8
    clock.now += 61
    # Every size is stale now: the largest one the waiting frames fill is measured first.
    assert costs.plan(3) == 2
    costs.observe(2, gpu_like(2))
    assert costs.plan(8) == 8
    costs.observe(8, gpu_like(8))
    assert costs.plan(8) == 4
    costs.observe(4, gpu_like(4))
    assert costs.plan(8) == 8  # all fresh again


def test_sizes_that_did_not_pay_are_not_run_again() -> None:
    """On a CPU only the size next to the best one (2) is measured again; batches of 4 and 8,
    measured not to pay, would cost latency and memory for nothing."""
    clock = Clock(0.0)
    costs = learned(cpu_like, refresh_s=60.0, clock=clock)
    clock.now += 61
    assert costs.plan(8) == 2
    costs.observe(2, cpu_like(2))
    assert costs.plan(8) == 1


def test_pays() -> None:
    assert not learned(cpu_like).pays(2)
    assert learned(gpu_like).pays(2)
    assert not BatchCosts(4).pays(2)  # nothing known


def test_the_classic_policy_fills_batches_and_still_learns() -> None:
    costs = learned(cpu_like, adaptive=False)
    assert costs.plan(3) == 3 and costs.plan(20) == 8
    assert costs.worth_waiting(3)
    assert costs.estimate(4) == cpu_like(4)


def test_snapshot_lists_sizes_with_times_and_choices() -> None:
    costs = BatchCosts(4)
    costs.observe(1, 10.0, replace=True)
    costs.observe(1, 30.0)
    costs.served(1)
    costs.served(3)
    rows = {c.size: c for c in costs.snapshot()}
    assert rows[1].forward_ms == pytest.approx(15.0)  # smoothed: 10 + 0.25 * (30 - 10)
    assert (rows[1].samples, rows[1].batches) == (2, 1)
    assert (rows[3].forward_ms, rows[3].samples, rows[3].batches) == (0.0, 0, 1)
