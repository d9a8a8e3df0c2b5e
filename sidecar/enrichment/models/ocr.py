"""Plates and scene text: PP-OCRv4 detection + recognition (ONNX) from `rapidocr-onnxruntime`,
whose wheel ships the real weights. The text it reads is untrusted: it reaches a prompt only
sanitised and quoted as data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .base import EnrichmentModel, ModelLoadError

OCR_SPEC = "rapidocr-onnxruntime (PP-OCRv4)"
# What a licence plate looks like once spaces and dashes are dropped.
_PLATE_RE = re.compile(r"^[A-Z0-9]{4,10}$")
_SEPARATORS_RE = re.compile(r"[\s\-·.:]+")
_MAX_TEXT = 48


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    score: float


def read_plate(lines: Sequence[TextLine]) -> TextLine | None:
    """The plate among a crop's text lines (in reading order): a line, or two adjacent lines
    together (plates are often read as two words), that looks like one; the longest wins, then
    the most certain."""
    found: list[TextLine] = []
    for i, line in enumerate(lines):
        if (plate := plate_candidate(line.text)) is not None:
            found.append(TextLine(plate, line.score))
        if i + 1 < len(lines):
            pair = plate_candidate(line.text + lines[i + 1].text)
            if pair is not None:
                found.append(TextLine(pair, min(line.score, lines[i + 1].score)))
    return max(found, key=lambda t: (len(t.text), t.score), default=None)


def plate_candidate(text: str) -> str | None:
    """The plate in an OCR line (upper-case letters and digits), or None if it is not one."""
    compact = _SEPARATORS_RE.sub("", text.upper())
    if _PLATE_RE.match(compact) and any(c.isdigit() for c in compact):
        return compact
    return None


class OcrModel(EnrichmentModel):
    name = "plates"

    def __init__(self) -> None:
        self._engine: Any = None

    @property
    def spec(self) -> str:
        return OCR_SPEC

    def prepare(self) -> None:
        try:
            import rapidocr_onnxruntime  # noqa: F401, PLC0415
        except ImportError as err:
            raise ModelLoadError(
                f"rapidocr-onnxruntime is not installed ({err}); pip install the sidecar's "
                "dependencies"
            ) from err

    def load(self) -> Any:
        try:
            from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415
        except ImportError as err:
            raise ModelLoadError(
                f"rapidocr-onnxruntime is not installed ({err}); pip install the sidecar's "
                "dependencies"
            ) from err
        self._engine = RapidOCR()
        return None

    def warmup(self) -> None:
        canvas = Image.new("RGB", (640, 640), "white")
        self.read([canvas])

    def unload(self) -> None:
        self._engine = None

    def read(self, crops: Sequence[Image.Image], *, smaller: bool = False) -> list[list[TextLine]]:
        """The text lines of each crop, in reading order. `smaller` shrinks large crops."""
        if self._engine is None:
            raise RuntimeError("the OCR model is not loaded")
        results: list[list[TextLine]] = []
        for crop in crops:
            image = crop.convert("RGB")
            if smaller and max(image.size) > 320:
                image.thumbnail((320, 320))
            found, _elapsed = self._engine(np.asarray(image)[:, :, ::-1].copy())
            lines = [
                TextLine(str(text)[:_MAX_TEXT], round(float(score), 3))
                for _box, text, score in (found or [])
                if str(text).strip()
            ]
            results.append(lines)
        return results
