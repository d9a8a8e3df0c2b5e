"""Tampering through the sidecar: each stream frame's result carries its camera's tamper state,
the status counts tampered cameras, and the prompt of a batch says the view looks covered; through
a real sidecar process. The prompt line itself is checked under a small token budget."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
from conftest import SidecarFactory
from google.protobuf.timestamp_pb2 import Timestamp
from PIL import Image
from test_servicer import GatedDetector, collect, frame_msg, start_server
from test_tamper import view, with_noise
from test_verdict_stream import client, status_of

from sidecar.context.tamper import TamperState, TamperWatch
from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector
from sidecar.domain import Box, Detection, FrameObservation
from sidecar.llm.context_sections import TAMPER_BUDGET, fit_section, tamper_section
from sidecar.llm.prompt import DATA_END, PromptInput, build_messages
from sidecar.proto import secmon_pb2 as pb
from sidecar.server.app import SidecarServer

T0 = datetime(2026, 12, 7, 2, 40, tzinfo=UTC)


def _prompt(tamper: TamperState | None, budget: int = 10_000) -> str:
    frames = [FrameObservation("f", "porch", "Porch", T0, 100, 100,
                               (Detection("person", 0, 0.9, Box(1, 1, 50, 90)),))]
    batch = PromptInput("Porch", T0, T0 + timedelta(seconds=5), frames, tamper=tamper)
    return build_messages(batch, UTC, len, budget)[1]["content"]


def test_the_prompt_says_the_view_is_covered_and_since_when() -> None:
    state = TamperState("covered", 0.93, T0 + timedelta(minutes=1))
    text = _prompt(state)
    after = text[text.index(DATA_END):]
    assert "- The camera's view appears covered since 02:41 (score 0.93)" in after
    assert "The camera itself" not in _prompt(TamperState())
    assert "The camera itself" not in _prompt(None)
    moved = _prompt(TamperState("moved", 0.7, T0))
    assert "appears moved (it no longer shows its usual scene) since 02:40" in moved


def test_the_tamper_line_fits_its_budget() -> None:
    section = tamper_section(TamperState("dark", 1.0, T0), UTC)
    assert section is not None
    # Counted in characters (about four times the tokens), it still fits.
    assert fit_section(section, len).entries == section.entries
    assert len("\n".join(section.lines())) <= TAMPER_BUDGET
    # Under a budget too small for it, the section goes, not the prompt.
    squeezed = fit_section(section, lambda text: len(text) * 10)
    assert squeezed.entries == ()


def _frame(i: int, image: Image.Image) -> pb.Frame:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    at = Timestamp()
    at.FromDatetime(T0 + timedelta(seconds=2 * i))
    return pb.Frame(frame_id=f"porch-{i}", camera_id="porch", camera_name="Porch",
                    image=buffer.getvalue(), content_type="image/jpeg", captured_at=at)


async def test_results_status_and_prompt_carry_the_tamper_state(
    sidecar_factory: SidecarFactory,
) -> None:
    process = sidecar_factory("--threshold", "0.01", "--verdict-resend-s", "60")
    await process.wait_serving()
    rng = np.random.default_rng(1)
    steady = [with_noise(view(), 3.0, rng) for _ in range(6)]
    covered = [with_noise(Image.new("RGB", view().size, (70, 60, 55)), 2.0, rng)
               for _ in range(5)]
    async with client(process) as c:
        config = pb.StreamConfig(
            detection_threshold=0.01,
            batching=pb.BatchingConfig(idle_seconds=1.0, window_seconds=60,
                                       fast_path_disabled=True),
        )
        c.send(hello=pb.Hello(client_id="home", time_zone="UTC", config=config))
        for i, image in enumerate([*steady, *covered]):
            c.send(frame=_frame(i, image))
        await c.wait_results(11)
        by_id = {r.frame_id: r for r in c.results}
        assert all(not by_id[f"porch-{i}"].HasField("error") for i in range(11))
        assert {by_id[f"porch-{i}"].tamper.kind for i in range(6)} == {"none"}
        last = by_id["porch-10"].tamper
        assert last.kind == "covered"
        assert 0.5 < last.score <= 1.0
        # Dated from the first covered frame (frame 6, 12 s after T0).
        assert last.since.ToDatetime(tzinfo=UTC) == T0 + timedelta(seconds=12)
        assert (await status_of(process)).tampered_cameras == 1

        # The batches closed once the view was confirmed covered say so (with this random model
        # every frame has many detections, so batches are short: look through them).
        prompts = []
        while not any("appears covered" in p for p in prompts):
            verdict = await c.verdict()
            c.send(verdict_ack=pb.VerdictAck(verdict_ids=[verdict.verdict_id]))
            prompts.append(verdict.prompt)
        covered_prompt = next(p for p in prompts if "appears covered" in p)
        assert "- The camera's view appears covered since 02:40 (score" in covered_prompt
        assert not any("appears covered" in p for p in prompts[:1])  # not before it was

        for i in range(11, 15):  # the view comes back
            c.send(frame=_frame(i, with_noise(view(), 3.0, rng)))
        await c.wait_results(15)
        assert {r.frame_id: r for r in c.results}["porch-14"].tamper.kind == "none"
        assert (await status_of(process)).tampered_cameras == 0


class _RecordingWatch(TamperWatch):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, str]] = []  # (thread, client, camera)

    def observe(self, client_id: str, camera_id: str, thumb: object, at: datetime) -> TamperState:
        self.calls.append((threading.current_thread().name, client_id, camera_id))
        return super().observe(client_id, camera_id, thumb, at)  # type: ignore[arg-type]


async def test_stream_frames_are_checked_in_the_decode_workers_and_analyze_frames_not(
    tiny_detector: RTDetrV2Detector,
) -> None:
    running = await start_server(GatedDetector(tiny_detector))
    server: SidecarServer = running.server
    watch = server.pipeline.tamper = _RecordingWatch()
    try:
        image = _frame(0, view()).image
        call = running.stub.Stream()
        await call.write(pb.ClientMessage(hello=pb.Hello(client_id="home")))
        await call.write(frame_msg("a", "porch", image))
        await call.write(frame_msg("a", "porch", image))  # re-sent: the stored result
        messages: list[pb.ServerMessage] = []
        while len(messages) < 2:
            (message,) = await collect(call, 1)
            if message.WhichOneof("kind") == "result":
                messages.append(message)
        await call.done_writing()
        assert [m.result.tamper.kind for m in messages] == ["none", "none"]
        analyzed = await running.stub.Analyze(pb.AnalyzeRequest(frame=pb.Frame(image=image)))
        assert not analyzed.result.HasField("tamper")
        assert len(watch.calls) == 1
        ((thread, client, camera),) = watch.calls
        assert thread.startswith("secmon-decode")
        assert (client, camera) == ("home", "porch")
    finally:
        await running.channel.close()
        await server.shutdown(grace_s=5)
