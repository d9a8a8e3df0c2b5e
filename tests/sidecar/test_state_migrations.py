"""The state file's schema migrations, on real SQLite files: a file written before the schema was
versioned (fixtures/state_unversioned.sqlite, made by fixtures/write_unversioned_state.py) upgrades
without losing a batch, a frame -> batch record or an undelivered verdict, and the upgraded state
still resumes its batches and delivers its verdicts."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from manual_clock import Clock
from sidecar_harness import run_sidecar_to_exit

from sidecar.domain import Box, Detection, FrameObservation, Verdict
from sidecar.events.batching import BatchingRules
from sidecar.events.event_pipeline import EventPipeline
from sidecar.events.payloads import verdict_from_json, verdict_to_json
from sidecar.events.store import EventStore
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.storage import schema
from sidecar.storage.database import STATE_FILE, StateDatabase

FIXTURE = Path(__file__).parent / "fixtures" / "state_unversioned.sqlite"
CLOCK = 1_795_176_000.0  # the fixture's clock: 2026-11-20 12:00:00 UTC
TABLES = {"batches", "verdicts", "clients", "client_cameras", "deliveries", "batched_frames"}


@pytest.fixture
def unversioned(tmp_path: Path) -> Path:
    copy = tmp_path / "events.sqlite"
    shutil.copyfile(FIXTURE, copy)
    return copy


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def next_verdict(queue: asyncio.Queue[Verdict]) -> Verdict:
    return await asyncio.wait_for(queue.get(), timeout=60)


def test_the_fixture_is_an_unversioned_file() -> None:
    assert user_version(FIXTURE) == 0
    assert tables(FIXTURE) == TABLES


def test_a_new_file_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "new" / "events.sqlite"
    StateDatabase(path).close()
    assert user_version(path) == schema.SCHEMA_VERSION == len(schema.MIGRATIONS)
    assert tables(path) >= TABLES


def test_unversioned_file_upgrades_without_losing_state(unversioned: Path) -> None:
    store = EventStore(StateDatabase(unversioned, clock=Clock(CLOCK + 5)))
    try:
        assert user_version(unversioned) == schema.SCHEMA_VERSION
        opened, closed = store.load_batches()
        assert [b.batch_id for b in opened] == ["porch-batch"]
        porch = opened[0]
        assert [f.frame_id for f in porch.frames] == ["p1", "p2"]
        assert porch.fast_path_sent and porch.opened_at == CLOCK - 20
        assert porch.frames[0].captured_at == datetime(2026, 11, 20, 11, 59, 40, tzinfo=UTC)
        # Detections written without a class index read back with label_id -1.
        assert porch.frames[0].detections == (
            Detection("person", -1, 0.95, Box(100.0, 120.0, 220.0, 400.0)),
        )
        assert [(b.batch_id, reason) for b, reason in closed] == [("drive-batch", "idle")]
        assert [f.frame_id for f in closed[0][0].frames] == ["d1"]
        for camera, frame, batch in (("porch", "p1", "porch-batch"), ("porch", "p2", "porch-batch"),
                                     ("drive", "d1", "drive-batch")):
            assert store.batch_of_frame(camera, frame) == batch
        assert store.client_cameras() == {
            ("home", "porch"), ("home", "drive"), ("home", "shed"), ("home", "garden"),
            ("cabin", "shed"),
        }
        home = {v.verdict_id for v in store.pending_for("home")}
        assert home == {"porch-batch:fast", "shed-batch:final", "garden-batch:final"}
        assert [v.verdict_id for v in store.pending_for("cabin")] == ["shed-batch:final"]
        assert store.has_verdict("old-batch:final")  # acknowledged: kept, not owed
        shed = store.pending_for("cabin")[0]
        assert (shed.camera_id, shed.risk_score, shed.frame_ids) == ("shed", 42, ("x",))
        assert store.pending_count({"home", "cabin"}) == 3
        # Version 2 filled each verdict's camera column from its payload ...
        with sqlite3.connect(unversioned) as db:
            cameras = dict(db.execute("SELECT verdict_id, camera_id FROM verdicts").fetchall())
        assert cameras == {"porch-batch:fast": "porch", "shed-batch:final": "shed",
                           "garden-batch:final": "garden", "old-batch:final": "garden"}
        # ... which is what a client new to a camera is owed by.
        store.note_client_camera("attic", "shed")
        store.register_client("attic")
        assert [v.verdict_id for v in store.pending_for("attic")] == ["shed-batch:final"]
    finally:
        store.close()


def test_a_version_1_file_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    schema.migrate(db, schema.MIGRATIONS[:1])
    db.execute(
        "INSERT INTO verdicts (verdict_id, event_id, payload, created_at) VALUES (?, ?, ?, ?)",
        ("b:final", "b", '{"camera_id": "yard"}', CLOCK),
    )
    db.close()
    store = EventStore(StateDatabase(path, clock=Clock(CLOCK)))
    try:
        assert user_version(path) == schema.SCHEMA_VERSION
        row = store.database.connection.execute("SELECT camera_id FROM verdicts").fetchone()
        assert row == ("yard",)
    finally:
        store.close()


async def test_upgraded_state_resumes_batches_and_delivers_verdicts(unversioned: Path) -> None:
    clock = Clock(CLOCK + 5)  # the porch batch (idle since CLOCK - 10) is still open
    store = EventStore(StateDatabase(unversioned, clock=clock))
    pipeline = EventPipeline(
        store,
        RiskAnalyzer(None, tz=UTC),  # no LLM: verdicts are fallbacks, the path is the same
        BatchingRules(window_s=90, idle_s=30),
        clock=clock,
        tick_s=0.01,
        resend_after_s=3600,
    )
    await pipeline.start()
    try:
        assert pipeline.open_batches == 1
        home, cabin = await pipeline.subscribe("home"), await pipeline.subscribe("cabin")
        assert (await next_verdict(cabin)).verdict_id == "shed-batch:final"
        got = {(await next_verdict(home)).verdict_id for _ in range(4)}
        # The three stored for home, and the closed drive batch's verdict, made after the upgrade.
        assert got == {"porch-batch:fast", "shed-batch:final", "garden-batch:final",
                       "drive-batch:final"}
        assert await pipeline.ack("home", sorted(got)) == 4
        assert await pipeline.ack("cabin", ["shed-batch:final"]) == 1
        assert pipeline.pending_verdicts == 0

        clock.now = CLOCK + 30  # porch idle for 40 s: it closes with both of its frames
        final = await next_verdict(home)
        assert final.verdict_id == "porch-batch:final" and final.event_id == "porch-batch"
        assert final.frame_ids == ("p1", "p2") and final.close_reason == "idle"
        assert cabin.empty()  # cabin does not watch the porch
    finally:
        await pipeline.stop()
        pipeline.close()


def test_reopening_an_upgraded_file_changes_nothing(unversioned: Path) -> None:
    StateDatabase(unversioned, clock=Clock(CLOCK)).close()
    upgraded = unversioned.read_bytes()
    store = EventStore(StateDatabase(unversioned, clock=Clock(CLOCK)))
    try:
        assert user_version(unversioned) == schema.SCHEMA_VERSION
        assert len(store.pending_for("home")) == 3
    finally:
        store.close()
    assert unversioned.read_bytes() == upgraded


def test_a_file_from_a_newer_sidecar_is_refused(unversioned: Path) -> None:
    with sqlite3.connect(unversioned) as db:
        db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    with pytest.raises(schema.SchemaVersionError, match="written by a newer sidecar"):
        StateDatabase(unversioned)
    assert user_version(unversioned) == schema.SCHEMA_VERSION + 1  # left as it was


def test_a_failing_migration_keeps_the_last_complete_version(unversioned: Path) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk full")

    db = sqlite3.connect(unversioned, isolation_level=None)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            schema.migrate(db, (*schema.MIGRATIONS, broken))
        assert schema.version_of(db) == schema.SCHEMA_VERSION
    finally:
        db.close()
    assert "half_done" not in tables(unversioned)
    store = EventStore(StateDatabase(unversioned, clock=Clock(CLOCK)))
    try:
        assert len(store.pending_for("home")) == 3
    finally:
        store.close()


def test_the_sidecar_refuses_a_newer_state_file_with_one_message(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = tmp_path / "data"
    StateDatabase(data / STATE_FILE).close()
    with sqlite3.connect(data / STATE_FILE) as db:
        db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    result = run_sidecar_to_exit(
        ["--detector", str(tiny_model_dir), "--device", "cpu", "--data-dir", str(data)]
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "written by a newer sidecar" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


V2_FIXTURE = Path(__file__).parent / "fixtures" / "state_v2.sqlite"


@pytest.fixture
def version_2(tmp_path: Path) -> Path:
    copy = tmp_path / "events.sqlite"
    shutil.copyfile(V2_FIXTURE, copy)
    return copy


def test_a_version_2_file_moves_each_batchs_frames_into_rows(version_2: Path) -> None:
    assert user_version(version_2) == 2
    store = EventStore(StateDatabase(version_2, clock=Clock(CLOCK + 5)))
    try:
        assert user_version(version_2) == schema.SCHEMA_VERSION
        db = store.database.connection
        rows = db.execute("SELECT batch_id, seq FROM batch_frames ORDER BY batch_id, seq")
        assert rows.fetchall() == [("drive-batch", 0), ("drive-batch", 1),
                                   ("porch-batch", 0), ("porch-batch", 1)]
        headers = [r[0] for r in db.execute("SELECT payload FROM batches")]
        assert all("frames" not in json.loads(h) for h in headers)
        opened, closed = store.load_batches()
        (porch,) = opened
        assert [f.frame_id for f in porch.frames] == ["p1", "p2"] and porch.fast_path_sent
        assert porch.frames[1].detections[0].label == "cat" and porch.client_id == ""
        assert [(b.batch_id, [f.frame_id for f in b.frames], reason) for b, reason in closed] == [
            ("drive-batch", ["d1", "d2"], "idle")
        ]
        assert store.batch_of_frame("porch", "p2") == "porch-batch"
    finally:
        store.close()


async def test_upgraded_version_2_state_resumes_and_grows_by_rows(version_2: Path) -> None:
    clock = Clock(CLOCK + 5)
    store = EventStore(StateDatabase(version_2, clock=clock))
    pipeline = EventPipeline(
        store, RiskAnalyzer(None, tz=UTC), BatchingRules(window_s=90, idle_s=30), clock=clock,
        tick_s=0.01, resend_after_s=3600,
    )
    await pipeline.start()
    try:
        home = await pipeline.subscribe("home")
        seen = {(await next_verdict(home)).verdict_id for _ in range(2)}
        assert seen == {"porch-batch:fast", "drive-batch:final"}
        p3 = FrameObservation("p3", "porch", "Porch", datetime.fromtimestamp(CLOCK, UTC), 640, 480,
                              (Detection("person", 0, 0.7, Box(1, 2, 30, 40)),))
        assert await pipeline.observe(p3, "home") == "porch-batch"
        clock.now = CLOCK + 40
        final = await next_verdict(home)
        assert final.verdict_id == "porch-batch:final"
        assert final.frame_ids == ("p1", "p2", "p3")
    finally:
        await pipeline.stop()
        pipeline.close()


def test_a_version_2_file_upgrades_with_identity_tables(tmp_path: Path) -> None:
    """Version 4 adds identities and sightings; a verdict written by version 2 (no enrichment in
    its payload) is kept and reads back without enrichment."""
    path = tmp_path / "events.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    schema.migrate(db, schema.MIGRATIONS[:2])
    verdict = Verdict(
        verdict_id="b:final", event_id="b", batch_id="b", camera_id="yard", camera_name="Yard",
        risk_score=40, risk_level="medium", summary="s", reasoning="r", fast_path=False,
        fallback=False, started_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
        ended_at=datetime(2026, 11, 20, 12, 1, tzinfo=UTC), labels=(), frame_ids=("x",),
        snapshot_frame_id="x", snapshot_detections=(), close_reason="idle", model="m",
        llm_ms=1.0, completion_tokens=3, created_at=datetime(2026, 11, 20, 12, 1, tzinfo=UTC),
    )
    payload = json.loads(verdict_to_json(verdict))
    del payload["enrichment"]  # version 2 wrote no such key
    db.execute(
        "INSERT INTO verdicts (verdict_id, event_id, payload, created_at, camera_id) "
        "VALUES (?, ?, ?, ?, ?)",
        ("b:final", "b", json.dumps(payload), CLOCK, "yard"),
    )
    db.close()
    assert user_version(path) == 2
    store = EventStore(StateDatabase(path, clock=Clock(CLOCK)))
    try:
        assert user_version(path) == schema.SCHEMA_VERSION
        assert {"identities", "sightings"} <= tables(path)
        (row,) = store.database.connection.execute("SELECT payload FROM verdicts").fetchall()
        assert verdict_from_json(row[0]) == verdict
    finally:
        store.close()
