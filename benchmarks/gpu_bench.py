"""The detector on a GPU (or a CPU), one command: forward times, the sidecar end to end against a
per-image HTTP server, memory, and which stage is the ceiling.

    .venv-sidecar/bin/python benchmarks/gpu_bench.py                 # CUDA box: the full run
    .venv-sidecar/bin/python benchmarks/gpu_bench.py --smoke         # any machine, < 1 min
    .venv-sidecar/bin/python benchmarks/gpu_bench.py --device cpu --models r18 --dtypes fp32 \\
        --batches 1,2,4 --cameras 1,4,16 --inflight 4,8 --frames 24      # this project's CPU runs

Sections (numbers, no assertions; random weights have the real shapes, so speed is real):
  1. forward: model forward time per batch for each model size x dtype x batch size (preprocessed
     tensors; median of timed runs after warm-up), images/s, peak VRAM (CUDA) - and, with
     --compile, the same through torch.compile with fixed shapes (CUDA graphs on CUDA);
  2. end to end, per camera count: a real `python -m sidecar` (no LLM), each camera its own Stream
     with one frame in flight (as a camera that uploads one picture after another), against
     `--baseline-http`: an HTTP server of our own in the replaced system's design (one image per
     request, decode + preprocess + batch-1 forward synchronously in the request handler, same
     model, device and dtype), the same cameras calling it the same way. Frames/s, p50/p95
     latency (send to result, client side), peak RSS of the server process, VRAM (NVML), the
     sidecar's chosen batch sizes;
  3. frames in flight on one Stream (the integration's way), for each --inflight value, and again
     capped by the sidecar's advertised `max_frames_in_flight` (what the integration does with it);
  4. ceilings: the model alone (section 1, the e2e's batch size), the decode pool alone (the
     sidecar's decoders on the same JPEGs) and the gRPC + event loop alone (frames refused before
     decoding): the lowest is what limits end-to-end throughput.
Every server process is fresh per measurement, so its peak RSS belongs to that measurement.
"""

from __future__ import annotations

import os

# As `python -m sidecar` does, before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import asyncio
import http.client
import http.server
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_detector import SidecarProcess, camera_like_jpeg  # noqa: E402

from sidecar.detection.frames import FrameLimits  # noqa: E402
from sidecar.detection.models.rtdetr_v2 import (  # noqa: E402
    RTDetrV2Detector,
    build_random_model,
    save_random_model,
)
from sidecar.detection.pipeline import default_decode_workers  # noqa: E402
from sidecar.detection.preprocess import PreprocessSpec, build_batch, prepare_frame  # noqa: E402
from sidecar.proto import secmon_pb2 as pb  # noqa: E402
from sidecar.proto import secmon_pb2_grpc  # noqa: E402
from sidecar.server.memory import read_memory  # noqa: E402

LIMITS = FrameLimits(max_frame_bytes=64 * 1024 * 1024, max_pixels=100_000_000)
GRPC_LIMIT = 128 * 1024 * 1024
DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


# -- 1. forward ------------------------------------------------------------------------------------
@dataclass
class ForwardRow:
    model: str
    dtype: str
    compile: str
    batch: int
    forward_ms: float
    images_s: float
    peak_vram_mib: float


def forward_times(args: argparse.Namespace, frames: list[bytes]) -> list[ForwardRow]:
    rows: list[ForwardRow] = []
    device = torch.device(args.torch_device)
    for model_name in args.models:
        for dtype_name in args.dtypes:
            if dtype_name == "fp16" and device.type != "cuda":
                print(f"    {model_name} fp16: skipped (fp16 is for CUDA)", flush=True)
                continue
            for compile_mode in args.compile:
                rows += forward_for(args, frames, model_name, dtype_name, compile_mode)
    return rows


def forward_for(
    args: argparse.Namespace, frames: list[bytes], model_name: str, dtype_name: str,
    compile_mode: str,
) -> list[ForwardRow]:
    device, dtype = torch.device(args.torch_device), DTYPES[dtype_name]
    model = build_random_model(model_name).to(device, dtype=dtype).eval()
    forward = model
    if compile_mode != "off":  # as the sidecar's --compile does: one graph per fixed shape
        forward = torch.compile(model, mode=None if compile_mode == "default" else compile_mode,
                                dynamic=False)
    spec = PreprocessSpec(height=args.input_size, width=args.input_size)
    pixels_1 = [prepare_frame(f, LIMITS, spec, 0.5).pixels for f in frames]
    rows = []
    for batch in args.batches:
        arrays = [pixels_1[i % len(pixels_1)] for i in range(batch)]
        pixels = build_batch(arrays, spec, device=device, dtype=dtype)
        cuda = pixels.is_cuda
        if cuda:
            torch.cuda.reset_peak_memory_stats()

        def run(pixels: torch.Tensor = pixels, cuda: bool = cuda) -> None:
            with torch.inference_mode():
                if compile_mode == "reduce-overhead" and cuda:
                    torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]
                forward(pixel_values=pixels)
            if cuda:
                torch.cuda.synchronize()

        for _ in range(args.warmup_runs):
            run()
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1000.0)
        ms = statistics.median(times)
        vram = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
        row = ForwardRow(model_name, dtype_name, compile_mode, batch, ms, batch * 1000.0 / ms, vram)
        print(f"    {model_name} {dtype_name} compile={compile_mode} batch {batch}: "
              f"{ms:8.1f} ms  {row.images_s:7.1f} img/s  VRAM {vram:.0f} MiB", flush=True)
        rows.append(row)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows


def model_spec(args: argparse.Namespace, name: str) -> str:
    """random:NAME, saved once like a real checkpoint with the chosen input size."""
    if name not in args.saved_models:
        directory = Path(args.workdir) / f"model-{name}"
        save_random_model(name, directory,
                          spec=PreprocessSpec(height=args.input_size, width=args.input_size))
        args.saved_models[name] = str(directory)
    return str(args.saved_models[name])


# -- 2. end to end: the sidecar ----------------------------------------------------------------
@dataclass
class EndToEnd:
    server: str
    cameras: int
    inflight: int
    frames: int
    frames_s: float
    p50_ms: float
    p95_ms: float
    peak_rss_mib: float
    vram_mib: float = float("nan")
    mean_batch: float = float("nan")
    batch_costs: dict[int, float] = field(default_factory=dict)
    advertised_inflight: int = 0


def start_sidecar(args: argparse.Namespace, model_name: str, extra: list[str]) -> SidecarProcess:
    sidecar = SidecarProcess([
        "--detector", model_spec(args, model_name), "--device", args.device,
        "--max-batch", str(args.max_batch), "--max-delay-ms", str(args.max_delay_ms),
        "--max-frame-bytes", str(64 * 1024 * 1024), "--llm", "none",
        "--data-dir", tempfile.mkdtemp(prefix="secmon-gpu-bench-", dir=args.workdir),
        "--max-inflight-per-stream", "256", *extra,
    ])
    if not sidecar.ready.wait(900) or sidecar.proc.poll() is not None or not sidecar.port:
        sidecar.stop()
        raise RuntimeError("sidecar did not become ready:\n" + "\n".join(sidecar.lines))
    return sidecar


def channel(address: str) -> grpc.aio.Channel:
    options = [("grpc.max_send_message_length", GRPC_LIMIT),
               ("grpc.max_receive_message_length", GRPC_LIMIT)]
    return grpc.aio.insecure_channel(address, options=options)


async def stream_camera(
    stub: secmon_pb2_grpc.SidecarStub, frames: list[bytes], cameras: list[str], *, count: int,
    window: int, prefix: str, latencies: list[float], valid_ids: bool = True,
) -> int:
    """One Stream: `count` frames round-robin over `cameras`, `window` in flight. Returns the
    sidecar's advertised frames in flight (from the HelloReply)."""
    slots = asyncio.Semaphore(window)
    sent: dict[str, float] = {}
    advertised = 0
    hello_seen = asyncio.Event()

    async def requests() -> AsyncIterator[pb.ClientMessage]:
        yield pb.ClientMessage(hello=pb.Hello(client_id=prefix))
        await hello_seen.wait()
        for i in range(count):
            await slots.acquire()
            frame_id = f"{prefix}-{i}"
            sent[frame_id] = time.perf_counter()
            yield pb.ClientMessage(frame=pb.Frame(
                frame_id=frame_id if valid_ids else "", camera_id=cameras[i % len(cameras)],
                image=frames[i % len(frames)], content_type="image/jpeg",
            ))

    received = 0
    started = time.perf_counter()
    async for message in stub.Stream(requests()):
        kind = message.WhichOneof("kind")
        if kind == "hello":
            advertised = message.hello.max_frames_in_flight
            hello_seen.set()
            continue
        if kind != "result":
            continue
        result = message.result
        if valid_ids:
            if result.HasField("error"):
                raise RuntimeError(f"frame failed: {result.error}")
            latencies.append((time.perf_counter() - sent.pop(result.frame_id)) * 1000.0)
        else:
            latencies.append((time.perf_counter() - started) * 1000.0)
        received += 1
        slots.release()
        if received == count:
            break
    return advertised


async def sidecar_status(address: str) -> pb.SidecarStatus:
    async with channel(address) as ch:
        reply = await secmon_pb2_grpc.SidecarStub(ch).GetStatus(pb.GetStatusRequest())
        status: pb.SidecarStatus = reply.status
        return status


def status_figures(status: pb.SidecarStatus) -> dict[str, Any]:
    vram = sum(g.memory_used_bytes for g in status.gpus) / 2**20 if status.gpus else float("nan")
    return {
        "peak_rss_mib": status.peak_rss_bytes / 2**20,
        "vram_mib": vram,
        "mean_batch": status.mean_model_batch_size,
        "batch_costs": {c.size: round(c.forward_ms, 1) for c in status.batch_costs},
        "chosen": {c.size: c.batches for c in status.batch_costs if c.batches},
    }


async def run_cameras(address: str, frames: list[bytes], cameras: int, per_camera: int,
                      tag: str) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    async with channel(address) as ch:
        stub = secmon_pb2_grpc.SidecarStub(ch)
        # Warm-up: a frame per camera, not timed.
        await asyncio.gather(*(
            stream_camera(stub, frames, [f"cam{c}"], count=1, window=1, prefix=f"{tag}w{c}",
                          latencies=[])
            for c in range(cameras)))
        t0 = time.perf_counter()
        advertised = await asyncio.gather(*(
            stream_camera(stub, frames, [f"cam{c}"], count=per_camera, window=1,
                          prefix=f"{tag}c{c}", latencies=latencies)
            for c in range(cameras)))
        seconds = time.perf_counter() - t0
    return cameras * per_camera / seconds, latencies, advertised[0]


def e2e_sidecar(args: argparse.Namespace, frames: list[bytes], model: str, *,
                cameras: int, extra: list[str], label: str) -> EndToEnd:
    sidecar = start_sidecar(args, model, extra)
    try:
        address = f"127.0.0.1:{sidecar.port}"
        per_camera = max(2, args.frames // cameras)
        fps, latencies, advertised = asyncio.run(
            run_cameras(address, frames, cameras, per_camera, label))
        figures = status_figures(asyncio.run(sidecar_status(address)))
    finally:
        sidecar.stop()
    row = EndToEnd(
        server=label, cameras=cameras, inflight=cameras, frames=len(latencies), frames_s=fps,
        p50_ms=percentile(latencies, 0.5), p95_ms=percentile(latencies, 0.95),
        peak_rss_mib=figures["peak_rss_mib"], vram_mib=figures["vram_mib"],
        mean_batch=figures["mean_batch"], batch_costs=figures["batch_costs"],
        advertised_inflight=advertised,
    )
    print(f"    {label:>14} {cameras:3d} cameras: {fps:7.2f} frames/s  p50 {row.p50_ms:8.1f} ms  "
          f"p95 {row.p95_ms:8.1f} ms  peak RSS {row.peak_rss_mib:6.0f} MiB  "
          f"VRAM {row.vram_mib:.0f} MiB  batch {row.mean_batch:.2f} {figures['chosen']}  "
          f"costs {row.batch_costs}", flush=True)
    return row


# -- 2b. the per-image HTTP baseline ---------------------------------------------------------------
def serve_http(args: argparse.Namespace) -> None:
    """The baseline server (run in its own process): one image per POST, handled synchronously."""
    detector = RTDetrV2Detector(args.serve_http, args.device)
    detector.load()
    detector.warmup()
    spec = detector.preprocess

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path == "/memory":
                body = json.dumps(asdict(read_memory())).encode()
            else:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                frame = prepare_frame(data, LIMITS, spec, 0.5)
                found = detector.infer([frame])[0]
                body = json.dumps([[d.label, d.confidence, d.box.x_min, d.box.y_min,
                                    d.box.x_max, d.box.y_max] for d in found]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *values: Any) -> None:
            pass

    # One request at a time, like an event loop that runs the model inline.
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def post(port: int, path: str, body: bytes) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "image/jpeg"})
        return conn.getresponse().read()
    finally:
        conn.close()


def e2e_http(args: argparse.Namespace, frames: list[bytes], model: str, cameras: int) -> EndToEnd:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-http", model_spec(args, model),
         "--device", args.device],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        port = 0
        for line in proc.stdout:
            if line.startswith("listening on"):
                port = int(line.rsplit(":", 1)[1])
                break
        if not port:
            raise RuntimeError("the HTTP baseline did not start")
        threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
        per_camera = max(2, args.frames // cameras)
        latencies: list[float] = []
        lock = threading.Lock()

        def camera(c: int, count: int, record: bool) -> None:
            for i in range(count):
                t0 = time.perf_counter()
                post(port, "/detect", frames[(c + i) % len(frames)])
                if record:
                    with lock:
                        latencies.append((time.perf_counter() - t0) * 1000.0)

        with ThreadPoolExecutor(cameras) as pool:
            list(pool.map(lambda c: camera(c, 1, False), range(cameras)))
            t0 = time.perf_counter()
            list(pool.map(lambda c: camera(c, per_camera, True), range(cameras)))
            fps = cameras * per_camera / (time.perf_counter() - t0)
        memory = json.loads(post(port, "/memory", b""))
    finally:
        proc.terminate()
        proc.wait(60)
    row = EndToEnd(
        server="http-per-image", cameras=cameras, inflight=cameras, frames=len(latencies),
        frames_s=fps, p50_ms=percentile(latencies, 0.5), p95_ms=percentile(latencies, 0.95),
        peak_rss_mib=memory["peak_rss_bytes"] / 2**20, mean_batch=1.0,
    )
    print(f"    {'http-per-image':>14} {cameras:3d} cameras: {fps:7.2f} frames/s  "
          f"p50 {row.p50_ms:8.1f} ms  p95 {row.p95_ms:8.1f} ms  "
          f"peak RSS {row.peak_rss_mib:6.0f} MiB", flush=True)
    return row


# -- 3. frames in flight on one Stream ---------------------------------------------------------
def variants(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    out = []
    for text in args.variant:
        name, _, flags = text.partition("=")
        out.append((name, flags.split()))
    return out


def inflight_runs(
    args: argparse.Namespace, frames: list[bytes], model: str, extra: list[str], name: str
) -> list[EndToEnd]:
    rows = []
    sidecar = start_sidecar(args, model, extra)
    address = f"127.0.0.1:{sidecar.port}"
    cams = [f"cam{c}" for c in range(4)]
    try:
        for follow in (False, True):
            for window in args.inflight:
                async def one(window: int = window, follow: bool = follow
                              ) -> tuple[float, list[float], int]:
                    latencies: list[float] = []
                    async with channel(address) as ch:
                        stub = secmon_pb2_grpc.SidecarStub(ch)
                        advertised = await stream_camera(
                            stub, frames, cams, count=1, window=1, prefix="probe", latencies=[])
                        w = min(window, advertised) if follow and advertised else window
                        await stream_camera(stub, frames, cams, count=w, window=w,
                                            prefix=f"w{window}{follow}", latencies=[])
                        t0 = time.perf_counter()
                        await stream_camera(stub, frames, cams, count=args.frames, window=w,
                                            prefix=f"i{window}{follow}", latencies=latencies)
                        return args.frames / (time.perf_counter() - t0), latencies, w

                fps, latencies, used = asyncio.run(one())
                label = f"follow->{used}" if follow else "fixed"
                row = EndToEnd(
                    server=f"{name} stream {label}", cameras=len(cams), inflight=window,
                    frames=len(latencies), frames_s=fps, p50_ms=percentile(latencies, 0.5),
                    p95_ms=percentile(latencies, 0.95), peak_rss_mib=float("nan"),
                    advertised_inflight=used,
                )
                print(f"    {name}: one Stream, {window} in flight ({label}): {fps:7.2f} frames/s  "
                      f"p50 {row.p50_ms:8.1f} ms  p95 {row.p95_ms:8.1f} ms", flush=True)
                rows.append(row)
        figures = status_figures(asyncio.run(sidecar_status(address)))
        print(f"    {name}: batch {figures['mean_batch']:.2f}, chosen {figures['chosen']}, "
              f"costs {figures['batch_costs']}", flush=True)
    finally:
        sidecar.stop()
    return rows


# -- 4. ceilings ---------------------------------------------------------------------------------
def decode_ceiling(args: argparse.Namespace, frames: list[bytes]) -> float:
    spec = PreprocessSpec(height=args.input_size, width=args.input_size)
    workers = default_decode_workers()
    count = max(8 * workers, 16)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda b: prepare_frame(b, LIMITS, spec, 0.5), frames[:workers]))
        t0 = time.perf_counter()
        list(pool.map(lambda i: prepare_frame(frames[i % len(frames)], LIMITS, spec, 0.5),
                      range(count)))
        return count / (time.perf_counter() - t0)


def loop_ceiling(args: argparse.Namespace, frames: list[bytes], model: str) -> float:
    """Frames/s through the Stream when every frame is refused before decoding (no frame id)."""
    sidecar = start_sidecar(args, model, [])
    try:
        async def run() -> float:
            async with channel(f"127.0.0.1:{sidecar.port}") as ch:
                stub = secmon_pb2_grpc.SidecarStub(ch)
                count = int(args.loop_frames)
                t0 = time.perf_counter()
                await stream_camera(stub, frames, ["cam0"], count=count, window=64,
                                    prefix="loop", latencies=[], valid_ids=False)
                return count / (time.perf_counter() - t0)

        rate: float = asyncio.run(run())
        return rate
    finally:
        sidecar.stop()


# -- main --------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ints = lambda text: [int(v) for v in text.split(",") if v]  # noqa: E731
    words = lambda text: [v for v in text.split(",") if v]  # noqa: E731
    p.add_argument("--smoke", action="store_true",
                   help="tiny model, small frames, few runs: checks the benchmark works (CPU ok)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--models", type=words, default=["r18", "r50"],
                   help="random-weight sizes: tiny, r18, r50")
    p.add_argument("--dtypes", type=words, default=["fp32", "fp16"])
    p.add_argument("--batches", type=ints, default=[1, 2, 4, 8])
    p.add_argument("--compile", type=words, default=None,
                   help="compile modes for section 1 (default: off,reduce-overhead on CUDA, "
                   "off on CPU)")
    p.add_argument("--cameras", type=ints, default=[4, 8, 16, 32])
    p.add_argument("--http-cameras", type=ints, default=[],
                   help="camera counts the HTTP baseline runs at (default: all of --cameras)")
    p.add_argument("--inflight", type=ints, default=[4, 8],
                   help="frames in flight on one Stream (section 3)")
    p.add_argument("--frames", type=int, default=256, help="timed frames per measurement")
    p.add_argument("--image", default="2560x1440", help="JPEG frame size WxH")
    p.add_argument("--input-size", type=int, default=640, help="model input (square)")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--max-delay-ms", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=20, help="timed forward runs per batch size")
    p.add_argument("--warmup-runs", type=int, default=3)
    p.add_argument("--loop-frames", type=int, default=2000)
    p.add_argument("--skip", type=words, default=[],
                   help="sections to skip: forward,e2e,http,inflight,ceilings")
    p.add_argument("--e2e-model", default="", help="model for sections 2-4 (default: the first)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                   help="also run sections 2-3 with a sidecar started with these extra flags, "
                   "interleaved with the default one, e.g. "
                   "'fill=--batching fill --decode-workers 2 --no-tune-malloc'")
    p.add_argument("--json", default="", help="write every row to this file")
    p.add_argument("--serve-http", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.smoke:
        args.models, args.dtypes, args.batches = ["tiny"], ["fp32"], [1, 2]
        args.cameras, args.inflight, args.frames = [2], [2, 4], 8
        args.image, args.input_size, args.max_batch = "640x360", 320, 2
        args.runs, args.warmup_runs, args.loop_frames = 3, 1, 200
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    args.torch_device = "cuda" if cuda else "cpu"
    if args.compile is None:
        args.compile = ["off", "reduce-overhead"] if cuda else ["off"]
    args.e2e_model = args.e2e_model or args.models[0]
    return args


def main() -> None:
    args = parse_args()
    if args.serve_http:
        serve_http(args)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="secmon-gpu-bench-") as workdir:
        args.workdir, args.saved_models = workdir, {}
        width, height = (int(v) for v in args.image.lower().split("x"))
        frames = [camera_like_jpeg(width, height, seed) for seed in range(8)]
        gpu = torch.cuda.get_device_name(0) if args.torch_device == "cuda" else "none"
        print(f"# device {args.torch_device} (GPU: {gpu}), {os.cpu_count()} CPUs, "
              f"{width}x{height} JPEG (~{sum(map(len, frames)) // len(frames) // 1024} kB), "
              f"input {args.input_size}, torch {torch.__version__}", flush=True)
        report: dict[str, Any] = {"args": {k: v for k, v in vars(args).items()
                                           if isinstance(v, (int, float, str, list))}}
        if "forward" not in args.skip:
            print("1. forward time per batch (preprocessed tensors)", flush=True)
            report["forward"] = [asdict(r) for r in forward_times(args, frames)]
        model = args.e2e_model
        if "e2e" not in args.skip:
            print(f"2. end to end, {model}, each camera one frame in flight", flush=True)
            rows = []
            for cameras in args.cameras:
                for mode in args.compile:
                    extra = ["--compile", mode] if mode != "off" else []
                    label = "sidecar" if mode == "off" else f"sidecar {mode}"
                    rows.append(e2e_sidecar(args, frames, model, cameras=cameras, extra=extra,
                                            label=label))
                for name, flags in variants(args):
                    rows.append(e2e_sidecar(args, frames, model, cameras=cameras,
                                            extra=flags, label=name))
                if "http" not in args.skip and cameras in (args.http_cameras or args.cameras):
                    rows.append(e2e_http(args, frames, model, cameras))
            report["end_to_end"] = [asdict(r) for r in rows]
        if "inflight" not in args.skip:
            print(f"3. frames in flight on one Stream, {model}", flush=True)
            rows = inflight_runs(args, frames, model, [], "sidecar")
            for name, flags in variants(args):
                rows += inflight_runs(args, frames, model, flags, name)
            report["inflight"] = [asdict(r) for r in rows]
        if "ceilings" not in args.skip:
            print("4. ceilings", flush=True)
            decode = decode_ceiling(args, frames)
            loop = loop_ceiling(args, frames, model)
            print(f"    decode pool ({default_decode_workers()} workers): {decode:8.1f} frames/s",
                  flush=True)
            print(f"    gRPC + event loop (frames refused before decode): {loop:8.1f} frames/s",
                  flush=True)
            report["ceilings"] = {"decode_frames_s": decode, "loop_frames_s": loop,
                                  "decode_workers": default_decode_workers()}
            forward_rows = report.get("forward", [])
            if forward_rows:
                best = max(forward_rows, key=lambda r: r["images_s"]
                           if r["model"] == model else 0.0)
                print(f"    model alone ({model} {best['dtype']} batch {best['batch']}): "
                      f"{best['images_s']:8.1f} images/s", flush=True)
                ceiling = min(("model", best["images_s"]), ("decode", decode), ("loop", loop),
                              key=lambda kv: kv[1])
                print(f"    => the ceiling is the {ceiling[0]} ({ceiling[1]:.1f} frames/s)",
                      flush=True)
                report["ceilings"]["limit"] = ceiling[0]
        print(f"# done in {time.perf_counter() - started:.0f} s", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
