"""Shared sidecar fixtures: a tiny random RT-DETRv2 saved like a real checkpoint, and real sidecar
processes on loopback. The sidecar test modules share these."""

from __future__ import annotations

import os

# As `python -m sidecar` does, before torch loads OpenMP (see sidecar/__main__.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sidecar_harness import SidecarProcess

from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector, save_random_model
from sidecar.detection.preprocess import PreprocessSpec

# Small input size keeps the suite fast; the loading path is the one a real model takes.
TINY_INPUT = 320
TEST_TOKEN = "test-token-123"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny RT-DETRv2 written with save_pretrained plus its preprocessor config."""
    return save_random_model(
        "tiny",
        tmp_path_factory.mktemp("tiny-rtdetr-v2"),
        spec=PreprocessSpec(height=TINY_INPUT, width=TINY_INPUT),
    )


@pytest.fixture(scope="session")
def tiny_detector(tiny_model_dir: Path) -> RTDetrV2Detector:
    """The tiny model loaded through the directory-loading code (shared; infer is stateless)."""
    detector = RTDetrV2Detector(str(tiny_model_dir), "cpu")
    detector.load()
    return detector


SidecarFactory = Callable[..., SidecarProcess]


@pytest.fixture(scope="module")
def sidecar_factory(tiny_model_dir: Path) -> Iterator[SidecarFactory]:
    """Start real sidecar processes (tiny model by default); all are stopped at module end.

    factory(*extra_args, detector=None, token=None, env=None) -> SidecarProcess
    """
    started: list[SidecarProcess] = []

    def start(
        *extra_args: str,
        detector: str | None = None,
        token: str | None = None,
        env: dict[str, str] | None = None,
    ) -> SidecarProcess:
        args = ["--detector", detector or str(tiny_model_dir), "--device", "cpu", *extra_args]
        process = SidecarProcess(args, token=token, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.terminate(30)
        process.kill()


@pytest.fixture
async def prompt_sidecar(sidecar_factory: SidecarFactory) -> SidecarProcess:
    """A serving sidecar for tests that read a batch's prompt: a low threshold (random weights
    score low) and verdicts re-sent only after a minute, so each verdict arrives once."""
    process = sidecar_factory("--threshold", "0.05", "--verdict-resend-s", "60")
    await process.wait_serving()
    return process


@pytest.fixture(scope="module")
def sidecar(sidecar_factory: SidecarFactory) -> SidecarProcess:
    """One sidecar per test module, with a token, small limits and a low default threshold
    (random weights score low)."""
    process = sidecar_factory(
        "--threshold", "0.05",
        "--max-batch", "4",
        "--max-delay-ms", "20",
        "--max-frame-bytes", "400000",
        "--max-pixels", "4000000",
        token=TEST_TOKEN,
    )
    process.wait_serving_sync()
    return process
