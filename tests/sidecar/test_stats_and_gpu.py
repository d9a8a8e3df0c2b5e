"""GetStatus figures: latency summaries, counters, NVML with and without a GPU, process memory."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from sidecar.detection.stats import DetectionStats, LatencyWindow
from sidecar.server.gpu import GpuInfo, GpuMonitor
from sidecar.server.memory import MemoryUsage, read_memory, tune_allocator


def test_latency_window() -> None:
    window = LatencyWindow(window=100)
    assert window.summary().count == 0
    for ms in range(1, 101):
        window.add(float(ms))
    s = window.summary()
    assert (s.count, s.mean_ms, s.p50_ms, s.p95_ms, s.max_ms) == (100, 50.5, 50.0, 95.0, 100.0)


def test_latency_window_keeps_all_time_count_and_mean() -> None:
    window = LatencyWindow(window=2)
    for ms in (10.0, 20.0, 30.0):
        window.add(ms)
    s = window.summary()
    assert (s.count, s.mean_ms, s.max_ms) == (3, 20.0, 30.0)  # max over the recent window


def test_detection_stats_snapshot() -> None:
    stats = DetectionStats()
    for _ in range(3):
        stats.frame_received()
    stats.frame_processed(12.0)
    stats.frame_failed("TRUNCATED")
    stats.frame_failed("TRUNCATED")
    stats.batch_done(3, 30.0)
    stats.batch_done(1, 10.0)
    snap = stats.snapshot()
    assert (snap.frames_received, snap.frames_processed, snap.frames_failed) == (3, 1, 2)
    assert snap.errors_by_code == {"TRUNCATED": 2}
    assert (snap.model_batches, snap.mean_model_batch_size) == (2, 2.0)
    assert snap.inference_latency.count == 2
    assert snap.frame_latency.mean_ms == 12.0


def _nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return False
    pynvml.nvmlShutdown()
    return True


def test_no_nvml_means_no_gpus() -> None:
    # nvidia-ml-py is installed but there is no NVIDIA driver: nvmlInit fails, we report nothing.
    if _nvml_works():
        pytest.skip("this machine has a working NVML")
    monitor = GpuMonitor()
    assert monitor.read() == []
    assert monitor.read() == []  # and does not retry on every call
    monitor.close()


def test_missing_pynvml_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert GpuMonitor().read() == []


class FakeNvml(types.ModuleType):
    """NVML as a driver with one GPU would answer (the external edge we cannot run here)."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.shutdowns = 0

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"NVIDIA H200"

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> Any:
        return types.SimpleNamespace(used=2 * 2**30, total=141 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> Any:
        return types.SimpleNamespace(gpu=37)

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        return 41

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")


def test_nvml_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monitor = GpuMonitor()
    assert monitor.read() == [
        GpuInfo(name="NVIDIA H200", utilization_percent=37.0, memory_used_bytes=2 * 2**30,
                memory_total_bytes=141 * 2**30, temperature_c=41.0, power_w=0.0)
    ]
    monitor.close()
    assert fake.shutdowns == 1


def test_process_memory_is_read_and_the_allocator_tuned(tmp_path: Path) -> None:
    usage = read_memory()
    assert 0 < usage.rss_bytes <= usage.peak_rss_bytes
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
    assert read_memory(status) == MemoryUsage(rss_bytes=1024 * 1024, peak_rss_bytes=2048 * 1024)
    assert read_memory(tmp_path / "missing") == MemoryUsage()
    assert tune_allocator() is True  # glibc here
