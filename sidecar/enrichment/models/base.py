"""The interface every enrichment model implements; the zoo only talks to this."""

from __future__ import annotations

import abc
from typing import Any


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says why (and what to do about it)."""


class EnrichmentModel(abc.ABC):
    """One model the zoo loads, warms up, lends out and unloads.

    `load` and `warmup` run once per residency, in a worker thread; `warmup` must run the largest
    input the model will be given (the zoo measures its peak as the model's working set).
    Methods that run the model are the subclass's own; they run under a zoo lease and take
    `smaller=True` on the one retry after an out-of-memory error (one item at a time).
    """

    name: str = "model"

    @property
    @abc.abstractmethod
    def spec(self) -> str:
        """What was asked for: a hub id, a local directory, random:tiny, or a package name."""

    def prepare(self) -> None:
        """Everything before the weights that is paid once per process (imports, building a
        random:tiny checkpoint): run before the load is measured, so it is not counted."""
        return

    @abc.abstractmethod
    def load(self) -> Any:
        """Load the weights; returns the loaded torch module(s) (for the tensor-byte floor) or
        None."""

    @abc.abstractmethod
    def warmup(self) -> None: ...

    @abc.abstractmethod
    def unload(self) -> None:
        """Drop every reference to the weights."""

    def estimate_bytes(self) -> int:
        """A first guess of the weights' size, before they were ever measured (checkpoint files
        on disk, or 0 when unknown). Only the first admission uses it."""
        return 0
