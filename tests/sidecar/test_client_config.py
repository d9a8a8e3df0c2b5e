"""A client's StreamConfig is checked: values that cannot be used are replaced or clamped, and
each change is reported back in one sentence."""

from __future__ import annotations

import math

import pytest

from sidecar.events.batching import BatchingRules
from sidecar.server.client_config import (
    MAX_FRAMES_LIMITS,
    WINDOW_S_LIMITS,
    RequestedRules,
    resolve_batching,
    resolve_threshold,
)

DEFAULTS = BatchingRules(window_s=90, idle_s=30, fast_path_confidence=0.9, max_frames=300)


def test_zero_and_empty_mean_the_defaults_without_warnings() -> None:
    rules, warnings = resolve_batching(RequestedRules(), DEFAULTS)
    assert rules == DEFAULTS and warnings == []


def test_sane_values_are_taken_as_sent() -> None:
    requested = RequestedRules(
        window_s=120, idle_s=20, fast_path_labels=("person", "car"), fast_path_confidence=0.8,
        labels_of_interest=("person",), max_frames=50,
    )
    rules, warnings = resolve_batching(requested, DEFAULTS)
    assert warnings == []
    assert (rules.window_s, rules.idle_s, rules.fast_path_confidence, rules.max_frames) == (
        120, 20, 0.8, 50,
    )
    assert rules.fast_path_labels == {"person", "car"} and rules.labels_of_interest == {"person"}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -5.0])
def test_unusable_durations_fall_back_to_the_defaults(bad: float) -> None:
    rules, warnings = resolve_batching(RequestedRules(window_s=bad, idle_s=bad), DEFAULTS)
    assert (rules.window_s, rules.idle_s) == (90, 30)
    assert len(warnings) == 2
    assert all("not a duration" in w and "default" in w for w in warnings)


def test_huge_and_tiny_durations_are_clamped() -> None:
    rules, warnings = resolve_batching(RequestedRules(window_s=1e12, idle_s=1e-9), DEFAULTS)
    assert rules.window_s == WINDOW_S_LIMITS[1] and rules.idle_s == 1.0
    assert len(warnings) == 2 and all("outside" in w for w in warnings)


def test_idle_never_exceeds_the_window() -> None:
    rules, warnings = resolve_batching(RequestedRules(window_s=10, idle_s=60), DEFAULTS)
    assert rules.idle_s == rules.window_s == 10
    assert warnings == ["idle_seconds 60 is above window_seconds 10; using 10"]


@pytest.mark.parametrize(
    ("value", "expected"), [(math.nan, 0.9), (-0.5, 0.9), (math.inf, 0.9), (7.0, 1.0)]
)
def test_fast_path_confidence_is_checked(value: float, expected: float) -> None:
    rules, warnings = resolve_batching(RequestedRules(fast_path_confidence=value), DEFAULTS)
    assert rules.fast_path_confidence == expected and len(warnings) == 1


def test_frames_per_batch_are_clamped() -> None:
    rules, warnings = resolve_batching(RequestedRules(max_frames=10**9), DEFAULTS)
    assert rules.max_frames == MAX_FRAMES_LIMITS[1] and len(warnings) == 1


def test_hostile_label_lists_are_bounded() -> None:
    many = [f"l{i}" for i in range(300)]
    labels = ("person", "", "  ", "x" * 500, "bad\x00label", "person", *many)
    rules, warnings = resolve_batching(RequestedRules(labels_of_interest=labels), DEFAULTS)
    assert len(rules.labels_of_interest) == 100 and "person" in rules.labels_of_interest
    assert len(warnings) == 2


@pytest.mark.parametrize(
    ("value", "expected", "warned"),
    [(0.0, None, False), (0.4, 0.4, False), (math.nan, None, True), (-1.0, None, True),
     (math.inf, None, True), (3.0, 1.0, True)],
)
def test_detection_threshold_is_checked(value: float, expected: float | None, warned: bool) -> None:
    threshold, warnings = resolve_threshold(value)
    assert threshold == (pytest.approx(expected) if expected is not None else None)
    assert bool(warnings) == warned
