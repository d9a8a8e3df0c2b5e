"""secmon: AI security monitoring of camera upload folders, with a detection sidecar over gRPC."""

from __future__ import annotations

from pathlib import Path

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.typing import ConfigType

from . import repairs
from .api.assist import async_setup_assist
from .api.event_api import async_setup_event_api
from .api.event_media_api import async_setup_event_media_api
from .api.zones_api import async_setup_zones_api
from .card import async_register_card
from .const import CONF_CAMERA_ROOT, DOMAIN, LOGGER
from .coordinator import SecmonConfigEntry, SecmonCoordinator
from .entity import sidecar_device_identifier, sidecar_device_info
from .link.client import (
    SidecarAuthError,
    SidecarNotReadyError,
    SidecarUnavailableError,
    async_check_sidecar,
)
from .services import async_setup_services
from .settings import database_path
from .storage.database import SchemaVersionError
from .verdicts.notifications import async_setup_notifications

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.CALENDAR,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's services, snapshot view, notification actions, the Assist
    API, the event API and the timeline card."""
    async_setup_services(hass)
    async_setup_notifications(hass)
    async_setup_assist(hass)
    async_setup_event_api(hass)
    async_setup_event_media_api(hass)
    async_setup_zones_api(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: SecmonConfigEntry) -> bool:
    """Set up one sidecar + camera root."""
    coordinator = SecmonCoordinator(hass, entry)
    root = coordinator.settings.camera_root
    if not await hass.async_add_executor_job(root.is_dir):
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="camera_root_missing",
            translation_placeholders={"path": str(root)},
        )
    try:
        await async_check_sidecar(coordinator.settings.address, coordinator.settings.token)
    except SidecarAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="sidecar_auth_failed"
        ) from err
    except (SidecarUnavailableError, SidecarNotReadyError):
        # Set up all the same: frames are queued and sent once the sidecar is there.
        pass
    try:
        await coordinator.async_load()
    except SchemaVersionError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="database_too_new",
            translation_placeholders={
                "path": str(err.path),
                "found": str(err.found),
                "known": str(err.known),
            },
        ) from err
    entry.runtime_data = coordinator
    # Camera devices name the sidecar as their via_device: it must exist first.
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **sidecar_device_info(entry.entry_id)
    )
    try:
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
        await coordinator.async_start()
    except BaseException:
        await coordinator.async_stop()
        raise

    async def _async_on_stop(_event: Event) -> None:
        await coordinator.async_stop()

    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_on_stop))
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: SecmonConfigEntry) -> bool:
    """Bring an entry written by an earlier version up to the config flow's version.

    1.1 -> 1.2: the camera root is stored resolved (symlinks included), as the config flow now
    stores it. A major version above ours was written by a newer secmon: refused.
    """
    if entry.version > 1:
        return False
    if entry.minor_version < 2:
        root = Path(entry.data[CONF_CAMERA_ROOT])
        if root.is_absolute():
            root = await hass.async_add_executor_job(root.resolve)
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_CAMERA_ROOT: str(root)}, minor_version=2
        )
        LOGGER.debug("Migrated entry %s to version 1.2", entry.entry_id)
    return True


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: SecmonConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user remove a camera's device whose folder is gone; never the sidecar's."""
    entry_id = entry.entry_id
    if sidecar_device_identifier(entry_id) in device.identifiers:
        return False
    prefix = f"{entry_id}_"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            return await entry.runtime_data.async_remove_camera(identifier.removeprefix(prefix))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: SecmonConfigEntry) -> bool:
    """Stop everything the entry runs."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_stop()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: SecmonConfigEntry) -> None:
    """Delete the entry's database and issues."""
    path = database_path(hass, entry.entry_id)

    def _remove() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    await hass.async_add_executor_job(_remove)
    repairs.async_clear_all(hass, entry.entry_id)


async def _async_update_listener(hass: HomeAssistant, entry: SecmonConfigEntry) -> None:
    """Options changed: reload so every part picks them up."""
    await hass.config_entries.async_reload(entry.entry_id)
