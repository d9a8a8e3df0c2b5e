"""The interface every detector implements; the pipeline only talks to this."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from ...domain import Detection, StartupError
from ..preprocess import PreparedFrame, PreprocessSpec


class DetectorLoadError(StartupError):
    """The model could not be loaded; the message says what to do about it."""


class Detector(abc.ABC):
    """An object detector. `load` and `warmup` run once at start; `infer` runs in the model
    thread, one batch at a time."""

    @property
    @abc.abstractmethod
    def model_name(self) -> str: ...

    @property
    @abc.abstractmethod
    def device_name(self) -> str: ...

    @property
    @abc.abstractmethod
    def dtype_name(self) -> str: ...

    @property
    def compile_mode(self) -> str:
        """torch.compile mode in use ("off": not compiled)."""
        return "off"

    @property
    @abc.abstractmethod
    def preprocess(self) -> PreprocessSpec:
        """The model's input size and pixel normalisation (valid after `load`)."""

    @abc.abstractmethod
    def load(self) -> None: ...

    @abc.abstractmethod
    def warmup(self) -> None: ...

    @abc.abstractmethod
    def infer(self, batch: Sequence[PreparedFrame]) -> list[list[Detection]]:
        """Detections per frame, in order; boxes in each frame's original pixels, clipped."""

    def blank_frame(self) -> PreparedFrame:
        """A black frame at the model's input size (warm-up and timing; detects nothing)."""
        spec = self.preprocess
        pixels = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
        return PreparedFrame(pixels, spec.width, spec.height, 1.0)
