"""Attacker: the disk. Full, damaged, truncated to nothing, read-only.

A full state file is real SQLite refusing to grow (SQLITE_FULL, "database or disk is full", through
`PRAGMA max_page_count`, which `--state-max-mib` sets); a damaged one is real bytes that are not a
database, or a database with a page overwritten; a read-only data directory is made immutable
(`chattr +i`, as root) or mode 0555 (otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import TEST_TOKEN, SidecarFactory
from manual_clock import Clock
from sidecar_harness import jpeg, run_sidecar_to_exit

from sidecar.domain import (
    Box,
    Detection,
    FrameError,
    FrameErrorCode,
    FrameObservation,
    StateStorageError,
    Verdict,
)
from sidecar.events.batching import BatchingRules
from sidecar.events.event_pipeline import EventPipeline
from sidecar.events.store import EventStore
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.proto import secmon_pb2 as pb
from sidecar.proto import secmon_pb2_grpc
from sidecar.storage.database import STATE_FILE, StateDatabase

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EXIT_STATE_ERROR = 4


def frame(fid: str, camera: str, at_s: float, n_detections: int = 40) -> FrameObservation:
    dets = tuple(
        Detection("person", 0, 0.6, Box(i, i, i + 40, i + 80)) for i in range(n_detections)
    )
    return FrameObservation(fid, camera, camera.title(), T0 + timedelta(seconds=at_s), 640, 480,
                            dets)


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[tuple[EventPipeline, Clock, StateDatabase]]:
    clock = Clock()
    database = StateDatabase(tmp_path / STATE_FILE, clock=clock)
    p = EventPipeline(
        EventStore(database),
        RiskAnalyzer(None, tz=UTC),
        BatchingRules(window_s=3600, idle_s=30),
        clock=clock,
        tick_s=0.01,
        resend_after_s=3600,
    )
    await p.start()
    yield p, clock, database
    await p.stop()
    p.close()


async def set_max_pages(database: StateDatabase, pages: int | None) -> None:
    """Let the file grow by nothing more (None: by as much as it likes)."""

    def apply() -> None:
        db = database.connection
        limit = int(db.execute("PRAGMA page_count").fetchone()[0]) if pages is None else pages
        db.execute(f"PRAGMA max_page_count = {limit if pages is not None else 2**31:d}")

    await database.run(apply)


async def page_count(database: StateDatabase) -> int:
    row = await database.run(lambda: database.connection.execute("PRAGMA page_count").fetchone())
    return int(row[0])


# -- full --------------------------------------------------------------------------------------
async def test_a_full_disk_gives_a_retryable_error_and_the_retry_joins(
    pipeline: tuple[EventPipeline, Clock, StateDatabase],
) -> None:
    p, clock, database = pipeline
    queue = await p.subscribe("ha")
    batch_id = await p.observe(frame("f0", "yard", 0), "ha")
    await set_max_pages(database, await page_count(database))
    refused: list[str] = []
    codes: list[FrameErrorCode] = []
    for i in range(1, 40):
        try:
            assert await p.observe(frame(f"f{i}", "yard", i / 2), "ha") == batch_id
        except FrameError as err:
            codes.append(err.code)
            refused.append(f"f{i}")
    assert set(codes) == {FrameErrorCode.STORAGE_UNAVAILABLE}
    assert FrameErrorCode.STORAGE_UNAVAILABLE.retryable
    assert refused, "the state file never filled up"
    assert "full" in p.stats.storage_error and p.stats.storage_errors >= len(refused)
    await set_max_pages(database, None)  # space again: the client's retries join
    for fid in refused:
        assert await p.observe(frame(fid, "yard", int(fid[1:]) / 2), "ha") == batch_id
    assert p.stats.storage_error == ""
    clock.now += 31
    verdict: Verdict = await asyncio.wait_for(queue.get(), timeout=60)
    assert verdict.frame_ids == tuple(f"f{i}" for i in range(40))  # nothing lost


async def test_a_frame_refused_for_a_full_disk_opens_no_batch(
    pipeline: tuple[EventPipeline, Clock, StateDatabase],
) -> None:
    p, _, database = pipeline
    await p.observe(frame("warm", "other", 0, n_detections=1), "ha")
    await set_max_pages(database, await page_count(database))
    with pytest.raises(FrameError) as caught:
        await p.observe(frame("big", "yard", 0, n_detections=400), "ha")
    assert caught.value.code is FrameErrorCode.STORAGE_UNAVAILABLE
    assert p.open_batches == 1  # only "other": the refused frame left nothing behind


# -- damaged, empty, read-only -------------------------------------------------------------------
def damaged_by_overwriting_a_page(path: Path) -> None:
    store = EventStore(StateDatabase(path))
    for i in range(200):
        store.register_client(f"client-{i:03d}-" + "x" * 100)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as f:
        f.seek(4096 * 3)
        f.write(b"\xa5" * 4096)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"this is not a database\n" * 100), id="not-sqlite"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(damaged_by_overwriting_a_page, id="overwritten-page"),
    ],
)
def test_a_damaged_state_file_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / STATE_FILE
    assert callable(damage)
    damage(path)
    before = path.read_bytes()
    database = StateDatabase(path)
    try:
        moved = database.damaged_file
        assert moved is not None and moved.parent == tmp_path
        assert moved.name.startswith(f"{STATE_FILE}.damaged-")
        assert moved.read_bytes() == before  # kept as it was
        store = EventStore(database)
        store.register_client("ha")  # the new file works
        assert store.pending_for("ha") == []
    finally:
        database.close()
    loud = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(loud) == 1 and "STATE FILE DAMAGED" in loud[0].getMessage()
    assert str(moved) in loud[0].getMessage()


def test_a_sound_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    StateDatabase(path).close()
    database = StateDatabase(path)
    database.close()
    assert database.damaged_file is None
    assert [p.name for p in tmp_path.iterdir() if "damaged" in p.name] == []


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make `directory` unwritable, also for root (immutable), and restore it afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    as_root = os.geteuid() == 0
    if as_root:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(directory)], check=False).returncode:
            pytest.skip("cannot make a directory immutable here (chattr +i)")
    else:
        directory.chmod(0o555)
    try:
        probe = directory / "probe"
        try:
            probe.write_bytes(b"")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("this file system ignores read-only directories")
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(directory)], check=False)
        else:
            directory.chmod(0o755)


def test_a_read_only_data_dir_is_refused_with_one_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with read_only(data), pytest.raises(StateStorageError, match="writable"):
        StateDatabase(data / STATE_FILE)


def test_a_read_only_state_file_is_refused_with_one_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    StateDatabase(data / STATE_FILE).close()
    with read_only(data), pytest.raises(StateStorageError, match="writable"):
        StateDatabase(data / STATE_FILE)
    assert StateDatabase(data / STATE_FILE).damaged_file is None  # not mistaken for damage


# -- the process -------------------------------------------------------------------------------
def test_the_sidecar_refuses_a_read_only_data_dir_with_one_line_and_exit_code_4(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = tmp_path / "data"
    with read_only(data):
        result = run_sidecar_to_exit(
            ["--detector", str(tiny_model_dir), "--device", "cpu", "--data-dir", str(data)]
        )
    assert result.returncode == EXIT_STATE_ERROR, result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "writable" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


async def test_the_sidecar_serves_after_moving_a_damaged_state_file_aside(
    sidecar_factory: SidecarFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / STATE_FILE).write_bytes(b"\x00garbage" * 1000)
    process = sidecar_factory("--data-dir", str(data), token=TEST_TOKEN)
    await process.wait_serving()
    async with process.channel() as channel:
        stub = secmon_pb2_grpc.SidecarStub(channel)
        status = (await stub.GetStatus(pb.GetStatusRequest(), metadata=process.metadata)).status
    moved = Path(status.damaged_state_file)
    assert moved.parent == data
    assert await asyncio.to_thread(moved.read_bytes) == b"\x00garbage" * 1000
    loud = [line for line in process.lines if "STATE FILE DAMAGED" in line]
    assert len(loud) == 1 and " ERROR " in loud[0]
    assert "Traceback" not in process.log


async def test_a_full_state_file_answers_storage_unavailable_and_shows_in_status(
    sidecar_factory: SidecarFactory,
) -> None:
    process = sidecar_factory(
        "--threshold", "0.01", "--state-max-mib", "0.15", "--batch-window-s", "3600",
        "--batch-idle-s", "3600", token=TEST_TOKEN,
    )
    await process.wait_serving()
    async with process.channel() as channel:
        stub = secmon_pb2_grpc.SidecarStub(channel)
        call = stub.Stream(metadata=process.metadata)
        await call.write(pb.ClientMessage(hello=pb.Hello(client_id="ha")))
        assert (await call.read()).WhichOneof("kind") == "hello"
        refused: list[pb.FrameResult] = []
        joined = 0
        for i in range(80):
            await call.write(pb.ClientMessage(frame=pb.Frame(
                frame_id=f"f{i}", camera_id="yard", image=jpeg(160, 120, seed=i),
            )))
            message = await call.read()
            while message.WhichOneof("kind") != "result":
                message = await call.read()
            result = message.result
            if result.HasField("error"):
                assert result.error.code == pb.FRAME_ERROR_CODE_STORAGE_UNAVAILABLE
                assert result.retryable and not result.detections
                refused.append(result)
                break
            joined += bool(result.batch_id)
        assert refused, "the state file never filled up"
        assert joined, "no frame joined a batch before the file was full"
        status = (await stub.GetStatus(pb.GetStatusRequest(), metadata=process.metadata)).status
        assert "full" in status.storage_error and status.storage_errors >= 1
        assert status.errors_by_code["STORAGE_UNAVAILABLE"] >= 1
        await call.done_writing()
    assert process.proc.poll() is None  # still serving
