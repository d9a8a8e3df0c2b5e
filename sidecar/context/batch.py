"""Everything the prompt of one batch is told beyond the batch itself."""

from __future__ import annotations

from dataclasses import dataclass

from .baseline import Normality
from .feedback import SimilarFeedback
from .home import HomeState
from .recent import OtherCamera
from .tamper import TamperState


@dataclass(frozen=True, slots=True)
class BatchContext:
    normality: Normality | None = None
    other_cameras: tuple[OtherCamera, ...] = ()
    home: HomeState | None = None
    owner_note: str = ""
    feedback: tuple[SimilarFeedback, ...] = ()
    tamper: TamperState | None = None
