"""Edges of the data path: bad verdicts and results, odd paths, images that do not render, the
logbook's lines, the reauth step's errors, a database used wrongly."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    DOMAIN,
    EVENT_SECURITY,
    EVENT_SECURITY_UPDATED,
    EVENT_TAMPERED,
)
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.logbook import SUMMARY_CHARS, async_describe_events, describe_verdict
from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.frame_queue import QueuedFrame

from .flow_error_server import start_flow_error_server
from .helpers import image_bytes, state_of, write_image
from .sidecar_process import free_port


def _verdict(verdict_id: str, camera_id: str, *, fast_path: bool = False) -> secmon_pb2.Verdict:
    verdict = secmon_pb2.Verdict(
        verdict_id=verdict_id,
        event_id="edge-event",
        camera_id=camera_id,
        risk_score=40,
        fast_path=fast_path,
        summary="Someone walks by.",
    )
    verdict.started_at.FromSeconds(1_900_000_000)
    return verdict


async def test_verdicts_without_ids_unknown_cameras_and_stale_fast_paths(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    coordinator = init_integration.runtime_data
    assert not await coordinator.async_on_verdict(secmon_pb2.Verdict(camera_id="front_door"))
    assert not await coordinator.async_on_verdict(secmon_pb2.Verdict(verdict_id="x"))

    # Stored and acknowledged, shown nowhere: this entry does not watch that camera.
    assert await coordinator.async_on_verdict(_verdict("elsewhere:final", "elsewhere"))
    history = await hass.async_add_executor_job(coordinator.verdicts.history, 10)
    assert [h.record.verdict_id for h in history] == ["elsewhere:final"]

    # The batch verdict first, then its event's fast-path verdict (a re-send): stored, not shown.
    assert await coordinator.async_on_verdict(_verdict("edge:final", "front_door"))
    assert state_of(hass, "sensor.front_door_risk_score") == "40"
    late = _verdict("edge:fast", "front_door", fast_path=True)
    late.risk_score = 95
    assert await coordinator.async_on_verdict(late)
    assert state_of(hass, "sensor.front_door_risk_score") == "40"
    assert await hass.async_add_executor_job(coordinator.verdicts.count) == 3


async def test_a_verdict_that_cannot_be_stored_is_not_acknowledged(
    hass: HomeAssistant, init_integration: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = init_integration.runtime_data

    def broken(record: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(coordinator.verdicts, "receive", broken)
    assert not await coordinator.async_on_verdict(_verdict("v:final", "front_door"))


async def test_a_failed_frame_is_counted_and_leaves_the_queue(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    coordinator = init_integration.runtime_data
    frame = QueuedFrame(
        frame_id="bad-frame",
        camera_id="front_door",
        camera_name="Front Door",
        path="/nowhere/bad.jpg",
        content_type="image/jpeg",
        captured_at=1.0,
        image=b"not an image",
    )
    await hass.async_add_executor_job(coordinator.queue.enqueue, frame, "bad-hash")
    result = secmon_pb2.FrameResult(
        frame_id="bad-frame",
        camera_id="front_door",
        error=secmon_pb2.FrameError(
            code=secmon_pb2.FRAME_ERROR_CODE_NOT_AN_IMAGE, message="not an image"
        ),
    )
    await coordinator.async_on_result(result)
    assert coordinator.counters["frames_failed"] == 1
    assert await hass.async_add_executor_job(coordinator.queue.pending_count) == 0
    # The same result again changes nothing.
    await coordinator.async_on_result(result)
    assert coordinator.counters["frames_failed"] == 1


async def test_camera_images_that_are_missing_or_do_not_render(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    coordinator = init_integration.runtime_data
    assert await coordinator.async_camera_image("nowhere") is None
    camera = coordinator.cameras["front_door"]
    assert await coordinator.async_camera_image("front_door") is None
    camera.frame_id, camera.raw_image = "broken", b"\xff\xd8 not really a jpeg"
    assert await coordinator.async_camera_image("front_door") is None


async def test_odd_paths_are_skipped(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path, tmp_path: Path
) -> None:
    """Outside the root, directly in the root, vanished, unreadable: nothing is queued."""
    ingestor = init_integration.runtime_data.ingestor
    outside = write_image(tmp_path / "outside" / "a.jpg", image_bytes(1))
    in_root = write_image(camera_root / "loose.jpg", image_bytes(2))
    folder_named_like_an_image = camera_root / "Front Door" / "folder.jpg"
    folder_named_like_an_image.mkdir()
    for path in (outside, in_root, camera_root / "Front Door" / "gone.jpg"):
        ingestor.submit(path)
    ingestor.submit(folder_named_like_an_image)
    await ingestor.async_wait_idle()
    await hass.async_block_till_done()
    coordinator = init_integration.runtime_data
    assert await hass.async_add_executor_job(coordinator.queue.pending_count) == 0
    assert coordinator.counters["frames_processed"] == 0


def test_logbook_lines() -> None:
    base = {"camera_name": "Porch", "risk_level": "high", "risk_score": 72, "summary": "A person."}
    assert describe_verdict(EVENT_SECURITY, base)["message"] == "high risk (72) — A person."
    raised = describe_verdict(EVENT_SECURITY, {**base, "is_update": True, "fast_path": True})
    assert raised["message"] == "risk raised to high (72), fast path — A person."
    updated = describe_verdict(EVENT_SECURITY_UPDATED, {**base, "summary": ""})
    assert updated["message"] == "risk updated: high (72)"
    long = describe_verdict(EVENT_SECURITY, {**base, "summary": "x" * (SUMMARY_CHARS + 50)})
    assert long["message"].endswith("…")
    assert len(long["message"]) < SUMMARY_CHARS + 30
    assert describe_verdict(EVENT_SECURITY, {})["name"] == "secmon"


async def test_logbook_describes_both_bus_events(hass: HomeAssistant) -> None:
    described: dict[str, Callable[[Event], dict[str, Any]]] = {}

    def collect(domain: str, event_type: str, describe: Callable[[Event], Any]) -> None:
        assert domain == DOMAIN
        described[event_type] = describe

    async_describe_events(hass, collect)
    assert set(described) == {EVENT_SECURITY, EVENT_SECURITY_UPDATED, EVENT_TAMPERED}
    line = described[EVENT_SECURITY](
        Event(EVENT_SECURITY, {"camera_name": "Porch", "risk_level": "low", "risk_score": 3})
    )
    assert line["message"] == "low risk (3)"
    tampered = described[EVENT_TAMPERED](
        Event(EVENT_TAMPERED, {"camera_name": "Porch", "kind": "covered", "score": 0.93})
    )
    assert (tampered["name"], tampered["message"]) == ("Porch", "view looks covered (0.93)")


async def test_reauth_step_reports_an_unready_or_unreachable_sidecar(
    hass: HomeAssistant, config_dir: Path, camera_root: Path
) -> None:
    port = free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"127.0.0.1:{port}",
        data={CONF_ADDRESS: f"127.0.0.1:{port}", CONF_CAMERA_ROOT: str(camera_root)},
        version=1,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    server = await start_flow_error_server(port, serving=False)
    try:
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    finally:
        await server.stop(None)
    assert result["errors"] == {"base": "not_ready"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


def test_database_used_wrongly(tmp_path: Path) -> None:
    database = Database(tmp_path / "db.sqlite")
    with pytest.raises(RuntimeError), database.connection():
        pass
    database.open()

    def half_written() -> None:
        with database.transaction() as db:
            db.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        half_written()
    with database.connection() as db:
        assert db.execute("SELECT COUNT(*) FROM counters").fetchone() == (0,)
    database.close()
    database.close()
