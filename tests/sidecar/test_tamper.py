"""The tamper detector on synthetic image sequences: what trips it (moved, covered, blurred, dark)
and what must not (dusk, lights, infrared night mode, sensor noise)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from sidecar.context.tamper import (
    MAX_CAMERAS,
    TamperDetector,
    TamperSettings,
    TamperState,
    TamperWatch,
    structural_similarity,
    thumbnail,
)

W, H = 640, 480
T0 = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
STEP = timedelta(seconds=10)


def scene(seed: int = 1, size: tuple[int, int] = (W * 2, H * 2)) -> Image.Image:
    """A colourful scene with structure everywhere: sky gradient, house-like boxes, a fence, a
    road, bushes (drawn twice the frame size so that it can be shifted)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y = np.linspace(0, 1, height)[:, None, None]
    sky = (np.array([90, 140, 210]) * (1 - y) + np.array([70, 110, 60]) * y)
    pixels = np.broadcast_to(sky, (height, width, 3)).astype(np.uint8).copy()
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        w, h = int(rng.integers(30, 220)), int(rng.integers(30, 200))
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour, outline=(10, 10, 10), width=3)
    for x in range(0, width, 24):  # a fence
        draw.line((x, int(height * 0.75), x, height), fill=(240, 235, 220), width=5)
    for _ in range(60):  # bushes
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(6, 30))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(30, int(rng.integers(80, 160)), 40))
    return image


BASE = scene()


def view(dx: int = 0, dy: int = 0, angle: float = 0.0) -> Image.Image:
    """The camera's frame: a crop of the scene, optionally shifted or rotated."""
    src = BASE.rotate(angle, resample=Image.Resampling.BILINEAR) if angle else BASE
    left, top = W // 2 + dx, H // 2 + dy
    return src.crop((left, top, left + W, top + H))


def with_noise(image: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    noisy = pixels + rng.normal(0, sigma, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def scaled(image: Image.Image, gain: float, offset: float = 0.0) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32) * gain + offset
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def run(
    frames: Iterable[Image.Image], detector: TamperDetector | None = None, start: datetime = T0
) -> list[TamperState]:
    detector = detector or TamperDetector()
    return [detector.update(thumbnail(f), start + i * STEP) for i, f in enumerate(frames)]


def steady(count: int, seed: int = 2, sigma: float = 3.0) -> Iterator[Image.Image]:
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield with_noise(view(), sigma, rng)


def trips(states: list[TamperState]) -> set[str]:
    return {s.kind for s in states if s.tampered}


def test_a_steady_noisy_view_never_trips() -> None:
    assert trips(run(steady(60, sigma=8.0))) == set()


@pytest.mark.parametrize(
    ("changed", "kind"),
    [
        (lambda: view(dx=140, dy=40), "moved"),
        (lambda: view(angle=25), "moved"),
        (lambda: Image.new("RGB", (W, H), (40, 40, 40)), "covered"),
        (lambda: Image.new("RGB", (W, H), (128, 128, 128)), "covered"),
        (lambda: view().filter(ImageFilter.GaussianBlur(12)), "blurred"),
        (lambda: scaled(view(), 0.04), "dark"),
    ],
    ids=["shifted", "rotated", "dark-grey-cover", "grey-cover", "blur", "blackout"],
)
def test_a_changed_view_trips_after_confirmation(changed: object, kind: str) -> None:
    rng = np.random.default_rng(3)
    bad = changed()  # type: ignore[operator]
    detector = TamperDetector(TamperSettings(confirm_frames=3, clear_frames=3))
    before = run(steady(10), detector)
    assert trips(before) == set()
    after = run(
        (with_noise(bad, 3.0, rng) for _ in range(5)), detector, start=T0 + 10 * STEP
    )
    # Two bad frames are not enough; the third confirms, dated from the first.
    assert [s.kind for s in after[:2]] == ["none", "none"]
    assert after[2].kind == kind
    assert after[2].since == T0 + 10 * STEP
    assert all(s.kind == kind for s in after[2:])
    assert 0 < after[-1].score <= 1


def hand(image: Image.Image, cover: float = 0.85) -> Image.Image:
    """A skin-coloured, slightly shaded blob over most of the frame (a hand on the lens)."""
    out = image.copy()
    mask = Image.new("L", out.size, 0)
    draw = ImageDraw.Draw(mask)
    w, h = out.size
    rx, ry = w * cover * 0.62, h * cover * 0.62
    draw.ellipse((w / 2 - rx, h / 2 - ry, w / 2 + rx, h / 2 + ry), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(20))
    y = np.linspace(0.8, 1.0, h)[:, None, None]
    skin = Image.fromarray((np.array([200, 150, 120]) * y * np.ones((h, w, 3))).astype(np.uint8))
    out.paste(skin, (0, 0), mask)
    return out


def test_a_hand_over_the_lens_is_covered() -> None:
    rng = np.random.default_rng(4)
    detector = TamperDetector()
    run(steady(10), detector)
    states = run((with_noise(hand(view()), 3.0, rng) for _ in range(4)), detector, T0 + 100 * STEP)
    assert states[-1].kind == "covered"


def test_recovery_clears_after_good_frames() -> None:
    rng = np.random.default_rng(5)
    detector = TamperDetector(TamperSettings(confirm_frames=2, clear_frames=3))
    run(steady(8), detector)
    covered = Image.new("RGB", (W, H), (50, 45, 40))
    states = run((with_noise(covered, 2.0, rng) for _ in range(6)), detector, T0 + 8 * STEP)
    assert states[-1].kind == "covered"
    since = states[-1].since
    back = run(steady(4, seed=9), detector, T0 + 14 * STEP)
    assert [s.kind for s in back] == ["covered", "covered", "none", "none"]
    assert back[1].since == since
    # The covered frames never became the reference: the next cover trips again.
    again = run((covered for _ in range(3)), detector, T0 + 18 * STEP)
    assert again[-1].kind == "covered"


def test_a_brief_glitch_does_not_trip() -> None:
    detector = TamperDetector(TamperSettings(confirm_frames=3))
    run(steady(6), detector)
    frames = [*steady(3), Image.new("RGB", (W, H), (0, 0, 0)),
              view(dx=200), *steady(3), view().filter(ImageFilter.GaussianBlur(14)), *steady(3)]
    assert trips(run(frames, detector, T0 + 6 * STEP)) == set()


def test_gradual_dusk_to_near_black_does_not_trip() -> None:
    """Brightness ramps from daylight to almost black over 120 frames, while sensor noise grows
    (the camera raises its gain), then the night stays."""
    rng = np.random.default_rng(6)
    frames = []
    for i in range(160):
        gain = max(0.03, 1.0 - i / 120)
        frames.append(with_noise(scaled(view(), gain), 2.0 + 4.0 * (1 - gain), rng))
    assert trips(run(frames)) == set()


def test_dawn_does_not_trip() -> None:
    rng = np.random.default_rng(7)
    frames = [with_noise(scaled(view(), min(1.0, 0.03 + i / 100)), 4.0, rng) for i in range(130)]
    assert trips(run(frames)) == set()


def test_lights_switched_on_and_off_with_noise_do_not_trip() -> None:
    """An evening view; a porch light goes on (brighter, other contrast), off, on, off, each for a
    few frames, with sensor noise throughout."""
    rng = np.random.default_rng(8)
    evening = scaled(view(), 0.35)
    lit = scaled(view(), 0.9, 25)
    pattern = [evening] * 10 + [lit] * 6 + [evening] * 5 + [lit] * 2 + [evening] * 8 + [lit] * 20
    assert trips(run(with_noise(f, 6.0, rng) for f in pattern)) == set()


def test_switch_to_infrared_night_mode_does_not_trip() -> None:
    """Colour by day; the camera switches to infrared: grayscale with other channel weights
    (foliage reflects infrared: bright), other brightness and contrast, more noise."""
    rng = np.random.default_rng(9)
    day = list(steady(15))
    pixels = np.asarray(view(), dtype=np.float32)
    ir = 0.6 * pixels[..., 0] + 0.35 * pixels[..., 1] + 0.05 * pixels[..., 2]
    ir = np.clip(ir * 0.7 + 30, 0, 255).astype(np.uint8)
    infrared = Image.fromarray(np.stack([ir] * 3, axis=-1))
    night = [with_noise(infrared, 7.0, rng) for _ in range(30)]
    assert trips(run(day + night)) == set()


def test_a_night_frame_after_a_long_gap_is_not_dark() -> None:
    """Motion-triggered uploads: the first frame of the evening comes hours after the last
    daylight one; brightness is not compared across the gap."""
    detector = TamperDetector()
    run(steady(5), detector)
    night = scaled(view(), 0.06)
    states = [detector.update(thumbnail(night), T0 + timedelta(hours=5) + i * STEP)
              for i in range(6)]
    assert states[0].kind == "none"
    assert trips(states) == set()


def test_a_view_that_stays_moved_is_relearnt() -> None:
    detector = TamperDetector(TamperSettings(confirm_frames=2, relearn_frames=10))
    run(steady(5), detector)
    moved = run((view(dx=150) for _ in range(12)), detector, T0 + 5 * STEP)
    assert moved[1].kind == "moved"
    assert moved[-1].kind == "none"  # the new aim is the reference now
    assert trips(run((view(dx=150) for _ in range(5)), detector, T0 + 20 * STEP)) == set()


def test_ssim_ignores_brightness_and_contrast_only() -> None:
    a = thumbnail(view())
    half = a.reshape(48, 2, 64, 2).mean(axis=(1, 3))
    assert structural_similarity(half, half * 0.3 + 40) > 0.99
    shifted = thumbnail(view(dx=120)).reshape(48, 2, 64, 2).mean(axis=(1, 3))
    assert structural_similarity(half, shifted) < 0.4


def test_the_watch_is_per_client_and_camera_and_bounded() -> None:
    watch = TamperWatch(TamperSettings(confirm_frames=1))
    good, covered = thumbnail(view()), thumbnail(Image.new("RGB", (W, H), (60, 60, 60)))
    for client in ("a", "b"):
        watch.observe(client, "cam", good, T0)
    watch.observe("a", "cam", covered, T0 + STEP)
    assert watch.state("a", "cam").kind == "covered"
    assert watch.state("b", "cam").kind == "none"
    assert watch.tampered_count() == 1
    for index in range(MAX_CAMERAS):  # the longest unseen camera is forgotten
        watch.observe("a", f"other-{index}", good, T0)
    assert watch.state("a", "cam").kind == "none"
    assert watch.tampered_count() == 0


def test_thumbnail_is_small_grayscale() -> None:
    thumb = thumbnail(Image.new("RGB", (1920, 1080), (255, 0, 0)))
    assert thumb.shape == (96, 128)
    assert thumb.dtype == np.float32
    assert abs(float(thumb.mean()) - 76) <= 1  # PIL's luma of pure red
