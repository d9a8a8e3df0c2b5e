"""Enrichment models that are one transformers checkpoint: the spec, where the checkpoint lives
(random:tiny built on first use) and the imports paid before the load; and, for a checkpoint plus
its `AutoImageProcessor`, the load and the unload too, shared by the models of that shape."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import torch

from . import checkpoints
from .base import EnrichmentModel


class CheckpointModel(EnrichmentModel):
    """Subclasses name the transformers classes they use (`transformers_classes`) and how to
    write a tiny random checkpoint (`build_tiny`), and add their load, warm-up and inference."""

    def __init__(self, spec: str, device: torch.device, cache_dir: Path) -> None:
        self._spec = spec
        self._device = device
        self._cache_dir = cache_dir
        self._location: str | None = None
        self._model: Any = None

    @abc.abstractmethod
    def transformers_classes(self) -> tuple[str, ...]:
        """The transformers classes the load uses (imported by `prepare`)."""

    @abc.abstractmethod
    def build_tiny(self, directory: Path) -> None:
        """Write a tiny random-weight checkpoint (config, weights, processor) to `directory`."""

    @property
    def spec(self) -> str:
        return self._spec

    def estimate_bytes(self) -> int:
        return checkpoints.checkpoint_bytes(
            str(self._cache_dir / f"random-tiny-{self.name}")
            if self._spec == checkpoints.RANDOM_TINY
            else self._spec
        )

    def prepare(self) -> None:
        self.prepare_location()
        tf = checkpoints.transformers()
        for cls in self.transformers_classes():
            getattr(tf, cls)  # transformers imports a class's module on first access

    def prepare_location(self) -> str:
        if self._location is None:
            self._location = checkpoints.resolve(
                self._spec, self.name, self._cache_dir, self.build_tiny
            )
        return self._location


class PretrainedImageModel(CheckpointModel):
    """Subclasses name the transformers class (`model_class`) and how to write a tiny random
    checkpoint (`build_tiny`), and add their own warm-up and inference."""

    model_class: ClassVar[str]

    def __init__(self, spec: str, device: torch.device, cache_dir: Path) -> None:
        super().__init__(spec, device, cache_dir)
        self._images: Any = None

    def transformers_classes(self) -> tuple[str, ...]:
        return (self.model_class, "AutoImageProcessor")

    def load(self) -> Any:
        tf = checkpoints.transformers()
        location = self.prepare_location()
        try:
            model = getattr(tf, self.model_class).from_pretrained(
                location, dtype=checkpoints.dtype_for(self._device)
            )
            self._images = tf.AutoImageProcessor.from_pretrained(location)
        except (OSError, ValueError, KeyError) as err:
            raise checkpoints.load_error(self._spec, self.name, self.model_class, err) from err
        self._model = model.to(self._device).eval()
        return self._model

    def unload(self) -> None:
        self._model = None
        self._images = None
