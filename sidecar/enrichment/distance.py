"""Distance from relative depth maps (depth.py: 1 = nearest in the frame, 0 = farthest)."""

from __future__ import annotations

import numpy as np

from ..domain import Box

NEAR, FAR = 0.66, 0.33
MOVE = 0.1


def nearness(depth: np.ndarray, box: Box, width: int, height: int) -> float:
    """Median nearness inside the box (the map may have another resolution than the image)."""
    rows, cols = depth.shape
    y0 = int(box.y_min / max(1, height) * rows)
    y1 = max(y0 + 1, int(np.ceil(box.y_max / max(1, height) * rows)))
    x0 = int(box.x_min / max(1, width) * cols)
    x1 = max(x0 + 1, int(np.ceil(box.x_max / max(1, width) * cols)))
    patch = depth[min(y0, rows - 1) : min(y1, rows), min(x0, cols - 1) : min(x1, cols)]
    return float(np.median(patch)) if patch.size else 0.0


def band(value: float) -> str:
    return "near" if value >= NEAR else "far" if value < FAR else "mid"


def movement(first: float, last: float) -> str:
    if last - first > MOVE:
        return "approaching"
    if first - last > MOVE:
        return "leaving"
    return "steady"
