"""Attacker: a LAN client (or a camera that never goes quiet) whose batch never closes, and clients
that try to set the batching rules for everyone.

Through the real event pipeline and a real SQLite state file; costs are counted in SQL statements
and bytes written, never in time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from manual_clock import Clock

from sidecar.domain import Box, Detection, FrameObservation, Verdict
from sidecar.events.batching import BatchingRules
from sidecar.events.event_pipeline import MAX_ACK_IDS, EventPipeline
from sidecar.events.store import EventStore
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.storage.database import STATE_FILE, StateDatabase

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def frame(fid: str, camera: str, at_s: float, n_detections: int = 3) -> FrameObservation:
    dets = tuple(
        Detection("person", 0, 0.6, Box(i, i, i + 40, i + 80)) for i in range(n_detections)
    )
    return FrameObservation(fid, camera, camera.title(), T0 + timedelta(seconds=at_s), 640, 480,
                            dets)


async def next_verdict(queue: asyncio.Queue[Verdict]) -> Verdict:
    return await asyncio.wait_for(queue.get(), timeout=60)


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[tuple[EventPipeline, Clock, StateDatabase]]:
    clock = Clock()
    database = StateDatabase(tmp_path / STATE_FILE, clock=clock)
    p = EventPipeline(
        EventStore(database),
        RiskAnalyzer(None, tz=UTC),  # no LLM: fallback verdicts, the same path
        BatchingRules(window_s=3600, idle_s=3600, max_frames=2000),
        clock=clock,
        tick_s=0.01,
        resend_after_s=3600,
    )
    await p.start()
    yield p, clock, database
    await p.stop()
    p.close()


class WriteLog:
    """Every SQL statement the state file runs, with the thread that ran it."""

    def __init__(self, database: StateDatabase) -> None:
        self.statements: list[tuple[str, str]] = []
        database.connection.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        self.statements.append((threading.current_thread().name, sql))

    def take(self) -> list[str]:
        sql = [s for _, s in self.statements]
        self.statements.clear()
        return sql


async def test_a_frame_costs_the_same_in_a_batch_of_1000_as_in_a_batch_of_3(
    pipeline: tuple[EventPipeline, Clock, StateDatabase],
) -> None:
    p, clock, database = pipeline
    await p.subscribe("ha")
    log = WriteLog(database)
    cost: dict[int, tuple[int, int]] = {}
    for i in range(1000):
        clock.now += 0.5
        await p.observe(frame(f"f{i:04d}", "yard", i * 0.5), "ha")
        sql = log.take()
        writes = [s for s in sql if s.split()[0] in {"INSERT", "UPDATE", "DELETE"}]
        cost[i] = (len(writes), sum(len(s) for s in writes))
    assert p.open_batches == 1
    statements_3, bytes_3 = cost[2]
    statements_999, bytes_999 = cost[999]
    assert statements_999 == statements_3 == 3  # the frame's row, its frame -> batch row, header
    # The same size of SQL (ids and times differ by a few characters), not 333x as much.
    assert bytes_999 <= bytes_3 + 32
    # Every statement ran on the state file's own thread, none on the event loop's.
    assert all(name.startswith("secmon-state") for name, _ in log.statements)


async def test_every_store_call_runs_off_the_event_loop(
    pipeline: tuple[EventPipeline, Clock, StateDatabase],
) -> None:
    p, clock, database = pipeline
    log = WriteLog(database)
    queue = await p.subscribe("ha")
    await p.observe(frame("a", "gate", 0), "ha")
    clock.now += 4000  # the window passes: closed, analysed, stored, delivered
    verdict = await next_verdict(queue)
    assert await p.ack("ha", [verdict.verdict_id]) == 1
    assert p.pending_verdicts == 0
    threads = {name for name, _ in log.statements}
    assert threads and all(name.startswith("secmon-state") for name in threads), threads


async def test_a_batch_closes_when_it_reaches_max_frames(
    pipeline: tuple[EventPipeline, Clock, StateDatabase],
) -> None:
    p, _, _ = pipeline
    queue = await p.subscribe("ha")
    p.configure("ha", BatchingRules(window_s=3600, idle_s=3600, max_frames=5))
    ids = [await p.observe(frame(f"f{i}", "yard", i), "ha") for i in range(7)]
    assert len(set(ids[:5])) == 1 and ids[5] == ids[6] != ids[0]
    verdict = await next_verdict(queue)
    assert verdict.close_reason == "max_frames" and verdict.batch_id == ids[0]
    assert verdict.frame_ids == ("f0", "f1", "f2", "f3", "f4")
    assert p.open_batches == 1  # f5 and f6 opened the next one


async def test_one_clients_rules_do_not_change_anothers(
    pipeline: tuple[EventPipeline, Clock, StateDatabase],
) -> None:
    p, clock, _ = pipeline
    quick, patient = await p.subscribe("quick"), await p.subscribe("patient")
    p.configure("quick", BatchingRules(window_s=10, idle_s=5))
    p.configure("patient", BatchingRules(window_s=600, idle_s=300))
    assert p.rules_for("quick").idle_s == 5 and p.rules_for("patient").idle_s == 300
    assert p.rules_for("someone-else") == p.rules  # the sidecar's defaults
    await p.observe(frame("q1", "porch", 0), "quick")
    await p.observe(frame("p1", "garden", 0), "patient")
    clock.now += 6
    verdict = await next_verdict(quick)
    assert verdict.camera_id == "porch" and verdict.close_reason == "idle"
    await asyncio.sleep(0.2)
    assert patient.empty() and p.open_batches == 1  # the garden follows its own client's rules


async def test_rules_follow_the_batch_across_a_restart(tmp_path: Path) -> None:
    clock = Clock()

    def build() -> EventPipeline:
        return EventPipeline(
            EventStore(StateDatabase(tmp_path / STATE_FILE, clock=clock)),
            RiskAnalyzer(None, tz=UTC),
            BatchingRules(window_s=3600, idle_s=3600),
            clock=clock,
            tick_s=0.01,
            resend_after_s=3600,
        )

    first = build()
    await first.start()
    first.configure("quick", BatchingRules(window_s=10, idle_s=5))
    await first.observe(frame("q1", "porch", 0), "quick")
    await first.stop()
    first.close()

    second = build()
    await second.start()
    try:
        queue = await second.subscribe("quick")
        second.configure("quick", BatchingRules(window_s=10, idle_s=5))  # its Hello, again
        clock.now += 6
        verdict = await next_verdict(queue)
        assert verdict.frame_ids == ("q1",) and verdict.close_reason == "idle"
    finally:
        await second.stop()
        second.close()


async def test_each_client_has_its_own_time_zone(
    pipeline: tuple[EventPipeline, Clock, StateDatabase],
) -> None:
    """A person at 12:00 UTC is at night in Auckland and at noon in London: each home's verdict
    uses its own Hello's time zone (the fallback estimate adds to the score at night)."""
    p, clock, _ = pipeline
    auckland, london = await p.subscribe("auckland"), await p.subscribe("london")
    p.set_time_zone(ZoneInfo("Pacific/Auckland"), "auckland")
    p.set_time_zone(ZoneInfo("Europe/London"), "london")
    await p.observe(frame("a1", "akl-door", 0), "auckland")
    await p.observe(frame("l1", "ldn-door", 0), "london")
    clock.now += 4000
    night, noon = await next_verdict(auckland), await next_verdict(london)
    assert night.fallback and noon.fallback
    assert night.risk_score == noon.risk_score + 15


async def test_a_flood_of_acknowledgements_is_cut_before_the_state_file(
    pipeline: tuple[EventPipeline, Clock, StateDatabase], caplog: pytest.LogCaptureFixture
) -> None:
    """A VerdictAck with 100,000 ids (a few MB, within the message limit) is not looked up id by
    id on the state file's thread, which every client's frames share: at most MAX_ACK_IDS are."""
    p, _clock, database = pipeline
    log = WriteLog(database)
    flood = [f"{n:032x}" for n in range(100_000)] + ["x" * 10_000]
    assert await p.ack("hostile", flood) == 0
    lookups = [sql for sql in log.take() if "FROM verdicts WHERE verdict_id" in sql]
    assert 0 < len(lookups) <= MAX_ACK_IDS
    assert "acknowledged 100001 verdicts at once" in caplog.text
