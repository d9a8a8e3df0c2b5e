"""Per camera: objects in the latest frame, its time, risk of the current verdict, the scene
description of the latest verdict that has one.

Per sidecar: latency, counts, queue depth, and the LLM's model, batches and verdicts; the GPU's
figures where it has one; the enrichment model zoo's memory and counters where enrichment is on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    Platform,
    UnitOfInformation,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, RISK_LEVELS, SIDECAR_KEY
from .coordinator import CameraState, SecmonConfigEntry, SecmonCoordinator
from .entity import (
    SecmonCameraEntity,
    SecmonSidecarEntity,
    async_add_camera_entities,
    sidecar_unique_id,
)
from .link.proto import secmon_pb2
from .verdicts.enrichment import clip, enrichment_attributes

PARALLEL_UPDATES = 0

StateType: TypeAlias = str | int | float | datetime | None

# The risk level of a camera that has had no security event yet.
NO_EVENT = "none"


def _risk_attributes(camera: CameraState) -> Mapping[str, Any] | None:
    """Which verdict the risk sensors show (the latest one, also when it announced nothing)."""
    if camera.risk is None:
        return None
    record = camera.risk
    return {
        "event_id": record.event_id,
        "verdict_id": record.verdict_id,
        "summary": record.message.summary,
        "fast_path": record.fast_path,
        "fallback": record.fallback,
        "anomaly": round(float(record.message.anomaly), 2),
        "zones": record.zones,
    }


# HA refuses a state longer than this; the whole caption is an attribute.
MAX_STATE_LENGTH = 255


def _description(camera: CameraState) -> str:
    # Empty, not unknown, until a verdict brings a caption: with no captioner that is forever,
    # and a dashboard row reading "Unknown" for good looks broken.
    if camera.described is None:
        return ""
    return clip(camera.described.message.caption, MAX_STATE_LENGTH)


def _description_attributes(camera: CameraState) -> Mapping[str, Any] | None:
    """The whole caption and the verdict it came from, with the objects' identities and plates."""
    if camera.described is None:
        return None
    record = camera.described
    enrichment = enrichment_attributes(record.message)
    return {
        "caption": enrichment["caption"],
        "event_id": record.event_id,
        "verdict_id": record.verdict_id,
        "described_at": record.created_at.isoformat() if record.created_at else None,
        "scene": enrichment["scene"],
        "identities": enrichment["identities"],
        "plates": enrichment["plates"],
    }


def _status_value(
    read: Callable[[secmon_pb2.SidecarStatus], StateType],
) -> Callable[[SecmonCoordinator], StateType]:
    """A value from the sidecar's last reported status (None before the first one)."""

    def value(coordinator: SecmonCoordinator) -> StateType:
        status = coordinator.sidecar.status
        return read(status) if status is not None else None

    return value


def _zoo(
    read: Callable[[secmon_pb2.EnrichmentStatus], StateType],
) -> Callable[[SecmonCoordinator], StateType]:
    """A figure of the sidecar's enrichment model zoo (None without enrichment)."""

    def value(coordinator: SecmonCoordinator) -> StateType:
        status = coordinator.sidecar.status
        if status is None or not status.HasField("enrichment"):
            return None
        return read(status.enrichment)

    return value


def _zoo_models(coordinator: SecmonCoordinator) -> Mapping[str, Any] | None:
    """The zoo's models: which are loaded, with their measured memory."""
    status = coordinator.sidecar.status
    if status is None or not status.HasField("enrichment"):
        return None
    zoo = status.enrichment
    return {
        "loaded": [model.name for model in zoo.models if model.loaded],
        "disabled": {model.name: model.disabled for model in zoo.models if model.disabled},
        "high_water_bytes": zoo.high_water_bytes,
        "margin_bytes": zoo.margin_bytes,
    }


def _first_gpu(
    read: Callable[[secmon_pb2.GpuStatus], StateType],
) -> Callable[[SecmonCoordinator], StateType]:
    """A value of the sidecar's first GPU (None without a GPU or before the first status)."""

    def value(coordinator: SecmonCoordinator) -> StateType:
        status = coordinator.sidecar.status
        return read(status.gpus[0]) if status is not None and status.gpus else None

    return value


@dataclass(frozen=True, kw_only=True)
class CameraSensorDescription(SensorEntityDescription):
    """A sensor of a camera."""

    value_fn: Callable[[CameraState], StateType]
    attributes_fn: Callable[[CameraState], Mapping[str, Any] | None] = lambda _camera: None
    # Detection sensors go unavailable while the sidecar is away.
    needs_sidecar: bool = True


@dataclass(frozen=True, kw_only=True)
class SidecarSensorDescription(SensorEntityDescription):
    """A sensor of the sidecar."""

    value_fn: Callable[[SecmonCoordinator], StateType]
    attributes_fn: Callable[[SecmonCoordinator], Mapping[str, Any] | None] = lambda _coordinator: (
        None
    )
    # Unavailable while the sidecar is away; False for what this side counts itself.
    needs_sidecar: bool = True


CAMERA_SENSORS: tuple[CameraSensorDescription, ...] = (
    CameraSensorDescription(
        key="objects",
        translation_key="objects",
        state_class=SensorStateClass.MEASUREMENT,
        # Nothing seen before the first frame.
        value_fn=lambda camera: camera.object_count,
        attributes_fn=lambda camera: dict(sorted(camera.label_counts.items())),
    ),
    CameraSensorDescription(
        key="last_frame",
        translation_key="last_frame",
        device_class=SensorDeviceClass.TIMESTAMP,
        # Changes with every frame, and HA writes a logbook line for every change of a timestamp
        # sensor: off unless wanted. The camera entity carries the time as `last_frame`.
        entity_registry_enabled_default=False,
        value_fn=lambda camera: camera.captured_at,
        needs_sidecar=False,
    ),
    # The risk sensors show the stored current verdict: restored at start, kept while the
    # sidecar is away; before a camera's first verdict, no risk (score 0, level "none").
    CameraSensorDescription(
        key="risk_score",
        translation_key="risk_score",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda camera: camera.risk.risk_score if camera.risk else 0,
        attributes_fn=_risk_attributes,
        needs_sidecar=False,
    ),
    CameraSensorDescription(
        key="risk_level",
        translation_key="risk_level",
        device_class=SensorDeviceClass.ENUM,
        options=[NO_EVENT, *RISK_LEVELS],
        value_fn=lambda camera: camera.risk.risk_level if camera.risk else NO_EVENT,
        # The owner's judgements of the camera's events, once there are any.
        attributes_fn=lambda camera: (
            {"feedback": dict(sorted(camera.feedback_counts.items()))}
            if camera.feedback_counts
            else None
        ),
        needs_sidecar=False,
    ),
    # The stored caption, like the risk: kept while the sidecar is away.
    CameraSensorDescription(
        key="description",
        translation_key="description",
        value_fn=_description,
        attributes_fn=_description_attributes,
        needs_sidecar=False,
    ),
)

SIDECAR_SENSORS: tuple[SidecarSensorDescription, ...] = (
    SidecarSensorDescription(
        key="llm_model",
        translation_key="llm_model",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_status_value(lambda status: status.llm_model or None),
    ),
    SidecarSensorDescription(
        key="verdicts_produced",
        translation_key="verdicts_produced",
        # Counted by this side, like frames: cumulative across sidecar restarts.
        needs_sidecar=False,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda coordinator: coordinator.counters["verdicts_received"],
    ),
    SidecarSensorDescription(
        key="fallback_verdicts",
        translation_key="fallback_verdicts",
        needs_sidecar=False,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda coordinator: coordinator.counters["fallback_verdicts"],
    ),
    SidecarSensorDescription(
        key="open_batches",
        translation_key="open_batches",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_status_value(lambda status: status.open_batches),
    ),
    SidecarSensorDescription(
        key="pending_verdicts",
        translation_key="pending_verdicts",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_status_value(lambda status: status.pending_verdicts),
    ),
    SidecarSensorDescription(
        key="media_storage",
        translation_key="media_storage",
        needs_sidecar=False,
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda coordinator: coordinator.media_bytes,
    ),
    SidecarSensorDescription(
        key="inference_latency",
        translation_key="inference_latency",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda coordinator: coordinator.sidecar.inference_ms,
    ),
    SidecarSensorDescription(
        key="frames_processed",
        translation_key="frames_processed",
        needs_sidecar=False,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda coordinator: coordinator.counters["frames_processed"],
    ),
    SidecarSensorDescription(
        key="queue_depth",
        translation_key="queue_depth",
        needs_sidecar=False,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda coordinator: coordinator.queue_depth,
    ),
    SidecarSensorDescription(
        key="frames_skipped",
        translation_key="frames_skipped",
        needs_sidecar=False,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda coordinator: coordinator.counters["frames_skipped"],
    ),
    SidecarSensorDescription(
        key="files_refused",
        translation_key="files_refused",
        needs_sidecar=False,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda coordinator: coordinator.files_refused,
    ),
)

# Created once the sidecar reports a GPU; a CPU sidecar has none.
GPU_SENSORS: tuple[SidecarSensorDescription, ...] = (
    SidecarSensorDescription(
        key="gpu_utilization",
        translation_key="gpu_utilization",
        entity_registry_enabled_default=False,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_first_gpu(lambda gpu: gpu.utilization_percent),
    ),
    SidecarSensorDescription(
        key="gpu_memory_used",
        translation_key="gpu_memory_used",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_first_gpu(lambda gpu: gpu.memory_used_bytes),
    ),
    SidecarSensorDescription(
        key="gpu_temperature",
        translation_key="gpu_temperature",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_first_gpu(lambda gpu: gpu.temperature_c),
    ),
)


def _zoo_memory(
    key: str, read: Callable[[secmon_pb2.EnrichmentStatus], int]
) -> SidecarSensorDescription:
    return SidecarSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        # The budget is 0 until the sidecar measured it (its first batch).
        value_fn=_zoo(lambda zoo: read(zoo) if zoo.budget_bytes else None),
    )


def _zoo_count(
    key: str, read: Callable[[secmon_pb2.EnrichmentStatus], int]
) -> SidecarSensorDescription:
    return SidecarSensorDescription(
        key=key,
        translation_key=key,
        # Counted since the sidecar started: a restart is a reset.
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_zoo(read),
    )


# Created once the sidecar reports an enrichment model zoo; a sidecar with enrichment off has none.
ZOO_SENSORS: tuple[SidecarSensorDescription, ...] = (
    _zoo_memory("enrichment_memory_budget", lambda zoo: zoo.budget_bytes),
    _zoo_memory("enrichment_memory_in_use", lambda zoo: zoo.in_use_bytes),
    SidecarSensorDescription(
        key="enrichment_models_loaded",
        translation_key="enrichment_models_loaded",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_zoo(lambda zoo: sum(1 for model in zoo.models if model.loaded)),
        attributes_fn=_zoo_models,
    ),
    _zoo_count("enrichment_model_loads", lambda zoo: zoo.loads),
    _zoo_count("enrichment_model_evictions", lambda zoo: zoo.evictions),
    _zoo_count("enrichments_skipped", lambda zoo: zoo.skips),
    _zoo_count("enrichment_out_of_memory_errors", lambda zoo: zoo.out_of_memory),
)


def _has_gpu(status: secmon_pb2.SidecarStatus) -> bool:
    return bool(status.gpus)


def _has_zoo(status: secmon_pb2.SidecarStatus) -> bool:
    return bool(status.HasField("enrichment"))


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Sidecar sensors now, GPU and model zoo sensors once the sidecar reports a GPU or
    enrichment; camera sensors for every camera, also those found later."""
    async_add_entities(SidecarSensor(entry, d) for d in SIDECAR_SENSORS)

    for descriptions, present in ((GPU_SENSORS, _has_gpu), (ZOO_SENSORS, _has_zoo)):
        _add_when_reported(hass, entry, async_add_entities, descriptions, present)

    async_add_camera_entities(
        entry,
        async_add_entities,
        lambda camera: [CameraSensor(entry, camera, d) for d in CAMERA_SENSORS],
    )


def _add_when_reported(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    descriptions: tuple[SidecarSensorDescription, ...],
    present: Callable[[secmon_pb2.SidecarStatus], bool],
) -> None:
    """Sensors of something the sidecar may lack (a GPU, enrichment): added with the first status
    that reports it; a status without it removes those an earlier run registered (they would stay
    unknown)."""
    coordinator = entry.runtime_data
    added = False

    @callback
    def add() -> None:
        nonlocal added
        status = coordinator.sidecar.status
        if added or status is None:
            return
        if present(status):
            added = True
            async_add_entities(SidecarSensor(entry, d) for d in descriptions)
            return
        registry = er.async_get(hass)
        for description in descriptions:
            unique_id = sidecar_unique_id(entry.entry_id, description.key)
            if entity_id := registry.async_get_entity_id(Platform.SENSOR, DOMAIN, unique_id):
                registry.async_remove(entity_id)

    add()
    entry.async_on_unload(coordinator.async_add_listener(SIDECAR_KEY, add))


class CameraSensor(SecmonCameraEntity, SensorEntity):
    """A sensor of a camera's latest frame."""

    entity_description: CameraSensorDescription

    def __init__(
        self, entry: SecmonConfigEntry, camera: CameraState, description: CameraSensorDescription
    ) -> None:
        """One sensor of one camera."""
        super().__init__(entry.runtime_data, camera, description.key)
        self.entity_description = description
        self._needs_sidecar = description.needs_sidecar

    @property
    def native_value(self) -> StateType:
        """From the camera's state."""
        return self.entity_description.value_fn(self.camera)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Per-label counts for the objects sensor; the verdict behind the risk score."""
        return self.entity_description.attributes_fn(self.camera)


class SidecarSensor(SecmonSidecarEntity, SensorEntity):
    """A sensor of the sidecar (and of our queue)."""

    entity_description: SidecarSensorDescription

    def __init__(self, entry: SecmonConfigEntry, description: SidecarSensorDescription) -> None:
        """One sensor of the sidecar."""
        super().__init__(entry.runtime_data, description.key)
        self.entity_description = description
        self._needs_sidecar = description.needs_sidecar

    @property
    def native_value(self) -> StateType:
        """From the coordinator (text the sidecar reports cut to what a state may hold)."""
        value = self.entity_description.value_fn(self.coordinator)
        return clip(value, MAX_STATE_LENGTH) if isinstance(value, str) else value

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The zoo's models for the loaded-models sensor."""
        return self.entity_description.attributes_fn(self.coordinator)
