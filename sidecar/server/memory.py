"""The process's memory: resident size now and at its peak, and the C allocator's settings.

glibc's malloc keeps freed memory for reuse: one arena per thread that allocated (up to 8 per
core), and, after a large block is freed, it raises its mmap threshold (up to 32 MiB) so that the
next large blocks come from those arenas too. Decoded frames (a few MB each), batch tensors and
the model's activations are such blocks, allocated by decode threads, the model thread and
torch's own threads, so freed memory piles up per arena and resident memory stays near the sum
of every arena's peak. Fixing the threshold (large blocks are mapped and unmapped with each use)
and capping the arenas keeps resident memory near what is actually in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1024 * 1024  # blocks this large or larger are mapped per allocation
ARENA_MAX = 2


@dataclass(frozen=True, slots=True)
class MemoryUsage:
    rss_bytes: int = 0
    peak_rss_bytes: int = 0


def read_memory(status_file: Path = Path("/proc/self/status")) -> MemoryUsage:
    """Resident memory now (VmRSS) and at its peak (VmHWM); zeros where /proc is missing."""
    try:
        text = status_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        return MemoryUsage()
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024  # kB
    return MemoryUsage(values.get("VmRSS", 0), values.get("VmHWM", 0))


def tune_allocator(
    mmap_threshold: int = MMAP_THRESHOLD, arena_max: int = ARENA_MAX
) -> bool:
    """Apply the settings above to glibc's malloc; False (and nothing changed) elsewhere."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_ARENA_MAX, arena_max)
    )
    _LOGGER.debug("malloc: mmap threshold %d, arenas <= %d: %s", mmap_threshold, arena_max, ok)
    return ok
