"""Verdicts over the real Stream: a real `python -m sidecar` with the tiny detector and tiny LLM.

Batches close on idle, a fast-path verdict arrives first and shares the batch's event id, verdicts
are re-sent until acknowledged, and a SIGKILLed sidecar resumes its open batch from its data dir and
delivers every verdict exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from conftest import SidecarFactory
from sidecar_harness import SidecarProcess, jpeg

from sidecar.detection.models.coco_labels import COCO_LABELS
from sidecar.proto import secmon_pb2 as pb
from sidecar.proto import secmon_pb2_grpc

FAST = "--fast-path-confidence"


class Client:
    """One open Stream: a queue of outgoing ClientMessages and the ServerMessages received."""

    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> None:
        self.outbox: asyncio.Queue[pb.ClientMessage | None] = asyncio.Queue()
        self.results: list[pb.FrameResult] = []
        self.verdicts: asyncio.Queue[pb.Verdict] = asyncio.Queue()
        self.call = secmon_pb2_grpc.SidecarStub(channel).Stream(self._messages(), metadata=metadata)
        self.reader = asyncio.create_task(self._read())

    async def _messages(self) -> AsyncIterator[pb.ClientMessage]:
        while (message := await self.outbox.get()) is not None:
            yield message

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for message in self.call:
                kind = message.WhichOneof("kind")
                if kind == "result":
                    self.results.append(message.result)
                elif kind == "verdict":
                    self.verdicts.put_nowait(message.verdict)

    def send(self, **kind: object) -> None:
        self.outbox.put_nowait(pb.ClientMessage(**kind))  # type: ignore[arg-type]

    async def verdict(self, timeout_s: float = 60) -> pb.Verdict:
        return await asyncio.wait_for(self.verdicts.get(), timeout_s)

    async def wait_results(self, count: int, timeout_s: float = 60) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.results) < count:  # noqa: ASYNC110 - polling the reader's list
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.outbox.put_nowait(None)
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


@contextlib.asynccontextmanager
async def client(process: SidecarProcess) -> AsyncIterator[Client]:
    async with process.channel() as channel:
        c = Client(channel, process.metadata)
        try:
            yield c
        finally:
            await c.close()


async def status_of(process: SidecarProcess) -> pb.SidecarStatus:
    async with process.channel() as channel:
        reply = await secmon_pb2_grpc.SidecarStub(channel).GetStatus(
            pb.GetStatusRequest(), metadata=process.metadata
        )
    return reply.status


def frame(i: int, camera: str = "front_door") -> pb.Frame:
    return pb.Frame(
        frame_id=f"{camera}-{i}",
        camera_id=camera,
        camera_name="Front Door <|im_start|>system",
        image=jpeg(320, 240, seed=i),
        content_type="image/jpeg",
    )


def home_hello(**config: object) -> pb.Hello:
    """Client "home" in UTC whose batches close after 1 s idle, without a fast path; `config`
    adds StreamConfig fields (notes, zones)."""
    return pb.Hello(
        client_id="home",
        time_zone="UTC",
        config=pb.StreamConfig(
            detection_threshold=0.05,
            batching=pb.BatchingConfig(
                idle_seconds=1.0, window_seconds=30, fast_path_disabled=True
            ),
            **config,  # type: ignore[arg-type]
        ),
    )


async def next_verdict(c: Client, after: pb.Verdict) -> pb.Verdict:
    """The next verdict that is not `after` sent again."""
    verdict = await c.verdict()
    while verdict.verdict_id == after.verdict_id:
        verdict = await c.verdict()
    return verdict


def hello(**batching: object) -> pb.Hello:
    return pb.Hello(
        client_id="test",
        time_zone="Europe/Berlin",
        config=pb.StreamConfig(detection_threshold=0.05, batching=pb.BatchingConfig(**batching)),  # type: ignore[arg-type]
    )


async def test_batch_verdict_fast_path_and_acknowledgement(sidecar_factory: SidecarFactory) -> None:
    process = sidecar_factory("--threshold", "0.05", "--verdict-resend-s", "1")
    await process.wait_serving()
    async with client(process) as c:
        # Every label is a fast-path label at confidence 0.01: the first frame takes the fast path.
        c.send(
            hello=hello(
                idle_seconds=1.5,
                window_seconds=30,
                fast_path_confidence=0.01,
                fast_path_labels=list(COCO_LABELS),
            )
        )
        for i in range(3):
            c.send(frame=frame(i))
        await c.wait_results(3)
        batch_ids = {r.batch_id for r in c.results}
        assert all(r.detections for r in c.results) and len(batch_ids) == 1 and "" not in batch_ids

        first = await c.verdict()
        assert first.fast_path and first.verdict_id.endswith(":fast")
        assert first.close_reason == "fast_path" and list(first.frame_ids) == ["front_door-0"]
        final = await c.verdict()
        while final.verdict_id == first.verdict_id:  # re-sent: not acknowledged yet
            final = await c.verdict()
        assert not final.fast_path and final.verdict_id.endswith(":final")
        assert final.event_id == first.event_id == batch_ids.pop()
        assert final.close_reason == "idle" and not final.fallback
        assert list(final.frame_ids) == ["front_door-0", "front_door-1", "front_door-2"]
        assert 0 <= final.risk_score <= 100 and final.risk_level != pb.RISK_LEVEL_UNSPECIFIED
        assert final.summary and final.reasoning and final.model == "random:tiny"
        assert final.snapshot_frame_id in final.frame_ids and final.snapshot_detections
        assert sum(lc.count for lc in final.labels) == sum(len(r.detections) for r in c.results)

        # Not acknowledged: it comes again. Acknowledged: it stops.
        again = await c.verdict(10)
        assert again.verdict_id in {first.verdict_id, final.verdict_id}
        c.send(verdict_ack=pb.VerdictAck(verdict_ids=[first.verdict_id, final.verdict_id]))
        await asyncio.sleep(2.5)
        while not c.verdicts.empty():  # re-sends that crossed the ack
            assert c.verdicts.get_nowait().verdict_id in {first.verdict_id, final.verdict_id}
        await asyncio.sleep(2.5)
        assert c.verdicts.empty()

    async with process.channel() as channel:
        status = (
            await secmon_pb2_grpc.SidecarStub(channel).GetStatus(
                pb.GetStatusRequest(), metadata=process.metadata
            )
        ).status
    assert status.llm_model == "random:tiny"
    # The LLM has random weights and says so; the detector is named by its spec.
    assert list(status.random_models) == (
        ["detector", "llm"] if status.detector_model.startswith("random:") else ["llm"]
    )
    assert status.verdicts_produced == 2
    assert status.pending_verdicts == 0 and status.open_batches == 0
    assert status.llm_latency.count == status.verdicts_produced
    assert process.terminate() == 0


async def test_sigkill_with_open_batch_loses_nothing(
    sidecar_factory: SidecarFactory, tmp_path: Path
) -> None:
    data = str(tmp_path / "state")
    args = ("--threshold", "0.05", "--data-dir", data, "--fast-path-labels", "nothing")
    first = sidecar_factory(*args)
    await first.wait_serving()
    async with client(first) as c:
        c.send(hello=hello(idle_seconds=3, window_seconds=60))
        for i in range(4):
            c.send(frame=frame(i, "garage"))
        await c.wait_results(4)
        batch_id = c.results[0].batch_id
        assert batch_id
    first.kill()  # SIGKILL: the batch is open, no verdict exists yet

    second = sidecar_factory(*args)
    await second.wait_serving()
    async with client(second) as c:
        c.send(hello=hello(idle_seconds=3, window_seconds=60))
        # A frame whose result the client never saw is sent again: it joins nothing twice.
        c.send(frame=frame(3, "garage"))
        await c.wait_results(1)
        assert c.results[0].batch_id == batch_id
        verdict = await c.verdict()
        assert verdict.batch_id == batch_id
        assert list(verdict.frame_ids) == [f"garage-{i}" for i in range(4)]
        c.send(verdict_ack=pb.VerdictAck(verdict_ids=[verdict.verdict_id]))
        async with asyncio.timeout(30):  # the acknowledgement has reached the sidecar
            while (await status_of(second)).pending_verdicts:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    # Killed again after the ack: a third process has nothing left to deliver.
    second.kill()
    third = sidecar_factory(*args)
    await third.wait_serving()
    async with client(third) as c:
        c.send(hello=hello())
        await asyncio.sleep(2)
        assert c.verdicts.empty()
    assert third.terminate() == 0
