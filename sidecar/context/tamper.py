"""Tampering: per client and camera, each decoded frame is compared with a rolling reference of the
camera's view, to tell when the view was moved, covered, blurred or suddenly went dark.

Each frame is reduced to a small grayscale thumbnail (`thumbnail`, in the decode worker). Against
the reference (an exponential moving average of the camera's good frames) a frame is judged on:

- dark: its brightness collapsed (under `DARK_RATIO` of the reference and under `DARK_LEVEL`)
  from one frame to the next (a slow dusk never does; a frame after a long gap is not compared on
  brightness: motion-triggered cameras may upload nothing for hours, and night falls in between);
- covered: most of the blocks that had texture in the reference are flat now (contrast relative
  to brightness, so exposure changes do not count);
- blurred: the edge energy (Laplacian variance of the brightness/contrast-normalised thumbnail)
  collapsed under `BLUR_RATIO` of the reference's;
- moved: the structure is gone: the block SSIM of the brightness/contrast-normalised frame and
  reference is under `MOVED_SSIM`.

A kind is confirmed after `confirm_frames` bad frames in a row and cleared after `clear_frames`
good ones. The reference follows only good frames while the camera is not suspected, so slow
changes (dusk, dawn, weather) are followed and a covered view never becomes the reference; a
camera whose view stays moved for `relearn_frames` frames was re-aimed: the new view is learnt.
Because every comparison is on normalised images, a switch to infrared night mode (colour to
grayscale, other brightness and contrast, same scene) is not a change.

Memory is bounded: a reference of a few kilobytes per camera, `MAX_CAMERAS` cameras per client
(the longest unseen one is forgotten), `MAX_CLIENTS` clients. A restart forgets it all (the
reference is learnt again from the next frame).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

import numpy as np
import numpy.typing as npt
from PIL import Image

KINDS = ("none", "moved", "covered", "blurred", "dark")
THUMB_WIDTH, THUMB_HEIGHT = 128, 96  # edges are measured at this size, structure at half of it
_BLOCK = 8  # SSIM and texture blocks, at the half size (64x48: 8x6 blocks)

DARK_LEVEL = 24.0  # mean grey level (0-255) under which a frame can be "dark"
DARK_RATIO = 0.35
COVERED_FRACTION = 0.65
_FLAT_RATIO = 0.35  # a block is flat when its contrast fell under this share of the reference's
_TEXTURED_CV = 0.04  # a reference block counts when its contrast (std / mean) is over this
BLUR_RATIO = 0.3
MOVED_SSIM = 0.4
STALE_S = 600.0  # a frame later than this after the previous one is not compared on brightness
MAX_CAMERAS = 64
MAX_CLIENTS = 64

Gray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class TamperState:
    kind: str = "none"  # one of KINDS
    score: float = 0.0  # 0..1: how far the frame is from the reference on the kind's measure
    since: datetime | None = None  # capture time of the first frame of the tampered run

    @property
    def tampered(self) -> bool:
        return self.kind != "none"


NOT_TAMPERED = TamperState()


@dataclass(frozen=True, slots=True)
class TamperSettings:
    confirm_frames: int = 3
    clear_frames: int = 3
    alpha: float = 0.1  # reference EMA weight of a good frame
    relearn_frames: int = 200


def thumbnail(image: Image.Image) -> Gray:
    """The frame as a THUMB_HEIGHT x THUMB_WIDTH grayscale float32 array (0-255)."""
    factor = max(1, min(image.width // THUMB_WIDTH, image.height // THUMB_HEIGHT))
    small = image.reduce(factor) if factor > 1 else image
    gray = small.convert("L").resize((THUMB_WIDTH, THUMB_HEIGHT), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Features:
    """What a frame (or the reference) is judged on."""

    half: Gray  # half-size thumbnail
    mean: float
    edges: float  # Laplacian variance of the normalised thumbnail
    block_cv: Gray  # per block: std / mean brightness


# Block starts (rows, columns) of the half-size thumbnail's SSIM/texture blocks.
_BLOCK_ROW_STARTS = np.arange(0, THUMB_HEIGHT // 2, _BLOCK)
_BLOCK_COL_STARTS = np.arange(0, THUMB_WIDTH // 2, _BLOCK)


def _block_means(image: Gray) -> Gray:
    rows = np.add.reduceat(image, _BLOCK_ROW_STARTS, axis=0)
    sums: Gray = np.add.reduceat(rows, _BLOCK_COL_STARTS, axis=1)
    return sums * np.float32(1.0 / (_BLOCK * _BLOCK))


def _half(thumb: Gray) -> Gray:
    """2x2 means (slices: far cheaper than reshaping and reducing)."""
    # cast: numpy's stubs (2.2, the integration's venv) widen float32 + float32 to float64.
    total = cast(
        Gray, thumb[0::2, 0::2] + thumb[1::2, 0::2] + thumb[0::2, 1::2] + thumb[1::2, 1::2]
    )
    return total * np.float32(0.25)


def features(thumb: Gray) -> Features:
    mean = float(thumb.mean())
    std = float(thumb.std())
    half = _half(thumb)
    normalised = (thumb - np.float32(mean)) * np.float32(1.0 / max(std, 1.0))
    lap = (
        4 * normalised[1:-1, 1:-1]
        - normalised[:-2, 1:-1]
        - normalised[2:, 1:-1]
        - normalised[1:-1, :-2]
        - normalised[1:-1, 2:]
    )
    block_mean = _block_means(half)
    block_var = np.maximum(_block_means(half * half) - block_mean * block_mean, 0.0)
    block_cv: Gray = np.sqrt(block_var) * np.float32(1.0 / max(mean, 8.0))
    return Features(half, mean, float(lap.var()), block_cv)


def _normalised(image: Gray) -> Gray:
    centred: Gray = image - np.float32(image.mean())
    return centred * np.float32(1.0 / max(float(image.std()), 1.0))


def structural_similarity(a: Gray, b: Gray) -> float:
    """Mean block SSIM of two half-size thumbnails after each is brightness/contrast normalised
    (zero mean, unit variance), so only structure counts."""
    x, y = _normalised(a), _normalised(b)
    mx, my = _block_means(x), _block_means(y)
    vx = _block_means(x * x) - mx * mx
    vy = _block_means(y * y) - my * my
    cov = _block_means(x * y) - mx * my
    c1, c2 = 0.01, 0.1  # in units of the normalised images' variance
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim.mean())


class TamperDetector:
    """One camera's reference and state; `update` takes its frames in order."""

    def __init__(self, settings: TamperSettings | None = None) -> None:
        self.settings = settings or TamperSettings()
        self.state = NOT_TAMPERED
        self._ref: Features | None = None
        self._last_at: datetime | None = None
        self._last_mean = 0.0
        self._bad_kind = "none"  # the previous frame's judgement
        self._bad_run = 0
        self._bad_since: datetime | None = None
        self._good_run = 0
        self._moved_run = 0

    def update(self, thumb: Gray, at: datetime) -> TamperState:
        return self.update_features(features(thumb), at)

    def update_features(self, frame: Features, at: datetime) -> TamperState:
        if self._ref is None:
            self._ref = frame
            self._last_at, self._last_mean = at, frame.mean
            return self.state
        stale = self._last_at is None or abs((at - self._last_at).total_seconds()) > STALE_S
        # Dark needs a sudden fall from the previous frame (or a dark run going on): a slow dusk
        # that outpaces the reference's averaging is not one.
        falling = not stale and (
            frame.mean < DARK_RATIO * self._last_mean
            or self.state.kind == "dark"
            or self._bad_kind == "dark"
        )
        self._last_at, self._last_mean = at, frame.mean
        kind, score = self._judge(frame, self._ref, dark_possible=falling)
        self._bad_kind = kind
        if stale and kind == "none":  # brightness starts again from here
            self._ref = replace(self._ref, mean=frame.mean)
        s = self.settings
        if kind == "none":
            self._bad_run, self._bad_since, self._moved_run = 0, None, 0
            self._good_run += 1
            if self.state.tampered and self._good_run >= s.clear_frames:
                self.state = NOT_TAMPERED
            if not self.state.tampered:
                self._learn(frame)
            return self.state
        self._good_run = 0
        self._bad_run += 1
        self._bad_since = self._bad_since or at
        self._moved_run = self._moved_run + 1 if kind == "moved" else 0
        if self._moved_run >= s.relearn_frames:  # re-aimed on purpose: this is the view now
            self._ref, self.state = frame, NOT_TAMPERED
            self._bad_run, self._bad_since, self._moved_run = 0, None, 0
        elif self.state.tampered:
            self.state = TamperState(kind, score, self.state.since)
        elif self._bad_run >= s.confirm_frames:
            self.state = TamperState(kind, score, self._bad_since)
        return self.state

    def _learn(self, frame: Features) -> None:
        ref, a = self._ref, self.settings.alpha
        assert ref is not None
        self._ref = Features(
            half=(1 - a) * ref.half + a * frame.half,
            mean=(1 - a) * ref.mean + a * frame.mean,
            edges=(1 - a) * ref.edges + a * frame.edges,
            block_cv=(1 - a) * ref.block_cv + a * frame.block_cv,
        )

    @staticmethod
    def _judge(frame: Features, ref: Features, *, dark_possible: bool) -> tuple[str, float]:
        if dark_possible and frame.mean < DARK_LEVEL and frame.mean < DARK_RATIO * ref.mean:
            return "dark", _clip(1 - frame.mean / max(ref.mean, 1.0))
        textured = ref.block_cv > _TEXTURED_CV
        if textured.any():
            flat = (frame.block_cv < _FLAT_RATIO * ref.block_cv) & textured
            covered = float(flat.sum()) / float(textured.sum())
            if covered >= COVERED_FRACTION:
                return "covered", _clip(covered)
        if ref.edges > 0 and frame.edges < BLUR_RATIO * ref.edges:
            return "blurred", _clip(1 - frame.edges / ref.edges)
        ssim = structural_similarity(frame.half, ref.half)
        if ssim < MOVED_SSIM:
            return "moved", _clip(1 - ssim)
        return "none", 0.0


def _clip(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 3)


class TamperWatch:
    """Every client's cameras' detectors; safe to call from decode worker threads. Two frames of
    one camera decoded side by side may be compared in either order: that moves a confirmation by
    at most a frame."""

    def __init__(self, settings: TamperSettings | None = None) -> None:
        self.settings = settings or TamperSettings()
        self._clients: OrderedDict[str, OrderedDict[str, TamperDetector]] = OrderedDict()
        self._lock = threading.Lock()

    def observe(self, client_id: str, camera_id: str, thumb: Gray, at: datetime) -> TamperState:
        frame = features(thumb)  # outside the lock: the bulk of the work
        with self._lock:
            cameras = self._clients.get(client_id)
            if cameras is None:
                if len(self._clients) >= MAX_CLIENTS:
                    self._clients.popitem(last=False)
                cameras = self._clients[client_id] = OrderedDict()
            self._clients.move_to_end(client_id)
            detector = cameras.get(camera_id)
            if detector is None:
                if len(cameras) >= MAX_CAMERAS:
                    cameras.popitem(last=False)
                detector = cameras[camera_id] = TamperDetector(self.settings)
            cameras.move_to_end(camera_id)
            return detector.update_features(frame, at)

    def state(self, client_id: str, camera_id: str) -> TamperState:
        with self._lock:
            cameras = self._clients.get(client_id)
            detector = cameras.get(camera_id) if cameras is not None else None
            return detector.state if detector is not None else NOT_TAMPERED

    def tampered_count(self) -> int:
        with self._lock:
            return sum(
                d.state.tampered for cameras in self._clients.values() for d in cameras.values()
            )


def describe(state: TamperState) -> str:
    """The prompt's words for a kind ("covered", "moved away from where it pointed", ...)."""
    return {
        "moved": "moved (it no longer shows its usual scene)",
        "covered": "covered",
        "blurred": "blurred",
        "dark": "suddenly dark",
    }.get(state.kind, "normal")
