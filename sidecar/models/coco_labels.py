"""See this package's docstring: the labels live in sidecar/detection/models/coco_labels.py."""

from ..detection.models.coco_labels import COCO_LABELS

__all__ = ["COCO_LABELS"]
