"""Config flow: the sidecar's address, the camera root, an optional token; options; reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
    TimeSelector,
)

from .const import (
    CAMERA_NOTE_MAX_CHARS,
    CLASS_CHOICES,
    CONF_ADDRESS,
    CONF_ALERT_LABELS,
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_CAMERA_ROOT,
    CONF_CLASSES,
    CONF_CLEAR_DELAY,
    CONF_CLIP_MAX_FRAMES,
    CONF_CLIP_RATE,
    CONF_DEBOUNCE,
    CONF_DELETE_UPLOADS_DAYS,
    CONF_ENRICHERS,
    CONF_FAST_PATH_CONFIDENCE,
    CONF_FAST_PATH_LABELS,
    CONF_KEEP_CLIPS_DAYS,
    CONF_KEEP_EVENTS_DAYS,
    CONF_KNOWN_PLATES,
    CONF_MEDIA_CAP_GB,
    CONF_POLLING,
    CONF_QUEUE_BOUND,
    CONF_QUIET_END,
    CONF_QUIET_START,
    CONF_THRESHOLD,
    CONF_TOKEN,
    DEFAULT_ALERT_LABELS,
    DEFAULT_BATCH_IDLE,
    DEFAULT_BATCH_WINDOW,
    DEFAULT_CLASSES,
    DEFAULT_CLEAR_DELAY,
    DEFAULT_CLIP_MAX_FRAMES,
    DEFAULT_CLIP_RATE,
    DEFAULT_DEBOUNCE,
    DEFAULT_DELETE_UPLOADS_DAYS,
    DEFAULT_FAST_PATH_CONFIDENCE,
    DEFAULT_FAST_PATH_LABELS,
    DEFAULT_KEEP_CLIPS_DAYS,
    DEFAULT_KEEP_EVENTS_DAYS,
    DEFAULT_MEDIA_CAP_GB,
    DEFAULT_POLLING,
    DEFAULT_QUEUE_BOUND,
    DEFAULT_THRESHOLD,
    DOMAIN,
    ENRICHERS,
    LOGGER,
)
from .context.context_options import context_options, context_schema, note_errors
from .context.plates import KnownPlatesError, format_known_plates, parse_known_plates
from .link.client import (
    InvalidAddressError,
    SidecarAddress,
    SidecarAuthError,
    SidecarNotReadyError,
    SidecarUnavailableError,
    async_check_sidecar,
    parse_address,
)


def _connection_schema(defaults: dict[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(
                CONF_ADDRESS, default=defaults.get(CONF_ADDRESS, vol.UNDEFINED)
            ): TextSelector(TextSelectorConfig(autocomplete="off")),
            vol.Required(
                CONF_CAMERA_ROOT, default=defaults.get(CONF_CAMERA_ROOT, vol.UNDEFINED)
            ): TextSelector(),
            vol.Optional(
                CONF_TOKEN,
                description={"suggested_value": defaults.get(CONF_TOKEN)},
            ): TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD)),
        }
    )


def _box(low: float, high: float, step: float = 1, unit: str | None = None) -> NumberSelector:
    """A number typed into a box, with its unit when it has one."""
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _seconds_selector(low: float, high: float, step: float = 1) -> NumberSelector:
    """A box for a duration in seconds."""
    return _box(low, high, step, "s")


def _labels_selector() -> SelectSelector:
    """A pick of detection labels (COCO classes, or typed in)."""
    return SelectSelector(
        SelectSelectorConfig(
            options=CLASS_CHOICES,
            multiple=True,
            custom_value=True,
            mode=SelectSelectorMode.DROPDOWN,
            translation_key=CONF_CLASSES,
        )
    )


def _days(low: int, high: int) -> NumberSelector:
    """A box for a number of days."""
    return _box(low, high, 1, "d")


def unique_id_for(address: SidecarAddress) -> str:
    """One entry per sidecar address."""
    return address.target


async def async_validate_connection(
    hass: HomeAssistant, user_input: dict[str, Any]
) -> tuple[dict[str, str], SidecarAddress | None]:
    """Check address, folder and sidecar; returns (errors by field, parsed address)."""
    errors: dict[str, str] = {}
    try:
        address: SidecarAddress | None = parse_address(user_input[CONF_ADDRESS])
    except InvalidAddressError:
        address = None
        errors[CONF_ADDRESS] = "invalid_address"

    root = Path(user_input[CONF_CAMERA_ROOT])
    if root.is_absolute():
        # Stored resolved (symlinks included): the watcher and the allow-list see one path.
        root = await hass.async_add_executor_job(root.resolve)
        user_input[CONF_CAMERA_ROOT] = str(root)
    if not root.is_absolute() or not await hass.async_add_executor_job(root.is_dir):
        errors[CONF_CAMERA_ROOT] = "folder_not_found"
    elif not await hass.async_add_executor_job(hass.config.is_allowed_path, str(root)):
        errors[CONF_CAMERA_ROOT] = "folder_not_allowed"

    if address is not None:
        try:
            await async_check_sidecar(address, user_input.get(CONF_TOKEN) or None)
        except SidecarUnavailableError as err:
            LOGGER.debug("Sidecar at %s unreachable: %s", address.target, err)
            errors[CONF_ADDRESS] = "cannot_connect"
        except SidecarNotReadyError:
            errors[CONF_ADDRESS] = "not_ready"
        except SidecarAuthError:
            errors[CONF_TOKEN] = "invalid_auth"
        except Exception:
            LOGGER.exception("Unexpected error while checking the sidecar")
            errors["base"] = "unknown"
    return errors, address


def _clean(user_input: dict[str, Any], address: SidecarAddress) -> dict[str, Any]:
    data = {
        CONF_ADDRESS: address.target,
        CONF_CAMERA_ROOT: str(Path(user_input[CONF_CAMERA_ROOT])),
    }
    if token := user_input.get(CONF_TOKEN):
        data[CONF_TOKEN] = token
    return data


class SecmonConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a sidecar and a camera root."""

    # Entries are migrated by __init__.async_migrate_entry.
    VERSION = 1
    MINOR_VERSION = 2

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the sidecar and the camera root."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors, address = await async_validate_connection(self.hass, user_input)
            if not errors and address is not None:
                await self.async_set_unique_id(unique_id_for(address))
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=f"Sidecar {address.target}", data=_clean(user_input, address)
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _connection_schema({}), user_input or {}
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the address, folder or token of an existing entry."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors, address = await async_validate_connection(self.hass, user_input)
            if not errors and address is not None:
                new_id = unique_id_for(address)
                if new_id != entry.unique_id:
                    await self.async_set_unique_id(new_id)
                    self._abort_if_unique_id_configured()
                return self.async_update_reload_and_abort(
                    entry,
                    unique_id=new_id,
                    title=f"Sidecar {address.target}",
                    data=_clean(user_input, address),
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_connection_schema({**entry.data, **(user_input or {})}),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The sidecar rejected the entry's token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the token the sidecar accepts (empty: the sidecar needs none)."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = user_input.get(CONF_TOKEN) or None
            try:
                await async_check_sidecar(parse_address(entry.data[CONF_ADDRESS]), token)
            except SidecarAuthError:
                errors[CONF_TOKEN] = "invalid_auth"
            except SidecarUnavailableError:
                errors["base"] = "cannot_connect"
            except SidecarNotReadyError:
                errors["base"] = "not_ready"
            else:
                data = {k: v for k, v in entry.data.items() if k != CONF_TOKEN}
                if token:
                    data[CONF_TOKEN] = token
                return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_TOKEN): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    )
                }
            ),
            description_placeholders={"address": entry.data[CONF_ADDRESS]},
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SecmonOptionsFlow:
        """Tuning options."""
        return SecmonOptionsFlow()


class SecmonOptionsFlow(OptionsFlow):
    """Threshold, debounce, polling, classes, clear delay, queue bound, event batching; then the
    context the AI may use (the "context" step)."""

    _tuning: dict[str, Any]

    def _cameras(self) -> dict[str, str]:
        """Camera id -> name of the running entry (none while it is not loaded)."""
        runtime = getattr(self.config_entry, "runtime_data", None)
        cameras = getattr(runtime, "cameras", {}) or {}
        return {camera_id: camera.name for camera_id, camera in cameras.items()}

    async def async_step_context(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Alarm panel, who is home, vacation switch, a note per camera."""
        cameras = self._cameras()
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := note_errors(user_input, cameras)):
            return self.async_create_entry(
                data={**self._tuning, **context_options(user_input, cameras)}
            )
        schema = context_schema(self.config_entry.options, cameras)
        return self.async_show_form(
            step_id="context",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders={"max_chars": str(CAMERA_NOTE_MAX_CHARS)},
        )

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {"line": ""}
        if user_input is not None:
            user_input[CONF_QUEUE_BOUND] = int(user_input[CONF_QUEUE_BOUND])
            try:
                plates = parse_known_plates(str(user_input.get(CONF_KNOWN_PLATES) or ""))
            except KnownPlatesError as err:
                errors[CONF_KNOWN_PLATES] = err.reason
                placeholders["line"] = err.line
            if CONF_CLIP_MAX_FRAMES in user_input:
                user_input[CONF_CLIP_MAX_FRAMES] = int(user_input[CONF_CLIP_MAX_FRAMES])
            if user_input[CONF_BATCH_IDLE] > user_input[CONF_BATCH_WINDOW]:
                errors[CONF_BATCH_IDLE] = "idle_above_window"
            if not errors:
                self._tuning = {**user_input, CONF_KNOWN_PLATES: plates}
                return await self.async_step_context()
        options = self.config_entry.options
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_THRESHOLD, default=options.get(CONF_THRESHOLD, DEFAULT_THRESHOLD)
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=0.01, max=0.95, step=0.01, mode=NumberSelectorMode.SLIDER
                    )
                ),
                vol.Required(
                    CONF_DEBOUNCE, default=options.get(CONF_DEBOUNCE, DEFAULT_DEBOUNCE)
                ): _seconds_selector(0.1, 30, 0.1),
                vol.Required(
                    CONF_POLLING, default=options.get(CONF_POLLING, DEFAULT_POLLING)
                ): BooleanSelector(),
                # Optional, with the stored value only suggested: emptied, it stays empty.
                vol.Optional(
                    CONF_CLASSES,
                    default=[],
                    description={"suggested_value": options.get(CONF_CLASSES, DEFAULT_CLASSES)},
                ): _labels_selector(),
                vol.Required(
                    CONF_CLEAR_DELAY, default=options.get(CONF_CLEAR_DELAY, DEFAULT_CLEAR_DELAY)
                ): _seconds_selector(1, 3600),
                vol.Required(
                    CONF_QUEUE_BOUND, default=options.get(CONF_QUEUE_BOUND, DEFAULT_QUEUE_BOUND)
                ): _box(10, 100_000),
                vol.Required(
                    CONF_BATCH_WINDOW, default=options.get(CONF_BATCH_WINDOW, DEFAULT_BATCH_WINDOW)
                ): _seconds_selector(5, 3600),
                vol.Required(
                    CONF_BATCH_IDLE, default=options.get(CONF_BATCH_IDLE, DEFAULT_BATCH_IDLE)
                ): _seconds_selector(1, 600),
                vol.Optional(
                    CONF_FAST_PATH_LABELS,
                    default=[],
                    description={
                        "suggested_value": options.get(
                            CONF_FAST_PATH_LABELS, DEFAULT_FAST_PATH_LABELS
                        )
                    },
                ): _labels_selector(),
                vol.Required(
                    CONF_FAST_PATH_CONFIDENCE,
                    default=options.get(CONF_FAST_PATH_CONFIDENCE, DEFAULT_FAST_PATH_CONFIDENCE),
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=0.05, max=1.0, step=0.01, mode=NumberSelectorMode.SLIDER
                    )
                ),
                vol.Required(
                    CONF_ALERT_LABELS,
                    default=options.get(CONF_ALERT_LABELS, DEFAULT_ALERT_LABELS),
                ): _labels_selector(),
                vol.Optional(
                    CONF_QUIET_START,
                    description={"suggested_value": options.get(CONF_QUIET_START)},
                ): TimeSelector(),
                vol.Optional(
                    CONF_QUIET_END,
                    description={"suggested_value": options.get(CONF_QUIET_END)},
                ): TimeSelector(),
                vol.Optional(
                    CONF_ENRICHERS, default=list(options.get(CONF_ENRICHERS, ENRICHERS))
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=list(ENRICHERS),
                        multiple=True,
                        mode=SelectSelectorMode.LIST,
                        translation_key=CONF_ENRICHERS,
                    )
                ),
                vol.Optional(
                    CONF_KNOWN_PLATES,
                    description={
                        "suggested_value": format_known_plates(
                            dict(options.get(CONF_KNOWN_PLATES) or {})
                        )
                    },
                ): TextSelector(TextSelectorConfig(multiline=True)),
                vol.Required(
                    CONF_CLIP_RATE, default=options.get(CONF_CLIP_RATE, DEFAULT_CLIP_RATE)
                ): _box(0.1, 10, 0.1, "frames/s"),
                vol.Required(
                    CONF_CLIP_MAX_FRAMES,
                    default=options.get(CONF_CLIP_MAX_FRAMES, DEFAULT_CLIP_MAX_FRAMES),
                ): _box(1, 200),
                vol.Required(
                    CONF_KEEP_EVENTS_DAYS,
                    default=options.get(CONF_KEEP_EVENTS_DAYS, DEFAULT_KEEP_EVENTS_DAYS),
                ): _days(1, 365),
                vol.Required(
                    CONF_KEEP_CLIPS_DAYS,
                    default=options.get(CONF_KEEP_CLIPS_DAYS, DEFAULT_KEEP_CLIPS_DAYS),
                ): _days(1, 365),
                vol.Required(
                    CONF_MEDIA_CAP_GB,
                    default=options.get(CONF_MEDIA_CAP_GB, DEFAULT_MEDIA_CAP_GB),
                ): _box(0.1, 10_000, 0.1, "GB"),
                vol.Required(
                    CONF_DELETE_UPLOADS_DAYS,
                    default=options.get(CONF_DELETE_UPLOADS_DAYS, DEFAULT_DELETE_UPLOADS_DAYS),
                ): _days(0, 365),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders=placeholders,
        )
