"""Verdict latency and generation speed of the risk LLM, through the production analyzer path.

    .venv-sidecar/bin/python benchmarks/bench_llm.py --llm random:tiny --runs 20
    .venv-sidecar/bin/python benchmarks/bench_llm.py --gpu --llm /models/nemotron-mini-4b.gguf

Prints, for batches of 1, 10 and 100 detections: verdict latency (mean, p50, p95), completion tokens
per verdict, tokens/s, and how many verdicts validated (fallbacks are counted, not hidden).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sidecar.domain import Box, Detection, FrameObservation
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.llm.backends import create_backend
from sidecar.llm.prompt import PromptInput

LABELS = ("person", "car", "dog", "person", "bicycle")


def batch(detections: int) -> PromptInput:
    """One detection per frame (1000 x 1000 px), positions and sizes spread over the image."""
    start = datetime(2026, 11, 20, 2, 13, tzinfo=UTC)
    frames = []
    for i in range(detections):
        x, y, side = 1000 * (i % 7) / 7, 1000 * (i % 5) / 5, 1000 * (0.02 + (i % 4) / 20) ** 0.5
        box = Box(x - side / 2, y - side / 2, x + side / 2, y + side / 2)
        detection = Detection(LABELS[i % len(LABELS)], -1, 0.5 + (i % 50) / 100, box)
        at = start + timedelta(seconds=i * 0.8)
        frames.append(FrameObservation(f"f{i}", "front_door", "Front Door", at, 1000, 1000,
                                       (detection,)))
    return PromptInput("Front Door", start, frames[-1].captured_at, frames)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="secmon-llm-bench-"))
    backend = create_backend(
        args.llm, use_gpu=args.gpu, n_ctx=args.context, cache_dir=cache, model=args.model_name
    )
    analyzer = RiskAnalyzer(backend, tz=UTC, timeout_s=args.timeout_s)
    started = time.perf_counter()
    await analyzer.start()
    print(f"LLM {analyzer.model_name}: load + warm-up {time.perf_counter() - started:.2f} s")
    print(f"{'detections':>10} {'runs':>5} {'valid':>6} {'mean ms':>9} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'tokens':>7} {'tokens/s':>9}")
    for size in (1, 10, 100):
        latencies, tokens, valid = [], [], 0
        for _ in range(args.runs):
            t0 = time.perf_counter()
            outcome = await analyzer.assess(batch(size))
            latencies.append((time.perf_counter() - t0) * 1000)
            if not outcome.fallback:
                valid += 1
                tokens.append(outcome.completion_tokens)
        gen_s = sum(latencies) / 1000
        rate = sum(tokens) / gen_s if gen_s else 0.0
        print(f"{size:>10} {args.runs:>5} {valid:>6} {statistics.mean(latencies):>9.1f} "
              f"{percentile(latencies, 0.5):>8.1f} {percentile(latencies, 0.95):>8.1f} "
              f"{statistics.mean(tokens) if tokens else 0:>7.0f} {rate:>9.1f}")
    analyzer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", default="random:tiny")
    parser.add_argument("--model-name", default="")
    parser.add_argument("--context", type=int, default=8192)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--gpu", action="store_true", help="offload all layers to the GPU")
    parser.add_argument("--cache-dir", default="")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
