"""Where an enrichment model's weights come from: a hub id, a local `save_pretrained` directory, or
`random:tiny` (a tiny random-weight model built offline into the cache directory, then loaded
through the same directory-loading code as a real checkpoint)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .base import ModelLoadError

_LOGGER = logging.getLogger(__name__)

RANDOM_TINY = "random:tiny"


def validate_spec(spec: str, what: str) -> None:
    """Raise ModelLoadError for a spec that cannot work (checked at start, before any load)."""
    spec = spec.strip()
    if not spec:
        raise ModelLoadError(
            f"the {what} model is empty; give a hub id, a directory or random:tiny"
        )
    if spec.startswith("random:"):
        if spec != RANDOM_TINY:
            raise ModelLoadError(f"unknown random {what} model {spec!r}; use {RANDOM_TINY}")
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        return
    if spec.startswith(("/", "./", "../", "~")) or spec.count("/") != 1 or path.exists():
        raise ModelLoadError(
            f"{what} model {spec!r} is not a model directory (expected one written by "
            "save_pretrained)"
        )


def resolve(spec: str, what: str, cache_dir: Path, build_tiny: Callable[[Path], None]) -> str:
    """The directory or hub id to load `spec` from; builds the tiny random model if asked to."""
    validate_spec(spec, what)
    if spec == RANDOM_TINY:
        directory = cache_dir / f"random-tiny-{what}"
        if not (directory / "config.json").is_file():
            build_tiny(directory)
        _LOGGER.warning(
            "Enrichment model %s has RANDOM weights: its output is meaningless (for tests and "
            "benchmarks only)",
            what,
        )
        return str(directory)
    return str(Path(spec).expanduser()) if Path(spec).expanduser().is_dir() else spec


def checkpoint_bytes(location: str) -> int:
    """Size of the weight files of a local checkpoint (0 for hub ids): the first estimate."""
    path = Path(location)
    if not path.is_dir():
        return 0
    return sum(
        f.stat().st_size for f in path.iterdir() if f.suffix in (".safetensors", ".bin", ".pt")
    )


def load_error(spec: str, what: str, cls: str, err: Exception) -> ModelLoadError:
    if Path(spec).expanduser().is_dir() or spec == RANDOM_TINY:
        return ModelLoadError(f"could not load the {what} model from {spec}: {err}")
    return ModelLoadError(
        f"could not load {what} model {spec!r}: not in the local cache and the hub cannot be "
        f"reached. On a machine with access run `{cls}.from_pretrained({spec!r})"
        ".save_pretrained(DIR)` (and the same for its processor), copy DIR here and pass it "
        "instead"
    )


def dtype_for(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32


def seeded(seed: int) -> Callable[[Callable[[], object]], object]:
    """Run a builder with torch's RNG seeded, leaving the global RNG as it was."""

    def run(build: Callable[[], object]) -> object:
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            return build()
        finally:
            torch.random.set_rng_state(state)

    return run


def transformers() -> Any:
    """The transformers module, imported on first use (its classes are used untyped)."""
    return importlib.import_module("transformers")
