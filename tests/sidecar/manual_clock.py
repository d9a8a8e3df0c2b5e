"""A clock the test sets by hand, for the parts of the sidecar that take a `clock` callable."""

from __future__ import annotations


class Clock:
    """Returns `now` (seconds) until the test changes it."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
