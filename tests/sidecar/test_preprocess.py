"""Our preprocessing against transformers' RTDetrImageProcessorPil on the same model and images.

"exact" mode must give bit-identical pixels, hence the same detections (labels, boxes within 1 px,
scores within 1e-3). "fast" mode (JPEG draft decode + torch resize) filters slightly differently;
it must stay close: same box geometry, every class probability within FAST_SCORE_TOLERANCE.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sidecar_harness import encode, jpeg, png, scene
from transformers import RTDetrImageProcessorPil

from sidecar.detection.frames import FrameLimits
from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector
from sidecar.detection.preprocess import (
    PreprocessSpec,
    build_batch,
    prepare_frame,
    resize_for_model,
)

LIMITS = FrameLimits(max_frame_bytes=64 * 1024 * 1024, max_pixels=50_000_000)
THRESHOLD = 0.03  # random weights score around 0.01-0.1
# Measured on random weights (tiny and r18-sized) across sizes: at most ~0.01. Trained models are
# far less sensitive to sub-grey-level filtering differences; random ones are not.
FAST_SCORE_TOLERANCE = 0.02

# (width, height, format): smaller than, equal to and several times the 320 px model input, so that
# both the plain path and the JPEG draft path (>= 2x the input on both sides) are exercised.
IMAGES = [
    (160, 120, "JPEG"),
    (320, 320, "JPEG"),
    (500, 375, "PNG"),
    (800, 600, "JPEG"),
    (1280, 720, "JPEG"),
    (1600, 1200, "JPEG"),
    (1024, 768, "WEBP"),
]


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path) -> Any:
    return RTDetrImageProcessorPil.from_pretrained(tiny_model_dir)


def reference_detections(
    processor: Any, detector: RTDetrV2Detector, data: bytes
) -> tuple[torch.Tensor, list[dict[str, Any]], tuple[int, int]]:
    """transformers' own path: PIL decode, processor(), model, post_process_object_detection."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    pixel_values = processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        outputs = detector._model(pixel_values=pixel_values)
    width, height = image.size
    results = processor.post_process_object_detection(
        outputs, threshold=THRESHOLD, target_sizes=[(height, width)]
    )
    return pixel_values, results, (width, height)


def test_processor_reads_the_saved_config(reference: Any, tiny_detector: RTDetrV2Detector) -> None:
    assert (reference.size.height, reference.size.width) == (320, 320)
    assert tiny_detector.preprocess == PreprocessSpec(height=320, width=320)


@pytest.mark.parametrize(("width", "height", "fmt"), IMAGES)
def test_exact_mode_matches_transformers(
    reference: Any, tiny_detector: RTDetrV2Detector, width: int, height: int, fmt: str
) -> None:
    data = encode(scene(width, height, seed=width), fmt)
    ref_pixels, ref_results, size = reference_detections(reference, tiny_detector, data)

    prepared = prepare_frame(data, LIMITS, tiny_detector.preprocess, THRESHOLD, "exact")
    ours = build_batch([prepared.pixels], tiny_detector.preprocess)
    assert torch.equal(ours, ref_pixels), "exact mode must give the processor's pixels, bit for bit"

    detections = tiny_detector.infer([prepared])[0]
    ref = ref_results[0]
    assert len(detections) == len(ref["scores"]) > 0
    # Same order (both sort by score), same labels, scores within 1e-3, boxes within 1 px
    # (the reference's boxes are not clipped; ours are, so clip the reference for comparison).
    w, h = size
    ref_boxes = ref["boxes"].clone()
    ref_boxes[:, 0::2] = ref_boxes[:, 0::2].clamp(0, w)
    ref_boxes[:, 1::2] = ref_boxes[:, 1::2].clamp(0, h)
    for det, label, score, box in zip(
        detections, ref["labels"].tolist(), ref["scores"].tolist(), ref_boxes.tolist(), strict=True
    ):
        assert det.label_id == label
        assert det.label == tiny_detector._labels[label]
        assert det.confidence == pytest.approx(score, abs=1e-3)
        ours_box = [det.box.x_min, det.box.y_min, det.box.x_max, det.box.y_max]
        assert np.allclose(ours_box, box, atol=1.0)


@pytest.mark.parametrize(("width", "height", "fmt"), IMAGES)
def test_fast_mode_stays_close_to_transformers(
    reference: Any, tiny_detector: RTDetrV2Detector, width: int, height: int, fmt: str
) -> None:
    data = encode(scene(width, height, seed=width), fmt)
    ref_pixels, _, (w, h) = reference_detections(reference, tiny_detector, data)
    prepared = prepare_frame(data, LIMITS, tiny_detector.preprocess, THRESHOLD, "fast")
    ours = build_batch([prepared.pixels], tiny_detector.preprocess)
    with torch.inference_mode():
        ref_out = tiny_detector._model(pixel_values=ref_pixels)
        our_out = tiny_detector._model(pixel_values=ours)
    # Per query and class, before any thresholding (so near-threshold flips cannot hide anything).
    score_diff = (ref_out.logits.sigmoid() - our_out.logits.sigmoid()).abs().max().item()
    box_diff = ((ref_out.pred_boxes - our_out.pred_boxes).abs() * torch.tensor([w, h, w, h]))
    assert score_diff <= FAST_SCORE_TOLERANCE
    assert box_diff.max().item() <= 1.0


def test_fast_resize_is_within_one_grey_level_of_pil() -> None:
    spec = PreprocessSpec(height=320, width=320)
    for size in [(1280, 720), (400, 300), (200, 150)]:  # down- and up-sampling
        image = scene(*size)
        fast = resize_for_model(image, spec, fast=True).astype(np.int16)
        pil = resize_for_model(image, spec, fast=False).astype(np.int16)
        assert fast.shape == pil.shape == (320, 320, 3)
        assert np.abs(fast - pil).max() <= 1


def test_batch_tensor_layout_and_scale() -> None:
    spec = PreprocessSpec(height=4, width=6)
    a = np.full((4, 6, 3), 255, dtype=np.uint8)
    b = np.zeros((4, 6, 3), dtype=np.uint8)
    b[..., 1] = 51
    batch = build_batch([a, b], spec)
    assert batch.shape == (2, 3, 4, 6)
    assert batch.dtype == torch.float32
    assert batch[0].eq(1.0).all()
    assert batch[1, 1].eq(np.float32(51 / 255)).all()
    assert batch[1, 0].eq(0).all()


def test_batch_tensor_normalises_when_configured() -> None:
    spec = PreprocessSpec(height=2, width=2, do_normalize=True, image_mean=(0.5, 0.5, 0.5),
                          image_std=(0.25, 0.25, 0.25))
    batch = build_batch([np.full((2, 2, 3), 255, dtype=np.uint8)], spec)
    assert torch.allclose(batch, torch.full((1, 3, 2, 2), 2.0))


def test_spec_round_trips_through_the_processor_config() -> None:
    spec = PreprocessSpec(height=480, width=512, do_normalize=True)
    assert PreprocessSpec.from_config(spec.to_config()) == spec
    with pytest.raises(ValueError, match="fixed-size"):
        PreprocessSpec.from_config({"size": {"shortest_edge": 800}})


def test_small_frames_are_upsampled(tiny_detector: RTDetrV2Detector) -> None:
    prepared = prepare_frame(jpeg(64, 48), LIMITS, tiny_detector.preprocess, 0.5, "fast")
    assert prepared.pixels.shape == (320, 320, 3)
    assert (prepared.width, prepared.height) == (64, 48)
    prepared = prepare_frame(png(64, 48), LIMITS, tiny_detector.preprocess, 0.5, "exact")
    assert prepared.pixels.shape == (320, 320, 3)
