"""Known licence plates: the option's text ("AB12 CDE = Anna's car", one a line) and the plate
form the sidecar reads from images (upper-case letters and digits, separators dropped), so a
plate typed with spaces or dashes matches the one read."""

from __future__ import annotations

import re

_SEPARATORS_RE = re.compile(r"[\s\-·.:]+")
_PLATE_RE = re.compile(r"^[A-Z0-9]{4,10}$")
MAX_PLATES = 100
MAX_NAME = 64


class KnownPlatesError(ValueError):
    """A line of the option's text that is not `PLATE = NAME`; `reason` is a translation key."""

    def __init__(self, reason: str, line: str) -> None:
        """What is wrong with which line."""
        super().__init__(f"{reason}: {line}")
        self.reason = reason
        self.line = line


def normalize_plate(text: str) -> str | None:
    """A plate as the sidecar reads it, or None if it cannot be one (4 to 10 letters and digits,
    at least one digit)."""
    compact = _SEPARATORS_RE.sub("", text.upper())
    if _PLATE_RE.match(compact) and any(c.isdigit() for c in compact):
        return compact
    return None


def parse_known_plates(text: str) -> dict[str, str]:
    """`PLATE = NAME` lines (blank lines ignored) as plate -> name."""
    plates: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        plate_text, sep, name = line.partition("=")
        name = " ".join(name.split())
        if not sep or not name:
            raise KnownPlatesError("plate_line", line[:80])
        plate = normalize_plate(plate_text)
        if plate is None:
            raise KnownPlatesError("plate_invalid", plate_text.strip()[:80])
        if len(name) > MAX_NAME:
            raise KnownPlatesError("plate_name_too_long", line[:80])
        if plate in plates:
            raise KnownPlatesError("plate_duplicate", plate)
        plates[plate] = name
    if len(plates) > MAX_PLATES:
        raise KnownPlatesError("plates_too_many", str(MAX_PLATES))
    return plates


def format_known_plates(plates: dict[str, str]) -> str:
    """The option's text of a plate -> name mapping."""
    return "\n".join(f"{plate} = {name}" for plate, name in plates.items())
