"""The timeline card: its JavaScript module served by the integration and loaded by every
frontend (no dashboard resource to add by hand)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL, add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.const import EVENT_COMPONENT_LOADED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import EventComponentLoaded

from .const import LOGGER

CARD_FILE = Path(__file__).parent / "frontend" / "secmon-timeline-card.js"
CARD_URL = "/secmon/secmon-timeline-card.js"


def _version() -> str:
    return hashlib.sha256(CARD_FILE.read_bytes()).hexdigest()[:12]


async def async_register_card(hass: HomeAssistant) -> None:
    """Serve the card and add it to the frontend's extra modules (versioned: a changed card is
    not served from a browser's cache)."""
    await hass.http.async_register_static_paths(
        [StaticPathConfig(CARD_URL, str(CARD_FILE), cache_headers=False)]
    )
    url = f"{CARD_URL}?v={await hass.async_add_executor_job(_version)}"
    if DATA_EXTRA_MODULE_URL in hass.data:
        add_extra_js_url(hass, url)
        return
    # Integrations set up from config entries may come before the frontend at start.
    LOGGER.debug("The frontend is not loaded yet; the timeline card is added once it is")

    @callback
    def _on_loaded(event: Event[EventComponentLoaded]) -> None:
        if event.data["component"] == "frontend" and DATA_EXTRA_MODULE_URL in hass.data:
            add_extra_js_url(hass, url)
            remove()

    remove = hass.bus.async_listen(EVENT_COMPONENT_LOADED, _on_loaded)
