"""Preprocessing for RT-DETR: frame bytes -> model-sized uint8 pixels -> one batch tensor.

Two modes, both equivalent to transformers' RTDetrImageProcessorPil (resize to the model's input
size, rescale by 1/255, optional mean/std normalisation):

- "exact": full-size decode and PIL's resize, bit-identical to RTDetrImageProcessorPil's pixels.
- "fast" (default): JPEG draft-mode decode (the decoder scales down by 1/2, 1/4 or 1/8 as long as
  the image stays at least the model's input size) and torch's uint8 antialiased bilinear resize.
  Pixels differ slightly from the reference (the draft decode filters differently); see the tests.

In both modes the per-image work stays in uint8 and the float tensor is built once per batch.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from ..context.tamper import thumbnail
from ..domain import PreprocessMode
from .frames import FrameLimits, decode_frame

_LOGGER = logging.getLogger(__name__)

PREPROCESSOR_CONFIG = "preprocessor_config.json"

# torch.from_numpy warns, once per process, that a read-only array (the view of a PIL image's
# pixels used below) gives a tensor it must not write to; nothing writes to it. Trigger that one
# warning here, silenced, instead of in a worker thread on the first frame.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.from_numpy(np.frombuffer(b"\0", dtype=np.uint8))


@dataclass(frozen=True, slots=True)
class PreprocessSpec:
    """What the model expects; read from the model's preprocessor_config.json."""

    height: int = 640
    width: int = 640
    resample: Image.Resampling = Image.Resampling.BILINEAR
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = False
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PreprocessSpec:
        size = config.get("size") or {}
        if not ("height" in size and "width" in size):
            raise ValueError(
                f"only fixed-size preprocessing (size.height/width) is supported, got {size}"
            )
        if config.get("do_resize", True) is False or config.get("do_pad", False):
            raise ValueError("only do_resize=True and do_pad=False are supported")
        d = cls()
        return cls(
            height=int(size["height"]),
            width=int(size["width"]),
            resample=Image.Resampling(int(config.get("resample", d.resample))),
            do_rescale=bool(config.get("do_rescale", d.do_rescale)),
            rescale_factor=float(config.get("rescale_factor", d.rescale_factor)),
            do_normalize=bool(config.get("do_normalize", d.do_normalize)),
            image_mean=_triple(config.get("image_mean", d.image_mean)),
            image_std=_triple(config.get("image_std", d.image_std)),
        )

    @classmethod
    def from_file(cls, path: Path) -> PreprocessSpec:
        with path.open(encoding="utf-8") as f:
            return cls.from_config(json.load(f))

    def to_config(self) -> dict[str, Any]:
        """The equivalent RTDetrImageProcessor settings (saved next to a model)."""
        return {
            "image_processor_type": "RTDetrImageProcessor",
            "do_resize": True,
            "size": {"height": self.height, "width": self.width},
            "resample": int(self.resample),
            "do_rescale": self.do_rescale,
            "rescale_factor": self.rescale_factor,
            "do_normalize": self.do_normalize,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_pad": False,
            "do_convert_annotations": True,
            "format": "coco_detection",
        }


def _triple(value: Any) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    a, b, c = (float(v) for v in value)
    return (a, b, c)


@dataclass(frozen=True, slots=True)
class PreparedFrame:
    """One frame ready for the model: pixels at the model's input size, plus what post-processing
    needs (the original size for box scaling, the caller's confidence threshold)."""

    pixels: npt.NDArray[np.uint8]  # H x W x 3 at the model's input size
    width: int
    height: int
    threshold: float
    # The frame's small grayscale thumbnail for the tamper check (context/tamper.py), when asked.
    thumbnail: npt.NDArray[np.float32] | None = None


def prepare_frame(
    data: bytes,
    limits: FrameLimits,
    spec: PreprocessSpec,
    threshold: float,
    mode: PreprocessMode = "fast",
    *,
    with_thumbnail: bool = False,
) -> PreparedFrame:
    """Validate, decode and resize one frame (raises domain.FrameError for bad frames)."""
    fast = mode == "fast"
    decoded = decode_frame(data, limits, (spec.width, spec.height) if fast else None)
    pixels = resize_for_model(decoded.image, spec, fast=fast)
    thumb = thumbnail(decoded.image) if with_thumbnail else None
    return PreparedFrame(pixels, decoded.width, decoded.height, threshold, thumb)


def resize_for_model(
    image: Image.Image, spec: PreprocessSpec, *, fast: bool = True
) -> npt.NDArray[np.uint8]:
    """One resize of an RGB image to the model's input size; H x W x 3 uint8."""
    size = (spec.width, spec.height)
    if image.size == size:
        return np.asarray(image, dtype=np.uint8)
    if fast and spec.resample == Image.Resampling.BILINEAR:
        # torch's uint8 antialiased bilinear kernel (AVX2): the same filter as PIL's, several times
        # faster; results differ from PIL by at most one grey level (rounding).
        hwc = torch.from_numpy(np.asarray(image, dtype=np.uint8))  # read-only view: never written
        out = torch.nn.functional.interpolate(
            hwc.permute(2, 0, 1).unsqueeze(0),  # channels-last NCHW view, no copy
            size=(spec.height, spec.width),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())
    return np.asarray(image.resize(size, resample=spec.resample), dtype=np.uint8)


def build_batch(
    arrays: Sequence[npt.NDArray[np.uint8]],
    spec: PreprocessSpec,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Stack H x W x 3 uint8 arrays into one normalised NCHW tensor on `device`.

    The uint8 batch is moved first (4x fewer bytes to a GPU), then converted once.
    """
    batch = torch.from_numpy(np.stack(arrays)).to(device, non_blocking=True)
    # Convert and transpose to NCHW in one pass.
    n, height, width, _ = batch.shape
    pixels = torch.empty((n, 3, height, width), dtype=torch.float32, device=batch.device)
    pixels.copy_(batch.permute(0, 3, 1, 2))
    if spec.do_rescale:
        if spec.rescale_factor == 1 / 255:
            # Correctly rounded x/255 in float32: bit-identical to transformers' float64 multiply
            # followed by a cast to float32, for all 256 values.
            pixels = pixels.div_(255.0)
        else:
            pixels = pixels.mul_(spec.rescale_factor)
    if spec.do_normalize:
        mean = torch.tensor(spec.image_mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(spec.image_std, device=pixels.device).view(1, 3, 1, 1)
        pixels = pixels.sub_(mean).div_(std)
    return pixels if dtype == torch.float32 else pixels.to(dtype)
