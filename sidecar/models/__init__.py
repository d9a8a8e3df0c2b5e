"""Import path kept for tests/integration/verdict_helpers.py, which lists the detector's labels;
the detector's models live in sidecar/detection/models/. Delete this package once that test helper
imports `sidecar.detection.models.coco_labels`."""
