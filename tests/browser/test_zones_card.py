"""The zones card on a dashboard, as a person uses it in Chromium: draw a triangle on the camera's
picture by clicks, name it, drag a corner, save; the entry's options hold it and a reloaded page
draws it over the picture without its saved outlines; Delete asks first; at desktop and phone
widths. A user who is not an administrator sees the zones only."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from playwright.sync_api import Browser

from dev.ha_setup import HomeAssistantClient

from .conftest import OpenDashboard
from .harness import (
    DESKTOP,
    JS_EDITOR_CAMERAS,
    PHONE,
    Dashboard,
    HomeAssistantProcess,
    add_dashboard,
    dashboard_page,
    wait_for,
)

pytestmark = pytest.mark.timeout(900)

CARD = "secmon-zones-card"
# Where the triangle's corners are clicked, as fractions of the picture.
CORNERS = [(0.2, 0.3), (0.7, 0.3), (0.45, 0.8)]
# Where the third corner is dragged to.
DRAGGED = (0.45, 0.9)
# A click lands on a whole pixel and the card keeps 4 decimals.
NEAR = 0.02

_JS_POLYGONS = """(card) => [...card.shadowRoot.querySelectorAll('svg.overlay polygon')].map(
  (p) => ({
    name: p.dataset.name,
    points: p.getAttribute('points').split(' ').map((xy) => xy.split(',').map(Number)),
  }))"""


def front_door(home: HomeAssistantProcess) -> dict[str, Any]:
    """The Front Door camera as secmon lists it (with its entry)."""

    def probe() -> dict[str, Any] | None:
        cameras = home.client.ws({"type": "secmon/events/list", "limit": 1})["cameras"]
        return next((c for c in cameras if c["name"] == "Front Door"), None)

    return wait_for("secmon's Front Door camera", probe)


def picture_loaded(dashboard: Dashboard) -> bool:
    found: bool = dashboard.page.locator(f"{CARD} .stage img").evaluate(
        "(img) => img.complete && img.naturalWidth > 0"
    )
    return found


def polygons(dashboard: Dashboard) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = dashboard.page.locator(CARD).evaluate(_JS_POLYGONS)
    return found


def close_to(points: list[list[float]], expected: list[tuple[float, float]]) -> bool:
    return len(points) == len(expected) and all(
        abs(p[0] - e[0]) <= NEAR and abs(p[1] - e[1]) <= NEAR
        for p, e in zip(points, expected, strict=True)
    )


def test_zones_card_draws_names_drags_and_saves_a_zone(
    home: HomeAssistantProcess, open_dashboard: OpenDashboard
) -> None:
    client = home.client
    camera = front_door(home)
    ids = {"entry_id": camera["config_entry_id"], "camera_id": camera["camera_id"]}
    client.ws({"type": "secmon/zones/set", **ids, "zones": []})
    path = add_dashboard(
        client,
        "secmon-zones",
        [{"type": f"custom:{CARD}", "camera_id": camera["camera_id"], "entry_id": ids["entry_id"]}],
        title="Zones",
    )
    expected = [CORNERS[0], CORNERS[1], DRAGGED]
    try:
        desktop = open_dashboard("desktop", DESKTOP)
        desktop.open(path)
        desktop.wait_for_text("Zones · Front Door", "No zones yet")
        wait_for("the camera's picture in the card", lambda: picture_loaded(desktop))

        card = desktop.page.locator(CARD)
        stage = card.locator(".stage")
        card.locator("button.add-zone").click()
        box = stage.bounding_box()
        assert box is not None
        for x, y in CORNERS:
            stage.click(position={"x": x * box["width"], "y": y * box["height"]})
        card.locator("button.close-zone").click()
        name = card.locator(".zone input.name")
        name.fill("Porch")
        card.locator(".zone select.kind").select_option("entry_point")
        [drawn] = polygons(desktop)
        assert drawn["name"] == "Porch" and close_to(drawn["points"], CORNERS)

        # Drag the third corner further down.
        vertex = card.locator(".vertex").nth(2)
        vbox = vertex.bounding_box()
        assert vbox is not None
        mouse = desktop.page.mouse
        mouse.move(vbox["x"] + vbox["width"] / 2, vbox["y"] + vbox["height"] / 2)
        mouse.down()
        target = (box["x"] + DRAGGED[0] * box["width"], box["y"] + DRAGGED[1] * box["height"])
        mouse.move(*target, steps=5)
        mouse.up()
        wait_for("the dragged corner", lambda: close_to(polygons(desktop)[0]["points"], expected))
        desktop.screenshot("zones-drawn")

        card.locator("button.save").click()
        status = card.locator(".status")
        wait_for("the card to say it saved", lambda: "Saved." in status.inner_text())

        # The entry's options hold the zone (secmon/zones/get reads them).
        [stored] = client.ws({"type": "secmon/zones/get", **ids})["zones"]
        assert (stored["name"], stored["kind"], stored["priority"]) == ("Porch", "entry_point", 1)
        assert close_to(stored["points"], expected), stored

        # Reloaded, the card draws the saved zone.
        desktop.page.reload(wait_until="load")
        wait_for(
            "the saved zone drawn after a reload",
            lambda: (
                [p for p in polygons(desktop) if p["name"] == "Porch"]
                if desktop.page.locator(CARD).count()
                else None
            ),
        )
        [shown] = polygons(desktop)
        assert shown["points"] == stored["points"]
        desktop.screenshot("zones-reloaded")
        # The picture under the drawn zones is the camera's frame without the saved outlines
        # (the camera entity's own picture has them), fetched signed in.
        wait_for("the plain picture", lambda: picture_loaded(desktop))
        src = desktop.page.locator(f"{CARD} .stage img").get_attribute("src") or ""
        assert src.startswith("blob:"), src

        # Delete asks first; Keep keeps the zone, Delete then removes it (until saved).
        card = desktop.page.locator(CARD)
        card.locator(".zone button.delete").click()
        assert card.locator(".zone .confirm-text").inner_text() == "Delete “Porch”?"
        assert [p["name"] for p in polygons(desktop)] == ["Porch"]
        card.locator(".zone button.keep").click()
        assert card.locator(".zone .confirm-text").count() == 0
        assert [p["name"] for p in polygons(desktop)] == ["Porch"]
        card.locator(".zone button.delete").click()
        desktop.screenshot("zones-delete-asks")
        card.locator(".zone button.confirm-delete").click()
        assert polygons(desktop) == []
        card.locator("button.cancel").click()
        assert [p["name"] for p in polygons(desktop)] == ["Porch"]
        assert client.ws({"type": "secmon/zones/get", **ids})["zones"] == [stored]

        # The visual editor offers the cameras to choose from.
        assert "Front Door" in desktop.page.evaluate(JS_EDITOR_CAMERAS, "secmon-zones-card")

        phone = open_dashboard("phone", PHONE)
        phone.open(path)
        wait_for(
            "the zone on a phone", lambda: phone.page.locator(CARD).count() and polygons(phone)
        )
        width = phone.page.locator(f"{CARD} ha-card").evaluate(
            "(card) => card.getBoundingClientRect().width"
        )
        assert width <= PHONE["width"]
        # Drawn by touch too; Cancel drops what was not saved.
        pcard = phone.page.locator(CARD)
        wait_for("the camera's picture on a phone", lambda: picture_loaded(phone))
        pcard.locator("button.add-zone").tap()
        pstage = pcard.locator(".stage")
        pbox = pstage.bounding_box()
        assert pbox is not None
        for x, y in [(0.6, 0.1), (0.9, 0.1), (0.9, 0.4)]:
            pstage.tap(position={"x": x * pbox["width"], "y": y * pbox["height"]})
        pcard.locator("button.close-zone").tap()
        assert [p["name"] for p in polygons(phone)] == ["Porch", "Zone 2"]
        phone.screenshot("zones")
        pcard.locator("button.cancel").tap()
        assert [p["name"] for p in polygons(phone)] == ["Porch"]
        [still] = client.ws({"type": "secmon/zones/get", **ids})["zones"]
        assert still == stored
    finally:
        client.ws({"type": "secmon/zones/set", **ids, "zones": []})


def non_admin_token(home: HomeAssistantProcess) -> str:
    """A long-lived token of a new user who is not an administrator."""
    admin = home.client
    user = admin.ws({"type": "config/auth/create", "name": "Guest", "group_ids": ["system-users"]})[
        "user"
    ]
    username, password = f"guest{time.time_ns()}", secrets.token_urlsafe(16)
    admin.ws(
        {
            "type": "config/auth_provider/homeassistant/create",
            "user_id": user["id"],
            "username": username,
            "password": password,
        }
    )
    guest = HomeAssistantClient(home.url)
    guest.login(username, password)
    return guest.long_lived_token("zones card test")


def test_zones_card_is_read_only_for_non_admins(
    home: HomeAssistantProcess, browser: Browser
) -> None:
    client = home.client
    camera = front_door(home)
    ids = {"entry_id": camera["config_entry_id"], "camera_id": camera["camera_id"]}
    porch = {
        "name": "Porch",
        "kind": "entry_point",
        "priority": 2,
        "points": [[0.1, 0.5], [0.4, 0.5], [0.4, 1.0], [0.1, 1.0]],
    }
    client.ws({"type": "secmon/zones/set", **ids, "zones": [porch]})
    path = add_dashboard(
        client,
        "secmon-zones-guest",
        [{"type": f"custom:{CARD}", "camera_id": camera["camera_id"]}],
        title="Zones",
    )
    try:
        with dashboard_page(
            browser, home, "zones-non-admin", PHONE, token=non_admin_token(home)
        ) as guest:
            guest.open(path)
            guest.wait_for_text("Zones · Front Door", "Porch", "Entry point · priority 2")
            [shown] = wait_for("the zone drawn", lambda: polygons(guest))
            assert shown == {"name": "Porch", "points": porch["points"]}
            card = guest.page.locator(CARD)
            for editing in ("button", "input", "select", ".vertex"):
                assert card.locator(editing).count() == 0, editing
            guest.screenshot("zones-read-only")
    finally:
        client.ws({"type": "secmon/zones/set", **ids, "zones": []})
