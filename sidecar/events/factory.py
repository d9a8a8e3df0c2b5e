"""Builds the event pipeline (store, LLM analyzer, batching rules) from the sidecar's settings."""

from __future__ import annotations

import logging
from datetime import datetime

from ..config import Settings
from ..llm.analyzer import RiskAnalyzer
from ..llm.backends import create_backend
from ..streams import SessionRegistry, StreamObserver
from .batcher import BatchingRules
from .observer import EventObserver
from .pipeline import EventPipeline
from .store import EventStore

_LOGGER = logging.getLogger(__name__)


def use_gpu(device: str) -> bool:
    if device == "cpu":
        return False
    import torch  # noqa: PLC0415 - already loaded by the detector

    return bool(torch.cuda.is_available())


def default_rules(settings: Settings) -> BatchingRules:
    return BatchingRules(
        window_s=settings.batch_window_s,
        idle_s=settings.batch_idle_s,
        fast_path_labels=frozenset(settings.fast_path_labels),
        fast_path_confidence=settings.fast_path_confidence,
    )


def event_observer(settings: Settings, _sessions: SessionRegistry) -> StreamObserver:
    """The `ObserverFactory` for `sidecar.server.main`."""
    backend = None
    if settings.llm != "none":
        backend = create_backend(
            settings.llm,
            use_gpu=use_gpu(settings.device),
            n_ctx=settings.llm_context,
            cache_dir=settings.data_dir / "models",
            model=settings.llm_model_name,
            api_key=settings.llm_api_key or "",
        )
    local_zone = datetime.now().astimezone().tzinfo
    assert local_zone is not None
    analyzer = RiskAnalyzer(backend, tz=local_zone, timeout_s=settings.llm_timeout_s)
    rules = default_rules(settings)
    pipeline = EventPipeline(
        EventStore(settings.data_dir / "events.sqlite"),
        analyzer,
        rules,
        resend_after_s=settings.verdict_resend_s,
    )
    return EventObserver(pipeline, rules, analyzer)
