"""The timeline card on a dashboard, as a person sees it in Chromium: events with their pictures,
a new event appearing without a reload, the event's dialog; at desktop and phone widths."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator

from dev.ha_setup import HomeAssistantClient, SetupError
from sidecar.storage.database import STATE_FILE
from tests.integration.sidecar_process import SidecarProcess

from .conftest import RANDOM_MODEL_THRESHOLD, OpenDashboard
from .harness import (
    DESKTOP,
    JS_EDITOR_CAMERAS,
    PHONE,
    Dashboard,
    HomeAssistantProcess,
    add_dashboard,
    wait_for,
    write_jpeg,
)

pytestmark = pytest.mark.timeout(900)

# Short event windows so camera uploads become events within seconds.
BATCH_WINDOW = 5
BATCH_IDLE = 1
EVENT_TIMEOUT = 300.0
# One zone over the whole picture: every detection is in it.
ZONES = "Whole view | yard | 1 | 0,0 1,0 1,1 0,1"
# The card's threshold for its "unusual" badge (UNUSUAL_ANOMALY in the card).
UNUSUAL_ANOMALY = 0.67

# Each row of the card: its event id, whether its picture loaded, its visible text.
_JS_ROWS = """() => {
  let card = null;
  const walk = (node) => {
    if (node.localName === 'secmon-timeline-card') card = card || node;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) walk(child);
  };
  walk(document);
  if (!card) return null;
  return [...card.shadowRoot.querySelectorAll('.event')].map((row) => {
    const img = row.querySelector('img.thumb');
    return {
      event_id: row.dataset.eventId,
      picture: Boolean(img && img.complete && img.naturalWidth > 0),
      text: row.innerText,
    };
  });
}"""


# A card of its own on the page, configured with `zone`: the event ids it lists once loaded.
_JS_ZONE_CARD = """async (zone) => {
  const card = document.createElement('secmon-timeline-card');
  card.setConfig({type: 'custom:secmon-timeline-card', zone});
  document.body.appendChild(card);
  card.hass = document.querySelector('home-assistant').hass;
  try {
    for (let i = 0; i < 600; i++) {
      if (card._loaded) {
        return [...card.shadowRoot.querySelectorAll('.event')].map((row) => row.dataset.eventId);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return null;
  } finally {
    card.remove();
  }
}"""


def set_batch_options(client: HomeAssistantClient) -> None:
    """Short event windows through the options flow (the detection threshold kept)."""
    [entry] = client.request("GET", "/api/config/config_entries/entry?domain=secmon")
    flow = client.request(
        "POST", "/api/config/config_entries/options/flow", {"handler": entry["entry_id"]}
    )
    defaults = {
        field["name"]: field.get("default")
        for field in flow["data_schema"]
        if field.get("default") is not None
    }
    result = client.request(
        "POST",
        f"/api/config/config_entries/options/flow/{flow['flow_id']}",
        {
            **defaults,
            "detection_threshold": RANDOM_MODEL_THRESHOLD,
            "batch_window_seconds": BATCH_WINDOW,
            "batch_idle_seconds": BATCH_IDLE,
        },
    )
    if result.get("step_id") == "context":
        fields = {field["name"] for field in result["data_schema"]}
        assert "Front Door zones" in fields, fields
        result = client.request(
            "POST",
            f"/api/config/config_entries/options/flow/{result['flow_id']}",
            {"Front Door zones": ZONES},
        )
    if result.get("type") != "create_entry":
        raise SetupError(f"secmon options flow did not finish: {result}")


def forget_front_door_activity(sidecar: SidecarProcess) -> None:
    """The running sidecar's baseline as if it had watched Front Door for 30 days and never seen
    anything there at this hour: the next batch's anomaly is 1 (written next to the sidecar,
    which reads the baseline from its state file for every batch)."""
    path = sidecar.workdir / "data" / STATE_FILE
    with closing(sqlite3.connect(path, timeout=60)) as db, db:
        db.execute(
            "INSERT OR REPLACE INTO activity_cameras (camera_id, first_seen) VALUES (?, ?)",
            ("front_door", time.time() - 30 * 86400),
        )
        db.execute("DELETE FROM activity_baseline WHERE camera_id = ?", ("front_door",))


def events(client: HomeAssistantClient) -> list[dict[str, Any]]:
    """The stored events, newest first, as the card's list command gives them."""
    found: list[dict[str, Any]] = client.ws({"type": "secmon/events/list", "limit": 50})["events"]
    return found


def event_ids(client: HomeAssistantClient) -> list[str]:
    """The stored events, newest first, as the card's list command gives them."""
    result = client.ws({"type": "secmon/events/list", "limit": 50})
    return [e["event_id"] for e in result["events"]]


def rows(dashboard: Dashboard) -> list[dict[str, Any]]:
    """The card's rows as shown."""
    found: list[dict[str, Any]] | None = dashboard.page.evaluate(_JS_ROWS)
    return found or []


def row_of(dashboard: Dashboard, event_id: str) -> Locator:
    """The card's row of one event."""
    return dashboard.page.locator(f"secmon-timeline-card .event[data-event-id='{event_id}']")


def loaded_rows(dashboard: Dashboard) -> list[dict[str, Any]] | None:
    """The card's rows once there is one and every picture has loaded."""
    shown = rows(dashboard)
    return shown if shown and all(row["picture"] for row in shown) else None


def upload_event(camera_root: Path, camera: str, tag: str) -> None:
    """A camera uploads two pictures (one event once its window closes)."""
    for n in range(2):
        write_jpeg(camera_root / camera / f"{tag}_{n}.jpg")
        time.sleep(0.3)


def test_timeline_card_lists_events_live_with_pictures_and_opens_an_event(
    home: HomeAssistantProcess,
    camera_root: Path,
    open_dashboard: OpenDashboard,
    sidecar: SidecarProcess,
) -> None:
    """The card lists stored events with their snapshots; a new event appears without a reload;
    clicking an event opens its dialog with the full snapshot and the feedback buttons. Events
    show the zone they were in (set in the options flow), an unusual one its badge."""
    client = home.client
    set_batch_options(client)
    upload_event(camera_root, "Front Door", f"first_{time.time_ns()}")
    wait_for("a first security event", lambda: event_ids(client), timeout=EVENT_TIMEOUT)

    path = add_dashboard(
        client,
        "secmon-timeline",
        [{"type": "custom:secmon-timeline-card", "title": "Security timeline"}],
        title="Timeline",
    )
    desktop = open_dashboard("desktop", DESKTOP)
    desktop.open(path)
    desktop.wait_for_text("Security timeline", "Front Door")
    shown = wait_for(
        "the card's events with loaded pictures",
        lambda: loaded_rows(desktop),
    )
    assert [row["event_id"] for row in shown] == event_ids(client)[: len(shown)]

    # A new event appears on the open page: no reload.
    before = {row["event_id"] for row in shown}
    desktop.page.evaluate("() => { window.__notReloaded = true; }")
    forget_front_door_activity(sidecar)
    upload_event(camera_root, "Front Door", f"second_{time.time_ns()}")
    new = wait_for(
        "a new event in the card without a reload",
        lambda: [r for r in rows(desktop) if r["event_id"] not in before],
        timeout=EVENT_TIMEOUT,
    )
    assert desktop.page.evaluate("() => window.__notReloaded === true")
    assert rows(desktop)[0]["event_id"] == new[0]["event_id"]
    wait_for("the new event's picture", lambda: rows(desktop)[0]["picture"])
    # The upload after the baseline was emptied is unusual (an event of an earlier test's upload
    # may come in between, hence waiting for it by its anomaly).
    unusual = wait_for(
        "an unusual event",
        lambda: [e for e in events(client) if e["anomaly"] >= UNUSUAL_ANOMALY],
        timeout=EVENT_TIMEOUT,
    )[0]
    assert unusual["zones"] == ["Whole view"]
    unusual_row = row_of(desktop, unusual["event_id"])
    unusual_row.wait_for(state="visible")
    assert unusual_row.locator(".chip.zone").inner_text().strip() == "Whole view"
    assert unusual_row.locator(".chip.unusual").is_visible()
    # The others have no badge.
    for event in events(client):
        if event["anomaly"] < UNUSUAL_ANOMALY and row_of(desktop, event["event_id"]).count():
            assert row_of(desktop, event["event_id"]).locator(".chip.unusual").count() == 0
    desktop.screenshot("timeline")

    # The newest event's batch verdict brought its clip (the card hears of it live).
    wait_for(
        "the newest event's clip", lambda: events(client)[0]["clip_url"], timeout=EVENT_TIMEOUT
    )

    # The dialog: full snapshot, reasoning, the event's clip, feedback buttons.
    desktop.page.locator("secmon-timeline-card .event").first.click()
    dialog = desktop.page.locator("secmon-timeline-card .dialog")
    dialog.wait_for(state="visible")
    wait_for(
        "the dialog's full snapshot",
        lambda: dialog.locator("img.full").evaluate(
            "(img) => img.complete && img.naturalWidth > 0"
        ),
    )
    assert dialog.locator("button.false-alarm").is_visible()
    assert dialog.locator("button.confirmed").is_visible()
    # The clip plays: Chromium reads its H.264 MP4 (duration known once its metadata loads).
    clip = dialog.locator("video.clip")
    assert clip.is_visible()
    duration = clip.evaluate(
        """(video) => new Promise((resolve) => {
          video.onloadedmetadata = () => resolve(video.duration);
          video.onerror = () => resolve(-1);
          video.preload = 'metadata';
          video.load();
        })"""
    )
    assert duration > 0, duration
    # What the image models saw: the caption of the event's verdict.
    [event] = client.ws({"type": "secmon/events/list", "limit": 1})["events"]
    assert event["event_id"] == rows(desktop)[0]["event_id"]
    assert event["caption"], event["enrichers"]
    assert dialog.locator(".caption").inner_text().strip() == event["caption"]
    desktop.screenshot("timeline-dialog")
    # The feedback buttons call secmon.feedback where it exists; without it they say so.
    services = client.request("GET", "/api/services")
    if any(s["domain"] == "secmon" and "feedback" in s["services"] for s in services):
        dialog.locator("button.false-alarm").click()
        wait_for(
            "the feedback to be acknowledged",
            lambda: "false alarm" in dialog.locator(".status").inner_text(),
        )
    else:
        assert dialog.locator("button.false-alarm").is_disabled()
        assert "not available" in dialog.locator(".status").inner_text()
    dialog.locator("button.close").click()
    dialog.wait_for(state="detached")

    # The unusual event's dialog: its zone, the badge and the line saying why.
    unusual_row.click()
    dialog.wait_for(state="visible")
    assert dialog.locator(".chip.zone").inner_text().strip() == "Whole view"
    assert dialog.locator(".chip.unusual").is_visible()
    assert f"anomaly {unusual['anomaly']:.2f}" in dialog.locator(".unusual-line").inner_text()
    dialog.locator("button.close").click()
    dialog.wait_for(state="detached")

    # A card configured with a zone lists only the events in it (the name in any case).
    in_zone = desktop.page.evaluate(_JS_ZONE_CARD, "whole VIEW")
    assert in_zone, in_zone
    assert unusual["event_id"] in in_zone
    zones_of = {e["event_id"]: e["zones"] for e in events(client)}
    assert all(zones_of.get(event_id) == ["Whole view"] for event_id in in_zone), zones_of
    assert desktop.page.evaluate(_JS_ZONE_CARD, "Nowhere") == []

    # The visual editor lists the cameras to choose from.
    editor_cameras = desktop.page.evaluate(JS_EDITOR_CAMERAS, "secmon-timeline-card")
    assert "Front Door" in editor_cameras

    phone = open_dashboard("phone", PHONE)
    phone.open(path)
    wait_for(
        "the card's events on a phone",
        lambda: loaded_rows(phone),
    )
    width = phone.page.locator("secmon-timeline-card ha-card").evaluate(
        "(card) => card.getBoundingClientRect().width"
    )
    assert width <= PHONE["width"]
    phone.screenshot("timeline")


def test_the_card_is_added_from_the_dashboard_editor_without_a_resource(
    home: HomeAssistantProcess, open_dashboard: OpenDashboard
) -> None:
    """No dashboard resource is added by hand (none exists): the integration loads the cards,
    they register for the card picker, and a person adds the timeline card with the dashboard
    editor — picker, visual editor, Save — and the dashboard keeps it."""
    client = home.client
    assert client.ws({"type": "lovelace/resources"}) == []
    path = add_dashboard(client, "secmon-picker", [], title="Picker")
    desktop = open_dashboard("desktop", DESKTOP)
    desktop.open(f"{path}?edit=1")
    registered = wait_for(
        "the cards registered for the card picker",
        lambda: desktop.page.evaluate("() => (window.customCards || []).map((c) => c.type)"),
    )
    assert {"secmon-timeline-card", "secmon-zones-card"} <= set(registered), registered

    desktop.page.locator("hui-masonry-view ha-fab").click()
    picker = desktop.page.locator("hui-card-picker")
    picker.locator("search-input input").fill("secmon")
    card = picker.locator(
        ".card", has=desktop.page.locator(".card-header", has_text="secmon timeline")
    )
    card.wait_for(state="visible")
    desktop.screenshot("card-picker")
    card.locator(".overlay").click()
    editor = desktop.page.locator("hui-dialog-edit-card secmon-timeline-card-editor")
    editor.wait_for(state="attached")
    wait_for(
        "the visual editor's cameras",
        lambda: editor.locator("label.camera").count() > 0,
    )
    desktop.page.locator("hui-dialog-edit-card").get_by_role("button", name="Save").click()
    saved = wait_for(
        "the dashboard saved with the card",
        lambda: [
            c
            for view in client.ws({"type": "lovelace/config", "url_path": "secmon-picker"})["views"]
            for c in view.get("cards", [])
            if c.get("type") == "custom:secmon-timeline-card"
        ],
    )
    assert len(saved) == 1
    assert client.ws({"type": "lovelace/resources"}) == []
