"""Command-line flags, each also settable by a SECMON_* environment variable (flags win)."""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..domain import BatchingPolicy, CompileMode, PreprocessMode
from ..enrichment.settings import (
    DEFAULT_CAPTION,
    DEFAULT_CLIP,
    DEFAULT_DEPTH,
    DEFAULT_POSE,
    ENRICHERS,
    EnrichmentSettings,
)
from ..events.batching import BatchingRules
from .client_config import IDLE_S_LIMITS, WINDOW_S_LIMITS

DEFAULT_LISTEN = "127.0.0.1:50051"
# The default models: RT-DETRv2 R18 and NVIDIA Nemotron 3 Nano 30B-A3B (Q4_K_M GGUF).
DEFAULT_DETECTOR = "PekingU/rtdetr_v2_r18vd"
DEFAULT_LLM = "bartowski/nvidia_Nemotron-3-Nano-30B-A3B-GGUF:*Q4_K_M.gguf"
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    listen: str = DEFAULT_LISTEN
    detector: str = DEFAULT_DETECTOR
    device: str = "auto"
    threshold: float = 0.5
    max_batch: int = 4
    max_delay_ms: float = 10.0
    # "latency": batch only when it finishes the waiting frames sooner (learned per device);
    # "fill": always fill up to max_batch or the delay (the classic dynamic batcher).
    batching_policy: BatchingPolicy = "latency"
    # Frame decoders; 0 = one per two cores.
    decode_workers: int = 0
    # torch.compile the detector for fixed batch shapes: "off", "default", "reduce-overhead"
    # (CUDA graphs on CUDA).
    compile: CompileMode = "off"
    # Fixed mmap threshold and few malloc arenas (see server/memory.py); measured slower on CPU.
    tune_malloc: bool = False
    token: str | None = None
    max_frame_bytes: int = 32 * MIB
    max_pixels: int = 64_000_000
    data_dir: Path = Path("sidecar-data")
    log_level: str = "INFO"
    # Per stream: frames accepted but whose result has not been written back yet.
    max_inflight_per_stream: int = 64
    # Recent frame results kept for idempotent re-sends (bounded LRU).
    result_cache_size: int = 4096
    # Seconds in-flight work may take to finish after SIGTERM.
    shutdown_grace_s: float = 30.0
    # "fast": JPEG draft decode + torch resize; "exact": bit-identical to RTDetrImageProcessorPil.
    preprocess: PreprocessMode = "fast"
    llm: str = DEFAULT_LLM
    llm_context: int = 8192
    llm_timeout_s: float = 60.0
    llm_model_name: str = ""
    llm_api_key: str | None = None
    # Used for clients that send no batching rules of their own.
    batching: BatchingRules = field(default_factory=BatchingRules)
    verdict_resend_s: float = 30.0
    # Largest size of the state file in MiB (0: no limit); past it, writes fail as on a full disk.
    state_max_mib: float = 0.0
    enrichment: EnrichmentSettings = field(default_factory=EnrichmentSettings)

    @property
    def grpc_message_limit(self) -> int:
        """gRPC's own receive/send limit: clearly above the app limit, so an oversized frame still
        arrives and gets a per-frame TOO_LARGE result instead of killing the stream."""
        return min(2 * self.max_frame_bytes + 4 * MIB, 2**31 - 1)


def _env(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(f"SECMON_{name}", default)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _seconds_within(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not low <= value <= high:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be within [{low:g}, {high:g}] s, got {text}")
        return value

    return parse


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _enrichers(text: str) -> frozenset[str]:
    names = frozenset(x.strip() for x in text.split(",") if x.strip())
    if names in (frozenset({"none"}), frozenset()):
        return frozenset()
    if names == frozenset({"all"}):
        return frozenset(ENRICHERS)
    unknown = names - set(ENRICHERS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown enricher(s) {', '.join(sorted(unknown))}; choose from "
            f"{', '.join(ENRICHERS)}, all or none"
        )
    return names


def _budget(text: str) -> int | None:
    """MiB, or auto (measured when the models are loaded)."""
    if text.strip().lower() in ("", "auto"):
        return None
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 MiB or auto, got {text}")
    return int(value * MIB)


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The sidecar's argument parser; defaults come from SECMON_* variables in `env`."""
    env = os.environ if env is None else env
    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m sidecar",
        description="secmon sidecar: RT-DETRv2 object detection and LLM risk verdicts over gRPC. "
        "Every flag can also be set with the environment variable shown.",
    )
    add = p.add_argument
    add("--listen", default=_env(env, "LISTEN", d.listen),
        help="host:port to serve on; port 0 picks a free port (SECMON_LISTEN)")
    add("--detector", default=_env(env, "DETECTOR", d.detector),
        help="detector model: a hub id, a local save_pretrained directory, or random:tiny / "
        "random:r18 (random weights, meaningless detections) (SECMON_DETECTOR)")
    add("--device", choices=("auto", "cpu", "cuda"), default=_env(env, "DEVICE", d.device),
        help="where the detector runs; auto = cuda when available (SECMON_DEVICE)")
    add("--threshold", type=_threshold, default=_env(env, "THRESHOLD", str(d.threshold)),
        help="default minimum detection confidence (SECMON_THRESHOLD)")
    add("--max-batch", type=_positive_int, default=_env(env, "MAX_BATCH", str(d.max_batch)),
        help="largest model batch (SECMON_MAX_BATCH)")
    add("--max-delay-ms", type=_non_negative_float,
        default=_env(env, "MAX_DELAY_MS", str(d.max_delay_ms)),
        help="longest a frame waits for a batch to fill (SECMON_MAX_DELAY_MS)")
    add("--batching", choices=("latency", "fill"),
        default=_env(env, "BATCHING", d.batching_policy),
        help="latency: batch frames only when the batch finishes them sooner than one by one "
        "(forward times learned on this device); fill: always fill up to --max-batch or "
        "--max-delay-ms (SECMON_BATCHING)")
    add("--decode-workers", type=int, default=_env(env, "DECODE_WORKERS", str(d.decode_workers)),
        help="threads decoding frames; 0 = one per two cores (SECMON_DECODE_WORKERS)")
    add("--compile", choices=("off", "default", "reduce-overhead"),
        default=_env(env, "COMPILE", d.compile),
        help="torch.compile the detector for fixed batch shapes (1, 2, 4, ... up to "
        "--max-batch; batches are padded up); reduce-overhead uses CUDA graphs on CUDA. "
        "Compiles at start-up (SECMON_COMPILE)")
    add("--tune-malloc", action=argparse.BooleanOptionalAction,
        default=_env(env, "TUNE_MALLOC", "0").lower() in ("1", "true", "yes", "on"),
        help="map and unmap every block of 1 MiB or more and cap malloc arenas at 2; off by "
        "default: on 2 CPU cores it doubled the forward time and did not lower peak memory "
        "(SECMON_TUNE_MALLOC)")
    add("--token", default=env.get("SECMON_TOKEN") or None,
        help="require 'authorization: Bearer <token>' on every RPC except health and reflection "
        "(SECMON_TOKEN)")
    add("--max-frame-bytes", type=_positive_int,
        default=_env(env, "MAX_FRAME_BYTES", str(d.max_frame_bytes)),
        help="largest encoded frame accepted; larger ones get TOO_LARGE (SECMON_MAX_FRAME_BYTES)")
    add("--max-pixels", type=_positive_int, default=_env(env, "MAX_PIXELS", str(d.max_pixels)),
        help="largest width x height decoded; larger ones get TOO_MANY_PIXELS (SECMON_MAX_PIXELS)")
    add("--data-dir", type=Path, default=_env(env, "DATA_DIR", str(d.data_dir)),
        help="where the sidecar keeps its state (SECMON_DATA_DIR)")
    add("--log-level", default=_env(env, "LOG_LEVEL", d.log_level).upper(),
        choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper,
        help="log level (SECMON_LOG_LEVEL)")
    add("--max-inflight-per-stream", type=_positive_int,
        default=_env(env, "MAX_INFLIGHT_PER_STREAM", str(d.max_inflight_per_stream)),
        help="frames one stream may have in flight before the sidecar stops reading it "
        "(SECMON_MAX_INFLIGHT_PER_STREAM)")
    add("--result-cache-size", type=_positive_int,
        default=_env(env, "RESULT_CACHE_SIZE", str(d.result_cache_size)),
        help="recent frame results kept to answer re-sent frame ids (SECMON_RESULT_CACHE_SIZE)")
    add("--shutdown-grace-s", type=_non_negative_float,
        default=_env(env, "SHUTDOWN_GRACE_S", str(d.shutdown_grace_s)),
        help="seconds in-flight frames may take to finish after SIGTERM (SECMON_SHUTDOWN_GRACE_S)")
    add("--preprocess", choices=("fast", "exact"), default=_env(env, "PREPROCESS", d.preprocess),
        help="fast: JPEG draft-mode decode and torch resize; exact: pixels identical to "
        "transformers' RTDetrImageProcessorPil (SECMON_PREPROCESS)")
    add("--llm", default=_env(env, "LLM", ""),
        help="risk LLM: a local .gguf file, a hub REPO/NAME:FILE.gguf (glob allowed), an "
        "OpenAI-compatible http(s)://host:port/v1 endpoint, random:tiny (random weights, "
        f"meaningless verdicts) or none (every verdict is a fallback). Default: {DEFAULT_LLM}, "
        "or random:tiny when the detector is a random:* model (SECMON_LLM)")
    add("--llm-context", type=_positive_int, default=_env(env, "LLM_CONTEXT", str(d.llm_context)),
        help="LLM context window in tokens (SECMON_LLM_CONTEXT)")
    add("--llm-timeout-s", type=_non_negative_float,
        default=_env(env, "LLM_TIMEOUT_S", str(d.llm_timeout_s)),
        help="longest one verdict may take before it falls back (SECMON_LLM_TIMEOUT_S)")
    add("--llm-model-name", default=_env(env, "LLM_MODEL_NAME", d.llm_model_name),
        help="model name sent to an OpenAI-compatible endpoint (SECMON_LLM_MODEL_NAME)")
    add("--llm-api-key", default=env.get("SECMON_LLM_API_KEY") or None,
        help="bearer key for an OpenAI-compatible endpoint (SECMON_LLM_API_KEY)")
    add("--batch-window-s", type=_seconds_within(*WINDOW_S_LIMITS),
        default=_env(env, "BATCH_WINDOW_S", str(d.batching.window_s)),
        help="a camera's batch closes this long after it opened; the integration's options "
        "override it (SECMON_BATCH_WINDOW_S)")
    add("--batch-idle-s", type=_seconds_within(*IDLE_S_LIMITS),
        default=_env(env, "BATCH_IDLE_S", str(d.batching.idle_s)),
        help="...or this long after its last detection (SECMON_BATCH_IDLE_S)")
    add("--fast-path-labels",
        default=_env(env, "FAST_PATH_LABELS", ",".join(sorted(d.batching.fast_path_labels))),
        help="comma-separated labels that get an immediate verdict (SECMON_FAST_PATH_LABELS)")
    add("--fast-path-confidence", type=_threshold,
        default=_env(env, "FAST_PATH_CONFIDENCE", str(d.batching.fast_path_confidence)),
        help="minimum confidence for the fast path (SECMON_FAST_PATH_CONFIDENCE)")
    add("--verdict-resend-s", type=_non_negative_float,
        default=_env(env, "VERDICT_RESEND_S", str(d.verdict_resend_s)),
        help="unacknowledged verdicts are sent again after this long (SECMON_VERDICT_RESEND_S)")
    add("--batch-max-frames", type=_positive_int,
        default=_env(env, "BATCH_MAX_FRAMES", str(d.batching.max_frames)),
        help="a batch closes when this many frames joined it (SECMON_BATCH_MAX_FRAMES)")
    add("--state-max-mib", type=_non_negative_float,
        default=_env(env, "STATE_MAX_MIB", str(d.state_max_mib)),
        help="largest size of the state file in MiB, 0 for no limit; past it frames that would "
        "join a batch get STORAGE_UNAVAILABLE, as on a full disk (SECMON_STATE_MAX_MIB)")
    e = d.enrichment
    add("--enrich", type=_enrichers, default=_env(env, "ENRICH", ",".join(ENRICHERS)),
        help="enrichers run on each batch's key frames: comma-separated from "
        f"{', '.join(ENRICHERS)}, or all, or none (SECMON_ENRICH)")
    add("--enrich-caption-model", default=_env(env, "ENRICH_CAPTION_MODEL", ""),
        help="Florence-2 model for the scene description: hub id, save_pretrained directory or "
        f"random:tiny. Default: {DEFAULT_CAPTION}, or random:tiny when the detector is random:* "
        "(SECMON_ENRICH_CAPTION_MODEL)")
    add("--enrich-attributes-model", default=_env(env, "ENRICH_ATTRIBUTES_MODEL", ""),
        help="CLIP model for attributes and re-identification: hub id, save_pretrained directory "
        f"or random:tiny. Default: {DEFAULT_CLIP}, or random:tiny when the detector is random:* "
        "(SECMON_ENRICH_ATTRIBUTES_MODEL)")
    add("--enrich-pose-model", default=_env(env, "ENRICH_POSE_MODEL", ""),
        help=f"ViTPose model for posture (default {DEFAULT_POSE}; random:tiny with a random "
        "detector) (SECMON_ENRICH_POSE_MODEL)")
    add("--enrich-depth-model", default=_env(env, "ENRICH_DEPTH_MODEL", ""),
        help=f"Depth Anything model for distance (default {DEFAULT_DEPTH}; random:tiny with a "
        "random detector) (SECMON_ENRICH_DEPTH_MODEL)")
    add("--enrich-device", choices=("auto", "cpu", "cuda"), default=_env(env, "ENRICH_DEVICE", ""),
        help="where the enrichment models run (default: --device) (SECMON_ENRICH_DEVICE)")
    add("--enrich-memory-budget", type=_budget, default=_env(env, "ENRICH_MEMORY_BUDGET", "auto"),
        help="MiB for the enrichment models, weights and working sets together, the margin "
        "included; auto = the device's free memory once the detector and the LLM are loaded (on "
        "CPU the available RAM) (SECMON_ENRICH_MEMORY_BUDGET)")
    add("--enrich-memory-margin", type=_non_negative_float,
        default=_env(env, "ENRICH_MEMORY_MARGIN", str(e.margin_bytes // MIB)),
        help="MiB of the budget always left free, for allocations nobody measured "
        "(SECMON_ENRICH_MEMORY_MARGIN)")
    add("--enrich-idle-ttl-s", type=_non_negative_float,
        default=_env(env, "ENRICH_IDLE_TTL_S", str(e.idle_ttl_s)),
        help="an enrichment model unused this long is unloaded (SECMON_ENRICH_IDLE_TTL_S)")
    add("--enrich-batch-time-s", type=_non_negative_float,
        default=_env(env, "ENRICH_BATCH_TIME_S", str(e.batch_time_budget_s)),
        help="time budget of a batch's enrichment; what does not fit is skipped "
        "(SECMON_ENRICH_BATCH_TIME_S)")
    add("--enrich-fast-path-time-s", type=_non_negative_float,
        default=_env(env, "ENRICH_FAST_PATH_TIME_S", str(e.fast_path_time_budget_s)),
        help="time budget of a fast-path verdict's enrichment (SECMON_ENRICH_FAST_PATH_TIME_S)")
    add("--enrich-max-objects", type=_positive_int,
        default=_env(env, "ENRICH_MAX_OBJECTS", str(e.max_objects)),
        help="most objects enriched per batch (SECMON_ENRICH_MAX_OBJECTS)")
    add("--reid-threshold", type=_threshold,
        default=_env(env, "REID_THRESHOLD", str(e.reid_threshold)),
        help="cosine similarity from which two sightings are the same identity "
        "(SECMON_REID_THRESHOLD)")
    add("--reid-retention-h", type=_non_negative_float,
        default=_env(env, "REID_RETENTION_H", str(e.identity_retention_s / 3600)),
        help="hours identities and their sightings are kept (SECMON_REID_RETENTION_H)")
    return p


def default_enrich_model(detector: str, production: str) -> str:
    """A toy detector gets toy enrichment models, so `--detector random:tiny` runs offline."""
    return "random:tiny" if detector.startswith("random:") else production


def enrichment_settings(ns: argparse.Namespace) -> EnrichmentSettings:
    enabled = ns.enrich if isinstance(ns.enrich, frozenset) else _enrichers(str(ns.enrich))
    budget = ns.enrich_memory_budget
    if isinstance(budget, str):  # a default taken from the environment
        budget = _budget(budget)
    return EnrichmentSettings(
        enabled=enabled,
        caption_model=ns.enrich_caption_model or default_enrich_model(ns.detector, DEFAULT_CAPTION),
        attributes_model=ns.enrich_attributes_model
        or default_enrich_model(ns.detector, DEFAULT_CLIP),
        pose_model=ns.enrich_pose_model or default_enrich_model(ns.detector, DEFAULT_POSE),
        depth_model=ns.enrich_depth_model or default_enrich_model(ns.detector, DEFAULT_DEPTH),
        device=ns.enrich_device or ns.device,
        memory_budget_bytes=budget,
        margin_bytes=int(float(ns.enrich_memory_margin) * MIB),
        idle_ttl_s=float(ns.enrich_idle_ttl_s),
        batch_time_budget_s=float(ns.enrich_batch_time_s),
        fast_path_time_budget_s=float(ns.enrich_fast_path_time_s),
        max_objects=int(ns.enrich_max_objects),
        reid_threshold=float(ns.reid_threshold),
        identity_retention_s=float(ns.reid_retention_h) * 3600,
    )


def default_llm(detector: str) -> str:
    """A toy detector gets the toy LLM, so `--detector random:tiny` alone runs offline."""
    return "random:tiny" if detector.startswith("random:") else DEFAULT_LLM


def settings_from_namespace(ns: argparse.Namespace) -> Settings:
    return Settings(
        listen=ns.listen,
        detector=ns.detector,
        device=ns.device,
        threshold=float(ns.threshold),
        max_batch=int(ns.max_batch),
        max_delay_ms=float(ns.max_delay_ms),
        batching_policy=ns.batching,
        decode_workers=max(0, int(ns.decode_workers)),
        compile=ns.compile,
        tune_malloc=bool(ns.tune_malloc),
        token=ns.token or None,
        max_frame_bytes=int(ns.max_frame_bytes),
        max_pixels=int(ns.max_pixels),
        data_dir=Path(ns.data_dir),
        log_level=ns.log_level,
        max_inflight_per_stream=int(ns.max_inflight_per_stream),
        result_cache_size=int(ns.result_cache_size),
        shutdown_grace_s=float(ns.shutdown_grace_s),
        preprocess=ns.preprocess,
        llm=ns.llm or default_llm(ns.detector),
        llm_context=int(ns.llm_context),
        llm_timeout_s=float(ns.llm_timeout_s),
        llm_model_name=ns.llm_model_name,
        llm_api_key=ns.llm_api_key or None,
        batching=BatchingRules(
            window_s=float(ns.batch_window_s),
            idle_s=float(ns.batch_idle_s),
            fast_path_labels=frozenset(
                x.strip() for x in str(ns.fast_path_labels).split(",") if x.strip()
            ),
            fast_path_confidence=float(ns.fast_path_confidence),
            max_frames=int(ns.batch_max_frames),
        ),
        verdict_resend_s=float(ns.verdict_resend_s),
        state_max_mib=float(ns.state_max_mib),
        enrichment=enrichment_settings(ns),
    )


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Parse flags (falling back to SECMON_* variables, then the defaults)."""
    parser = build_parser(env)
    ns = parser.parse_args(argv)
    if ns.device not in ("auto", "cpu", "cuda"):  # argparse does not check env-provided defaults
        parser.error(f"--device/SECMON_DEVICE must be auto, cpu or cuda, got {ns.device!r}")
    if ns.batching not in ("latency", "fill"):
        parser.error(f"--batching/SECMON_BATCHING must be latency or fill, got {ns.batching!r}")
    if ns.compile not in ("off", "default", "reduce-overhead"):
        parser.error(
            f"--compile/SECMON_COMPILE must be off, default or reduce-overhead, got {ns.compile!r}"
        )
    if ns.enrich_device not in ("", "auto", "cpu", "cuda"):
        parser.error(f"SECMON_ENRICH_DEVICE must be auto, cpu or cuda, got {ns.enrich_device!r}")
    if ns.preprocess not in ("fast", "exact"):
        parser.error(f"--preprocess/SECMON_PREPROCESS must be fast or exact, got {ns.preprocess!r}")
    if float(ns.batch_idle_s) > float(ns.batch_window_s):
        parser.error("--batch-idle-s must not exceed --batch-window-s")
    return settings_from_namespace(ns)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
