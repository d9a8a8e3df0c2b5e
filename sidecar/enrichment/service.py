"""Enrichment of one batch (or fast-path frame): key frames -> the enrichers, under the zoo's
budget and a time budget -> `Enrichment` (what ran, what was skipped and why, their times).

Enrichers, in priority order: caption (Florence-2 on the snapshot frame), attributes (CLIP:
attributes, scene, embeddings -> identities), plates (PP-OCR on vehicle crops), pose (ViTPose on
people -> posture), depth (Depth Anything -> distance, approaching or leaving). Each can be
switched off. Whatever happens, `enrich` returns: an enricher that fails, is skipped by the zoo
or runs out of time is recorded as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..domain import (
    EnrichedObject,
    EnricherRun,
    Enrichment,
    FrameObservation,
    ObjectAttribute,
)
from . import distance, keyframes
from .frame_images import FrameImages
from .identities import IdentityStore
from .memory import MemoryMeter
from .models.base import EnrichmentModel
from .models.caption import CaptionModel
from .models.clip import (
    ANIMAL_GROUPS,
    PERSON_GROUPS,
    SCENE_GROUPS,
    VEHICLE_GROUPS,
    AttributeGroup,
    ClipModel,
)
from .models.depth import DepthModel
from .models.ocr import OcrModel, plate_candidate, read_plate
from .models.pose import PoseModel
from .posture import posture
from .settings import ENRICHERS, EnrichmentSettings
from .zoo import EnrichmentSkipped, ModelZoo, ZooState

_LOGGER = logging.getLogger(__name__)

_PRIORITY = {"caption": 4, "attributes": 3, "plates": 2, "pose": 1, "depth": 0}
_CAPTION_CHARS = 600
_GROUPS: dict[str, tuple[AttributeGroup, ...]] = {
    "person": PERSON_GROUPS,
    "vehicle": VEHICLE_GROUPS,
    "animal": ANIMAL_GROUPS,
}
_IDENTIFIED = ("person", "vehicle")
_SWEEP_S = 10.0
_PRUNE_S = 3600.0
_MAX_DEPTH_FRAMES = 3
# A client's known plates: how many, and how long a plate or its name may be.
MAX_KNOWN_PLATES = 1000
MAX_PLATE_NAME_CHARS = 64


@dataclass(frozen=True, slots=True)
class EnrichRequest:
    batch_id: str
    camera_id: str
    camera_name: str
    frames: Sequence[FrameObservation]
    snapshot: FrameObservation
    fast_path: bool
    # Whose batch it is: its enrichers switched off are not run.
    client_id: str = ""


@dataclass(slots=True)
class _Found:
    """What the enrichers found about one key object so far."""

    obj: keyframes.KeyObject
    image: Image.Image
    attributes: tuple[ObjectAttribute, ...] = ()
    identity: dict[str, Any] = field(default_factory=dict)
    plate: str = ""
    plate_score: float = 0.0
    known_plate: str = ""
    posture: str = ""
    distance: str = ""
    movement: str = ""


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def build_zoo(settings: EnrichmentSettings, cache_dir: Path) -> ModelZoo:
    device = resolve_device(settings.device)
    zoo = ModelZoo(
        MemoryMeter(device),
        budget_bytes=settings.memory_budget_bytes,
        margin_bytes=settings.margin_bytes,
        idle_ttl_s=settings.idle_ttl_s,
        wait_s=settings.wait_s,
    )
    factories: dict[str, Callable[[], EnrichmentModel]] = {
        "caption": lambda: CaptionModel(settings.caption_model, device, cache_dir),
        "attributes": lambda: ClipModel(settings.attributes_model, device, cache_dir),
        "plates": OcrModel,
        "pose": lambda: PoseModel(settings.pose_model, device, cache_dir),
        "depth": lambda: DepthModel(settings.depth_model, device, cache_dir),
    }
    for name in ENRICHERS:
        if name in settings.enabled:
            zoo.register(factories[name](), priority=_PRIORITY[name])
    return zoo


class Enricher:
    def __init__(
        self,
        settings: EnrichmentSettings,
        zoo: ModelZoo,
        *,
        identities: IdentityStore | None = None,
        images: FrameImages | None = None,
    ) -> None:
        self.settings = settings
        self.zoo = zoo
        self.identities = identities
        self.images = images or FrameImages(settings.frame_cache_bytes)
        # Per client, its known plates (normalised plate -> the name the home gave it).
        self.known_plates: dict[str, dict[str, str]] = {}
        # Per client, the enrichers it switched off (StreamConfig.enrichers_off).
        self.enrichers_off: dict[str, frozenset[str]] = {}
        self._last_ms: dict[str, float] = {}  # each enricher's last run, for the time budget
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="secmon-enrich")
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="secmon-enrich-sweep"))

    async def on_ready(self) -> None:
        """The detector and the LLM are loaded: measure the budget now (it is what is left)."""
        await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: self.zoo.budget_bytes
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=True)

    def _close_sync(self) -> None:
        self.zoo.close()
        if self.identities is not None:
            self.identities.close()

    async def _housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        last_prune = 0.0
        while True:
            await asyncio.sleep(_SWEEP_S)
            try:
                await loop.run_in_executor(self._executor, self.zoo.sweep)
                if self.identities is not None and time.monotonic() - last_prune > _PRUNE_S:
                    last_prune = time.monotonic()
                    await loop.run_in_executor(self._executor, self.identities.prune)
            except Exception:
                _LOGGER.exception("Enrichment housekeeping failed")

    def set_enrichers_off(self, client_id: str, off: frozenset[str]) -> None:
        """`client_id`'s batches skip these enrichers (unknown names are ignored)."""
        self.enrichers_off[client_id] = frozenset(n for n in off if n in ENRICHERS)

    def enabled_for(self, client_id: str) -> list[str]:
        """The enrichers a client's batches run, in their order."""
        off = self.enrichers_off.get(client_id, frozenset())
        return [n for n in ENRICHERS if n in self.settings.enabled and n not in off]

    def set_known_plates(self, plates: Mapping[str, str], client_id: str = "") -> None:
        """`client_id`'s known plates (replacing its previous ones; other clients keep theirs).
        At most MAX_KNOWN_PLATES, names cut to MAX_PLATE_NAME_CHARS."""
        known: dict[str, str] = {}
        for plate, name in plates.items():
            if len(known) >= MAX_KNOWN_PLATES:
                _LOGGER.warning(
                    "Client %s sent more than %d known plates; the rest are ignored",
                    client_id[:64],
                    MAX_KNOWN_PLATES,
                )
                break
            if (normal := plate_candidate(plate[:MAX_PLATE_NAME_CHARS])) is not None:
                known[normal] = name[:MAX_PLATE_NAME_CHARS]
        self.known_plates[client_id] = known

    def state(self) -> ZooState:
        return self.zoo.state()

    # -- enrichment ----------------------------------------------------------------------------
    def remember(self, camera_id: str, frame_id: str, image: bytes) -> None:
        self.images.put(camera_id, frame_id, image)

    async def enrich(self, request: EnrichRequest) -> Enrichment:
        ids = [f.frame_id for f in request.frames]
        images = self.images.get_many(request.camera_id, ids)
        budget = (
            self.settings.fast_path_time_budget_s
            if request.fast_path
            else self.settings.batch_time_budget_s
        )
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._executor, self.enrich_sync, request, images, budget
            )
        except Exception as err:  # the verdict goes out regardless
            _LOGGER.exception("Enrichment of %s failed", request.batch_id)
            result = Enrichment(
                runs=tuple(
                    EnricherRun(n, "failed", f"{type(err).__name__}: {err}"[:200])
                    for n in self.enabled_for(request.client_id)
                )
            )
        if not request.fast_path:
            self.images.discard(request.camera_id, ids)
        self.batches += 1
        return result

    def enrich_sync(
        self, request: EnrichRequest, images: Mapping[str, bytes], time_budget_s: float
    ) -> Enrichment:
        t0 = time.perf_counter()
        deadline = time.monotonic() + time_budget_s
        runs: list[EnricherRun] = []
        enabled = self.enabled_for(request.client_id)
        decoded: dict[str, Image.Image] = {}

        def image_of(frame_id: str) -> Image.Image:
            if frame_id not in decoded:
                decoded[frame_id] = keyframes.decode(images, frame_id)
            return decoded[frame_id]

        usable = set()
        for frame_id in images:
            try:
                image_of(frame_id)
                usable.add(frame_id)
            except Exception as err:
                _LOGGER.warning("Frame %s cannot be decoded for enrichment: %s", frame_id, err)
        objects = keyframes.select_objects(
            request.snapshot, request.frames, usable, self.settings.max_objects
        )
        if not objects and request.snapshot.frame_id not in usable:
            reason = (
                "the frames' images are no longer available (the sidecar restarted, or they "
                "were dropped from its bounded image cache)"
            )
            return Enrichment(
                runs=tuple(EnricherRun(n, "skipped", reason) for n in enabled) + _off(enabled),
                total_ms=_ms(t0),
            )
        found = [
            _Found(o, keyframes.crop(image_of(o.frame.frame_id), o.detection.box)) for o in objects
        ]
        scene: list[ObjectAttribute] = []
        caption: list[str] = []
        steps: dict[str, Callable[[float], str]] = {
            "caption": lambda wait: self._caption(request, caption, image_of, usable, wait),
            "attributes": lambda wait: self._attributes(request, found, scene, image_of, wait),
            "plates": lambda wait: self._plates(found, wait, request.client_id),
            "pose": lambda wait: self._pose(found, image_of, wait),
            "depth": lambda wait: self._depth(request, found, image_of, usable, wait),
        }
        for name in enabled:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                runs.append(
                    EnricherRun(name, "skipped", f"time budget of {time_budget_s:.1f} s used up")
                )
                continue
            if (why := self._would_not_fit(name, remaining, request.fast_path)) is not None:
                runs.append(EnricherRun(name, "skipped", why))
                continue
            started = time.perf_counter()
            try:
                note = steps[name](min(remaining, self.settings.wait_s))
                runs.append(EnricherRun(name, "ran", note, _ms(started)))
                self._last_ms[name] = _ms(started)
            except EnrichmentSkipped as skipped:
                runs.append(EnricherRun(name, "skipped", skipped.reason, _ms(started)))
            except Exception as err:
                _LOGGER.exception("Enricher %s failed on batch %s", name, request.batch_id)
                runs.append(
                    EnricherRun(name, "failed", f"{type(err).__name__}: {err}"[:200], _ms(started))
                )
        runs.extend(_off(enabled))
        return Enrichment(
            caption=caption[0] if caption else "",
            scene=tuple(scene),
            objects=tuple(_object(f) for f in found),
            runs=tuple(runs),
            total_ms=_ms(t0),
        )

    def _would_not_fit(self, name: str, remaining_s: float, fast_path: bool) -> str | None:
        """Why a step is not started within the time left (None: start it). A running step is
        not interrupted, so steps known to take longer than what is left, and on the fast path
        model loads (seconds to minutes), are not started."""
        if fast_path and not self.zoo.is_loaded(name):
            return "model not loaded yet; the fast path does not wait for a load"
        last = self._last_ms.get(name)
        if last is not None and last > remaining_s * 1000:
            return f"takes about {last:.0f} ms, {remaining_s * 1000:.0f} ms were left"
        return None

    # -- the enrichers -------------------------------------------------------------------------
    def _caption(
        self,
        request: EnrichRequest,
        caption: list[str],
        image_of: Callable[[str], Image.Image],
        usable: set[str],
        wait_s: float,
    ) -> str:
        if request.snapshot.frame_id not in usable:
            return "the snapshot frame's image is not available"
        image = image_of(request.snapshot.frame_id)
        text = self.zoo.run(
            "caption", lambda m, smaller: m.caption(image, smaller=smaller), wait_s=wait_s
        )
        caption.append(text[:_CAPTION_CHARS])
        return f"{len(text)} characters"

    def _attributes(
        self,
        request: EnrichRequest,
        found: list[_Found],
        scene: list[ObjectAttribute],
        image_of: Callable[[str], Image.Image],
        wait_s: float,
    ) -> str:
        targets = [f for f in found if f.obj.kind in _GROUPS]
        snapshot = image_of(request.snapshot.frame_id)

        def work(model: ClipModel, smaller: bool) -> tuple[Any, list[list[Any]], list[Any]]:
            vectors = model.embed([f.image for f in targets] + [snapshot], smaller=smaller)
            per_object = [
                model.attributes(vectors[i : i + 1], _GROUPS[f.obj.kind])[0]
                for i, f in enumerate(targets)
            ]
            return vectors, per_object, model.attributes(vectors[-1:], SCENE_GROUPS)[0]

        vectors, per_object, scene_attrs = self.zoo.run("attributes", work, wait_s=wait_s)
        scene.extend(ObjectAttribute(a.group, a.value, a.score) for a in scene_attrs)
        for i, (f, attrs) in enumerate(zip(targets, per_object, strict=True)):
            f.attributes = tuple(ObjectAttribute(a.group, a.value, a.score) for a in attrs)
            if self.identities is not None and f.obj.kind in _IDENTIFIED:
                box = f.obj.detection.box
                result = self.identities.observe(
                    kind=f.obj.kind,
                    embedding=vectors[i],
                    key=f"{request.batch_id}/{f.obj.frame.frame_id}/"
                    f"{box.x_min:.0f},{box.y_min:.0f},{box.x_max:.0f},{box.y_max:.0f}",
                    camera_id=request.camera_id,
                    camera_name=request.camera_name,
                    batch_id=request.batch_id,
                    seen_at=f.obj.frame.captured_at,
                )
                f.identity = {
                    "identity_id": result.identity_id,
                    "identity": result.name,
                    "visits_24h": result.visits_24h,
                    "matches": result.matches,
                }
        return f"{len(targets)} object(s)"

    def _plates(self, found: list[_Found], wait_s: float, client_id: str) -> str:
        vehicles = [f for f in found if f.obj.kind == "vehicle"]
        if not vehicles:
            return "no vehicle in the key frames"
        lines = self.zoo.run(
            "plates",
            lambda m, smaller: m.read([f.image for f in vehicles], smaller=smaller),
            wait_s=wait_s,
        )
        read = 0
        for f, text in zip(vehicles, lines, strict=True):
            plate = read_plate(text)
            if plate is not None:
                read += 1
                f.plate, f.plate_score = plate.text, plate.score
                f.known_plate = self.known_plates.get(client_id, {}).get(plate.text, "")
        return f"{read} plate(s) read on {len(vehicles)} vehicle(s)"

    def _pose(
        self, found: list[_Found], image_of: Callable[[str], Image.Image], wait_s: float
    ) -> str:
        people = [f for f in found if f.obj.kind == "person"]
        if not people:
            return "no person in the key frames"
        by_frame: dict[str, list[_Found]] = {}
        for f in people:
            by_frame.setdefault(f.obj.frame.frame_id, []).append(f)

        def work(model: PoseModel, smaller: bool) -> list[tuple[_Found, Any]]:
            out: list[tuple[_Found, Any]] = []
            for frame_id, group in by_frame.items():
                points = model.keypoints(
                    image_of(frame_id), [f.obj.detection.box for f in group], smaller=smaller
                )
                out.extend(zip(group, points, strict=True))
            return out

        for f, (points, scores) in self.zoo.run("pose", work, wait_s=wait_s):
            f.posture = posture(points, scores)
        return f"{len(people)} person(s)"

    def _depth(
        self,
        request: EnrichRequest,
        found: list[_Found],
        image_of: Callable[[str], Image.Image],
        usable: set[str],
        wait_s: float,
    ) -> str:
        if not found:
            return "no object in the key frames"
        frames = sorted(
            (f for f in request.frames if f.frame_id in usable), key=lambda f: f.captured_at
        )
        # For each object, the frame of its crop and the first (or, if that is it, the last)
        # frame of the batch with the same label: near/far, and which way it moves.
        pairs: dict[int, tuple[FrameObservation, FrameObservation | None]] = {}
        wanted: list[str] = []
        for i, f in enumerate(found):
            label = f.obj.detection.label
            with_label = [fr for fr in frames if any(d.label == label for d in fr.detections)]
            other = None
            if len(with_label) > 1:
                other = (
                    with_label[0]
                    if with_label[0].frame_id != f.obj.frame.frame_id
                    else (with_label[-1])
                )
            pairs[i] = (f.obj.frame, other)
            for fr in (f.obj.frame, other):
                if fr is not None and fr.frame_id not in wanted:
                    wanted.append(fr.frame_id)
        wanted = wanted[:_MAX_DEPTH_FRAMES]
        maps = dict(
            zip(
                wanted,
                self.zoo.run(
                    "depth",
                    lambda m, smaller: m.depth_maps([image_of(w) for w in wanted], smaller=smaller),
                    wait_s=wait_s,
                ),
                strict=True,
            )
        )
        for i, f in enumerate(found):
            own, other = pairs[i]
            if own.frame_id not in maps:
                continue
            here = distance.nearness(maps[own.frame_id], f.obj.detection.box, own.width, own.height)
            f.distance = distance.band(here)
            if other is not None and other.frame_id in maps:
                det = max(
                    (d for d in other.detections if d.label == f.obj.detection.label),
                    key=lambda d: d.confidence,
                )
                there = distance.nearness(maps[other.frame_id], det.box, other.width, other.height)
                first, last = (
                    (there, here) if other.captured_at <= own.captured_at else (here, there)
                )
                f.movement = distance.movement(first, last)
        return f"{len(maps)} frame(s)"


def _off(enabled: Sequence[str]) -> tuple[EnricherRun, ...]:
    return tuple(EnricherRun(n, "off") for n in ENRICHERS if n not in enabled)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _object(f: _Found) -> EnrichedObject:
    det = f.obj.detection
    base = EnrichedObject(
        label=det.label,
        frame_id=f.obj.frame.frame_id,
        confidence=round(det.confidence, 4),
        box=det.box,
        attributes=f.attributes,
        plate=f.plate,
        plate_score=f.plate_score,
        known_plate=f.known_plate,
        posture=f.posture,
        distance=f.distance,
        movement=f.movement,
    )
    if f.identity:
        base = replace(
            base,
            identity_id=int(f.identity["identity_id"]),
            identity=str(f.identity["identity"]),
            visits_24h=int(f.identity["visits_24h"]),
            matches=tuple(f.identity["matches"]),
        )
    return base


def create_enricher(settings: EnrichmentSettings, data_dir: Path, state_file: Path) -> Enricher:
    """The enricher `python -m sidecar` runs: the zoo, the identity store in the state file."""
    zoo = build_zoo(settings, data_dir / "models")
    identities = (
        IdentityStore(
            state_file,
            threshold=settings.reid_threshold,
            retention_s=settings.identity_retention_s,
        )
        if "attributes" in settings.enabled
        else None
    )
    return Enricher(settings, zoo, identities=identities)
