"""The model zoo: enrichment models under one memory budget, measured, leased, never overcommitted.

Accounting. Every loaded model counts its MEASURED weights (memory.py: allocator delta on CUDA,
RSS delta on CPU); every running lease adds the model's MEASURED working-set peak (from a warm-up
at the largest input). CUDA figures are taken at every load (the largest kept); CPU figures at the
first load in the process (later the allocator reuses memory it holds, and RSS reads low). A
model never measured is admitted on an estimate (its checkpoint's size, and as much again for the
working set) and re-checked against its measurements at once.

Admission. `lease(name)` admits a run only while

    loaded weights + running peaks + (this model's weights if not loaded) + its peak + margin
    <= budget

Otherwise it evicts idle models (no lease) of no higher priority, least recently used first, if
that makes it fit; else it waits (bounded) for leases to end; else the run is skipped with the
reason. A leased model is never evicted. Idle models unload after a TTL (`sweep`), except resident
ones. A load that fails disables that model only. `run` adds the out-of-memory path: empty the
cache, evict every idle model, retry once with `smaller=True`, then skip.

Thread-safe: loads and runs happen in worker threads. A load is measured alone: it starts once no
model runs, and nothing starts while it loads (the allocator's and the process's figures would
otherwise include the others' memory).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from .memory import MemoryMeter, tensor_bytes
from .models.base import EnrichmentModel

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")
_M = TypeVar("_M", bound=EnrichmentModel)
MIB = 1024 * 1024


class EnrichmentSkipped(Exception):
    """The enrichment did not run; `reason` says why (recorded with the verdict)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Entry:
    model: EnrichmentModel
    priority: int
    resident: bool
    loaded: bool = False
    loading: bool = False
    weights_bytes: int = 0  # measured; 0 = never loaded
    peak_bytes: int = 0  # measured working set above the weights
    estimate_bytes: int = 0
    leases: int = 0
    last_used: float = 0.0
    disabled: str = ""
    loads: int = 0
    evictions: int = 0
    ooms: int = 0
    load_ms: float = 0.0

    @property
    def measured(self) -> bool:
        return self.weights_bytes > 0

    def weights_need(self) -> int:
        return self.weights_bytes if self.measured else self.estimate_bytes

    def peak_need(self) -> int:
        return self.peak_bytes if self.measured else max(self.estimate_bytes, 16 * MIB)


@dataclass(frozen=True, slots=True)
class ModelState:
    name: str
    spec: str
    loaded: bool
    resident: bool
    priority: int
    weights_bytes: int
    peak_bytes: int
    leases: int
    loads: int
    evictions: int
    ooms: int
    load_ms: float
    disabled: str


@dataclass(frozen=True, slots=True)
class ZooState:
    device: str
    budget_bytes: int
    margin_bytes: int
    in_use_bytes: int
    high_water_bytes: int
    loads: int
    evictions: int
    skips: int
    ooms: int
    models: tuple[ModelState, ...] = field(default_factory=tuple)


class ModelZoo:
    def __init__(
        self,
        meter: MemoryMeter,
        *,
        budget_bytes: int | None = None,
        margin_bytes: int = 256 * MIB,
        idle_ttl_s: float = 300.0,
        wait_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`budget_bytes` None: measured when first needed, as the device's free memory (after
        the detector and the LLM are loaded); on CPU the available RAM.
        The margin always stays free within it."""
        self.meter = meter
        self._budget = budget_bytes
        self._margin = margin_bytes
        self._ttl = idle_ttl_s
        self._wait_s = wait_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        self._running_peaks: dict[int, int] = {}
        self._lease_ids = 0
        self._high_water = 0
        self.loads = 0
        self.evictions = 0
        self.skips = 0
        self.ooms = 0

    # -- registration and figures -------------------------------------------------------------
    def register(
        self, model: EnrichmentModel, *, priority: int = 0, resident: bool = False
    ) -> None:
        with self._cond:
            self._entries[model.name] = _Entry(model, priority, resident)

    @property
    def budget_bytes(self) -> int:
        with self._cond:
            return self._resolve_budget()

    def set_budget(self, budget_bytes: int) -> None:
        """A new budget (e.g. measured again after another model was loaded); models in use
        keep running, new admissions follow it."""
        with self._cond:
            self._budget = max(0, budget_bytes)
            if self._in_use() + self._margin > self._budget:
                self._evict_idle(lambda e: True, "the memory budget shrank")
            self._high_water = self._in_use()
            self._cond.notify_all()

    def _resolve_budget(self) -> int:
        if self._budget is None:
            self._budget = max(0, self.meter.free())
            _LOGGER.info(
                "Enrichment memory budget on %s: %.0f MiB free after the detector and the LLM, "
                "of which %.0f MiB stay free as a margin", self.meter.device, self._budget / MIB,
                self._margin / MIB,
            )
        return self._budget

    def _in_use(self) -> int:
        return sum(e.weights_need() for e in self._entries.values() if e.loaded or e.loading) + sum(
            self._running_peaks.values()
        )

    def _note_high_water(self) -> None:
        self._high_water = max(self._high_water, self._in_use())

    def state(self) -> ZooState:
        with self._cond:
            return ZooState(
                device=str(self.meter.device),
                budget_bytes=self._budget or 0,
                margin_bytes=self._margin,
                in_use_bytes=self._in_use(),
                high_water_bytes=self._high_water,
                loads=self.loads,
                evictions=self.evictions,
                skips=self.skips,
                ooms=self.ooms,
                models=tuple(
                    ModelState(
                        name=name,
                        spec=e.model.spec,
                        loaded=e.loaded,
                        resident=e.resident,
                        priority=e.priority,
                        weights_bytes=e.weights_bytes,
                        peak_bytes=e.peak_bytes,
                        leases=e.leases,
                        loads=e.loads,
                        evictions=e.evictions,
                        ooms=e.ooms,
                        load_ms=e.load_ms,
                        disabled=e.disabled,
                    )
                    for name, e in sorted(self._entries.items())
                ),
            )

    def is_loaded(self, name: str) -> bool:
        with self._cond:
            return self._entries[name].loaded

    # -- leases --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self, name: str, *, wait_s: float | None = None) -> Iterator[EnrichmentModel]:
        """Lend `name`, loaded, with its working set admitted. Raises EnrichmentSkipped."""
        lease_id, must_load = self._admit(name, self._wait_s if wait_s is None else wait_s)
        entry = self._entries[name]
        try:
            if must_load:
                self._load(entry, lease_id)
            yield entry.model
        finally:
            with self._cond:
                self._running_peaks.pop(lease_id, None)
                entry.leases -= 1
                entry.last_used = self._clock()
                self._cond.notify_all()

    def run(self, name: str, work: Callable[[Any, bool], _T], *, wait_s: float | None = None) -> _T:
        """`work(model, smaller)` under a lease; on out-of-memory, empty the cache, evict every
        idle model, and retry once with smaller=True; a second one skips."""
        try:
            with self.lease(name, wait_s=wait_s) as model:
                return work(model, False)
        except torch.OutOfMemoryError:
            self._after_oom(name)
        try:
            with self.lease(name, wait_s=wait_s) as model:
                return work(model, True)
        except torch.OutOfMemoryError:
            self._after_oom(name)
            with self._cond:
                self.skips += 1
            raise EnrichmentSkipped("out of memory, also when retried smaller") from None

    def _after_oom(self, name: str) -> None:
        with self._cond:
            self.ooms += 1
            entry = self._entries[name]
            entry.ooms += 1
            # Its working set was larger than measured: count twice as much from now on.
            entry.peak_bytes = max(entry.peak_bytes * 2, 16 * MIB)
            self._evict_idle(lambda e: e is not entry, "evicted after an out-of-memory error")
        self.meter.empty_cache()
        _LOGGER.warning("Out of memory running %s: cache emptied, idle models evicted", name)

    def _admit(self, name: str, wait_s: float) -> tuple[int, bool]:
        deadline = self._clock() + wait_s
        with self._cond:
            entry = self._entries.get(name)
            if entry is None:
                raise EnrichmentSkipped(f"{name} is not configured")
            budget = self._resolve_budget()
            while True:
                if entry.disabled:
                    self.skips += 1
                    raise EnrichmentSkipped(entry.disabled)
                if entry.loading or any(e.loading for e in self._entries.values()):
                    pass  # a load is being measured: nothing else starts meanwhile
                elif not entry.loaded and self._running_peaks:
                    pass  # a load waits for running models: its measurement sees only itself
                else:
                    weights = 0 if entry.loaded else entry.weights_need()
                    need = weights + entry.peak_need()
                    if need + self._margin > budget:
                        self.skips += 1
                        raise EnrichmentSkipped(
                            f"{name} needs {need / MIB:.0f} MiB with its working set; the budget "
                            f"is {budget / MIB:.0f} MiB ({self._margin / MIB:.0f} MiB margin)"
                        )
                    if self._in_use() + need + self._margin <= budget or self._make_room(
                        entry, need + self._margin, budget
                    ):
                        self._lease_ids += 1
                        self._running_peaks[self._lease_ids] = entry.peak_need()
                        entry.leases += 1
                        must_load = not entry.loaded
                        if must_load:
                            entry.loading = True
                        self._note_high_water()
                        return self._lease_ids, must_load
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self.skips += 1
                    raise EnrichmentSkipped(
                        f"{name}: no room in the memory budget within {wait_s:.1f} s "
                        f"({self._in_use() / MIB:.0f} of {budget / MIB:.0f} MiB in use by running "
                        "models)"
                    )
                self._cond.wait(min(remaining, 0.5))

    def _make_room(self, entry: _Entry, need: int, budget: int) -> bool:
        """Evict idle models of no higher priority (LRU first) if that makes `need` fit."""
        candidates = sorted(
            (
                e
                for e in self._entries.values()
                if e is not entry and e.loaded and e.leases == 0 and e.priority <= entry.priority
            ),
            key=lambda e: (e.priority, e.last_used),
        )
        freeable = sum(e.weights_bytes for e in candidates)
        if self._in_use() - freeable + need > budget:
            return False
        for victim in candidates:
            if self._in_use() + need <= budget:
                break
            self._unload(victim, "evicted to make room for " + entry.model.name)
        return self._in_use() + need <= budget

    def _evict_idle(self, which: Callable[[_Entry], bool], why: str) -> None:
        for entry in sorted(self._entries.values(), key=lambda e: (e.priority, e.last_used)):
            if entry.loaded and entry.leases == 0 and which(entry):
                self._unload(entry, why)

    def _unload(self, entry: _Entry, why: str) -> None:
        """Called with the lock held, for a model nobody leases."""
        assert entry.leases == 0, "a leased model is never evicted"
        entry.model.unload()
        entry.loaded = False
        entry.evictions += 1
        self.evictions += 1
        _LOGGER.info("Unloaded %s (%s)", entry.model.name, why)
        self.meter.empty_cache()
        self._cond.notify_all()

    def _load(self, entry: _Entry, lease_id: int) -> None:
        """Load and warm up under measurement (the lease reserved the estimate)."""
        name = entry.model.name
        try:
            with self._load_lock:
                t0 = time.perf_counter()
                if not entry.measured:
                    entry.estimate_bytes = max(entry.estimate_bytes, entry.model.estimate_bytes())
                entry.model.prepare()
                if self.meter.is_cuda or not entry.measured:
                    _loaded, weights = self.meter.measure_load(entry.model.load, tensor_bytes)
                    _none, peak = self.meter.measure_peak(entry.model.warmup)
                else:  # RSS after a reload reads low: the allocator reuses what it already holds
                    entry.model.load()
                    entry.model.warmup()
                    weights, peak = entry.weights_bytes, entry.peak_bytes
                load_ms = (time.perf_counter() - t0) * 1000
        except torch.OutOfMemoryError:  # not the model's fault: `run` frees memory and retries
            with contextlib.suppress(Exception):
                entry.model.unload()
            with self._cond:
                entry.loading = False
                self._cond.notify_all()
            raise
        except Exception as err:
            with contextlib.suppress(Exception):
                entry.model.unload()
            with self._cond:
                entry.loading = False
                entry.disabled = f"{name} disabled: loading {entry.model.spec} failed: {err}"
                self.skips += 1
                self._cond.notify_all()
            _LOGGER.error("%s", entry.disabled)  # noqa: TRY400 - the reason, once
            raise EnrichmentSkipped(entry.disabled) from err
        with self._cond:
            entry.loading = False
            entry.load_ms = load_ms
            # The largest figures measured so far: a reload reusing freed memory reads smaller.
            entry.weights_bytes = max(weights, entry.weights_bytes, 1)
            entry.peak_bytes = max(peak, entry.peak_bytes)
            self._running_peaks[lease_id] = entry.peak_bytes
            budget = self._resolve_budget()
            entry.loaded = True  # counted from here on
            if self._in_use() + self._margin > budget:
                self._evict_idle(
                    lambda e: e is not entry and e.priority <= entry.priority,
                    f"evicted to make room for {name}",
                )
            fits = self._in_use() + self._margin <= budget
            if fits:
                entry.loads += 1
                self.loads += 1
                self._note_high_water()
            else:  # measured larger than estimated, and no room: give it back at once
                entry.loaded = False
                self._running_peaks.pop(lease_id, None)
                entry.model.unload()
            self._cond.notify_all()
        if not fits:
            self.meter.empty_cache()
            raise EnrichmentSkipped(
                f"{name} measured {(entry.weights_bytes + entry.peak_bytes) / MIB:.0f} MiB with "
                "its working set, more than the budget has room for now"
            )
        _LOGGER.info(
            "Loaded %s (%s): weights %.1f MiB, working set %.1f MiB, in %.0f ms",
            name,
            entry.model.spec,
            entry.weights_bytes / MIB,
            entry.peak_bytes / MIB,
            load_ms,
        )

    def sweep(self) -> list[str]:
        """Unload models idle for longer than the TTL (resident ones stay). Returns their names."""
        now = self._clock()
        with self._cond:
            idle = [
                e
                for e in self._entries.values()
                if e.loaded and not e.resident and e.leases == 0 and now - e.last_used >= self._ttl
            ]
            for entry in idle:
                self._unload(entry, f"idle for {self._ttl:.0f} s")
            return [e.model.name for e in idle]

    def close(self) -> None:
        with self._cond:
            for entry in self._entries.values():
                if entry.loaded and entry.leases == 0:
                    entry.model.unload()
                    entry.loaded = False
