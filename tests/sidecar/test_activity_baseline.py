"""What is normal: the activity baseline on a real state file with a controllable clock, its
prompt section, its fitting under a small budget, and the verdict's anomaly figure."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from manual_clock import Clock

from sidecar.context.baseline import (
    DAY_S,
    WEEK_S,
    ActivityBaseline,
    LabelNormality,
    Normality,
    hour_of_week,
)
from sidecar.domain import Box, Detection, FrameObservation, Verdict
from sidecar.events.batching import BatchingRules
from sidecar.events.event_pipeline import EventPipeline
from sidecar.events.payloads import verdict_from_json, verdict_to_json
from sidecar.events.store import EventStore
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.llm.backends import create_backend
from sidecar.llm.context_sections import (
    ContextEntry,
    ContextSection,
    fit_section,
    normality_section,
)
from sidecar.llm.prompt import DATA_BEGIN, DATA_END, PromptInput, build_messages
from sidecar.storage import schema
from sidecar.storage.database import StateDatabase

# A Monday, 02:30 UTC.
MONDAY_0230 = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
START = 1_795_000_000.0


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def baseline(tmp_path: Path, clock: Clock) -> Iterator[ActivityBaseline]:
    database = StateDatabase(tmp_path / "events.sqlite", clock=clock)
    yield ActivityBaseline(database)
    database.close()


def test_hour_of_week_is_the_moments_own_local_hour() -> None:
    assert hour_of_week(MONDAY_0230) == 2
    assert hour_of_week(MONDAY_0230 + timedelta(days=6, hours=21)) == 167  # Sunday 23:30
    # Sunday 23:30 UTC is Monday 09:30 in UTC+10.
    sunday = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert hour_of_week(sunday.astimezone(timezone(timedelta(hours=10)))) == 9


def test_a_new_camera_is_still_learning(baseline: ActivityBaseline) -> None:
    normality = baseline.normality("porch", ["person"], MONDAY_0230)
    assert normality.learning and normality.history_days == 0
    assert normality.anomaly == 0.0
    assert normality.labels == (LabelNormality("person", 0.0, "never"),)


def test_weekly_activity_is_learned_and_rare_activity_stands_out(
    baseline: ActivityBaseline, clock: Clock
) -> None:
    # A person at the porch every Monday around 02:30, for eight weeks.
    for week in range(8):
        assert baseline.record(f"b{week}", "porch", ["person"], MONDAY_0230)
        clock.now += WEEK_S
    normality = baseline.normality("porch", ["person", "car"], MONDAY_0230)
    assert not normality.learning and normality.history_days == 56
    people, cars = normality.labels
    assert people.label == "person" and 0.8 < people.per_week < 1.2
    assert people.level == "occasional"
    assert cars == LabelNormality("car", 0.0, "never")
    assert normality.anomaly == 1.0  # a car was never seen at this hour
    alone = baseline.normality("porch", ["person"], MONDAY_0230)
    assert 0.4 < alone.anomaly < 0.6
    # Another hour of the week, or another camera, learned nothing.
    assert baseline.normality("porch", ["person"], MONDAY_0230 + timedelta(hours=5)).anomaly == 1
    assert baseline.normality("drive", ["person"], MONDAY_0230).learning


def test_activity_decays_when_it_stops(baseline: ActivityBaseline, clock: Clock) -> None:
    for day in range(14):  # twice a day for a week, all in one slot
        baseline.record(f"d{day}", "yard", ["cat"], MONDAY_0230)
        clock.now += DAY_S / 2
    busy = baseline.normality("yard", ["cat"], MONDAY_0230).labels[0]
    assert busy.level == "usual" and busy.per_week >= 2
    clock.now += 26 * WEEK_S
    quiet = baseline.normality("yard", ["cat"], MONDAY_0230).labels[0]
    assert quiet.per_week < busy.per_week / 50
    assert quiet.level == "never"


def test_a_batch_counts_once(baseline: ActivityBaseline, clock: Clock) -> None:
    assert baseline.record("b1", "porch", ["person", "person"], MONDAY_0230)
    assert not baseline.record("b1", "porch", ["person"], MONDAY_0230)
    clock.now += WEEK_S
    (person,) = baseline.normality("porch", ["person"], MONDAY_0230).labels
    # One batch in a week of history (the weight's decay over that week is allowed for).
    assert person.per_week == pytest.approx(0.92, abs=0.02)


def test_prompt_says_how_usual_the_batch_is() -> None:
    normality = Normality(
        2, 30.0, (LabelNormality("car", 3.5, "usual"), LabelNormality("person", 0.2, "rare"))
    )
    section = normality_section(normality)
    assert section is not None
    lines = section.lines()
    assert lines[0] == (
        "How usual this is at this camera on Mondays 02:00-03:00 (from 30 days of history):"
    )
    # The least usual first.
    assert lines[1] == "- people at this camera at this hour: rare, 0.2 a week"
    assert lines[2] == "- cars at this camera at this hour: usual, 3.5 a week"
    learning = normality_section(Normality(2, 3.0, (LabelNormality("car", 0.0, "never"),)))
    assert learning is not None
    assert "Not known yet: 3 day(s) of history" in learning.lines()[1]


def test_a_section_is_fitted_to_its_budget() -> None:
    entries = tuple(ContextEntry(f"- line {i} " + "x" * 20, (("f", "v"),)) for i in range(10))
    section = ContextSection("Title:", entries, budget=130)
    fitted = fit_section(section, len)
    assert 1 <= len(fitted.entries) < 10
    assert fitted.entries[-1].line == f"- … {10 - len(fitted.entries) + 1} more not listed"
    text = "\n".join([*fitted.lines(), *(f"{n}: {v}" for n, v in fitted.fields())])
    assert len(text) <= 130
    assert fit_section(ContextSection("Title:", entries, budget=5), len).lines() == []


def _frames(n: int) -> list[FrameObservation]:
    return [
        FrameObservation(
            f"f{i}", "porch", "Porch", MONDAY_0230 + timedelta(seconds=i), 100, 100,
            (Detection("person", 0, 0.9, Box(10, 10, 50, 90)),),
        )
        for i in range(n)
    ]


def test_the_normality_section_is_in_the_prompt_and_the_whole_fits() -> None:
    normality = Normality(2, 30.0, (LabelNormality("person", 0.2, "rare"),))
    batch = PromptInput(
        "Porch", MONDAY_0230, MONDAY_0230 + timedelta(seconds=40), _frames(40), normality=normality
    )
    _, user = build_messages(batch, UTC, len, 10_000)
    text = user["content"]
    assert "- people at this camera at this hour: rare, 0.2 a week" in text
    assert text.index(DATA_END) < text.index("How usual this is")
    # Under a budget too small for everything, detections go first; the total always fits.
    for budget in (4000, 3000, 2600):
        messages = build_messages(batch, UTC, len, budget)
        assert sum(len(m["content"]) + 8 for m in messages) <= budget
    tight = build_messages(batch, UTC, len, 3000)[1]["content"]
    assert "rare, 0.2 a week" in tight and "not listed" in tight
    assert tight.startswith(DATA_BEGIN)


def test_a_version_4_file_upgrades_with_the_baseline_tables(tmp_path: Path) -> None:
    """Version 5 adds the baseline and the owner's feedback; what version 4 wrote (an identity,
    a verdict without the context fields) is kept and reads back."""
    path = tmp_path / "events.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    schema.migrate(db, schema.MIGRATIONS[:4])
    verdict = Verdict(
        verdict_id="b:final", event_id="b", batch_id="b", camera_id="yard", camera_name="Yard",
        risk_score=40, risk_level="medium", summary="s", reasoning="r", fast_path=False,
        fallback=False, started_at=MONDAY_0230, ended_at=MONDAY_0230, labels=(),
        frame_ids=("x",), snapshot_frame_id="x", snapshot_detections=(), close_reason="idle",
        model="m", llm_ms=1.0, completion_tokens=3, created_at=MONDAY_0230,
    )
    payload = json.loads(verdict_to_json(verdict))
    for key in ("anomaly", "baseline_days", "prompt"):
        del payload[key]  # version 4 wrote no such keys
    db.execute(
        "INSERT INTO verdicts (verdict_id, event_id, payload, created_at, camera_id) "
        "VALUES (?, ?, ?, ?, ?)",
        ("b:final", "b", json.dumps(payload), START, "yard"),
    )
    db.execute(
        "INSERT INTO identities (kind, first_seen, last_seen) VALUES ('person', ?, ?)",
        (START, START),
    )
    db.close()
    database = StateDatabase(path, clock=Clock(START))
    try:
        assert schema.version_of(database.connection) == schema.SCHEMA_VERSION >= 5
        (row,) = database.connection.execute("SELECT payload FROM verdicts").fetchall()
        assert verdict_from_json(row[0]) == verdict
        assert database.connection.execute("SELECT COUNT(*) FROM identities").fetchone()[0] == 1
        tables = {r[0] for r in database.connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"activity_baseline", "activity_cameras", "activity_batches", "feedback"} <= tables
        baseline = ActivityBaseline(database)
        assert baseline.record("b2", "yard", ["person"], MONDAY_0230)
        assert baseline.normality("yard", ["person"], MONDAY_0230).labels[0].per_week > 0
    finally:
        database.close()


async def test_verdicts_carry_the_anomaly_and_the_prompt_says_how_usual(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clock = Clock(START)
    backend = create_backend(
        "random:tiny", use_gpu=False, n_ctx=8192, cache_dir=tmp_path_factory.mktemp("llm")
    )
    analyzer = RiskAnalyzer(backend, tz=UTC)
    await analyzer.start()
    pipeline = EventPipeline(
        EventStore(StateDatabase(tmp_path / "events.sqlite", clock=clock)), analyzer,
        BatchingRules(window_s=90, idle_s=30), clock=clock, tick_s=0.01, resend_after_s=60,
    )
    await pipeline.start()
    try:
        queue = await pipeline.subscribe("ha")
        verdicts: list[Verdict] = []
        # Eight weeks of a person at the porch on Monday nights, then a car.
        for week in range(9):
            at = MONDAY_0230 + timedelta(weeks=week)
            labels = "car" if week == 8 else "person"
            observed = FrameObservation(
                f"w{week}", "porch", "Porch", at, 100, 100,
                (Detection(labels, 0, 0.6, Box(10, 10, 50, 90)),),
            )
            assert await pipeline.observe(observed, "ha")
            clock.now += 31  # idle: the batch closes
            verdict = await asyncio.wait_for(queue.get(), timeout=60)
            await pipeline.ack("ha", [verdict.verdict_id])
            verdicts.append(verdict)
            clock.now += WEEK_S - 31
        first, person, car = verdicts[0], verdicts[7], verdicts[8]
        assert first.baseline_days == 0 and first.anomaly == 0
        assert "Not known yet" in first.prompt
        assert person.baseline_days >= 48 and 0.4 < person.anomaly < 0.7
        assert "people at this camera at this hour: occasional" in person.prompt
        assert car.anomaly == 1.0
        assert "cars at this camera at this hour: never, 0 a week" in car.prompt
    finally:
        await pipeline.stop()
        pipeline.close()
        analyzer.close()
