"""Where the detector's memory goes, stage by stage, in one process.

    .venv-sidecar/bin/python benchmarks/bench_memory.py --detector random:r18

Runs the sidecar's own detection code in the order a server does - load the model, warm up, time
the batch sizes, decode frames on the decode pool, run batches, keep results for idempotency - and
after each stage prints the resident memory (RSS), the stage's own peak RSS (the kernel's
high-water mark, reset before the stage) and the peak of Python-visible allocations (tracemalloc:
numpy arrays and Python objects; torch's and PIL's C allocations are not visible to it).
Each configuration runs in a fresh process: `--configs` lists them (decode workers, model batch,
malloc tuning). Numbers, not assertions.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import json
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MIB = 2**20


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark for this process (Linux clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def run_stages(args: argparse.Namespace) -> list[dict[str, Any]]:
    from sidecar.server.memory import read_memory, tune_allocator  # noqa: PLC0415

    if args.tune_malloc:
        tune_allocator()
    rows: list[dict[str, Any]] = []
    tracemalloc.start()

    def stage(name: str, fn: Any) -> Any:
        reset_peak()
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        memory = read_memory()
        _, traced_peak = tracemalloc.get_traced_memory()
        rows.append({"stage": name, "rss_mib": memory.rss_bytes / MIB,
                     "stage_peak_rss_mib": memory.peak_rss_bytes / MIB,
                     "traced_peak_mib": traced_peak / MIB, "seconds": seconds})
        print(f"    {name:<44} RSS {memory.rss_bytes / MIB:7.0f} MiB  stage peak "
              f"{memory.peak_rss_bytes / MIB:7.0f} MiB  traced peak {traced_peak / MIB:6.0f} MiB",
              flush=True)
        return out

    def imports() -> Any:
        import torch  # noqa: F401, PLC0415
        import transformers  # noqa: F401, PLC0415

        from sidecar.detection import pipeline  # noqa: F401, PLC0415

    stage("imports (torch, transformers, sidecar)", imports)
    from bench_detector import camera_like_jpeg  # noqa: PLC0415

    from sidecar.detection.frames import FrameLimits  # noqa: PLC0415
    from sidecar.detection.models.rtdetr_v2 import RTDetrV2Detector  # noqa: PLC0415
    from sidecar.detection.preprocess import prepare_frame  # noqa: PLC0415
    from sidecar.domain import FrameOutcome  # noqa: PLC0415

    limits = FrameLimits(64 * MIB, 100_000_000)
    width, height = (int(v) for v in args.image.split("x"))
    jpegs = [camera_like_jpeg(width, height, seed) for seed in range(4)]
    detector = RTDetrV2Detector(args.detector, "cpu")
    stage(f"model loaded ({args.detector})", detector.load)
    stage("warm-up (batch 1)", detector.warmup)
    blank = detector.blank_frame()
    for size in sorted({1, 2, args.batch}):
        stage(f"forward, batch {size}", lambda size=size: detector.infer([blank] * size))

    spec = detector.preprocess
    frames = [jpegs[i % len(jpegs)] for i in range(args.frames)]
    with ThreadPoolExecutor(args.decode_workers) as pool:
        decoded = stage(
            f"decode {args.frames} {width}x{height} JPEGs, {args.decode_workers} threads, kept",
            lambda: list(pool.map(lambda b: prepare_frame(b, limits, spec, 0.5), frames)),
        )
    groups = [decoded[i:i + args.batch] for i in range(0, len(decoded), args.batch)]
    outputs = stage(f"run them in batches of {args.batch}",
                    lambda: [d for g in groups for d in detector.infer(g)])
    groups.clear()
    del decoded
    stage("decoded frames released", lambda: None)
    detections = sum(len(d) for d in outputs)

    def cache() -> list[FrameOutcome]:
        return [FrameOutcome(frame_id=f"frame-{i:08d}", camera_id="cam",
                             detections=tuple(outputs[i % len(outputs)]), width=width,
                             height=height) for i in range(args.cache_size)]

    kept = stage(f"result cache: {args.cache_size} outcomes "
                 f"({detections / len(outputs):.1f} detections each)", cache)
    del kept
    tracemalloc.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--detector", default="random:r18")
    parser.add_argument("--image", default="2560x1440")
    parser.add_argument("--frames", type=int, default=16, help="frames decoded and kept at once")
    parser.add_argument("--cache-size", type=int, default=4096)
    parser.add_argument("--configs", default="1:1:tuned,2:4:untuned,2:4:tuned,1:4:tuned",
                        help="comma-separated DECODE_WORKERS:BATCH:tuned|untuned")
    parser.add_argument("--json", default="")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        workers, batch, tuning = args.one.split(":")
        args.decode_workers, args.batch = int(workers), int(batch)
        args.tune_malloc = tuning == "tuned"
        print(json.dumps(run_stages(args)), flush=True)
        return
    report = {}
    for config in args.configs.split(","):
        workers, batch, tuning = config.split(":")
        print(f"# {args.detector}: {workers} decode threads, batch {batch}, malloc {tuning}",
              flush=True)
        out = subprocess.run(
            [sys.executable, __file__, "--one", config, "--detector", args.detector,
             "--image", args.image, "--frames", str(args.frames),
             "--cache-size", str(args.cache_size)],
            capture_output=True, text=True, check=True, cwd=REPO_ROOT,
        )
        lines = out.stdout.strip().splitlines()
        print("\n".join(lines[:-1]), flush=True)
        rows = json.loads(lines[-1])
        report[config] = rows
        peak = max(r["stage_peak_rss_mib"] for r in rows)
        print(f"    => peak RSS {peak:.0f} MiB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
