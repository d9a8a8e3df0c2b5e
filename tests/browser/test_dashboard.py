"""The auto-generated dashboard, as a person sees it in Chromium at desktop and phone widths."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest

from .conftest import OpenDashboard
from .harness import (
    DESKTOP,
    PHONE,
    Dashboard,
    HomeAssistantProcess,
    secmon_devices,
    wait_for,
    write_jpeg,
)

# The session's Home Assistant starts inside the first test's set-up.
pytestmark = pytest.mark.timeout(900)


def device_card(cards: list[dict[str, Any]], device: str) -> dict[str, Any] | None:
    """The entities card titled with a device's name."""
    for card in cards:
        if card["type"] == "hui-entities-card" and card["text"][:1] == [device]:
            return card
    return None


def picture_card(cards: list[dict[str, Any]], entity_id: str) -> dict[str, Any] | None:
    """The card whose picture is an entity's (a camera's or an image entity's)."""
    for card in cards:
        if any(f"/{entity_id}?" in image["src"] for image in card["images"]):
            return card
    return None


def camera_card(cards: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """A camera's picture-entity card, found by the name on it."""
    for card in cards:
        if card["type"] == "hui-picture-entity-card" and name in card["text"]:
            return card
    return None


def shown_picture(card: dict[str, Any] | None) -> bool:
    """Whether a card shows a loaded picture."""
    return card is not None and any(
        image["shown"] and image["complete"] and image["naturalWidth"] > 0
        for image in card["images"]
    )


def missing_from_dashboard(
    cards: list[dict[str, Any]], device: str, entities: list[dict[str, Any]]
) -> list[str]:
    """A device's primary entities that the dashboard does not show, as `entity_id (why)`."""
    missing = []
    rows = device_card(cards, device)
    for entity in entities:
        if not entity["primary"] or entity["domain"] == "event":
            continue  # Home Assistant leaves these off auto-generated dashboards
        if entity["domain"] == "camera":
            if camera_card(cards, entity["name"]) is None:
                missing.append(f"{entity['entity_id']} (no camera card named {entity['name']!r})")
        elif entity["domain"] == "image":
            if picture_card(cards, entity["entity_id"]) is None:
                missing.append(f"{entity['entity_id']} (no picture card)")
        elif rows is None or not any(piece == entity["name"] for piece in rows["text"][1:]):
            missing.append(f"{entity['entity_id']} (no row {entity['name']!r} in {device!r})")
    return missing


def unknown_values(cards: list[dict[str, Any]], device: str) -> list[str]:
    """The rows of a device's cards that read Unknown or Unavailable, as `row: value`."""
    found = []
    for card in cards:
        pieces = card["text"]
        if not pieces or pieces[0] != device:
            continue
        for before, piece in itertools.pairwise(pieces):
            if piece in ("Unknown", "Unavailable"):
                found.append(f"{before}: {piece}")
    return found


def secmon_picture_failures(dashboard: Dashboard) -> list[str]:
    """Failed requests for secmon's pictures (camera and event snapshot)."""
    return [
        request
        for request in dashboard.failed_requests
        if "/api/camera_proxy/" in request or "/api/image_proxy/" in request
    ]


def note_what_looks_wrong(
    dashboard: Dashboard, devices: Collection[str], observe: Callable[[str], None]
) -> None:
    """Record missing icons, broken pictures, secmon values that say Unknown, failed requests."""
    for icon in dashboard.missing_icons():
        observe(f"icon {icon} is drawn as nothing")
    for image in dashboard.broken_images():
        observe(f"broken picture {image.split('?')[0]}")
    for card in dashboard.cards():
        pieces = card["text"]
        if not pieces or pieces[0] not in devices:
            continue
        for before, piece in itertools.pairwise(pieces):
            if piece in ("Unknown", "Unavailable"):
                observe(f"{pieces[0]} / {before}: {piece}")
    for request in sorted(set(dashboard.failed_requests)):
        observe(request)


@pytest.mark.parametrize(
    "screen",
    [("desktop", DESKTOP, "Garage"), ("phone", PHONE, "Driveway")],
    ids=["desktop", "phone"],
)
def test_overview_shows_devices_and_a_new_cameras_picture(
    home: HomeAssistantProcess,
    camera_root: Path,
    open_dashboard: OpenDashboard,
    observe: Callable[[str], None],
    screen: tuple[str, dict[str, int], str],
) -> None:
    """Every secmon device's entities are on the overview; a new camera folder's first image
    becomes a new device whose camera card shows that picture."""
    label, viewport, new_camera = screen
    dashboard = open_dashboard(label, viewport)
    dashboard.open()

    devices = secmon_devices(home.client)
    assert "Front Door" in devices
    assert len(devices) >= 2, f"expected the camera and the sidecar device, got {list(devices)}"
    dashboard.reload_until(
        "every secmon device's entities on the overview",
        lambda: all(
            not missing_from_dashboard(dashboard.cards(), name, entities)
            for name, entities in devices.items()
        ),
    )
    dashboard.screenshot("overview")
    cards = dashboard.cards()
    for name, entities in devices.items():
        assert not missing_from_dashboard(cards, name, entities)

    # A camera uploads its first image into a folder of its own (nested by date, as FTP
    # cameras do): a new device, whose camera card shows that image.
    write_jpeg(camera_root / new_camera / "20261122" / "snap_0001.jpg")

    def new_picture_shown() -> bool:
        dashboard.scroll_through()
        return shown_picture(camera_card(dashboard.cards(), new_camera))

    dashboard.reload_until(
        f"a camera card named {new_camera!r} showing a picture", new_picture_shown
    )
    devices = secmon_devices(home.client)
    assert new_camera in devices
    cards = dashboard.cards()
    assert not missing_from_dashboard(cards, new_camera, devices[new_camera])
    dashboard.screenshot("new-camera")

    # What a first-time user sees once the new camera's first verdict is in: no broken picture
    # (placeholders where a camera has no frame or no event yet), every row's icon drawn, and no
    # row of any secmon device reading Unknown (a camera without a verdict shows 0 objects, risk
    # "None" and an empty description; the sidecar's values are all there while it is up).
    risk_level = f"sensor.{new_camera.lower()}_risk_level"
    wait_for(
        f"{new_camera!r}'s first verdict",
        lambda: home.states().get(risk_level, {}).get("state") not in (None, "none", "unknown"),
        timeout=600,
    )
    dashboard.reload_until(
        f"no Unknown on any secmon device after {new_camera!r}'s first verdict",
        lambda: not any(unknown_values(dashboard.cards(), name) for name in devices),
    )
    dashboard.scroll_through()
    dashboard.screenshot("after-first-verdict")
    assert dashboard.broken_images() == []
    assert dashboard.missing_icons() == []
    assert secmon_picture_failures(dashboard) == []
    rows = [row for row in dashboard.entity_rows() if row["card"] in devices]
    assert {row["card"] for row in rows} >= {new_camera, "Front Door"}, rows
    assert [row for row in rows if not row["drawn"]] == []
    # Some camera has no verdict yet; its rows are the "before" of the same checks.
    states = home.states()
    assert any(
        states.get(f"sensor.{name.lower().replace(' ', '_')}_risk_level", {}).get("state") == "none"
        for name in devices
    ), "expected a camera without a verdict"

    note_what_looks_wrong(dashboard, devices, observe)
    for issue in home.client.ws({"type": "repairs/list_issues"})["issues"]:
        if not issue.get("dismissed_version"):
            observe(f"repair issue {issue['domain']}.{issue['issue_id']} ({issue['severity']})")
