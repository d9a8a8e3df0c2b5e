"""What a frame costs as its batch grows: one batch that never closes, through the real event
pipeline and a real SQLite state file (no LLM).

    .venv-sidecar/bin/python benchmarks/bench_batch_growth.py --frames 1000 --detections 20

Prints, for the first and the last 50 frames of the batch: the time `observe` takes per frame and
the SQL bytes written per frame; the event loop's lag while frames are fed (a ticker measures how
late its sleeps wake); and the state file's size. For comparison it runs the write pattern the
state file used before schema version 3 (the whole batch rewritten on every frame, on the event
loop), against the same SQLite file layout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sidecar.domain import Box, Detection, FrameObservation
from sidecar.events.batching import BatchingRules, OpenBatch
from sidecar.events.event_pipeline import EventPipeline
from sidecar.events.payloads import frame_to_json
from sidecar.events.store import EventStore
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.storage.database import STATE_FILE, StateDatabase

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EDGE = 50


def frame(i: int, detections: int) -> FrameObservation:
    dets = tuple(
        Detection("person", 0, 0.6, Box(j, j, j + 40.5, j + 80.25)) for j in range(detections)
    )
    return FrameObservation(f"frame-{i:06d}", "yard", "Yard", T0 + timedelta(seconds=i / 2),
                            2560, 1440, dets)


class LoopLag:
    """How late a 5 ms sleep wakes up, sampled for as long as it runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            self.samples.append((time.perf_counter() - start - 0.005) * 1000)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def summary(self) -> str:
        ordered = sorted(self.samples) or [0.0]
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        median = statistics.median(ordered)
        return f"p50 {median:.2f} ms, p99 {p99:.2f} ms, max {ordered[-1]:.2f} ms"


def report(name: str, times_ms: list[float], sql_bytes: list[int], size: int, lag: LoopLag) -> None:
    first, last = statistics.mean(times_ms[:EDGE]), statistics.mean(times_ms[-EDGE:])
    print(f"{name}:")
    print(f"  per frame, first {EDGE}: {first:.3f} ms, {statistics.mean(sql_bytes[:EDGE]):,.0f} "
          f"SQL bytes; last {EDGE}: {last:.3f} ms, {statistics.mean(sql_bytes[-EDGE:]):,.0f} SQL "
          f"bytes; time ratio last/first {last / first:.2f}")
    print(f"  event-loop lag while feeding: {lag.summary()}")
    print(f"  state file: {size / 1e6:.2f} MB")


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def current(path: Path, args: argparse.Namespace) -> None:
    database = StateDatabase(path)
    written: list[int] = []
    database.connection.set_trace_callback(
        lambda sql: written.append(len(sql)) if sql.split()[0] in {"INSERT", "UPDATE"} else None
    )
    pipeline = EventPipeline(
        EventStore(database), RiskAnalyzer(None, tz=UTC),
        BatchingRules(window_s=3600, idle_s=3600, max_frames=args.frames + 1),
        resend_after_s=3600,
    )
    await pipeline.start()
    times, sql_bytes = [], []
    with LoopLag() as lag:
        for i in range(args.frames):
            written.clear()
            start = time.perf_counter()
            await pipeline.observe(frame(i, args.detections), "bench")
            times.append((time.perf_counter() - start) * 1000)
            sql_bytes.append(sum(written))
    await pipeline.stop()
    pipeline.close()
    report("current (a row per frame, on the state file's thread)", times, sql_bytes,
           file_size(path), lag)


async def rewrite_per_frame(path: Path, args: argparse.Namespace) -> None:
    """The pre-version-3 pattern: the batch's whole JSON (all frames) upserted on every frame,
    plus every frame's frame -> batch record, inline on the event loop."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE batches (batch_id TEXT PRIMARY KEY, payload TEXT, updated_at REAL)")
    db.execute("CREATE TABLE batched_frames (frame_key TEXT PRIMARY KEY, batch_id TEXT)")
    batch = OpenBatch("b", "yard", "Yard", 0.0, 0.0)
    times, sql_bytes = [], []
    with LoopLag() as lag:
        for i in range(args.frames):
            start = time.perf_counter()
            batch.append(frame(i, args.detections), float(i))
            frames = [frame_to_json(f) for f in batch.frames]
            payload = json.dumps({"batch_id": "b", "frames": frames})
            keys = [(f"yard\x1f{f.frame_id}", "b") for f in batch.frames]
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO batches VALUES ('b', ?, ?) ON CONFLICT (batch_id) DO UPDATE "
                       "SET payload = excluded.payload", (payload, float(i)))
            db.executemany("INSERT OR IGNORE INTO batched_frames VALUES (?, ?)", keys)
            db.execute("COMMIT")
            times.append((time.perf_counter() - start) * 1000)
            sql_bytes.append(len(payload) + sum(len(k) + 1 for k, _ in keys))
            await asyncio.sleep(0)
    db.close()
    report("before (whole batch rewritten per frame, on the event loop)", times, sql_bytes,
           file_size(path), lag)


async def run(args: argparse.Namespace) -> None:
    print(f"one batch of {args.frames} frames, {args.detections} detections each")
    with tempfile.TemporaryDirectory(prefix="secmon-batch-bench-") as tmp:
        await current(Path(tmp) / "now" / STATE_FILE, args)
        (Path(tmp) / "before").mkdir()
        await rewrite_per_frame(Path(tmp) / "before" / STATE_FILE, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--detections", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
