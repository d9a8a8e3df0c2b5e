"""The home's state as Home Assistant reports it (HomeState messages), and the owner's notes per
camera (StreamConfig.camera_notes): kept per client, in memory (the integration sends both again
on every new stream)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# HA state strings are lower-case words; anything else is not shown.
_STATE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_NOTES = 256


@dataclass(frozen=True, slots=True)
class HomeState:
    alarm: str = ""  # the alarm panel's state; "" when none was chosen
    people_home: int | None = None  # None: not known
    people_tracked: int = 0  # 0: the total is not known
    vacation: bool | None = None
    changed_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.alarm and not _STATE_RE.fullmatch(self.alarm):
            object.__setattr__(self, "alarm", "unknown")

    @property
    def empty(self) -> bool:
        return not self.alarm and self.people_home is None and self.vacation is None


def people_line(state: HomeState) -> str:
    home, total = state.people_home, state.people_tracked
    if home is None:
        return ""
    if home <= 0:
        return f"- Nobody is home ({total} people tracked)" if total else "- Nobody is home"
    if total:
        return f"- {home} of {total} tracked people are home"
    return f"- {home} people are home"
