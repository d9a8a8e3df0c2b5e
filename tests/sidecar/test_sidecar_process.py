"""The real `python -m sidecar` process on loopback, through the generated client stubs."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from conftest import TEST_TOKEN, SidecarFactory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sidecar_harness import (
    SidecarProcess,
    encode,
    eventually,
    jpeg,
    png,
    png_bomb,
    scene,
    truncated,
)

from sidecar.proto import secmon_pb2 as pb
from sidecar.proto import secmon_pb2_grpc

E = pb.FrameErrorCode


def stub(channel: grpc.aio.Channel) -> secmon_pb2_grpc.SidecarStub:
    return secmon_pb2_grpc.SidecarStub(channel)


async def status_of(sidecar: SidecarProcess) -> pb.SidecarStatus:
    async with sidecar.channel() as channel:
        reply = await stub(channel).GetStatus(pb.GetStatusRequest(), metadata=sidecar.metadata)
        return reply.status


async def test_health_serving_and_reflection(sidecar: SidecarProcess) -> None:
    assert await sidecar.health() == health_pb2.HealthCheckResponse.SERVING
    assert await sidecar.health("secmon.v1.Sidecar") == health_pb2.HealthCheckResponse.SERVING
    async with sidecar.channel() as channel:  # no token: reflection is exempt
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        reply = await call.read()
        names = {s.name for s in reply.list_services_response.service}
    assert {"secmon.v1.Sidecar", "grpc.health.v1.Health"} <= names
    log = sidecar.log
    assert log.index("listening on") < log.index("Ready")


async def test_analyze(sidecar: SidecarProcess) -> None:
    async with sidecar.channel() as channel:
        reply = await stub(channel).Analyze(
            pb.AnalyzeRequest(
                frame=pb.Frame(frame_id="one", camera_id="porch", image=jpeg(400, 300)),
                threshold=0.02,
            ),
            metadata=sidecar.metadata,
        )
    r = reply.result
    assert (r.frame_id, r.camera_id, r.width, r.height) == ("one", "porch", 400, 300)
    assert not r.HasField("error")
    assert r.detections and r.model_batch_size >= 1
    assert r.inference_ms > 0 and r.total_ms >= r.inference_ms
    for d in r.detections:
        assert d.confidence > 0.02 and d.label
        assert 0 <= d.box.x_min <= d.box.x_max <= 400
        assert 0 <= d.box.y_min <= d.box.y_max <= 300


async def test_analyze_bad_frame(sidecar: SidecarProcess) -> None:
    async with sidecar.channel() as channel:
        reply = await stub(channel).Analyze(
            pb.AnalyzeRequest(frame=pb.Frame(image=b"not an image")), metadata=sidecar.metadata
        )
    assert reply.result.error.code == E.FRAME_ERROR_CODE_NOT_AN_IMAGE
    assert reply.result.error.message


async def test_stream_of_many_frames_from_several_cameras(sidecar: SidecarProcess) -> None:
    before = await status_of(sidecar)
    too_large = encode(scene(700, 700, seed=3), "PNG")  # ~1 MB > the 400 kB app limit
    assert 400_000 < len(too_large) < 4 * 1024 * 1024
    bad = {
        "empty": (b"", E.FRAME_ERROR_CODE_EMPTY),
        "garbage": (b"\x00garbage" * 50, E.FRAME_ERROR_CODE_NOT_AN_IMAGE),
        "truncated": (truncated(jpeg(320, 240, seed=9)), E.FRAME_ERROR_CODE_TRUNCATED),
        "bomb": (png_bomb(30_000, 30_000), E.FRAME_ERROR_CODE_TOO_MANY_PIXELS),
        "too_large": (too_large, E.FRAME_ERROR_CODE_TOO_LARGE),
    }
    cameras = ["front_door", "garage", "garden"]
    plan: list[tuple[str, str, bytes, int]] = []  # frame id, camera, image, expected error
    for i in range(30):
        camera = cameras[i % 3]
        if i % 6 == 5:
            name = list(bad)[(i // 6) % len(bad)]
            data, code = bad[name]
        else:
            data = jpeg(160 + 16 * i, 120 + 8 * i, seed=i) if i % 2 else png(96, 64, seed=i)
            code = E.FRAME_ERROR_CODE_UNSPECIFIED
        plan.append((f"{camera}-{i}", camera, data, code))
    plan.append(("", "garage", jpeg(64, 48), E.FRAME_ERROR_CODE_INVALID_REQUEST))
    plan.append(("big", "garden", jpeg(1600, 1200, seed=7), E.FRAME_ERROR_CODE_UNSPECIFIED))

    async def messages():  # type: ignore[no-untyped-def]
        yield pb.ClientMessage(hello=pb.Hello(client_id="test"))
        for frame_id, camera, data, _ in plan:
            yield pb.ClientMessage(frame=pb.Frame(frame_id=frame_id, camera_id=camera, image=data))

    results: list[pb.FrameResult] = []
    async with sidecar.channel() as channel:
        call = stub(channel).Stream(messages(), metadata=sidecar.metadata)
        async for message in call:
            if message.WhichOneof("kind") == "result":
                results.append(message.result)
        assert await call.code() == grpc.StatusCode.OK

    assert len(results) == len(plan)  # every frame got exactly one result
    expected = {(f, c): code for f, c, _, code in plan}
    for r in results:
        assert r.error.code == expected[(r.frame_id, r.camera_id)], r
        if r.error.code == E.FRAME_ERROR_CODE_UNSPECIFIED:
            assert r.width > 0 and r.model_batch_size >= 1
        else:
            assert not r.detections and r.error.message
    for camera in cameras:  # results come back in send order per camera
        sent = [f for f, c, _, _ in plan if c == camera]
        assert [r.frame_id for r in results if r.camera_id == camera] == sent
    big = next(r for r in results if r.frame_id == "big")
    assert (big.width, big.height) == (1600, 1200)

    after = await status_of(sidecar)
    failures = Counter(pb.FrameErrorCode.Name(code).removeprefix("FRAME_ERROR_CODE_")
                       for *_, code in plan if code != E.FRAME_ERROR_CODE_UNSPECIFIED)
    ok = sum(1 for *_, code in plan if code == E.FRAME_ERROR_CODE_UNSPECIFIED)
    assert after.frames_received - before.frames_received == len(plan)
    assert after.frames_processed - before.frames_processed == ok
    assert after.frames_failed - before.frames_failed == sum(failures.values())
    for name, count in failures.items():
        assert after.errors_by_code[name] - before.errors_by_code.get(name, 0) == count
    assert after.model_batches > before.model_batches
    assert 1 <= after.mean_model_batch_size <= 4
    assert after.inference_latency.count == after.model_batches
    assert after.frame_latency.count == after.frames_processed
    assert after.queue_depth == 0
    assert (after.detector_model, after.device, after.dtype) == (
        before.detector_model, "cpu", "float32")
    assert after.max_batch == 4 and after.default_threshold == pytest.approx(0.05)
    assert list(after.gpus) == []  # no NVML here


async def test_batches_fill_across_streams(sidecar: SidecarProcess) -> None:
    before = await status_of(sidecar)

    async def one_stream(camera: str) -> list[pb.FrameResult]:
        async def messages():  # type: ignore[no-untyped-def]
            for i in range(8):
                yield pb.ClientMessage(frame=pb.Frame(
                    frame_id=f"x{i}", camera_id=camera, image=jpeg(64, 48, seed=i)))

        async with sidecar.channel() as channel:
            call = stub(channel).Stream(messages(), metadata=sidecar.metadata)
            return [m.result async for m in call]

    per_stream = await asyncio.gather(*(one_stream(f"cam{i}") for i in range(3)))
    assert all(len(results) == 8 for results in per_stream)
    after = await status_of(sidecar)
    assert after.frames_processed - before.frames_processed == 24
    assert max(r.model_batch_size for rs in per_stream for r in rs) > 1


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_auth_rejects_missing_or_wrong_tokens(
    sidecar: SidecarProcess, token: str | None
) -> None:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    async with sidecar.channel() as channel:
        s = stub(channel)
        for call in (
            s.GetStatus(pb.GetStatusRequest(), metadata=metadata),
            s.Analyze(pb.AnalyzeRequest(frame=pb.Frame(image=jpeg(32, 32))), metadata=metadata),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stream = s.Stream(metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream.read()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Health needs no token.
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_right_token_is_accepted(sidecar: SidecarProcess) -> None:
    assert sidecar.token == TEST_TOKEN
    assert (await status_of(sidecar)).ready


async def test_sigterm_drains_in_flight_frames_and_exits_0(sidecar_factory: SidecarFactory) -> None:
    # Batches wait up to an hour to fill: the frames are certainly in flight at SIGTERM.
    process = sidecar_factory("--max-batch", "64", "--max-delay-ms", "3600000",
                              "--threshold", "0.05")
    await process.wait_serving()
    frames = 8
    async with process.channel() as channel:
        call = stub(channel).Stream()
        for i in range(frames):
            await call.write(pb.ClientMessage(frame=pb.Frame(
                frame_id=f"d{i}", camera_id=f"cam{i % 2}", image=jpeg(120, 90, seed=i))))
        async def all_queued() -> bool:
            reply = await stub(channel).GetStatus(pb.GetStatusRequest())
            return bool(reply.status.queue_depth >= frames)

        await eventually(all_queued)
        exit_code = asyncio.get_running_loop().run_in_executor(None, process.terminate, 60.0)
        results = [(await call.read()).result for _ in range(frames)]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # reconnect later
    assert sorted(r.frame_id for r in results) == [f"d{i}" for i in range(frames)]
    assert not any(r.HasField("error") for r in results)
    assert all(1 <= r.model_batch_size <= frames for r in results)
    assert await exit_code == 0
    assert "SIGTERM received" in process.log and "Stopped" in process.log
