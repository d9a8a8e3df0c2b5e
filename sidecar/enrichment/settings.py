"""Enrichment settings (flags in server/config.py) and the default checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

ENRICHERS = ("caption", "attributes", "plates", "pose", "depth")
DEFAULT_CAPTION = "florence-community/Florence-2-base"
DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_POSE = "usyd-community/vitpose-base-simple"
DEFAULT_DEPTH = "depth-anything/Depth-Anything-V2-Small-hf"
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EnrichmentSettings:
    enabled: frozenset[str] = frozenset(ENRICHERS)
    caption_model: str = DEFAULT_CAPTION
    attributes_model: str = DEFAULT_CLIP
    pose_model: str = DEFAULT_POSE
    depth_model: str = DEFAULT_DEPTH
    device: str = "auto"
    # None: the device's free memory once the detector and the LLM are loaded (on CPU: the
    # available RAM). The margin is kept free within it.
    memory_budget_bytes: int | None = None
    margin_bytes: int = 256 * MIB
    idle_ttl_s: float = 300.0
    # Longest a run waits for room in the budget before it is skipped.
    wait_s: float = 10.0
    batch_time_budget_s: float = 30.0
    fast_path_time_budget_s: float = 3.0
    max_objects: int = 6
    reid_threshold: float = 0.9
    identity_retention_s: float = 7 * 24 * 3600
    frame_cache_bytes: int = 256 * MIB
