"""The RT-DETRv2 detector: model specs, loading like a checkpoint, post-processing, clipping."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from sidecar_harness import jpeg, run_sidecar_to_exit
from transformers import RTDetrImageProcessorPil

from sidecar.detection.frames import FrameLimits
from sidecar.detection.models.base import DetectorLoadError
from sidecar.detection.models.coco_labels import COCO_LABELS
from sidecar.detection.models.rtdetr_v2 import (
    ModelSpec,
    RTDetrV2Detector,
    SpecKind,
    build_random_model,
    parse_model_spec,
    postprocess,
)
from sidecar.detection.preprocess import PreparedFrame, prepare_frame
from sidecar.domain import Detection

HUB_ID = "PekingU/rtdetr_v2_r18vd"


# -- specs -------------------------------------------------------------------------------------
def test_parse_hub_id() -> None:
    assert parse_model_spec(HUB_ID) == ModelSpec(SpecKind.HUB, HUB_ID)


def test_parse_random() -> None:
    assert parse_model_spec("random:tiny") == ModelSpec(SpecKind.RANDOM, "tiny")
    assert str(parse_model_spec("random:r18")) == "random:r18"


def test_parse_local_directory(tiny_model_dir: Path) -> None:
    assert parse_model_spec(str(tiny_model_dir)) == ModelSpec(SpecKind.LOCAL, str(tiny_model_dir))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("random:huge", "unknown random detector"),
        ("", "empty"),
        ("/nonexistent/model", "not a model directory"),
        ("./models/rtdetr", "not a model directory"),
        ("a/b/c", "not a model directory"),
    ],
)
def test_parse_rejects(spec: str, message: str) -> None:
    with pytest.raises(DetectorLoadError, match=message):
        parse_model_spec(spec)


def test_a_file_is_not_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(DetectorLoadError, match="not a model directory"):
        parse_model_spec(str(tmp_path / "model.bin"))


def test_unreachable_hub_exits_with_one_clear_message(tmp_path: Path) -> None:
    """The real process, hub unreachable (offline mode for determinism): exit code 2 and a single
    error line that names the spec and says how to use a local directory."""
    result = run_sidecar_to_exit(
        ["--detector", HUB_ID, "--device", "cpu"],
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    assert HUB_ID in errors[0]
    assert "--detector DIR" in errors[0]
    assert "save_pretrained" in errors[0]
    assert "Traceback" not in result.stderr


def test_a_bad_path_exits_before_listening(tmp_path: Path) -> None:
    result = run_sidecar_to_exit(["--detector", str(tmp_path / "missing")])
    assert result.returncode == 2
    assert "not a model directory" in result.stderr
    assert "listening" not in result.stderr


def test_a_directory_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    detector = RTDetrV2Detector(str(tmp_path), "cpu")
    with pytest.raises(DetectorLoadError, match=str(tmp_path)):
        detector.load()


# -- random models -----------------------------------------------------------------------------
def test_random_models_are_deterministic_and_sized_like_the_real_ones() -> None:
    a, b = build_random_model("tiny"), build_random_model("tiny")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    r18 = build_random_model("r18")
    params = sum(p.numel() for p in r18.parameters())
    assert 19.5e6 < params < 21e6  # rtdetr_v2_r18vd has 20.2 M
    assert r18.config.num_queries == 300
    assert r18.config.id2label[0] == "person"
    r50 = build_random_model("r50")
    params = sum(p.numel() for p in r50.parameters())
    assert 40e6 < params < 46e6  # rtdetr_v2_r50vd has 42-43 M


def test_random_spec_loads_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    detector = RTDetrV2Detector("random:tiny", "cpu")
    with caplog.at_level(logging.WARNING):
        detector.load()
    assert any("meaningless" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    assert detector.device_name == "cpu"
    assert detector.dtype_name == "float32"


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DetectorLoadError, match="cuda"):
        RTDetrV2Detector("random:tiny", "cuda").load()


# -- loading and inference ---------------------------------------------------------------------
def test_directory_model_loads_labels_and_input_size(tiny_detector: RTDetrV2Detector) -> None:
    assert tiny_detector.preprocess.height == tiny_detector.preprocess.width == 320
    assert tiny_detector._labels == dict(enumerate(COCO_LABELS))


def test_batch_equals_one_by_one(tiny_detector: RTDetrV2Detector) -> None:
    limits = FrameLimits(10**8, 10**8)
    frames = [
        prepare_frame(jpeg(w, h, seed=w), limits, tiny_detector.preprocess, 0.03)
        for w, h in [(320, 240), (640, 480), (200, 300)]
    ]
    batched = tiny_detector.infer(frames)
    for frame, together in zip(frames, batched, strict=True):
        (alone,) = tiny_detector.infer([frame])
        assert [d.label_id for d in together] == [d.label_id for d in alone]
        assert np.allclose([d.confidence for d in together], [d.confidence for d in alone],
                           atol=1e-5)


def test_compiled_fixed_shapes_give_the_same_detections(
    tiny_model_dir: Path, tiny_detector: RTDetrV2Detector
) -> None:
    """--compile: a batch padded up to a fixed shape (3 frames -> the shape of 4) and run through
    torch.compile gives the detections of the plain model. torch.compile runs with its "eager"
    backend here, on one shape (dynamo's graph capture and the padding are real; capturing takes
    about a minute per shape on 2 busy cores, and inductor's code generation much longer); on
    CUDA the benchmark measures inductor with CUDA graphs."""
    compiled = RTDetrV2Detector(
        str(tiny_model_dir), "cpu", compile_mode="default", max_batch=4, compile_backend="eager"
    )
    compiled.load()  # no warm-up: it would capture every shape
    assert compiled.compile_mode == "default"
    limits = FrameLimits(10**8, 10**8)
    frames = [
        prepare_frame(jpeg(w, h, seed=w), limits, tiny_detector.preprocess, 0.03)
        for w, h in [(320, 240), (640, 480), (200, 300)]
    ]
    expected = tiny_detector.infer(frames)
    got = compiled.infer(frames)
    assert len(got) == len(frames)
    for want, have in zip(expected, got, strict=True):
        assert want, "the test needs detections to compare"
        assert [d.label_id for d in have] == [d.label_id for d in want]
        assert np.allclose([d.confidence for d in have], [d.confidence for d in want], atol=1e-5)
        assert np.allclose([vars_box(d) for d in have], [vars_box(d) for d in want], atol=1e-2)


def vars_box(d: Detection) -> tuple[float, float, float, float]:
    return d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max


def test_boxes_are_clipped_to_the_image(tiny_detector: RTDetrV2Detector) -> None:
    prepared = prepare_frame(jpeg(300, 200), FrameLimits(10**8, 10**8),
                             tiny_detector.preprocess, 0.0)
    detections = tiny_detector.infer([prepared])[0]
    assert len(detections) == 100  # every query, at threshold 0
    for d in detections:
        assert 0 <= d.box.x_min <= d.box.x_max <= 300
        assert 0 <= d.box.y_min <= d.box.y_max <= 200


def test_postprocess_matches_transformers_and_clips(tiny_model_dir: Path) -> None:
    # Hand-made outputs: query 0 sticks out of the image on every side, query 1 is inside.
    logits = torch.full((1, 3, 80), -10.0)
    logits[0, 0, 5] = 2.0  # bus, 0.88
    logits[0, 1, 0] = 1.0  # person, 0.73
    boxes = torch.tensor([[[0.5, 0.5, 1.4, 1.2], [0.25, 0.5, 0.1, 0.2], [0.5, 0.5, 0.1, 0.1]]])
    frame = PreparedFrame(np.zeros((1, 1, 3), np.uint8), width=200, height=100, threshold=0.5)
    (ours,) = postprocess(logits, boxes, [frame], dict(enumerate(COCO_LABELS)))

    class Outputs:
        pass

    outputs = Outputs()
    outputs.logits, outputs.pred_boxes = logits, boxes  # type: ignore[attr-defined]
    processor = RTDetrImageProcessorPil.from_pretrained(tiny_model_dir)
    (ref,) = processor.post_process_object_detection(outputs, threshold=0.5,
                                                     target_sizes=[(100, 200)])
    assert [d.label for d in ours] == ["bus", "person"]
    assert [d.label_id for d in ours] == ref["labels"].tolist()
    assert np.allclose([d.confidence for d in ours], ref["scores"].tolist())
    # The reference box leaves the image: (-40, -10, 240, 110); ours is clipped.
    assert ref["boxes"][0].tolist() == pytest.approx([-40.0, -10.0, 240.0, 110.0])
    b = ours[0].box
    assert (b.x_min, b.y_min, b.x_max, b.y_max) == pytest.approx((0.0, 0.0, 200.0, 100.0))
    inside = ours[1].box
    assert (inside.x_min, inside.y_min, inside.x_max, inside.y_max) == pytest.approx(
        tuple(ref["boxes"][1].tolist())
    )
