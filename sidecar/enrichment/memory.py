"""Measuring what a model really takes: the allocator on CUDA, the process's resident set on CPU.

On CUDA the figures are torch's allocator (`memory_allocated`, `max_memory_allocated`); the free
memory used for the default budget comes from `mem_get_info`, which also sees llama.cpp's buffers.
On CPU the resident set size (RSS) is read from /proc; a load's delta is never taken below the
model's own tensor bytes (other threads may free memory while it loads), and the peak of a
warm-up is the highest RSS sampled while it runs.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

_T = TypeVar("_T")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_SAMPLE_S = 0.002


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        import resource  # noqa: PLC0415 - fallback where /proc is missing

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _mem_available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return 0
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def tensor_bytes(model: Any) -> int:
    """Bytes held by a torch module's parameters and buffers (0 for anything else)."""
    if not isinstance(model, torch.nn.Module):
        return 0
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


class MemoryMeter:
    """Memory figures of one device (`cpu` or `cuda[:n]`)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def in_use(self) -> int:
        if self.is_cuda:
            return int(torch.cuda.memory_allocated(self.device))
        return _rss_bytes()

    def free(self) -> int:
        """Free memory on the device (CUDA: the whole card's, other processes included)."""
        if self.is_cuda:
            free, _total = torch.cuda.mem_get_info(self.device)
            return int(free)
        return _mem_available_bytes()

    def empty_cache(self) -> None:
        if self.is_cuda:
            torch.cuda.empty_cache()

    def measure_load(self, load: Callable[[], _T], floor: Callable[[_T], int]) -> tuple[_T, int]:
        """Run `load`; returns its result and the memory it added (at least `floor(result)`)."""
        before = self.in_use()
        result = load()
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
        return result, max(self.in_use() - before, floor(result), 0)

    def measure_peak(self, work: Callable[[], _T]) -> tuple[_T, int]:
        """Run `work`; returns its result and the most memory in use above the start meanwhile."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = int(torch.cuda.memory_allocated(self.device))
            result = work()
            torch.cuda.synchronize(self.device)
            return result, max(0, int(torch.cuda.max_memory_allocated(self.device)) - before)
        before = _rss_bytes()
        peak = before
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_bytes())
                time.sleep(_SAMPLE_S)

        sampler = threading.Thread(target=sample, name="secmon-rss-sampler", daemon=True)
        sampler.start()
        try:
            result = work()
        finally:
            done.set()
            sampler.join()
        return result, max(0, max(peak, _rss_bytes()) - before)
