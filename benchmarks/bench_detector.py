"""Detector throughput: raw model vs end-to-end gRPC, and our preprocessing vs transformers'.

    .venv-sidecar/bin/python benchmarks/bench_detector.py --detector random:r18 --batch 4

Prints, for one model spec and batch size:
  (a) raw model throughput on already-preprocessed tensors (model forward only; the faster of
      the main thread and a worker thread, where the server runs it),
  (b) end-to-end throughput of JPEG frames through the gRPC Stream of a real `python -m sidecar`
      process (client on loopback, frames kept in flight),
  (c) the ratio b/a,
  (d) our preprocessing (JPEG bytes -> batch tensor) vs transformers' RTDetrImageProcessorPil
      (PIL decode + processor), single-threaded, images/s each and the ratio; for both our modes.
Numbers, not assertions. Random-weight specs (random:tiny, random:r18) need no download.
"""

from __future__ import annotations

import os

# As `python -m sidecar` does, before torch loads OpenMP; (a) and (b) then run under the same
# threading behaviour.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import asyncio
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from transformers import RTDetrImageProcessorPil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sidecar.detection.frames import FrameLimits  # noqa: E402
from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector  # noqa: E402
from sidecar.detection.preprocess import PreprocessSpec, build_batch, prepare_frame  # noqa: E402
from sidecar.domain import PreprocessMode  # noqa: E402
from sidecar.proto import secmon_pb2 as pb  # noqa: E402
from sidecar.proto import secmon_pb2_grpc  # noqa: E402

LIMITS = FrameLimits(max_frame_bytes=64 * 1024 * 1024, max_pixels=100_000_000)


# -- inputs ------------------------------------------------------------------------------------
def camera_like_jpeg(width: int, height: int, seed: int) -> bytes:
    """A photo-like frame (gradients, blurred shapes, sensor noise), JPEG quality 85."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack(
        [np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
         np.broadcast_to((x + y) / 2, (height, width))], axis=-1,
    ).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        x1 = x0 + int(rng.integers(8, width // 4))
        y1 = y0 + int(rng.integers(8, height // 4))
        draw.ellipse((x0, y0, x1, y1), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    noise = rng.normal(0, 3, (height, width, 3)).astype(np.int16)
    pixels = (np.asarray(image).astype(np.int16) + noise).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def timed(fn: Callable[[], object], min_runs: int, min_seconds: float) -> tuple[int, float]:
    """Run fn at least min_runs times and at least min_seconds; (runs, seconds)."""
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < min_seconds:
        fn()
        runs += 1
    return runs, time.perf_counter() - start


# -- (a) raw model -----------------------------------------------------------------------------
def raw_model(detector: RTDetrV2Detector, frames: list[bytes], batch: int, args: Any) -> float:
    spec = detector.preprocess
    prepared = [prepare_frame(f, LIMITS, spec, 0.5, "fast").pixels for f in frames[:batch]]
    while len(prepared) < batch:
        prepared.append(prepared[len(prepared) % len(frames)])
    dtype = torch.float16 if detector.device_name.startswith("cuda") else torch.float32
    pixels = build_batch(prepared, spec, device=detector.device_name, dtype=dtype)
    model = detector._model

    def forward() -> None:
        with torch.inference_mode():
            model(pixel_values=pixels)
        if pixels.is_cuda:
            torch.cuda.synchronize()

    def measure() -> float:
        forward()  # warm-up (first-call allocations, kernel selection)
        runs, seconds = timed(forward, args.min_batches, args.min_seconds)
        return runs * batch / seconds

    # The server runs the model in a worker thread; measure there and on the main thread, and
    # keep the faster figure (the conservative choice for b/a).
    with ThreadPoolExecutor(1, thread_name_prefix="raw-model") as worker:
        in_worker = worker.submit(measure).result()
    return max(measure(), in_worker)


# -- (b) end to end ----------------------------------------------------------------------------
class SidecarProcess:
    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "--listen", "127.0.0.1:0", *args],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.port = 0
        self.ready = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if m := re.search(r"listening on \S+:(\d+)", line):
                self.port = int(m.group(1))
            if "Ready: serving" in line:
                self.ready.set()
        self.ready.set()

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(120)


async def stream_frames(
    address: str, frames: list[bytes], count: int, window: int, prefix: str
) -> float:
    """Send `count` frames keeping `window` in flight; seconds from first send to last result."""
    limit = 128 * 1024 * 1024
    options = [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = secmon_pb2_grpc.SidecarStub(channel)
        slots = asyncio.Semaphore(window)

        async def requests() -> AsyncIterator[pb.ClientMessage]:
            for i in range(count):
                await slots.acquire()
                yield pb.ClientMessage(frame=pb.Frame(
                    frame_id=f"{prefix}-{i}", camera_id=f"cam{i % 4}",
                    image=frames[i % len(frames)], content_type="image/jpeg",
                ))

        start = time.perf_counter()
        received = 0
        async for message in stub.Stream(requests()):
            if message.WhichOneof("kind") != "result":
                continue
            if message.result.HasField("error"):
                raise RuntimeError(f"frame failed: {message.result.error}")
            received += 1
            slots.release()
            if received == count:
                break
        return time.perf_counter() - start


def start_sidecar(spec: str, batch: int, args: Any) -> SidecarProcess:
    sidecar = SidecarProcess([
        "--detector", spec, "--device", args.device, "--max-batch", str(batch),
        "--max-delay-ms", str(args.max_delay_ms), "--preprocess", args.preprocess,
        "--max-frame-bytes", str(64 * 1024 * 1024),
        # Detection only: no LLM, and a throw-away state directory.
        "--llm", "none", "--data-dir", tempfile.mkdtemp(prefix="secmon-bench-"),
    ])
    if not sidecar.ready.wait(600) or sidecar.proc.poll() is not None or not sidecar.port:
        sidecar.stop()
        raise RuntimeError("sidecar did not become ready:\n" + "\n".join(sidecar.lines))
    if args.verbose:
        print("\n".join(sidecar.lines), flush=True)
    return sidecar


def end_to_end(
    sidecar: SidecarProcess, frames: list[bytes], batch: int, args: Any, run: int
) -> float:
    """Frames/s through the Stream; the first call also warms the server up."""
    address = f"127.0.0.1:{sidecar.port}"
    window = args.window or 3 * batch
    if run == 0:  # a few batches, so every batch shape the runs use has been seen
        asyncio.run(stream_frames(address, frames, 2 * batch, window, "warm"))
    count = int(max(args.min_batches * batch, batch))
    seconds = asyncio.run(stream_frames(address, frames, count, window, f"run{run}"))
    while seconds < args.min_seconds:  # too quick to measure: run longer
        count *= 2
        seconds = asyncio.run(stream_frames(address, frames, count, window, f"run{run}-{count}"))
    return count / seconds


def server_figures(sidecar: SidecarProcess) -> dict[str, Any]:
    with grpc.insecure_channel(f"127.0.0.1:{sidecar.port}") as channel:
        status = secmon_pb2_grpc.SidecarStub(channel).GetStatus(pb.GetStatusRequest()).status
    return {
        "mean_model_batch_size": round(status.mean_model_batch_size, 2),
        "model_batch_ms_p50": round(status.inference_latency.p50_ms, 1),
        "frame_latency_ms_p50": round(status.frame_latency.p50_ms, 1),
    }


# -- (d) preprocessing -------------------------------------------------------------------------
def preprocessing(
    spec: PreprocessSpec, frames: list[bytes], batch: int, args: Any
) -> dict[str, float]:
    config = {k: v for k, v in spec.to_config().items() if k != "image_processor_type"}
    processor = RTDetrImageProcessorPil(**config)
    batches = [[frames[(i + j) % len(frames)] for j in range(batch)] for i in range(len(frames))]
    state = {"i": 0}

    def next_batch() -> list[bytes]:
        state["i"] += 1
        return batches[state["i"] % len(batches)]

    def reference() -> None:
        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in next_batch()]
        processor(images=images, return_tensors="pt")

    def ours(mode: PreprocessMode) -> Callable[[], None]:
        def run() -> None:
            build_batch([prepare_frame(b, LIMITS, spec, 0.5, mode).pixels for b in next_batch()],
                        spec)
        return run

    results = {}
    torch.set_num_threads(1)  # single-threaded on both sides
    try:
        for name, fn in (("transformers", reference), ("ours_fast", ours("fast")),
                         ("ours_exact", ours("exact"))):
            fn()
            runs, seconds = timed(fn, max(3, 8 // batch), args.min_seconds / 3)
            results[name] = runs * batch / seconds
    finally:
        torch.set_num_threads(args.torch_threads)
    return results


# -- main --------------------------------------------------------------------------------------
@dataclass
class Report:
    detector: str
    device: str
    batch: int
    image: str
    jpeg_kb: int
    preprocess: str
    raw_model_images_s: float
    end_to_end_frames_s: float
    ratio_b_over_a: float
    preprocess_transformers_images_s: float
    preprocess_ours_fast_images_s: float
    preprocess_ours_exact_images_s: float
    speedup_fast: float
    speedup_exact: float
    server: dict[str, Any]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--detector", default="random:tiny")
    parser.add_argument("--batch", type=int, default=4, help="model batch size (and --max-batch)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--image", default="2560x1440", help="frame size WxH (JPEG, q85)")
    parser.add_argument("--preprocess", default="fast", choices=("fast", "exact"),
                        help="the sidecar's preprocessing mode for (b)")
    parser.add_argument("--max-delay-ms", type=float, default=50.0)
    parser.add_argument("--window", type=int, default=0, help="frames in flight (default 3x batch)")
    parser.add_argument("--min-batches", type=int, default=6, help="batches per timed run")
    parser.add_argument("--min-seconds", type=float, default=5.0, help="seconds per timed run")
    parser.add_argument("--rounds", type=int, default=2,
                        help="(a) and (b) alternate this many times (medians are reported), so "
                        "that load from other processes hits both alike")
    parser.add_argument("--skip-preprocessing", action="store_true", help="skip (d)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON too")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    args.torch_threads = torch.get_num_threads()
    width, height = (int(v) for v in args.image.lower().split("x"))
    frames = [camera_like_jpeg(width, height, seed) for seed in range(8)]
    jpeg_kb = sum(map(len, frames)) // len(frames) // 1024
    print(f"# {args.detector} on {args.device}, batch {args.batch}, {width}x{height} JPEG "
          f"(~{jpeg_kb} kB), torch threads {args.torch_threads}, {os.cpu_count()} CPUs",
          flush=True)

    detector = RTDetrV2Detector(args.detector, args.device)
    detector.load()
    spec = detector.preprocess
    sidecar = start_sidecar(args.detector, args.batch, args)
    raw, e2e = [], []
    try:
        for run in range(args.rounds):
            raw.append(raw_model(detector, frames, args.batch, args))
            e2e.append(end_to_end(sidecar, frames, args.batch, args, run))
            print(f"    round {run + 1}: a {raw[-1]:.2f} images/s, b {e2e[-1]:.2f} frames/s, "
                  f"b/a {e2e[-1] / raw[-1]:.3f}", flush=True)
        info = server_figures(sidecar)
    finally:
        sidecar.stop()
    a, b = statistics.median(raw), statistics.median(e2e)
    # Each round's (a, b) pair ran back to back, under the same background load.
    ratio = statistics.median(y / x for x, y in zip(raw, e2e, strict=True))
    print(f"(a) raw model:            {a:8.2f} images/s (median)")
    print(f"(b) end-to-end gRPC:      {b:8.2f} frames/s (median)  {info}")
    print(f"(c) b/a:                  {ratio:8.3f} (median of the rounds' ratios)", flush=True)

    pre = {"transformers": float("nan"), "ours_fast": float("nan"), "ours_exact": float("nan")}
    if not args.skip_preprocessing:
        pre = preprocessing(spec, frames, args.batch, args)
    ref = pre["transformers"]
    print(f"(d) preprocessing, 1 thread, JPEG bytes -> batch tensor ({spec.width}x{spec.height}):")
    print(f"    transformers RTDetrImageProcessorPil: {ref:8.1f} images/s")
    print(f"    ours, fast (draft + torch resize):   {pre['ours_fast']:8.1f} images/s  "
          f"x{pre['ours_fast'] / ref:.2f}")
    print(f"    ours, exact (bit-identical pixels):  {pre['ours_exact']:8.1f} images/s  "
          f"x{pre['ours_exact'] / ref:.2f}")
    if args.json:
        report = Report(
            detector=args.detector, device=args.device, batch=args.batch, image=args.image,
            jpeg_kb=jpeg_kb, preprocess=args.preprocess,
            raw_model_images_s=a, end_to_end_frames_s=b, ratio_b_over_a=ratio,
            preprocess_transformers_images_s=ref,
            preprocess_ours_fast_images_s=pre["ours_fast"],
            preprocess_ours_exact_images_s=pre["ours_exact"],
            speedup_fast=pre["ours_fast"] / ref, speedup_exact=pre["ours_exact"] / ref,
            server=info,
        )
        print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main()
