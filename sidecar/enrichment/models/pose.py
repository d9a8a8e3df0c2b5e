"""Posture: ViTPose (`VitPoseForPoseEstimation`), top-down on person boxes: 17 COCO keypoints per
person, turned into a posture by posture.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...domain import Box
from . import checkpoints
from .pretrained import PretrainedImageModel

COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


def build_tiny(directory: Path, seed: int = 0) -> None:
    """A random-weight ViTPose (tiny ViT backbone, 17 COCO keypoints) and its image processor at
    64x48, written like a real checkpoint."""
    tf = checkpoints.transformers()

    backbone = tf.VitPoseBackboneConfig(
        image_size=[64, 48],
        patch_size=[16, 16],
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        out_indices=[2],
    )
    labels = dict(enumerate(COCO_KEYPOINTS))
    config = tf.VitPoseConfig(
        backbone_config=backbone,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    model = checkpoints.seeded(seed)(lambda: tf.VitPoseForPoseEstimation(config))
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)  # type: ignore[attr-defined]
    processor = {
        "image_processor_type": "VitPoseImageProcessor",
        "do_affine_transform": True,
        "size": {"height": 64, "width": 48},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))


class PoseModel(PretrainedImageModel):
    name = "pose"
    model_class = "VitPoseForPoseEstimation"

    def __init__(
        self, spec: str, device: torch.device, cache_dir: Path, max_people: int = 4
    ) -> None:
        super().__init__(spec, device, cache_dir)
        self.max_people = max_people

    def build_tiny(self, directory: Path) -> None:
        build_tiny(directory)

    def warmup(self) -> None:
        image = Image.new("RGB", (1920, 1080))
        self.keypoints(image, [Box(100, 100, 300, 700)] * self.max_people)

    def keypoints(
        self, image: Image.Image, boxes: Sequence[Box], *, smaller: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per box, (17x2 keypoints in image pixels, 17 scores)."""
        if self._model is None:
            raise RuntimeError("the pose model is not loaded")
        image = image.convert("RGB")
        step = 1 if smaller else self.max_people
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(boxes), step):
            chunk = boxes[start : start + step]
            coco = [[b.x_min, b.y_min, b.x_max - b.x_min, b.y_max - b.y_min] for b in chunk]
            inputs = self._images(images=image, boxes=[coco], return_tensors="pt")
            pixels = inputs["pixel_values"].to(self._device, dtype=self._model.dtype)
            with torch.inference_mode():
                outputs = self._model(pixel_values=pixels)
            people = self._images.post_process_pose_estimation(outputs, boxes=[coco])[0]
            for person in people:
                found.append(
                    (
                        person["keypoints"].float().cpu().numpy(),
                        person["scores"].float().cpu().numpy(),
                    )
                )
        return found
