"""The harness's readers see what a person sees: text, drawn and missing icons, broken pictures."""

from __future__ import annotations

import pytest

from .conftest import OpenDashboard
from .harness import DESKTOP, HomeAssistantProcess, add_dashboard

pytestmark = pytest.mark.timeout(900)

GOOD_PICTURE = "/static/icons/favicon-192x192.png"
MISSING_PICTURE = "/local/secmon-no-such-picture.png"


def test_readers_find_text_missing_icons_and_broken_pictures(
    home: HomeAssistantProcess, open_dashboard: OpenDashboard
) -> None:
    """A dashboard made of known cards, added over the websocket API, read back."""
    path = add_dashboard(
        home.client,
        "harness-check",
        [
            {"type": "markdown", "content": "Harness check: plain text"},
            {
                "type": "entities",
                "title": "Icons",
                "entities": [
                    {"entity": "sun.sun", "name": "Drawn icon", "icon": "mdi:cctv"},
                    {"entity": "sun.sun", "name": "Missing icon", "icon": "mdi:secmon-no-such"},
                ],
            },
            {"type": "picture", "image": GOOD_PICTURE},
            {"type": "picture", "image": MISSING_PICTURE},
        ],
        title="Harness check",
    )
    dashboard = open_dashboard("desktop", DESKTOP)
    dashboard.open(path)

    lines = dashboard.wait_for_text("Harness check: plain text", "Drawn icon", "Missing icon")
    assert "Icons" in lines
    assert dashboard.missing_icons() == ["mdi:secmon-no-such"]
    rows = {row["name"]: row for row in dashboard.entity_rows(settle=2) if row["card"] == "Icons"}
    assert (rows["Drawn icon"]["drawn"], rows["Missing icon"]["drawn"]) == (True, False)
    assert rows["Missing icon"]["icon"] == "mdi:secmon-no-such"
    broken = dashboard.broken_images()
    assert len(broken) == 1
    assert MISSING_PICTURE in broken[0]
    pictures = [i for i in dashboard.images() if GOOD_PICTURE in i["src"]]
    assert len(pictures) == 1
    assert pictures[0]["naturalWidth"] == 192
    dashboard.screenshot("cards")

    # Saving again replaces the dashboard's cards.
    add_dashboard(
        home.client,
        "harness-check",
        [{"type": "markdown", "content": "Harness check: replaced"}],
    )
    dashboard.open(path)
    dashboard.wait_for_text("Harness check: replaced")
    assert not any("plain text" in line for line in dashboard.text())
    assert dashboard.missing_icons() == []
