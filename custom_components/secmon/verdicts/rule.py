"""The rule that decides who gets told about a verdict.

A security event (`event_id`) can receive two verdicts: a fast-path verdict at once (a person at
high confidence) and the verdict of the batch it belongs to when the batch closes. The user must be
told once, as early as possible, and again only if the batch verdict makes things worse:

- The first verdict of an event *announces* it: the event entity fires, `secmon_event` is sent.
- A later verdict of the same event announces again (with `is_update: true`) only if its risk
  level is higher than every level already announced for that event. Otherwise it is *recorded*:
  the risk sensors, the snapshot and the stored history follow it, and `secmon_event_updated`
  (logbook only) is sent, but the event entity and `secmon_event` stay quiet.
- A fast-path verdict that arrives after its batch verdict (a re-send after a restart) is stale:
  stored, never shown.

The risk sensors and the snapshot show a camera's *current* verdict: the one of the latest event
(by start time), and within an event the batch verdict over the fast-path one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .records import VerdictRecord


@dataclass(frozen=True, slots=True)
class PriorVerdict:
    """What the store knows about an earlier verdict of the same event."""

    fast_path: bool
    rank: int
    announced: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a newly stored verdict."""

    # Fire the event entity and `secmon_event`.
    announce: bool
    # This is not the event's first verdict.
    update: bool
    # Shown at all (sensors, snapshot, logbook); False only for a stale fast-path verdict.
    show: bool


def decide(record: VerdictRecord, prior: Iterable[PriorVerdict]) -> Decision:
    """The announcement rule (see the module docstring)."""
    earlier = list(prior)
    if not earlier:
        return Decision(announce=True, update=False, show=True)
    if record.fast_path and any(not p.fast_path for p in earlier):
        return Decision(announce=False, update=True, show=False)
    announced = [p.rank for p in earlier if p.announced]
    if not announced:
        return Decision(announce=True, update=True, show=True)
    return Decision(announce=record.rank > max(announced), update=True, show=True)
