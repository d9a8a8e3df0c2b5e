"""The cards (timeline, zone editor): their JavaScript modules served by the integration and
loaded by every frontend (no dashboard resource to add by hand)."""

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
ZONES_CARD_FILE = Path(__file__).parent / "frontend" / "secmon-zones-card.js"
ZONES_CARD_URL = "/secmon/secmon-zones-card.js"
_MODULES = ((CARD_URL, CARD_FILE), (ZONES_CARD_URL, ZONES_CARD_FILE))


def _version(path: Path = CARD_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _versioned_urls() -> list[str]:
    return [f"{url}?v={_version(path)}" for url, path in _MODULES]


async def async_register_card(hass: HomeAssistant) -> None:
    """Serve the cards and add them to the frontend's extra modules (versioned: a changed card
    is not served from a browser's cache)."""
    await hass.http.async_register_static_paths(
        [StaticPathConfig(url, str(path), cache_headers=False) for url, path in _MODULES]
    )
    urls = await hass.async_add_executor_job(_versioned_urls)
    if DATA_EXTRA_MODULE_URL in hass.data:
        for url in urls:
            add_extra_js_url(hass, url)
        return
    # Integrations set up from config entries may come before the frontend at start.
    LOGGER.debug("The frontend is not loaded yet; the cards are added once it is")

    @callback
    def _on_loaded(event: Event[EventComponentLoaded]) -> None:
        if event.data["component"] == "frontend" and DATA_EXTRA_MODULE_URL in hass.data:
            for url in urls:
                add_extra_js_url(hass, url)
            remove()

    remove = hass.bus.async_listen(EVENT_COMPONENT_LOADED, _on_loaded)
