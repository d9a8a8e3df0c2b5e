"""Every repair issue secmon raises, each with its create and its clear.

Issue ids carry the entry id: two sidecars have their own issues. An issue is cleared when its cause
goes away (the sidecar is back, the queue drained) and when the entry is removed. None is fixable
from the UI; HA's repairs platform still asks this module for a fix flow, which only confirms.
"""

from __future__ import annotations

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import (
    DOMAIN,
    ISSUE_DATABASE_DAMAGED,
    ISSUE_DATABASE_RESTORED,
    ISSUE_MEDIA_CAP,
    ISSUE_QUEUE_OVERFLOW,
    ISSUE_RANDOM_MODELS,
    ISSUE_SIDECAR_UNREACHABLE,
)

ISSUES = (
    ISSUE_SIDECAR_UNREACHABLE,
    ISSUE_QUEUE_OVERFLOW,
    ISSUE_RANDOM_MODELS,
    ISSUE_DATABASE_DAMAGED,
    ISSUE_DATABASE_RESTORED,
    ISSUE_MEDIA_CAP,
)


def issue_id(issue: str, entry_id: str) -> str:
    """The issue registry id of one of ISSUES for one entry."""
    return f"{issue}_{entry_id}"


@callback
def async_create_sidecar_unreachable(hass: HomeAssistant, entry_id: str, address: str) -> None:
    """The sidecar has been away for a while (frames are kept meanwhile)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(ISSUE_SIDECAR_UNREACHABLE, entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_SIDECAR_UNREACHABLE,
        translation_placeholders={"address": address},
    )


@callback
def async_clear_sidecar_unreachable(hass: HomeAssistant, entry_id: str) -> None:
    """The sidecar is back (or the entry stopped)."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(ISSUE_SIDECAR_UNREACHABLE, entry_id))


@callback
def async_create_queue_overflow(
    hass: HomeAssistant, entry_id: str, dropped: int, max_frames: int
) -> None:
    """The frame queue was full and its oldest unsent frames were dropped."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(ISSUE_QUEUE_OVERFLOW, entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_QUEUE_OVERFLOW,
        translation_placeholders={"dropped": str(dropped), "max_frames": str(max_frames)},
    )


@callback
def async_create_media_cap(
    hass: HomeAssistant, entry_id: str, removed: int, cap_gb: float, keep_days: float
) -> None:
    """The disk cap removed the media of events younger than their retention."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(ISSUE_MEDIA_CAP, entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_MEDIA_CAP,
        translation_placeholders={
            "removed": str(removed),
            "cap_gb": f"{cap_gb:g}",
            "keep_days": f"{keep_days:g}",
        },
    )


@callback
def async_clear_media_cap(hass: HomeAssistant, entry_id: str) -> None:
    """A retention run removed nothing early."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(ISSUE_MEDIA_CAP, entry_id))


@callback
def async_clear_queue_overflow(hass: HomeAssistant, entry_id: str) -> None:
    """The queue drained: the sidecar keeps up again."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(ISSUE_QUEUE_OVERFLOW, entry_id))


@callback
def async_create_random_models(hass: HomeAssistant, entry_id: str, models: list[str]) -> None:
    """The sidecar runs random-weight models: its detections and verdicts are meaningless."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(ISSUE_RANDOM_MODELS, entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_RANDOM_MODELS,
        translation_placeholders={"models": ", ".join(models)},
    )


@callback
def async_create_database_damaged(
    hass: HomeAssistant, entry_id: str, moved_to: str, error: str, pending: int | None
) -> None:
    """The database could not be read at start-up: it was moved aside and secmon started clean.
    Stays until the user dismisses it (nothing clears the loss)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(ISSUE_DATABASE_DAMAGED, entry_id),
        is_fixable=True,
        is_persistent=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_DATABASE_DAMAGED,
        translation_placeholders={
            "moved_to": moved_to,
            "error": error,
            "pending": str(pending) if pending is not None else "an unknown number of",
        },
    )


@callback
def async_clear_random_models(hass: HomeAssistant, entry_id: str) -> None:
    """The sidecar runs real models."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(ISSUE_RANDOM_MODELS, entry_id))


@callback
def async_create_database_restored(hass: HomeAssistant, entry_id: str, path: str) -> None:
    """The database file was deleted while running and was written back from the open copy."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(ISSUE_DATABASE_RESTORED, entry_id),
        is_fixable=True,
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_DATABASE_RESTORED,
        translation_placeholders={"path": path},
    )


@callback
def async_clear_all(hass: HomeAssistant, entry_id: str) -> None:
    """The entry is removed: none of its issues applies any more."""
    for issue in ISSUES:
        ir.async_delete_issue(hass, DOMAIN, issue_id(issue, entry_id))


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The repairs platform's hook: secmon's issues clear themselves, so confirming is all."""
    return ConfirmRepairFlow()
