"""Plugs the event pipeline into the Stream RPC (the servicer's `StreamObserver` seam), and builds
it from the settings (`event_observer`, the factory `python -m sidecar` passes to the server).

- every successfully processed stream frame is observed (joins a batch, may take the fast path);
- every open stream receives verdicts: first all unacknowledged ones, then each new one, and
  unacknowledged ones again until the client acknowledges them;
- `StreamConfig.batching` sets the client's batching rules (checked by client_config.py; other
  clients keep theirs), `StreamConfig.known_plates` the plates named in prompts,
  `StreamConfig.camera_notes` the owner's notes, `Hello.time_zone` the local time in the prompts of
  its batches, `HomeState` messages who is home and the alarm in them, `Feedback` messages the
  owner's judgements (kept in the state file) in the prompts of similar batches;
- the images of frames that join batches are kept (bounded) for the batch's enrichment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain import FrameError, FrameObservation, FrameOutcome, FrameRequest, Verdict
from ..enrichment.service import Enricher, create_enricher
from ..enrichment.settings import ENRICHERS
from ..events.batching import BatchingRules
from ..events.event_pipeline import EventPipeline
from ..events.store import EventStore
from ..llm.analyzer import RiskAnalyzer
from ..llm.backends import create_backend
from ..proto import secmon_pb2 as pb
from ..storage.database import STATE_FILE, StateDatabase
from . import convert
from .client_config import resolve_batching
from .config import MIB, Settings
from .observer import StreamObserver
from .sessions import SessionRegistry, StreamSession

_LOGGER = logging.getLogger(__name__)

# IANA names are short ("America/Argentina/ComodRivadavia" is among the longest).
_MAX_ZONE_CHARS = 64


class EventObserver(StreamObserver):
    def __init__(
        self,
        pipeline: EventPipeline,
        default_rules: BatchingRules,
        analyzer: RiskAnalyzer,
        enricher: Enricher | None = None,
        *,
        damaged_file: Path | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._default_rules = default_rules
        self._analyzer = analyzer
        # Where a damaged state file found at start-up was moved.
        self._damaged_file = damaged_file
        self._enricher = enricher
        self._subscriptions: dict[int, asyncio.Queue[Verdict]] = {}

    async def start(self) -> None:
        # Batches restored from the store resume at once; their analysis waits for `load`.
        if self._enricher is not None:
            await self._enricher.start()
        await self._pipeline.start()

    async def load(self) -> None:
        """Load and warm up the LLM (raises LlmLoadError); the server is SERVING only after."""
        await self._analyzer.start()

    async def on_ready(self) -> None:
        if self._enricher is not None:
            await self._enricher.on_ready()

    async def close(self) -> None:
        await self._pipeline.stop()
        self._pipeline.close()
        self._analyzer.close()
        if self._enricher is not None:
            await self._enricher.close()

    # -- sessions ------------------------------------------------------------------------------
    # Verdicts go to streams whose client said Hello: they are delivered per client id.
    async def on_hello(self, session: StreamSession, hello: pb.Hello) -> None:
        if hello.time_zone and (zone := _zone(hello.time_zone)) is not None:
            self._pipeline.set_time_zone(zone, _client_id(session))
        await self.on_session_closed(session)  # a second Hello re-subscribes
        queue = await self._pipeline.subscribe(_client_id(session))
        self._subscriptions[session.session_id] = queue
        session.spawn(self._forward(session, queue), name=f"secmon-verdicts-{session.session_id}")

    async def on_session_closed(self, session: StreamSession) -> None:
        queue = self._subscriptions.pop(session.session_id, None)
        if queue is not None:
            await self._pipeline.unsubscribe(queue)

    async def _forward(self, session: StreamSession, queue: asyncio.Queue[Verdict]) -> None:
        while True:
            verdict = await queue.get()
            if not session.send(pb.ServerMessage(verdict=convert.verdict_message(verdict))):
                return  # stream ended; the verdict stays pending for the client's next stream

    # -- client messages -----------------------------------------------------------------------
    async def on_config(self, session: StreamSession, config: pb.StreamConfig) -> list[str]:
        warnings: list[str] = []
        if config.HasField("batching"):
            rules, warnings = resolve_batching(
                convert.requested_rules(config.batching), self._default_rules
            )
            self._pipeline.configure(_client_id(session), rules)
            _LOGGER.info("Batching rules of %s: %s", _client_id(session), rules)
        notes = convert.camera_notes(config)
        if notes is not None:
            self._pipeline.set_camera_notes(_client_id(session), notes)
        plates = convert.known_plates(config)
        if plates is not None and self._enricher is not None:
            self._enricher.set_known_plates(plates, _client_id(session))
        off = convert.enrichers_off(config)
        if off is not None and self._enricher is not None:
            self._enricher.set_enrichers_off(_client_id(session), off)
        return warnings

    async def on_verdict_ack(self, session: StreamSession, ack: pb.VerdictAck) -> None:
        await self._pipeline.ack(_client_id(session), list(ack.verdict_ids))

    async def on_other_message(self, session: StreamSession, message: pb.ClientMessage) -> None:
        if message.WhichOneof("kind") == "home_state":
            state = convert.home_state(message.home_state)
            self._pipeline.set_home_state(_client_id(session), state)
            _LOGGER.debug("Home state of %s: %s", _client_id(session), state)
        elif message.WhichOneof("kind") == "feedback":
            try:
                feedback = convert.owner_feedback(message.feedback)
                await self._pipeline.add_feedback(_client_id(session), feedback)
            except (ValueError, FrameError) as err:  # counted by the pipeline when storage fails
                _LOGGER.warning("Feedback on %s not kept: %s", message.feedback.event_id[:64], err)

    async def on_frame_result(
        self, session: StreamSession, frame: FrameRequest, outcome: FrameOutcome
    ) -> str:
        observation = FrameObservation(
            frame_id=frame.frame_id,
            camera_id=frame.camera_id,
            camera_name=frame.camera_name or frame.camera_id,
            captured_at=outcome.captured_at or convert.now(),
            width=outcome.width,
            height=outcome.height,
            detections=outcome.detections,
            zones=session.zone_hits(outcome),
        )
        if outcome.tamper is not None:
            self._pipeline.note_tamper(_client_id(session), frame.camera_id, outcome.tamper)
        batch_id = await self._pipeline.observe(observation, _client_id(session))
        if batch_id and self._enricher is not None:
            self._enricher.remember(frame.camera_id, frame.frame_id, frame.image)
        return batch_id

    def fill_status(self, status: pb.SidecarStatus) -> None:
        stats = self._pipeline.stats
        status.llm_model = self._pipeline.model_name
        status.open_batches = self._pipeline.open_batches
        status.pending_verdicts = self._pipeline.pending_verdicts
        status.verdicts_produced = stats.verdicts_produced
        status.fallback_verdicts = stats.fallback_verdicts
        status.llm_latency.CopyFrom(convert.latency(stats.llm_latency.summary()))
        status.storage_error = stats.storage_error
        status.storage_errors = stats.storage_errors
        if self._damaged_file is not None:
            status.damaged_state_file = str(self._damaged_file)
        if self._enricher is not None:
            status.enrichment.CopyFrom(
                convert.enrichment_status(
                    self._enricher.state(),
                    [n for n in ENRICHERS if n in self._enricher.settings.enabled],
                    self._enricher.batches,
                    stats.enrichment_latency.summary(),
                )
            )


def _client_id(session: StreamSession) -> str:
    return session.client_id or "anonymous"


def _zone(name: str) -> tzinfo | None:
    if len(name) <= _MAX_ZONE_CHARS and name.isprintable():
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo(name)
    _LOGGER.warning(
        "Unknown time zone %r from client; keeping the current one", name[:_MAX_ZONE_CHARS]
    )
    return None


def use_gpu(device: str) -> bool:
    if device == "cpu":
        return False
    import torch  # noqa: PLC0415 - already loaded by the detector

    return bool(torch.cuda.is_available())


def event_observer(settings: Settings, _sessions: SessionRegistry) -> StreamObserver:
    """The `ObserverFactory` that sidecar/__main__.py passes to `server.app.main`."""
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
    rules = settings.batching
    database = StateDatabase(
        settings.data_dir / STATE_FILE, max_bytes=int(settings.state_max_mib * MIB)
    )
    store = EventStore(database)  # migrates the file first
    enricher = (
        create_enricher(settings.enrichment, settings.data_dir, settings.data_dir / STATE_FILE)
        if settings.enrichment.enabled else None
    )
    pipeline = EventPipeline(
        store, analyzer, rules, resend_after_s=settings.verdict_resend_s, enricher=enricher
    )
    return EventObserver(pipeline, rules, analyzer, enricher, damaged_file=database.damaged_file)
