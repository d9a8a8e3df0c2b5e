"""The model zoo with real tiny models (CLIP, Depth Anything, ViTPose built offline and loaded from
their save_pretrained directories): measured memory, budget never exceeded under concurrent use,
leases, TTL unloads, out-of-memory survival, a failing load disabling only its model."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from manual_clock import Clock
from PIL import Image

from sidecar.domain import Box
from sidecar.enrichment.memory import MemoryMeter, tensor_bytes
from sidecar.enrichment.models.clip import ClipModel
from sidecar.enrichment.models.depth import DepthModel
from sidecar.enrichment.models.pose import PoseModel
from sidecar.enrichment.zoo import MIB, EnrichmentSkipped, ModelZoo

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("enrich-models")


def models(cache_dir: Path) -> tuple[ClipModel, DepthModel, PoseModel]:
    return (
        ClipModel("random:tiny", CPU, cache_dir, max_batch=2),
        DepthModel("random:tiny", CPU, cache_dir, max_batch=1),
        PoseModel("random:tiny", CPU, cache_dir, max_people=1),
    )


def use(model: object, smaller: bool) -> object:
    """One real forward pass of whichever model was lent."""
    image = Image.new("RGB", (160, 120), "gray")
    if isinstance(model, ClipModel):
        return model.embed([image], smaller=smaller)
    if isinstance(model, DepthModel):
        return model.depth_maps([image], smaller=smaller)
    assert isinstance(model, PoseModel)
    return model.keypoints(image, [Box(10, 10, 60, 110)], smaller=smaller)


@pytest.fixture(scope="module")
def measured(cache_dir: Path) -> dict[str, tuple[int, int]]:
    """Each model's measured (weights, working set) when loaded alone in a roomy zoo."""
    zoo = ModelZoo(MemoryMeter(CPU), budget_bytes=64_000 * MIB, margin_bytes=0)
    for model in models(cache_dir):
        zoo.register(model)
        zoo.run(model.name, use)
    figures = {m.name: (m.weights_bytes, m.peak_bytes) for m in zoo.state().models}
    zoo.close()
    return figures


def test_memory_is_measured_not_declared(
    cache_dir: Path, measured: dict[str, tuple[int, int]]
) -> None:
    for name, (weights, peak) in measured.items():
        assert weights > 0, name  # RSS delta, at least the tensors' bytes
        assert peak >= 0, name
    # The tensors' bytes are the floor of a load's figure.
    clip = ClipModel("random:tiny", CPU, cache_dir)
    assert measured["attributes"][0] >= tensor_bytes(clip.load()) > 0


def test_the_default_budget_is_the_free_memory(cache_dir: Path) -> None:
    """No budget given: the device's free memory when first asked (after the detector and the
    LLM loaded; on CPU the available RAM), the margin kept free within it."""
    meter = MemoryMeter(CPU)
    zoo = ModelZoo(meter, margin_bytes=64 * MIB)
    budget = zoo.budget_bytes
    free_now = meter.free()
    assert free_now > 0
    # The same figure, give or take what other processes did in between (not a fraction of it).
    assert 0.8 * free_now < budget < 1.25 * free_now
    assert zoo.state().budget_bytes == budget and zoo.state().margin_bytes == 64 * MIB
    zoo.close()


def test_budget_never_exceeded_under_concurrent_batches(cache_dir: Path) -> None:
    margin = 1 * MIB
    zoo = ModelZoo(MemoryMeter(CPU), budget_bytes=64_000 * MIB, margin_bytes=margin, wait_s=60)
    for model in models(cache_dir):
        zoo.register(model)
        zoo.run(model.name, use)  # measured in this process, by this zoo
    figures = [(m.weights_bytes, m.peak_bytes) for m in zoo.state().models]
    # Room for the largest model and its working set, not for every model's weights besides.
    budget = margin + max(w + p for w, p in figures) + min(w for w, _p in figures) // 2
    zoo.set_budget(budget)
    over: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            state = zoo.state()
            if state.in_use_bytes + state.margin_bytes > state.budget_bytes:
                over.append(state.in_use_bytes)
            time.sleep(0.001)

    outcomes: list[tuple[str, str]] = []

    def batch(seed: int) -> None:
        names = ["attributes", "depth", "pose"]
        for step in range(6):
            name = names[(seed + step) % 3]
            try:
                zoo.run(name, use)
                outcomes.append((name, "ran"))
            except EnrichmentSkipped as skipped:
                outcomes.append((name, skipped.reason))

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=batch, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=600)
    stop.set()
    watcher.join()
    state = zoo.state()
    assert len(outcomes) == 24
    assert over == []
    assert state.high_water_bytes + margin <= budget
    assert state.evictions > 0  # the budget forced models out to let others in
    assert {name for name, what in outcomes if what == "ran"} == {"attributes", "depth", "pose"}, (
        outcomes, figures, zoo.state()
    )
    for _name, what in outcomes:
        assert what == "ran" or "MiB" in what, what  # a skip names the memory it lacked
    zoo.close()


def test_a_leased_model_is_never_evicted(cache_dir: Path) -> None:
    clip, depth, _pose = models(cache_dir)
    margin = 1 * MIB
    zoo = ModelZoo(MemoryMeter(CPU), budget_bytes=64_000 * MIB, margin_bytes=margin, wait_s=0.3)
    zoo.register(clip)
    zoo.register(depth)
    zoo.run("depth", use)
    zoo.run("attributes", use)
    figures = {m.name: (m.weights_bytes, m.peak_bytes) for m in zoo.state().models}
    (wa, pa), (wd, pd) = figures["attributes"], figures["depth"]
    # Room for either model with its working set, never for both.
    zoo.set_budget(margin + max(wa + pa, wd + pd) + min(wa, wd) // 2)
    with zoo.lease("attributes") as lent:
        with pytest.raises(EnrichmentSkipped, match="no room in the memory budget"):
            zoo.run("depth", use)
        assert zoo.is_loaded("attributes")
        use(lent, False)  # still usable: it was not taken away
    # Released (idle): now it is evicted to make room.
    zoo.run("depth", use)
    assert not zoo.is_loaded("attributes")
    assert zoo.is_loaded("depth")
    assert zoo.state().evictions >= 1
    zoo.close()


def test_idle_models_unload_after_the_ttl_and_resident_ones_stay(cache_dir: Path) -> None:
    clip, depth, _pose = models(cache_dir)
    clock = Clock()
    zoo = ModelZoo(
        MemoryMeter(CPU), budget_bytes=64_000 * MIB, margin_bytes=0, idle_ttl_s=60, clock=clock
    )
    zoo.register(clip)
    zoo.register(depth, resident=True)
    zoo.run("attributes", use)
    zoo.run("depth", use)
    clock.now += 59
    assert zoo.sweep() == []
    clock.now += 2
    assert zoo.sweep() == ["attributes"]
    assert not zoo.is_loaded("attributes")
    assert zoo.is_loaded("depth")
    zoo.run("attributes", use)  # loads again on demand
    assert zoo.state().models[0].loads == 2
    zoo.close()


class OomClip(ClipModel):
    """The device's edge: a forward pass that runs out of memory `fails` times at full size."""

    def __init__(self, *args: object, fails: int, fail_smaller: bool) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.fails = fails
        self.fail_smaller = fail_smaller
        self.calls: list[bool] = []
        self.warming = True

    def load(self) -> object:
        self.warming = True
        return super().load()

    def warmup(self) -> None:
        super().warmup()
        self.warming = False

    def embed(self, crops: object, *, smaller: bool = False) -> np.ndarray:  # type: ignore[override]
        if not self.warming:
            self.calls.append(smaller)
            if self.fails > 0 and (not smaller or self.fail_smaller):
                self.fails -= 1
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().embed(crops, smaller=smaller)  # type: ignore[arg-type]


def test_out_of_memory_empties_evicts_and_retries_smaller(cache_dir: Path) -> None:
    oom = OomClip("random:tiny", CPU, cache_dir, fails=1, fail_smaller=False)
    _clip, depth, _pose = models(cache_dir)
    zoo = ModelZoo(MemoryMeter(CPU), budget_bytes=64_000 * MIB, margin_bytes=0)
    zoo.register(oom)
    zoo.register(depth)
    zoo.run("depth", use)
    result = zoo.run(
        "attributes", lambda m, smaller: m.embed([Image.new("RGB", (64, 64))], smaller=smaller)
    )
    assert result.shape == (1, 32)
    assert oom.calls == [False, True]
    state = zoo.state()
    assert state.ooms == 1
    assert not zoo.is_loaded("depth")  # idle models were evicted to free memory
    zoo.close()


def test_out_of_memory_twice_skips_and_the_zoo_keeps_working(cache_dir: Path) -> None:
    oom = OomClip("random:tiny", CPU, cache_dir, fails=2, fail_smaller=True)
    zoo = ModelZoo(MemoryMeter(CPU), budget_bytes=64_000 * MIB, margin_bytes=0)
    zoo.register(oom)
    with pytest.raises(EnrichmentSkipped, match="out of memory"):
        zoo.run(
            "attributes", lambda m, smaller: m.embed([Image.new("RGB", (64, 64))], smaller=smaller)
        )
    assert zoo.state().ooms == 2
    # The next batch runs normally.
    assert zoo.run("attributes", use).shape == (1, 32)  # type: ignore[attr-defined]
    zoo.close()


def test_a_failing_load_disables_only_its_model(cache_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-clip"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    clip = ClipModel(str(broken), CPU, cache_dir)
    _clip, depth, _pose = models(cache_dir)
    zoo = ModelZoo(MemoryMeter(CPU), budget_bytes=64_000 * MIB, margin_bytes=0)
    zoo.register(clip)
    zoo.register(depth)
    with pytest.raises(EnrichmentSkipped, match="attributes disabled: loading") as first:
        zoo.run("attributes", use)
    with pytest.raises(EnrichmentSkipped) as second:
        zoo.run("attributes", use)
    assert second.value.reason == first.value.reason
    zoo.run("depth", use)
    assert zoo.is_loaded("depth")
    states = {m.name: m for m in zoo.state().models}
    assert states["attributes"].disabled and not states["depth"].disabled
    zoo.close()


def test_a_model_larger_than_the_budget_is_skipped_with_the_reason(
    cache_dir: Path, measured: dict[str, tuple[int, int]]
) -> None:
    _clip, depth, _pose = models(cache_dir)
    zoo = ModelZoo(MemoryMeter(CPU), budget_bytes=2 * MIB, margin_bytes=1 * MIB)
    zoo.register(depth)
    with pytest.raises(EnrichmentSkipped, match="MiB"):
        zoo.run("depth", use)
    state = zoo.state()
    assert state.high_water_bytes + state.margin_bytes <= state.budget_bytes
    assert not zoo.is_loaded("depth")
    zoo.close()
