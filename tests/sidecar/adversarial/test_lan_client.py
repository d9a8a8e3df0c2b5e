"""Attacker: a client on the LAN, against a real `python -m sidecar` on loopback.

Bad tokens, oversized and malformed messages, many streams, hostile Hellos and odd camera ids:
each is refused or contained for the one call that made it, and the sidecar keeps serving
everyone else.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import grpc
import pytest
from conftest import TEST_TOKEN, SidecarFactory
from sidecar_harness import SidecarProcess, jpeg

from sidecar.proto import secmon_pb2 as pb
from sidecar.proto import secmon_pb2_grpc
from sidecar.storage.database import STATE_FILE

STREAM = "/secmon.v1.Sidecar/Stream"


@pytest.fixture(scope="module")
def lan_sidecar(sidecar_factory: SidecarFactory) -> SidecarProcess:
    process = sidecar_factory(
        "--threshold", "0.05", "--max-frame-bytes", "400000", "--max-inflight-per-stream", "8",
        token=TEST_TOKEN,
    )
    process.wait_serving_sync()
    return process


@pytest.fixture
async def stub(lan_sidecar: SidecarProcess) -> AsyncIterator[secmon_pb2_grpc.SidecarStub]:
    async with lan_sidecar.channel() as channel:
        yield secmon_pb2_grpc.SidecarStub(channel)


async def status_of(stub: secmon_pb2_grpc.SidecarStub, sidecar: SidecarProcess) -> pb.SidecarStatus:
    reply = await stub.GetStatus(pb.GetStatusRequest(), metadata=sidecar.metadata, timeout=60)
    return reply.status


async def next_of_kind(call: grpc.aio.StreamStreamCall, kind: str) -> pb.ServerMessage:
    while True:
        message = await asyncio.wait_for(call.read(), timeout=60)
        assert message is not grpc.aio.EOF, f"stream ended while waiting for {kind}"
        if message.WhichOneof("kind") == kind:
            return message


def frame(fid: str, camera: str = "yard", image: bytes | None = None) -> pb.ClientMessage:
    return pb.ClientMessage(
        frame=pb.Frame(frame_id=fid, camera_id=camera, image=image or jpeg(96, 64, seed=len(fid)))
    )


# -- tokens ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        None,
        f"Bearer {TEST_TOKEN}x",
        f"bearer {TEST_TOKEN}",
        f"Bearer  {TEST_TOKEN}",
        TEST_TOKEN,
        f"Bearer {TEST_TOKEN[:-1]}",
        "Bearer " + "A" * 8000,
    ],
)
async def test_every_rpc_refuses_a_wrong_token(
    lan_sidecar: SidecarProcess, stub: secmon_pb2_grpc.SidecarStub, header: str | None
) -> None:
    metadata = (("authorization", header),) if header is not None else ()
    refused = {grpc.StatusCode.UNAUTHENTICATED}
    if header is not None and len(header) > 4096:  # gRPC may refuse the metadata itself first
        refused.add(grpc.StatusCode.RESOURCE_EXHAUSTED)
    with pytest.raises(grpc.aio.AioRpcError) as status_call:
        await stub.GetStatus(pb.GetStatusRequest(), metadata=metadata, timeout=30)
    assert status_call.value.code() in refused
    with pytest.raises(grpc.aio.AioRpcError) as analyze_call:
        await stub.Analyze(pb.AnalyzeRequest(frame=pb.Frame(image=jpeg(32, 32))),
                           metadata=metadata, timeout=30)
    assert analyze_call.value.code() in refused
    # The stream is refused before anything is read from it (writing first would race the
    # refusal: a write failing on the client's side ends the call with INTERNAL there).
    call = stub.Stream(metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as stream_call:
        await asyncio.wait_for(call.read(), 30)
    assert stream_call.value.code() in refused
    assert (await status_of(stub, lan_sidecar)).ready  # the right token still works


# -- sizes and malformed bytes -------------------------------------------------------------------
async def test_an_oversized_message_ends_only_its_own_stream(
    lan_sidecar: SidecarProcess, stub: secmon_pb2_grpc.SidecarStub
) -> None:
    bystander = stub.Stream(metadata=lan_sidecar.metadata)
    attacker = stub.Stream(metadata=lan_sidecar.metadata)
    # Over the frame limit but within gRPC's: a per-frame error, the stream goes on.
    await attacker.write(frame("big", image=b"\xff\xd8" + b"\0" * 500_000))
    result = (await next_of_kind(attacker, "result")).result
    assert result.error.code == pb.FRAME_ERROR_CODE_TOO_LARGE and not result.retryable
    # Over gRPC's own limit: that call fails, nobody else's.
    await attacker.write(frame("huge", image=b"\0" * 8_000_000))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await next_of_kind(attacker, "result")
    assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await bystander.write(frame("fine"))
    ok = (await next_of_kind(bystander, "result")).result
    assert ok.frame_id == "fine" and not ok.HasField("error")
    await bystander.done_writing()
    status = await status_of(stub, lan_sidecar)
    assert status.max_frame_bytes == 400_000 and status.max_pixels > 0


@pytest.mark.parametrize(
    "garbage",
    [b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05\x0a\x03abc\x12\x7f", b"\x00" * 4096],
)
async def test_malformed_protobuf_bytes_fail_only_their_call(
    lan_sidecar: SidecarProcess, stub: secmon_pb2_grpc.SidecarStub, garbage: bytes
) -> None:
    async with lan_sidecar.channel() as channel:
        raw = channel.stream_stream(STREAM)  # bytes in, bytes out: no client-side checks
        call = raw(metadata=lan_sidecar.metadata)
        code = grpc.StatusCode.OK
        try:
            await call.write(garbage)
            await call.done_writing()
            while await asyncio.wait_for(call.read(), timeout=60) is not grpc.aio.EOF:
                pass
        except grpc.aio.AioRpcError as err:
            code = err.code()
    # The call may end cleanly (no message was ever parsed) or with an error; either way it ends,
    # and the sidecar goes on serving.
    assert code in {grpc.StatusCode.OK, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                    grpc.StatusCode.INVALID_ARGUMENT}
    assert lan_sidecar.proc.poll() is None
    assert (await status_of(stub, lan_sidecar)).ready


# -- many streams ------------------------------------------------------------------------------
async def test_fifty_streams_at_once_are_all_answered(
    lan_sidecar: SidecarProcess, stub: secmon_pb2_grpc.SidecarStub
) -> None:
    calls = [stub.Stream(metadata=lan_sidecar.metadata) for _ in range(50)]
    for i, call in enumerate(calls):
        await call.write(pb.ClientMessage(hello=pb.Hello(client_id=f"crowd-{i}")))
        await call.write(frame(f"crowd-{i}", camera=f"cam{i}"))
    results = await asyncio.gather(*(next_of_kind(c, "result") for c in calls))
    assert sorted(r.result.frame_id for r in results) == sorted(f"crowd-{i}" for i in range(50))
    assert not any(r.result.HasField("error") for r in results)
    assert (await status_of(stub, lan_sidecar)).active_streams >= 50  # all still open
    for call in calls:
        await call.done_writing()


# -- hostile Hello -----------------------------------------------------------------------------
async def test_a_hostile_hello_is_answered_with_warnings_and_changes_nobody_elses_rules(
    lan_sidecar: SidecarProcess, stub: secmon_pb2_grpc.SidecarStub
) -> None:
    hostile = stub.Stream(metadata=lan_sidecar.metadata)
    await hostile.write(pb.ClientMessage(hello=pb.Hello(
        client_id="x" * 100_000,
        time_zone="../../../../etc/passwd" + "a" * 5000,
        config=pb.StreamConfig(
            detection_threshold=math.nan,
            batching=pb.BatchingConfig(
                window_seconds=math.nan, idle_seconds=-1, fast_path_confidence=math.inf,
                labels_of_interest=["person", "", "z" * 1000], max_frames_per_batch=10**9,
            ),
        ),
    )))
    reply = (await next_of_kind(hostile, "hello")).hello
    warnings = list(reply.config_warnings)
    assert len(warnings) == 7, warnings
    for needle in ("client_id", "detection_threshold", "window_seconds", "idle_seconds",
                   "fast_path_confidence", "max_frames_per_batch", "labels_of_interest"):
        assert any(needle in w for w in warnings), (needle, warnings)
    # A later StreamConfig is answered too.
    await hostile.write(pb.ClientMessage(config=pb.StreamConfig(
        batching=pb.BatchingConfig(window_seconds=1e12, idle_seconds=math.inf)
    )))
    later = (await next_of_kind(hostile, "config_reply")).config_reply
    assert len(later.config_warnings) == 2

    # Another client's quick rules still apply to its own camera: its batch closes in seconds,
    # not after the hostile client's (defaulted) 90 s.
    quick = stub.Stream(metadata=lan_sidecar.metadata)
    await quick.write(pb.ClientMessage(hello=pb.Hello(
        client_id="quick-home",
        config=pb.StreamConfig(batching=pb.BatchingConfig(window_seconds=2, idle_seconds=1)),
    )))
    assert not (await next_of_kind(quick, "hello")).hello.config_warnings
    for i in range(3):
        await quick.write(frame(f"q{i}", camera="quick-cam", image=jpeg(160, 120, seed=40 + i)))
    joined = [(await next_of_kind(quick, "result")).result for _ in range(3)]
    assert any(r.batch_id for r in joined), "no detection joined a batch"
    verdict = (await next_of_kind(quick, "verdict")).verdict
    assert verdict.camera_id == "quick-cam" and verdict.close_reason in {"idle", "window"}
    await quick.write(pb.ClientMessage(verdict_ack=pb.VerdictAck(verdict_ids=[verdict.verdict_id])))
    for call in (hostile, quick):
        await call.done_writing()


# -- camera and frame ids ------------------------------------------------------------------------
async def test_odd_ids_are_refused_or_kept_as_plain_ids(
    lan_sidecar: SidecarProcess, stub: secmon_pb2_grpc.SidecarStub
) -> None:
    call = stub.Stream(metadata=lan_sidecar.metadata)
    cases = {
        "": pb.FRAME_ERROR_CODE_INVALID_REQUEST,
        "c" * 300: pb.FRAME_ERROR_CODE_INVALID_REQUEST,
        "cam\x00era": pb.FRAME_ERROR_CODE_INVALID_REQUEST,
        "cam\nera": pb.FRAME_ERROR_CODE_INVALID_REQUEST,
        "../../etc/passwd": pb.FRAME_ERROR_CODE_UNSPECIFIED,
        "\U0001f6aa": pb.FRAME_ERROR_CODE_UNSPECIFIED,
        "unknown-camera-never-seen": pb.FRAME_ERROR_CODE_UNSPECIFIED,
    }
    for i, camera in enumerate(cases):
        await call.write(frame(f"id-{i}", camera=camera))
    got = {}
    for _ in cases:
        result = (await next_of_kind(call, "result")).result
        got[result.camera_id] = result.error.code
    await call.done_writing()
    assert got == cases
    # Ids are never paths: the data directory holds the state file and nothing else.
    names = {p.name for p in lan_sidecar.data_dir.iterdir()}
    assert names <= {STATE_FILE, f"{STATE_FILE}-wal", f"{STATE_FILE}-shm", "models"}
