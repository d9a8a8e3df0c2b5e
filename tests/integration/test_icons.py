"""Every icon the integration names exists in the installed frontend's icon set (an icon that is
not there renders as nothing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hass_frontend

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "secmon"


def frontend_icons() -> set[str]:
    """The icon names of the installed frontend (its own list, what the icon picker offers)."""
    path = Path(hass_frontend.where()) / "static" / "mdi" / "iconList.json"
    return {icon["name"] for icon in json.loads(path.read_text())}


def named_icons(node: Any) -> Iterator[str]:
    """Every `mdi:` string in a JSON document."""
    if isinstance(node, dict):
        for value in node.values():
            yield from named_icons(value)
    elif isinstance(node, list):
        for value in node:
            yield from named_icons(value)
    elif isinstance(node, str) and node.startswith("mdi:"):
        yield node


def test_every_icon_exists_in_the_frontend() -> None:
    """icons.json only names icons the installed frontend has."""
    known = frontend_icons()
    assert len(known) > 5000
    used = set(named_icons(json.loads((INTEGRATION / "icons.json").read_text())))
    assert used
    assert sorted(icon for icon in used if icon.removeprefix("mdi:") not in known) == []
