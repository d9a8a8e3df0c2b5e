"""Drawing detections: labels never print over each other, however many boxes there are."""

from __future__ import annotations

import io
import itertools
import random

from PIL import Image

from custom_components.secmon.ingest.imaging import Box, place_labels, render_detections

from .helpers import image_bytes


def noise_boxes(count: int, width: int, height: int, seed: int) -> list[Box]:
    """Many overlapping boxes, like a random-weight model's ~80 detections."""
    rng = random.Random(seed)
    boxes = []
    for _ in range(count):
        x0, y0 = rng.uniform(-20, width), rng.uniform(-20, height)
        boxes.append(
            Box(
                label=rng.choice(["person", "car", "dog", "backpack", "traffic light"]),
                confidence=rng.uniform(0.05, 0.2),
                x_min=x0,
                y_min=y0,
                x_max=x0 + rng.uniform(5, width / 2),
                y_max=y0 + rng.uniform(5, height / 2),
            )
        )
    return boxes


def test_labels_never_overlap_and_stay_inside() -> None:
    """80 overlapping boxes: every placed label inside the image, no two overlapping, the most
    important one always placed, the rest placed or dropped."""
    width, height = 640, 480
    for seed in range(5):
        boxes = [
            (max(b.x_min, 0), max(b.y_min, 0), min(b.x_max, width - 1), min(b.y_max, height - 1))
            for b in noise_boxes(80, width, height, seed)
        ]
        spots = place_labels(boxes, [(110.0, 22.0)] * len(boxes), width, height)
        placed = [s for s in spots if s is not None]
        assert spots[0] is not None
        assert 1 <= len(placed) < len(boxes)
        for x0, y0, x1, y1 in placed:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        for a, b in itertools.combinations(placed, 2):
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_a_lone_label_goes_above_its_box_or_inside_at_the_top() -> None:
    """One box: its label sits right above it, or inside its top edge when there is no room."""
    assert place_labels([(100, 100, 200, 200)], [(50, 20)], 640, 480) == [(100, 80, 150, 100)]
    assert place_labels([(100, 5, 200, 200)], [(50, 20)], 640, 480) == [(100, 5, 150, 25)]
    # Wider than the image: no label.
    assert place_labels([(0, 0, 10, 10)], [(700, 20)], 640, 480) == [None]


def test_render_many_boxes() -> None:
    """The renderer takes ~80 noise boxes and returns a JPEG of the frame's size."""
    data = image_bytes(3, size=(640, 480))
    jpeg = render_detections(data, noise_boxes(80, 640, 480, seed=1))
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.format == "JPEG"
        assert img.size == (640, 480)
