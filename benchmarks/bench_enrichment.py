"""Enrichment cost: per-enricher time per batch, measured memory per model, and verdict latency
with and without enrichment, through the production path (zoo, Enricher, assess_batch).

    .venv-sidecar/bin/python benchmarks/bench_enrichment.py --runs 5          # tiny models, CPU
    .venv-sidecar/bin/python benchmarks/bench_enrichment.py --device cuda \\
        --attributes openai/clip-vit-base-patch32 --pose usyd-community/vitpose-base-simple \\
        --depth depth-anything/Depth-Anything-V2-Small-hf --llm /models/nemotron.gguf

Each batch is 3 frames of 1280x720 with a person and a car carrying a painted plate (the OCR model
is always the real PP-OCRv4 from rapidocr-onnxruntime). The first batch loads every model and is
reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw, ImageFont

from sidecar.domain import Box, Detection, FrameObservation
from sidecar.enrichment.identities import IdentityStore
from sidecar.enrichment.service import Enricher, build_zoo
from sidecar.enrichment.settings import ENRICHERS, MIB, EnrichmentSettings
from sidecar.events.analysis import assess_batch
from sidecar.events.batching import OpenBatch
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.llm.backends import create_backend
from sidecar.storage.database import STATE_FILE

W, H = 1280, 720
PERSON = Box(120, 120, 360, 680)
CAR = Box(520, 300, 1240, 700)


def image(shift: int) -> bytes:
    canvas = Image.new("RGB", (W, H), (70, 80, 90))
    draw = ImageDraw.Draw(canvas)
    x = PERSON.x_min + shift
    draw.ellipse((x + 70, 130, x + 170, 230), fill=(220, 180, 150))
    draw.rectangle((x + 50, 230, x + 190, 460), fill=(20, 20, 20))
    draw.rectangle((x + 60, 460, x + 110, 670), fill=(30, 30, 120))
    draw.rectangle((x + 130, 460, x + 180, 670), fill=(30, 30, 120))
    draw.rectangle((540, 340, 1220, 600), fill=(180, 20, 20))
    draw.rectangle((660, 510, 1120, 640), fill="white", outline="black", width=5)
    draw.text((690, 525), "AB12 CDE", fill="black", font=ImageFont.load_default(size=84))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=90)
    return out.getvalue()


def frames(batch: int) -> list[FrameObservation]:
    start = datetime(2026, 11, 20, 22, 0, tzinfo=UTC) + timedelta(minutes=batch)
    return [
        FrameObservation(
            f"b{batch}-f{i}", "front_door", "Front Door", start + timedelta(seconds=2 * i), W, H,
            (Detection("person", 0, 0.9, Box(PERSON.x_min + 40 * i, PERSON.y_min,
                                              PERSON.x_max + 40 * i, PERSON.y_max)),
             Detection("car", 2, 0.85, CAR)),
        )
        for i in range(3)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    work = Path(args.cache_dir or tempfile.mkdtemp(prefix="secmon-enrich-bench-"))
    settings = EnrichmentSettings(
        enabled=frozenset(ENRICHERS), caption_model=args.caption,
        attributes_model=args.attributes, pose_model=args.pose, depth_model=args.depth,
        device=args.device,
        memory_budget_bytes=int(args.budget_mib * MIB) if args.budget_mib else None,
        margin_bytes=64 * MIB, batch_time_budget_s=600,
    )
    enricher = Enricher(
        settings, build_zoo(settings, work / "models"),
        identities=IdentityStore(work / STATE_FILE),
    )
    backend = create_backend(args.llm, use_gpu=args.device == "cuda", n_ctx=8192,
                             cache_dir=work / "llm")
    analyzer = RiskAnalyzer(backend, tz=UTC, timeout_s=120)
    await analyzer.start()

    def feed(batch: int) -> tuple[OpenBatch, list[FrameObservation]]:
        observed = frames(batch)
        for i, f in enumerate(observed):
            enricher.remember(f.camera_id, f.frame_id, image(40 * i))
        return OpenBatch(f"b{batch}", "front_door", "Front Door", 0.0, 0.0, observed), observed

    open_batch, observed = feed(0)
    t0 = time.perf_counter()
    first, _ = await assess_batch(analyzer, open_batch, observed, fast_path=False,
                                  close_reason="idle", enricher=enricher)
    assert first.enrichment is not None
    runs = ", ".join(f"{r.name} {r.status}" for r in first.enrichment.runs)
    print(f"first batch (loads every model): {(time.perf_counter() - t0) * 1000:.0f} ms; {runs}")
    state = enricher.state()
    print(f"\nmodels on {state.device} (measured: weights = load delta, "
          "working set = warm-up peak)")
    print(f"{'model':<11} {'spec':<44} {'weights MiB':>11} {'work MiB':>9} {'load ms':>8}")
    for m in state.models:
        print(f"{m.name:<11} {m.spec[:44]:<44} {m.weights_bytes / MIB:>11.1f} "
              f"{m.peak_bytes / MIB:>9.1f} {m.load_ms:>8.0f}")

    per: dict[str, list[float]] = {name: [] for name in ENRICHERS}
    with_enrichment: list[float] = []
    without: list[float] = []
    for n in range(1, args.runs + 1):
        open_batch, observed = feed(n)
        t0 = time.perf_counter()
        verdict, _ = await assess_batch(analyzer, open_batch, observed, fast_path=False,
                                        close_reason="idle", enricher=enricher)
        with_enrichment.append((time.perf_counter() - t0) * 1000)
        assert verdict.enrichment is not None
        for r in verdict.enrichment.runs:
            per[r.name].append(r.ms)
        t0 = time.perf_counter()
        await assess_batch(analyzer, open_batch, observed, fast_path=False, close_reason="idle")
        without.append((time.perf_counter() - t0) * 1000)

    print(f"\nper enricher, ms per batch of 3 frames ({args.runs} batches)")
    print(f"{'enricher':<11} {'mean':>8} {'p50':>8} {'max':>8}")
    for name, values in per.items():
        print(f"{name:<11} {statistics.mean(values):>8.1f} {percentile(values, 0.5):>8.1f} "
              f"{max(values):>8.1f}")
    mean_with, mean_without = statistics.mean(with_enrichment), statistics.mean(without)
    print(f"\nverdict latency (enrichment + LLM), ms: with {mean_with:.0f} "
          f"(p50 {percentile(with_enrichment, 0.5):.0f}), without {mean_without:.0f} "
          f"(p50 {percentile(without, 0.5):.0f}); ratio {mean_with / mean_without:.2f}x")
    print(f"zoo: budget {state.budget_bytes / MIB:.0f} MiB, high water "
          f"{enricher.state().high_water_bytes / MIB:.1f} MiB, loads {enricher.state().loads}, "
          f"evictions {enricher.state().evictions}, skips {enricher.state().skips}")
    await enricher.close()
    analyzer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caption", default="random:tiny")
    parser.add_argument("--attributes", default="random:tiny")
    parser.add_argument("--pose", default="random:tiny")
    parser.add_argument("--depth", default="random:tiny")
    parser.add_argument("--llm", default="random:tiny")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--budget-mib", type=float, default=0, help="0: measured (auto)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", default="")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
