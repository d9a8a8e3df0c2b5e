"""The event pipeline through real parts: SQLite store, tiny llama.cpp model, restart recovery."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from manual_clock import Clock

from sidecar.domain import Box, Detection, FrameObservation, Verdict
from sidecar.events.batching import BatchingRules
from sidecar.events.event_pipeline import EventPipeline
from sidecar.events.store import EventStore
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.llm.backends import create_backend
from sidecar.storage.database import StateDatabase

T0 = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)


def frame(fid: str, camera: str, *labels: tuple[str, float], at: float = 0) -> FrameObservation:
    dets = tuple(Detection(label, 0, conf, Box(10, 20, 60, 90)) for label, conf in labels)
    return FrameObservation(fid, camera, camera.title(), T0 + timedelta(seconds=at), 100, 100, dets)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llm")


async def make_pipeline(
    data: Path, model_dir: Path, clock: Clock, *, llm: str = "random:tiny", timeout_s: float = 60
) -> EventPipeline:
    backend = create_backend(llm, use_gpu=False, n_ctx=8192, cache_dir=model_dir)
    analyzer = RiskAnalyzer(backend, tz=UTC, timeout_s=timeout_s)
    await analyzer.start()
    pipeline = EventPipeline(
        EventStore(StateDatabase(data / "events.sqlite")),
        analyzer,
        BatchingRules(window_s=90, idle_s=30),
        clock=clock,
        tick_s=0.01,
        resend_after_s=0.2,
    )
    await pipeline.start()
    return pipeline


async def next_verdict(queue: asyncio.Queue[Verdict]) -> Verdict:
    return await asyncio.wait_for(queue.get(), timeout=60)


@pytest.fixture
async def pipeline(tmp_path: Path, model_dir: Path) -> AsyncIterator[tuple[EventPipeline, Clock]]:
    clock = Clock()
    p = await make_pipeline(tmp_path, model_dir, clock)
    yield p, clock
    await p.stop()


async def test_batch_closes_on_idle_and_yields_one_valid_verdict(
    pipeline: tuple[EventPipeline, Clock],
) -> None:
    p, clock = pipeline
    queue = await p.subscribe("ha")
    batch_id = await p.observe(frame("f1", "garage", ("car", 0.7), at=0), "ha")
    assert batch_id
    f2 = frame("f2", "garage", ("car", 0.8), ("dog", 0.6), at=5)
    assert await p.observe(f2, "ha") == batch_id
    assert await p.observe(frame("f3", "garage", at=6), "ha") == ""  # nothing detected: no batch
    clock.now += 29
    await asyncio.sleep(0.1)
    assert queue.empty()
    clock.now += 2
    verdict = await next_verdict(queue)
    assert verdict.batch_id == batch_id == verdict.event_id
    assert verdict.verdict_id == f"{batch_id}:final"
    assert verdict.close_reason == "idle" and not verdict.fast_path and not verdict.fallback
    assert 0 <= verdict.risk_score <= 100 and verdict.risk_level in {
        "low",
        "medium",
        "high",
        "critical",
    }
    assert verdict.frame_ids == ("f1", "f2")
    assert {lc.label: lc.count for lc in verdict.labels} == {"car": 2, "dog": 1}
    assert verdict.snapshot_frame_id == "f2"
    assert verdict.started_at == T0 and verdict.ended_at == T0 + timedelta(seconds=5)
    assert p.open_batches == 0 and p.pending_verdicts == 1
    # Unacknowledged verdicts are re-sent; acknowledged ones stop.
    again = await next_verdict(queue)
    assert again.verdict_id == verdict.verdict_id
    assert await p.ack("ha", [verdict.verdict_id]) == 1
    assert p.pending_verdicts == 0
    while not queue.empty():
        queue.get_nowait()
    await asyncio.sleep(0.5)
    assert queue.empty()


async def test_fast_path_verdict_then_batch_verdict_share_the_event(
    pipeline: tuple[EventPipeline, Clock],
) -> None:
    p, clock = pipeline
    queue = await p.subscribe("ha")
    batch_id = await p.observe(frame("p1", "front door", ("person", 0.97), at=0), "ha")
    fast = await next_verdict(queue)
    assert fast.fast_path and fast.close_reason == "fast_path"
    assert fast.event_id == batch_id and fast.frame_ids == ("p1",)
    await p.observe(frame("p2", "front door", ("person", 0.99), at=10), "ha")  # no second fast path
    clock.now += 90
    final = await next_verdict(queue)
    while final.verdict_id == fast.verdict_id:  # re-sent: it is not acknowledged yet
        final = await next_verdict(queue)
    assert not final.fast_path and final.event_id == fast.event_id
    assert final.verdict_id != fast.verdict_id
    assert final.frame_ids == ("p1", "p2") and final.close_reason == "window"
    await p.ack("ha", [fast.verdict_id, final.verdict_id])
    assert p.stats.verdicts_produced == 2


async def test_llm_failure_yields_fallback_verdict(tmp_path: Path, model_dir: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = Clock()
    p = await make_pipeline(
        tmp_path, model_dir, clock, llm=f"http://127.0.0.1:{port}/v1", timeout_s=2
    )
    try:
        queue = await p.subscribe("ha")
        await p.observe(frame("n1", "yard", ("person", 0.6), at=0), "ha")
        clock.now += 31
        verdict = await next_verdict(queue)
        assert verdict.fallback and not verdict.fast_path
        assert verdict.summary.startswith("AI analysis unavailable")
        assert verdict.risk_score == 50 + 15 and verdict.risk_level == "high"  # person, at night
        assert p.stats.fallback_verdicts == 1
    finally:
        await p.stop()


async def test_restart_resumes_open_batch_and_redelivers_exactly_once(
    tmp_path: Path, model_dir: Path
) -> None:
    clock = Clock()
    first = await make_pipeline(tmp_path, model_dir, clock)
    queue = await first.subscribe("ha")
    batch_id = await first.observe(frame("a", "porch", ("person", 0.95), at=0), "ha")
    fast = await next_verdict(queue)
    await first.observe(frame("b", "porch", ("cat", 0.7), at=3), "ha")
    # A closed batch waiting for the LLM when the process dies:
    await first.observe(frame("c", "drive", ("car", 0.7), at=0), "ha")
    await first.stop()  # "crash": nothing acknowledged, porch batch still open, drive still open
    first._store.close()

    clock.now += 5
    second = await make_pipeline(tmp_path, model_dir, clock)
    try:
        assert second.open_batches == 2
        queue = await second.subscribe("ha")
        redelivered = await next_verdict(queue)
        assert redelivered.verdict_id == fast.verdict_id  # the unacked fast verdict, offered again
        await second.ack("ha", [fast.verdict_id])
        clock.now += 40  # both batches idle
        finals = {}
        while len(finals) < 2:
            v = await next_verdict(queue)
            if v.verdict_id == fast.verdict_id:  # a re-send that crossed the acknowledgement
                continue
            finals[v.verdict_id] = v
            await second.ack("ha", [v.verdict_id])
        porch = finals[f"{batch_id}:final"]
        assert porch.frame_ids == ("a", "b") and porch.event_id == fast.event_id
        assert second.open_batches == 0 and second.pending_verdicts == 0
        while not queue.empty():  # re-sends that raced the acknowledgements
            assert queue.get_nowait().verdict_id in {*finals, fast.verdict_id}
        await asyncio.sleep(0.5)
        assert queue.empty()  # everything acknowledged: nothing more is sent
    finally:
        await second.stop()


async def test_verdicts_are_delivered_per_client_and_camera(
    pipeline: tuple[EventPipeline, Clock],
) -> None:
    """Two Home Assistants on one sidecar: each gets the verdicts of the cameras it sends frames of,
    until it acknowledges them; one acknowledging does not take a verdict from the other."""
    p, clock = pipeline
    home, cabin = await p.subscribe("home"), await p.subscribe("cabin")
    await p.observe(frame("s1", "shed", ("car", 0.7), at=0), "home")  # both watch the shed
    await p.observe(frame("s1", "shed", ("car", 0.7), at=0), "cabin")  # same frame id: joins once
    await p.observe(frame("g1", "garden", ("dog", 0.7), at=0), "home")  # only home: the garden
    clock.now += 31
    got_home: set[str] = set()
    while got_home != {"shed", "garden"}:  # on a busy machine re-sends may come in between
        got_home.add((await next_verdict(home)).camera_id)
    shed = await next_verdict(cabin)
    assert shed.camera_id == "shed" and shed.frame_ids == ("s1",)
    await asyncio.sleep(0.3)
    while not cabin.empty():  # re-sends of the shed verdict only
        assert cabin.get_nowait().verdict_id == shed.verdict_id
    assert await p.ack("home", [shed.verdict_id]) == 1
    assert p.pending_verdicts == 2  # garden (home), shed (cabin)
    garden = (await p._store.run(p._store.pending_for, "home"))[0]
    assert await p.ack("home", [garden.verdict_id]) == 1
    assert await p.ack("cabin", [shed.verdict_id, "unknown-id"]) == 1
    assert p.pending_verdicts == 0
    # A client that never sent frames of these cameras receives none of their verdicts.
    late = await p.subscribe("late")
    await asyncio.sleep(0.5)
    assert late.empty()
    # A re-subscribing client gets only what it has not acknowledged.
    await p.unsubscribe(home)
    home = await p.subscribe("home")
    assert home.empty()
