"""RT-DETRv2 through transformers' RTDetrV2ForObjectDetection (no torchvision needed).

Model spec: a hub id (e.g. PekingU/rtdetr_v2_r18vd), a local directory written by
`save_pretrained`, or random:tiny / random:r18 (random weights: for tests and benchmarks only).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import RTDetrResNetConfig, RTDetrV2Config, RTDetrV2ForObjectDetection
from transformers.utils.hub import cached_file

from ...domain import Box, CompileMode, Detection
from ..batch_costs import calibration_sizes
from ..preprocess import PREPROCESSOR_CONFIG, PreparedFrame, PreprocessSpec, build_batch
from .base import Detector, DetectorLoadError
from .coco_labels import COCO_LABELS

_LOGGER = logging.getLogger(__name__)

RANDOM_PREFIX = "random:"
RANDOM_SIZES = ("tiny", "r18", "r50")


class SpecKind(enum.Enum):
    HUB = "hub"
    LOCAL = "local"
    RANDOM = "random"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    kind: SpecKind
    value: str  # hub id, directory path, or random size

    def __str__(self) -> str:
        return RANDOM_PREFIX + self.value if self.kind is SpecKind.RANDOM else self.value


def parse_model_spec(spec: str) -> ModelSpec:
    """Classify a --detector value. Raises DetectorLoadError for specs that cannot work."""
    spec = spec.strip()
    if not spec:
        raise DetectorLoadError(
            "--detector is empty; give a hub id, a local directory or random:tiny"
        )
    if spec.startswith(RANDOM_PREFIX):
        size = spec.removeprefix(RANDOM_PREFIX)
        if size not in RANDOM_SIZES:
            raise DetectorLoadError(
                f"unknown random detector {spec!r}; use one of "
                + ", ".join(RANDOM_PREFIX + s for s in RANDOM_SIZES)
            )
        return ModelSpec(SpecKind.RANDOM, size)
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSpec(SpecKind.LOCAL, str(path))
    looks_like_path = spec.startswith(("/", "./", "../", "~")) or spec.count("/") != 1
    if looks_like_path or path.exists():
        raise DetectorLoadError(
            f"detector {spec!r} is not a model directory (expected a directory written by "
            "save_pretrained with config.json and model weights)"
        )
    return ModelSpec(SpecKind.HUB, spec)


def random_model_config(size: str) -> Any:
    """RTDetrV2Config of a random-weight model: 'r18' and 'r50' have the shapes of
    rtdetr_v2_r18vd (20.2 M parameters) and rtdetr_v2_r50vd, 'tiny' is ~1 M parameters for
    tests."""
    labels: dict[str, Any] = {
        "id2label": dict(enumerate(COCO_LABELS)),
        "label2id": {name: i for i, name in enumerate(COCO_LABELS)},
    }
    stages: dict[str, Any] = {"layer_type": "basic", "out_indices": [2, 3, 4]}
    if size == "r18":
        backbone = RTDetrResNetConfig(
            depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], embedding_size=64, **stages
        )
        return RTDetrV2Config(
            backbone_config=backbone, encoder_in_channels=[128, 256, 512], decoder_layers=3,
            hidden_expansion=0.5, num_queries=300, **labels,
        )
    if size == "r50":
        backbone = RTDetrResNetConfig(
            depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], embedding_size=64,
            **{**stages, "layer_type": "bottleneck"},
        )
        return RTDetrV2Config(
            backbone_config=backbone, encoder_in_channels=[512, 1024, 2048], decoder_layers=6,
            hidden_expansion=1.0, num_queries=300, **labels,
        )
    if size == "tiny":
        backbone = RTDetrResNetConfig(
            depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], embedding_size=16, **stages
        )
        return RTDetrV2Config(
            backbone_config=backbone, encoder_in_channels=[32, 64, 128], encoder_hidden_dim=64,
            d_model=64, decoder_in_channels=[64, 64, 64], encoder_ffn_dim=128, decoder_ffn_dim=128,
            decoder_layers=2, num_queries=100, encoder_attention_heads=4,
            decoder_attention_heads=4, hidden_expansion=0.5, **labels,
        )
    raise DetectorLoadError(f"unknown random detector size {size!r}")


def build_random_model(size: str, seed: int = 0) -> Any:
    """A random-weight RTDetrV2ForObjectDetection, the same for the same seed. Its detections are
    meaningless. Tests save it with `save_random_model` and load it back like a real model."""
    config = random_model_config(size)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model: Any = RTDetrV2ForObjectDetection(config)
    finally:
        torch.random.set_rng_state(state)
    model.eval()
    return model


def save_random_model(
    size: str, directory: Path, *, seed: int = 0, spec: PreprocessSpec | None = None
) -> Path:
    """Write a random-weight model like a real checkpoint: save_pretrained + preprocessor config."""
    directory.mkdir(parents=True, exist_ok=True)
    build_random_model(size, seed).save_pretrained(directory)
    with (directory / PREPROCESSOR_CONFIG).open("w", encoding="utf-8") as f:
        json.dump((spec or PreprocessSpec()).to_config(), f, indent=2)
    return directory


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DetectorLoadError("--device cuda was requested but torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def _hub_help(spec: str) -> str:
    return (
        f"could not load detector {spec!r}: it is not a local directory and the model hub could "
        "not provide it (no network, or not in the local cache). On a machine with access, run "
        f"`RTDetrV2ForObjectDetection.from_pretrained({spec!r}).save_pretrained(DIR)` and "
        f"`RTDetrImageProcessorPil.from_pretrained({spec!r}).save_pretrained(DIR)`, copy DIR here "
        "and start with --detector DIR (or SECMON_DETECTOR=DIR)"
    )


class RTDetrV2Detector(Detector):
    """`compile_mode` other than "off" runs the model through torch.compile with fixed batch
    shapes: 1, 2, 4, ... up to `max_batch`, each batch padded up to the next of them with black
    frames (whose outputs are dropped), so there is one graph per shape (with "reduce-overhead",
    a CUDA graph on CUDA). All shapes are compiled at warm-up. `compile_backend` replaces
    inductor (tests use "eager" to exercise the path without a compiler)."""

    def __init__(
        self,
        spec: str,
        device: str = "auto",
        *,
        compile_mode: CompileMode = "off",
        max_batch: int = 4,
        compile_backend: str | None = None,
    ) -> None:
        self._spec_text = spec
        self._requested_device = device
        self._compile_mode: CompileMode = compile_mode
        self._compile_backend = compile_backend
        self._shapes = calibration_sizes(max_batch) if compile_mode != "off" else []
        self._forward: Any = None
        self._model: Any = None
        self._device = torch.device("cpu")
        self._dtype = torch.float32
        self._preprocess = PreprocessSpec()
        self._labels: dict[int, str] = {}

    # -- Detector interface ------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self._spec_text

    @property
    def device_name(self) -> str:
        return str(self._device)

    @property
    def dtype_name(self) -> str:
        return str(self._dtype).removeprefix("torch.")

    @property
    def preprocess(self) -> PreprocessSpec:
        return self._preprocess

    @property
    def compile_mode(self) -> str:
        return self._compile_mode

    def load(self) -> None:
        if self._model is not None:
            return
        spec = parse_model_spec(self._spec_text)
        self._device = resolve_device(self._requested_device)
        t0 = time.perf_counter()
        if spec.kind is SpecKind.RANDOM:
            _LOGGER.warning(
                "Detector %s has RANDOM weights: its detections are meaningless "
                "(for tests and benchmarks only)", spec,
            )
            model = build_random_model(spec.value)
            self._preprocess = PreprocessSpec()
        else:
            model, self._preprocess = self._load_pretrained(spec)
        if self._device.type == "cuda":
            self._dtype = torch.float16
            model = model.to(self._device, dtype=self._dtype)
        model.eval()
        self._model = model
        self._forward = model
        if self._compile_mode != "off":
            self._forward = self._compiled(model)
        id2label = getattr(model.config, "id2label", None) or {}
        self._labels = {int(k): str(v) for k, v in id2label.items()}
        _LOGGER.info(
            "Loaded detector %s (%.1f M parameters) on %s/%s, input %dx%d, in %.1f s",
            spec, sum(p.numel() for p in model.parameters()) / 1e6, self.device_name,
            self.dtype_name, self._preprocess.width, self._preprocess.height,
            time.perf_counter() - t0,
        )

    def warmup(self) -> None:
        blank = self.blank_frame()
        t0 = time.perf_counter()
        for size in self._shapes or [1]:  # compiling: every fixed shape once
            self.infer([blank] * size)
        _LOGGER.info("Detector warm-up took %.2f s", time.perf_counter() - t0)

    def infer(self, batch: Sequence[PreparedFrame]) -> list[list[Detection]]:
        if self._model is None:
            raise RuntimeError("the detector is not loaded")
        if not batch:
            return []
        arrays = [f.pixels for f in batch]
        forward = self._model
        shape = next((s for s in self._shapes if s >= len(batch)), None)
        if shape is not None:
            forward = self._forward
            arrays += [np.zeros_like(arrays[0])] * (shape - len(batch))
        pixels = build_batch(arrays, self._preprocess, device=self._device, dtype=self._dtype)
        with torch.inference_mode():
            if shape is not None and self._compile_mode == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]
            outputs = forward(pixel_values=pixels)
        n = len(batch)
        return postprocess(outputs.logits[:n], outputs.pred_boxes[:n], batch, self._labels)

    def _compiled(self, model: Any) -> Any:
        if self._compile_backend is not None:
            return torch.compile(model, backend=self._compile_backend, dynamic=False)
        mode = None if self._compile_mode == "default" else self._compile_mode
        if mode == "reduce-overhead" and self._device.type != "cuda":
            _LOGGER.warning("--compile reduce-overhead uses CUDA graphs; on %s it compiles "
                            "without them", self._device)
            mode = None
        _LOGGER.info("Compiling the detector (torch.compile, mode %s) for batch shapes %s",
                     mode or "default", self._shapes)
        return torch.compile(model, mode=mode, dynamic=False)

    # -- loading -----------------------------------------------------------------------------
    def _load_pretrained(self, spec: ModelSpec) -> tuple[Any, PreprocessSpec]:
        try:
            model = RTDetrV2ForObjectDetection.from_pretrained(spec.value)
        except OSError as err:
            if spec.kind is SpecKind.HUB:
                raise DetectorLoadError(_hub_help(spec.value)) from err
            raise DetectorLoadError(f"could not load detector from {spec.value}: {err}") from err
        except (ValueError, KeyError, RuntimeError) as err:
            raise DetectorLoadError(f"{spec} is not an RT-DETRv2 checkpoint: {err}") from err
        try:
            config_path = cached_file(
                spec.value, PREPROCESSOR_CONFIG, _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
        except OSError:
            config_path = None
        if config_path is None:
            _LOGGER.warning("%s has no %s; using RT-DETR's defaults", spec, PREPROCESSOR_CONFIG)
            return model, PreprocessSpec()
        try:
            return model, PreprocessSpec.from_file(Path(os.fspath(config_path)))
        except (ValueError, KeyError) as err:
            raise DetectorLoadError(f"{spec}: unsupported {PREPROCESSOR_CONFIG}: {err}") from err


def postprocess(
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    frames: Sequence[PreparedFrame],
    labels: dict[int, str],
) -> list[list[Detection]]:
    """RT-DETR's focal-loss post-processing (as RTDetrImageProcessor.post_process_object_detection
    with use_focal_loss=True), for the whole batch at once, with boxes clipped to each image."""
    logits = logits.float()
    boxes = pred_boxes.float()
    num_queries, num_classes = logits.shape[1], logits.shape[2]
    cx, cy, w, h = boxes.unbind(-1)
    corners = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
    sizes = torch.tensor([[f.width, f.height] for f in frames], device=corners.device)
    scale = torch.cat([sizes, sizes], dim=1)  # w, h, w, h
    corners = corners * scale[:, None, :]
    scores, index = torch.topk(torch.sigmoid(logits).flatten(1), num_queries, dim=-1)
    label_ids = index % num_classes
    query = index // num_classes
    corners = corners.gather(1, query.unsqueeze(-1).expand(-1, -1, 4))
    # Clip to [0, width] x [0, height].
    limit = scale[:, None, :].to(corners.dtype)
    corners = torch.minimum(corners.clamp_min(0.0), limit)

    scores_l = scores.cpu().tolist()
    labels_l = label_ids.cpu().tolist()
    boxes_l = corners.cpu().tolist()
    results: list[list[Detection]] = []
    for i, frame in enumerate(frames):
        found = [
            Detection(
                label=labels.get(label, str(label)),
                label_id=label,
                confidence=score,
                box=Box(*box),
            )
            for score, label, box in zip(scores_l[i], labels_l[i], boxes_l[i], strict=True)
            if score > frame.threshold
        ]
        results.append(found)
    return results
