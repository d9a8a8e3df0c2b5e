"""Setting up, unloading, removing, and the sidecar being away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from homeassistant.components.repairs.issue_handler import async_process_repairs_platforms
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    EVENT_HOMEASSISTANT_STOP,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_DEBOUNCE,
    CONF_QUEUE_BOUND,
    DOMAIN,
    ISSUE_QUEUE_OVERFLOW,
    ISSUE_RANDOM_MODELS,
    ISSUE_SIDECAR_UNREACHABLE,
    UNREACHABLE_ISSUE_DELAY,
)
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.link.stream import RECONNECT_MAX
from custom_components.secmon.settings import database_path

from .adversarial.hostile_sidecar import HostileSidecar, ok_result, start_hostile_sidecar, stop
from .helpers import image_bytes, state_of, wait_for, write_image
from .sidecar_process import SidecarProcess


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """Setup creates the sidecar and camera devices; unload stops everything it started."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    await wait_for(
        hass,
        lambda: state_of(hass, "binary_sensor.secmon_sidecar_connected") == STATE_ON,
        "connect",
    )
    camera = device_registry.async_get_device(
        identifiers={(DOMAIN, f"{entry.entry_id}_front_door")}
    )
    assert camera is not None
    assert camera.name == "Front Door"
    sidecar = device_registry.async_get_device(identifiers={(DOMAIN, entry.entry_id)})
    assert sidecar is not None
    assert camera.via_device_id == sidecar.id
    for entity_id in (
        "camera.front_door",
        "binary_sensor.front_door_person",
        "binary_sensor.front_door_vehicle",
        "binary_sensor.front_door_animal",
        "sensor.front_door_objects",
        "sensor.secmon_sidecar_inference_latency",
        "sensor.secmon_sidecar_frames_processed",
        "sensor.secmon_sidecar_queue_depth",
        "sensor.secmon_sidecar_frames_skipped",
    ):
        assert hass.states.get(entity_id) is not None, entity_id
    assert state_of(hass, "binary_sensor.front_door_person") == STATE_OFF

    runtime = entry.runtime_data
    tasks = list(runtime._tasks)
    assert len(tasks) == 5  # ingest, catch-up, stream, camera folder check, first retention run
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert all(task.done() for task in tasks)
    assert runtime.watcher._observer is None


async def test_missing_camera_root_retries(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, camera_root: Path
) -> None:
    """A root that is not there (an unmounted share) means: try again later."""
    hass.config_entries.async_update_entry(
        mock_config_entry,
        data={**mock_config_entry.data, CONF_CAMERA_ROOT: str(camera_root / "not-mounted")},
    )
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_remove_entry_deletes_database(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Removing the entry removes its durable queue."""
    path = database_path(hass, init_integration.entry_id)
    assert path.exists()
    assert await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert not path.exists()


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_sidecar_away_keeps_frames_and_raises_issue(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    unused_address: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No sidecar: connectivity off, detection sensors unavailable, camera available, frames
    queued; after a few minutes a repair issue; one warning, not one per retry."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=unused_address,
        data={CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)},
        options={CONF_DEBOUNCE: 0.2},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    await wait_for(hass, lambda: entry.runtime_data._down_since is not None, "first failure")
    assert state_of(hass, "binary_sensor.secmon_sidecar_connected") == STATE_OFF
    assert state_of(hass, "binary_sensor.front_door_person") == STATE_UNAVAILABLE
    assert state_of(hass, "sensor.front_door_objects") == STATE_UNAVAILABLE
    assert state_of(hass, "camera.front_door") not in (None, STATE_UNAVAILABLE)
    # What the sidecar reports is unavailable; what this side counts stays.
    for key in ("llm_model", "open_batches", "pending_verdicts", "inference_latency"):
        assert state_of(hass, f"sensor.secmon_sidecar_{key}") == STATE_UNAVAILABLE, key
    for key in (
        "frames_processed",
        "queue_depth",
        "frames_skipped",
        "verdicts_produced",
        "fallback_verdicts",
    ):
        assert state_of(hass, f"sensor.secmon_sidecar_{key}") not in (None, STATE_UNAVAILABLE)
    # No GPU was ever reported: no GPU sensors.
    assert state_of(hass, "sensor.secmon_sidecar_gpu_utilization") is None

    write_image(camera_root / "Front Door" / "one.jpg", image_bytes(1))
    write_image(camera_root / "Front Door" / "two.jpg", image_bytes(2))
    await wait_for(
        hass, lambda: state_of(hass, "sensor.secmon_sidecar_queue_depth") == "2", "queue"
    )

    issue_id = f"{ISSUE_SIDECAR_UNREACHABLE}_{entry.entry_id}"
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    # Let the stream fail a few more times before the issue delay runs out.
    await wait_for(hass, lambda: entry.runtime_data.stream.attempts >= 3, "retries")
    assert entry.runtime_data.stream.sessions == 0
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=UNREACHABLE_ISSUE_DELAY + 1))
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is not None
    assert caplog.text.count("is unreachable") == 1

    # However long the sidecar stays away, the next attempt is never more than a few seconds off
    # (0.5, 1, 2, 4, 4, ... s), so a sidecar that comes back is found within seconds.
    stream = entry.runtime_data.stream
    await wait_for(hass, lambda: stream.attempts >= 6, "retries past the cap")
    assert stream.reconnect_delay == RECONNECT_MAX <= 5

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_one_log_line_when_the_sidecar_goes_and_one_when_it_is_back(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    unused_address: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """However often the stream retries meanwhile: one warning while away, one line once back."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=unused_address,
        data={CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.stream.attempts >= 2, "a few failed attempts")
    server = await start_hostile_sidecar(
        int(unused_address.rsplit(":", 1)[1]), HostileSidecar(lambda frame, _seen: ok_result(frame))
    )
    try:
        await wait_for(hass, lambda: coordinator.sidecar.connected, "connected once it serves")
        assert caplog.text.count("is unreachable") == 1
        assert caplog.text.count("is reachable again") == 1
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await stop(server)


class _EndsItsFirstStreams(HostileSidecar):
    """Ends the first stream before hello and the second right after it; then serves."""

    async def Stream(  # type: ignore[override]
        self, request_iterator: AsyncIterator[secmon_pb2.ClientMessage], context: object
    ) -> AsyncIterator[secmon_pb2.ServerMessage]:
        if self.sessions == 0:
            self.sessions += 1
            return
        if self.sessions == 1:
            self.sessions += 1
            async for message in request_iterator:
                if message.WhichOneof("kind") == "hello":
                    yield secmon_pb2.ServerMessage(hello=self.hello_reply)
                    return
        async for reply in super().Stream(request_iterator, context):  # type: ignore[arg-type]
            yield reply


async def test_streams_the_sidecar_ends_are_opened_again(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, unused_address: str
) -> None:
    """A sidecar that ends the stream before or right after its hello: the integration opens a
    new one each time, and frames go through once it serves."""
    servicer = _EndsItsFirstStreams(lambda frame, _seen: ok_result(frame))
    server = await start_hostile_sidecar(int(unused_address.rsplit(":", 1)[1]), servicer)
    try:
        entry = MockConfigEntry(
            domain=DOMAIN,
            unique_id=unused_address,
            data={CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)},
            options={CONF_DEBOUNCE: 0.2},
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        coordinator = entry.runtime_data
        write_image(camera_root / "Front Door" / "a.jpg", image_bytes(3))
        await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "the frame")
        assert servicer.sessions == 3
        # Hello was answered twice: the stream that ended right after it, and the one that serves.
        assert coordinator.stream.sessions == 2
        assert coordinator.sidecar.connected
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await stop(server)


async def test_queue_overflow_drops_oldest_with_issue(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    unused_address: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bounded queue: the oldest unsent frames go, counted, with a warning and a repair issue."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=unused_address,
        data={CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)},
        options={CONF_DEBOUNCE: 0.2, CONF_QUEUE_BOUND: 3},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    front = camera_root / "Front Door"
    for n in range(5):
        write_image(front / f"{n}.jpg", image_bytes(50 + n), mtime=1_900_000_000 + n)
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.counters["frames_dropped"] == 2, "drops")
    assert coordinator.queue_depth == 3
    pending = await hass.async_add_executor_job(entry.runtime_data.queue.next_pending, set(), 10)
    assert [Path(f.path).name for f in pending] == ["2.jpg", "3.jpg", "4.jpg"]
    assert "The frame queue is full" in caplog.text
    issue_id = f"{ISSUE_QUEUE_OVERFLOW}_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {"dropped": "2", "max_frames": "3"}


async def test_queue_overflow_issue_clears_when_the_queue_drains(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    unused_address: str,
    sidecar: SidecarProcess,
) -> None:
    """The overflow issue stays while frames wait, and goes once the sidecar has taken them."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=unused_address,
        data={CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)},
        options={CONF_DEBOUNCE: 0.2, CONF_QUEUE_BOUND: 2},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for n in range(3):
        write_image(camera_root / "Front Door" / f"{n}.jpg", image_bytes(70 + n))
    await wait_for(hass, lambda: entry.runtime_data.counters["frames_dropped"] == 1, "a drop")
    issue_id = f"{ISSUE_QUEUE_OVERFLOW}_{entry.entry_id}"
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, issue_id) is not None

    # The sidecar appears (the entry reloads with its address): the queue drains.
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_ADDRESS: sidecar.address}
    )
    await hass.async_block_till_done()
    await wait_for(
        hass,
        lambda: entry.state is ConfigEntryState.LOADED and entry.runtime_data.queue_depth == 0,
        "queue drained",
    )
    assert entry.runtime_data.counters["frames_processed"] == 2
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_sidecar_device_follows_its_status(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """The sidecar's model and software version come from the status it reports; random-weight
    models are named on the device and raise a warning issue until real ones run."""
    coordinator = init_integration.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.status is not None, "status")
    device = device_registry.async_get_device(identifiers={(DOMAIN, init_integration.entry_id)})
    assert device is not None
    status = coordinator.sidecar.status
    assert status is not None
    # The test sidecar runs random:tiny models and says so.
    assert status.detector_model == "random:tiny"
    assert list(status.random_models) == ["detector", "llm"]
    assert (device.model, device.sw_version) == (
        "random:tiny (random weights: detector, llm)",
        status.server_version,
    )
    issue_id = f"{ISSUE_RANDOM_MODELS}_{init_integration.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity == ir.IssueSeverity.WARNING
    assert issue.translation_placeholders == {"models": "detector, llm"}

    newer = type(status)()
    newer.CopyFrom(status)
    newer.server_version = "9.9.9"
    newer.detector_model = "PekingU/rtdetr_v2_r50vd"
    del newer.random_models[:]
    coordinator.async_on_status(newer)
    device = device_registry.async_get_device(identifiers={(DOMAIN, init_integration.entry_id)})
    assert device is not None
    assert (device.model, device.sw_version) == ("PekingU/rtdetr_v2_r50vd", "9.9.9")
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_home_assistant_stop_stops_the_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """On HA stop every task and the watcher stop, even though entries are not unloaded."""
    runtime = init_integration.runtime_data
    tasks = list(runtime._tasks)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert all(task.done() for task in tasks)
    assert runtime.watcher._observer is None
    # A later unload (the harness does one) is harmless.
    assert await hass.config_entries.async_unload(init_integration.entry_id)


async def test_repairs_platform_loads(
    hass: HomeAssistant, init_integration: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """HA's repairs integration takes secmon's repairs.py as its platform."""
    assert await async_setup_component(hass, "repairs", {})
    await async_process_repairs_platforms(hass)
    await hass.async_block_till_done()
    assert "Invalid repairs platform" not in caplog.text
    assert DOMAIN in hass.data["repairs"]["platforms"]


async def test_migrate_entry_from_1_1(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, sidecar: SidecarProcess
) -> None:
    """A 1.1 entry whose camera root is a symlink comes up as 1.2 with the resolved folder."""
    link = camera_root.parent / "cameras-link"
    link.symlink_to(camera_root, target_is_directory=True)
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(link)},
        version=1,
        minor_version=1,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert (entry.version, entry.minor_version) == (1, 2)
    resolved = await hass.async_add_executor_job(camera_root.resolve)
    assert entry.data[CONF_CAMERA_ROOT] == str(resolved)
    assert entry.runtime_data.settings.camera_root == resolved
    assert "front_door" in entry.runtime_data.cameras


async def test_entry_from_a_newer_secmon_is_not_set_up(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, sidecar: SidecarProcess
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)},
        version=2,
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR


def _grpc_call_tasks() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "_handle_status_once_received" in repr(task)
    ]


async def test_reload_and_unload_leave_no_grpc_task(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The stream's gRPC call has finished by the time a reload or an unload returns."""
    entry = init_integration
    await wait_for(hass, lambda: entry.runtime_data.sidecar.connected, "connected")
    assert _grpc_call_tasks()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await wait_for(hass, lambda: entry.runtime_data.sidecar.connected, "connected again")
    assert len(_grpc_call_tasks()) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert _grpc_call_tasks() == []
