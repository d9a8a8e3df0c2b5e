"""What the sidecar says about its batching and capacity (HelloReply, GetStatus), and the bound on
decoded frames, through the real server, pipeline, batcher and tiny model."""

from __future__ import annotations

import asyncio

import pytest
from sidecar_harness import eventually, jpeg
from test_servicer import GatedDetector, Running, collect, frame_msg, start_server

from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector
from sidecar.proto import secmon_pb2 as pb


@pytest.fixture
def gated(tiny_detector: RTDetrV2Detector) -> GatedDetector:
    return GatedDetector(tiny_detector)


async def stop(r: Running) -> None:
    await r.channel.close()
    await r.server.shutdown(grace_s=10)


async def test_start_up_times_each_batch_size_and_the_status_shows_it(
    gated: GatedDetector,
) -> None:
    r = await start_server(gated, max_batch=4)
    try:
        status = await r.status()
        assert status.batching_policy == "latency"
        costs = {c.size: c for c in status.batch_costs}
        # Sizes 1, 2, 4 in turn, stopping after the first that does not pay (on a CPU: 2).
        assert sorted(costs) in ([1, 2], [1, 2, 4])
        assert all(c.forward_ms > 0 and c.samples >= 1 and c.batches == 0
                   for c in costs.values())
        workers = status.decode_workers
        assert workers >= 1
        # One batch in the model, one waiting, one frame per decoder.
        assert 2 + workers <= status.max_frames_in_flight <= 2 * 4 + workers
        assert status.max_decoded_frames == 2 * 4 + workers
        assert 0 < status.rss_bytes <= status.peak_rss_bytes
        assert status.compile_mode == "off"

        call = r.stub.Stream()
        await call.write(pb.ClientMessage(hello=pb.Hello(client_id="home")))
        reply = (await call.read()).hello
        assert reply.max_frames_in_flight == status.max_frames_in_flight
        for i in range(6):
            await call.write(frame_msg(f"f{i}", "cam", jpeg(160, 120, seed=i)))
        results = [m.result for m in await collect(call, 7) if m.HasField("result")]
        assert [res.frame_id for res in results[:6]] == [f"f{i}" for i in range(6)]
        await call.done_writing()

        status = await r.status()
        served = {c.size: c.batches for c in status.batch_costs}
        # Every batch served is counted under its size; start-up timing is not.
        assert sum(served.values()) == status.model_batches == len(gated.batches)
        assert sum(size * n for size, n in served.items()) == 6
        assert all(size <= 4 for size in served)
    finally:
        await stop(r)


async def test_the_fill_policy_skips_the_timing_and_fills_batches(gated: GatedDetector) -> None:
    r = await start_server(gated, max_batch=4, max_delay_ms=3_600_000, batching_policy="fill")
    try:
        status = await r.status()
        assert status.batching_policy == "fill"
        assert list(status.batch_costs) == []
        assert status.max_frames_in_flight == 2 * 4 + status.decode_workers
        call = r.stub.Stream()
        for i in range(8):  # an hour-long delay: only full batches can run
            await call.write(frame_msg(f"f{i}", "cam", jpeg(160, 120, seed=i)))
        await collect(call, 8)
        await call.done_writing()
        assert gated.batches == [4, 4]
    finally:
        await stop(r)


async def test_decoded_frames_waiting_for_the_model_are_bounded(gated: GatedDetector) -> None:
    """With the model held, 20 frames arrive: only `max_decoded` are decoded, the others wait as
    their bytes; when the model goes on, every frame gets its result, in order."""
    r = await start_server(gated, max_batch=2, decode_workers=1)
    pipeline = r.server.pipeline
    assert pipeline.max_decoded == 2 * 2 + 1
    gated.infer_gate.clear()
    call = r.stub.Stream()
    try:
        for i in range(20):
            await call.write(frame_msg(f"f{i}", f"cam{i % 3}", jpeg(320, 240, seed=i)))

        async def all_received() -> bool:
            return (await r.status()).frames_received == 20

        await eventually(all_received)

        async def saturated() -> bool:
            return pipeline.decoded_in_use == pipeline.max_decoded

        await eventually(saturated)
        await asyncio.sleep(0.2)  # would a 6th frame be decoded meanwhile? it must not
        assert pipeline.decoded_in_use == pipeline.max_decoded
        assert pipeline.queue_depth == 20
        gated.infer_gate.set()
        results = [m.result for m in await collect(call, 20)]
        assert sorted(res.frame_id for res in results) == sorted(f"f{i}" for i in range(20))
        assert not any(res.HasField("error") for res in results)
        assert pipeline.decoded_in_use == 0
        assert sum(gated.batches) == 20
        await call.done_writing()
    finally:
        gated.infer_gate.set()
        await stop(r)
