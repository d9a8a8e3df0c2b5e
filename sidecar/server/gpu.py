"""GPU telemetry through NVML (nvidia-ml-py's `pynvml` module). No NVML: no GPUs, no error."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GpuInfo:
    name: str
    utilization_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    temperature_c: float
    power_w: float


class GpuMonitor:
    """Initialises NVML once, on first use; if that fails, reports no GPUs from then on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._failed = False

    def _init(self) -> Any:
        if self._nvml is None and not self._failed:
            try:
                import pynvml  # noqa: PLC0415 - optional, and only where there is a GPU

                pynvml.nvmlInit()
            except Exception as err:  # ImportError, NVMLError_LibraryNotFound, driver errors
                self._failed = True
                _LOGGER.info("NVML unavailable (%s); GetStatus reports no GPUs", err)
            else:
                self._nvml = pynvml
        return self._nvml

    def read(self) -> list[GpuInfo]:
        with self._lock:
            nvml = self._init()
            if nvml is None:
                return []
            try:
                return [_read_one(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]
            except Exception as err:
                _LOGGER.warning("Reading NVML failed: %s", err)
                return []

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                try:
                    self._nvml.nvmlShutdown()
                except Exception as err:
                    _LOGGER.debug("nvmlShutdown failed: %s", err)
                self._nvml = None


def _read_one(nvml: Any, index: int) -> GpuInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = nvml.nvmlDeviceGetName(handle)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    return GpuInfo(
        name=str(name),
        utilization_percent=_optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
        memory_used_bytes=int(memory.used),
        memory_total_bytes=int(memory.total),
        temperature_c=_optional(
            lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
        ),
        power_w=_optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0,
    )


def _optional(read: Any) -> float:
    """Some boards do not report every sensor (NVML_ERROR_NOT_SUPPORTED); report 0 for those."""
    try:
        return float(read())
    except Exception:
        return 0.0
