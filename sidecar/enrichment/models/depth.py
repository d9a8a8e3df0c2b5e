"""Distance: Depth Anything V2 (`DepthAnythingForDepthEstimation`), relative depth of a frame.

Its output is relative inverse depth (larger is nearer). Each map is rescaled to [0, 1] within
its frame; an object's value is the median inside its box (distance.py turns that into near / mid
/ far and whether it approaches)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import checkpoints
from .pretrained import PretrainedImageModel

_IMAGENET_MEAN = [0.485, 0.456, 0.406]
_IMAGENET_STD = [0.229, 0.224, 0.225]


def build_tiny(directory: Path, seed: int = 0) -> None:
    """A random-weight Depth Anything (tiny DINOv2 backbone) and its DPT image processor at 56 px,
    written like a real checkpoint."""
    tf = checkpoints.transformers()

    backbone = tf.Dinov2Config(
        image_size=56,
        patch_size=14,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = tf.DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        depth_estimation_type="relative",
    )
    model = checkpoints.seeded(seed)(lambda: tf.DepthAnythingForDepthEstimation(config))
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)  # type: ignore[attr-defined]
    processor = {
        "image_processor_type": "DPTImageProcessor",
        "do_resize": True,
        "size": {"height": 56, "width": 56},
        "keep_aspect_ratio": True,
        "ensure_multiple_of": 14,
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": _IMAGENET_MEAN,
        "image_std": _IMAGENET_STD,
        "do_pad": False,
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))


class DepthModel(PretrainedImageModel):
    name = "depth"
    model_class = "DepthAnythingForDepthEstimation"

    def __init__(
        self, spec: str, device: torch.device, cache_dir: Path, max_batch: int = 2
    ) -> None:
        super().__init__(spec, device, cache_dir)
        self.max_batch = max_batch

    def build_tiny(self, directory: Path) -> None:
        build_tiny(directory)

    def warmup(self) -> None:
        self.depth_maps([Image.new("RGB", (1920, 1080))] * self.max_batch)

    def depth_maps(
        self, images: Sequence[Image.Image], *, smaller: bool = False
    ) -> list[np.ndarray]:
        """Per image, relative nearness scaled to [0, 1] (1 = nearest), at model resolution."""
        if self._model is None:
            raise RuntimeError("the depth model is not loaded")
        step = 1 if smaller else self.max_batch
        maps: list[np.ndarray] = []
        for start in range(0, len(images), step):
            chunk = [im.convert("RGB") for im in images[start : start + step]]
            pixels = self._images(images=chunk, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                out = self._model(pixel_values=pixels.to(self._device, dtype=self._model.dtype))
            for depth in out.predicted_depth.float().cpu().numpy():
                low, high = float(depth.min()), float(depth.max())
                maps.append((depth - low) / (high - low) if high > low else np.zeros_like(depth))
        return maps
