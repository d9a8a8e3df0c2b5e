"""The event pipeline: observations -> per-camera batches (batching.py) -> verdicts
(analysis.py, with the batch's enrichment) -> the verdict outbox (store.py) -> the clients'
streams (delivery.py).

Durability: every batch change is written to the store before it happens in memory; a frame whose
write fails (a full disk, a read-only file) joins nothing and `observe` raises a retryable
STORAGE_UNAVAILABLE FrameError, so the client keeps the frame and sends it again. A closed batch
stays in the store until its verdict is stored (atomically, in one transaction); a verdict stays in
the outbox until a client acknowledges it and is re-sent until then. After a restart, open batches
resume (and close by the same rules), closed ones are analysed, pending verdicts are offered again.

Store calls run on the state file's thread (`EventStore.run`), never on the event loop; one lock
keeps the batcher and the store in step (a frame's join, a timer's close).

Context (sidecar/context/): before a batch is analysed, the pipeline reads how usual its labels are
(the baseline) and the owner's judgements of similar events from the state file, and takes the
client's home state, camera notes and the other cameras' recent activity from memory; after a
batch's final verdict is stored, the batch is added to the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import ParamSpec, TypeVar

from ..context.baseline import ActivityBaseline, Normality
from ..context.batch import BatchContext
from ..context.feedback import FeedbackStore, OwnerFeedback, SimilarFeedback
from ..context.home import MAX_NOTES, HomeState
from ..context.recent import RecentActivity
from ..context.tamper import MAX_CAMERAS as MAX_TAMPER_CAMERAS
from ..context.tamper import TamperState
from ..detection.stats import LatencyWindow
from ..domain import FrameError, FrameErrorCode, FrameObservation, Verdict
from ..enrichment.service import Enricher
from ..llm.analyzer import RiskAnalyzer
from .analysis import assess_batch, label_counts, verdict_id
from .batching import BatchingRules, ClosedBatch, EventBatcher, OpenBatch
from .delivery import VerdictDelivery
from .store import EventStore

_LOGGER = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

_FAST, _FINAL = 0, 1
_RETRY_S = 5.0
# Verdict ids one acknowledgement may carry (a client acknowledges each verdict as it stores it),
# and how long one may be: more is refused, not looked up one by one on the state file's thread.
MAX_ACK_IDS = 256
MAX_VERDICT_ID_CHARS = 128


@dataclass(order=True, slots=True)
class _Job:
    priority: int
    seq: int
    batch: OpenBatch = field(compare=False)
    frames: list[FrameObservation] = field(compare=False)
    reason: str = field(compare=False)


@dataclass(slots=True)
class EventStats:
    verdicts_produced: int = 0
    fallback_verdicts: int = 0
    llm_latency: LatencyWindow = field(default_factory=LatencyWindow)
    # Why the last write to the state file failed ("" once one succeeds again), and how many did.
    storage_error: str = ""
    storage_errors: int = 0
    enrichment_latency: LatencyWindow = field(default_factory=LatencyWindow)


class EventPipeline:
    def __init__(
        self,
        store: EventStore,
        analyzer: RiskAnalyzer,
        rules: BatchingRules | None = None,
        *,
        clock: Callable[[], float] = time.time,
        tick_s: float = 0.25,
        resend_after_s: float = 30.0,
        enricher: Enricher | None = None,
    ) -> None:
        self._store = store
        self._analyzer = analyzer
        self.enricher = enricher
        self._batcher = EventBatcher(rules)
        self._clock = clock
        self._tick_s = tick_s
        self._delivery = VerdictDelivery(store, resend_after_s=resend_after_s)
        self._jobs: asyncio.PriorityQueue[_Job] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._zones: dict[str, tzinfo] = {}
        self.baseline = ActivityBaseline(store.database)
        self.recent = RecentActivity()
        self.feedback = FeedbackStore(store.database)
        self._homes: dict[str, HomeState] = {}
        self._notes: dict[str, dict[str, str]] = {}
        # Per client, its cameras whose view looks tampered with now (their latest frame's state).
        self._tampered: dict[str, dict[str, TamperState]] = {}
        self.stats = EventStats()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self._write(self._store.run, self._store.prune)
        except FrameError:
            _LOGGER.warning("Could not prune the state file; trying again at the next start")
        await self._delivery.load()
        opened, closed = await self._store.run(self._store.load_batches)
        self._batcher.restore(opened)
        for batch, reason in closed:
            self._enqueue_final(batch, reason)
        for batch in opened:
            # A fast-path verdict asked for before a crash but never stored: ask again.
            fast_verdict = verdict_id(batch.batch_id, fast_path=True)
            if batch.fast_path_sent and not await self._store.run(
                self._store.has_verdict, fast_verdict
            ):
                rules = self._batcher.rules_for(batch.client_id)
                for frame in batch.frames:
                    if rules.fast_path_detection(frame.detections) is not None:
                        self._enqueue(_FAST, batch, [frame], "fast_path")
                        break
        if opened or closed:
            _LOGGER.info("Resumed %d open and %d closed batches", len(opened), len(closed))
        self._tasks = [
            asyncio.create_task(self._close_due_batches(), name="secmon-batch-timer"),
            asyncio.create_task(self._analyse(), name="secmon-analysis"),
            asyncio.create_task(
                self._delivery.resend_unacknowledged(), name="secmon-verdict-resend"
            ),
        ]

    async def stop(self) -> None:
        """Stop working; open and closed batches stay in the store for the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def close(self) -> None:
        self._store.close()

    # -- inputs --------------------------------------------------------------------------------
    @property
    def rules(self) -> BatchingRules:
        """The rules for clients that sent none."""
        return self._batcher.rules

    def rules_for(self, client_id: str) -> BatchingRules:
        return self._batcher.rules_for(client_id)

    def configure(self, client_id: str, rules: BatchingRules) -> None:
        """`client_id`'s batching rules (other clients keep theirs)."""
        self._batcher.configure(client_id, rules)

    def set_time_zone(self, zone: tzinfo, client_id: str | None = None) -> None:
        """The home's time zone for the prompts of `client_id`'s batches (None: the default for
        every client that sent none)."""
        if client_id is None:
            self._analyzer.tz = zone
        else:
            self._zones[client_id] = zone

    def set_home_state(self, client_id: str, state: HomeState) -> None:
        """The latest state of `client_id`'s home, for the prompts of its batches."""
        self._homes[client_id] = state

    def set_camera_notes(self, client_id: str, notes: dict[str, str]) -> None:
        """The owner's notes per camera of `client_id` (replacing the previous ones)."""
        self._notes[client_id] = dict(list(notes.items())[:MAX_NOTES])

    def note_tamper(self, client_id: str, camera_id: str, state: TamperState) -> None:
        """A camera's tamper state after its latest frame, for the prompts of its batches."""
        cameras = self._tampered.setdefault(client_id, {})
        if not state.tampered:
            cameras.pop(camera_id, None)
            return
        if camera_id not in cameras and len(cameras) >= MAX_TAMPER_CAMERAS:
            del cameras[next(iter(cameras))]
        cameras[camera_id] = state

    async def add_feedback(self, client_id: str, feedback: OwnerFeedback) -> None:
        """Keep the owner's judgement of an event (raises a FrameError when the state file
        cannot be written)."""
        await self._write(self._store.database.run, self.feedback.add, client_id, feedback)

    def home_state(self, client_id: str) -> HomeState | None:
        return self._homes.get(client_id)

    async def observe(self, frame: FrameObservation, client_id: str) -> str:
        """Feed one processed frame of a client's; returns the id of the batch it joined ('' if
        none). Raises a retryable FrameError (STORAGE_UNAVAILABLE) when the state file cannot
        record the join: then the frame has joined nothing."""
        async with self._lock:
            if not self._delivery.watches(client_id, frame.camera_id):
                await self._write(self._delivery.note_camera, client_id, frame.camera_id)
            joined = await self._store.run(
                self._store.batch_of_frame, frame.camera_id, frame.frame_id
            )
            if joined:
                return joined  # re-sent (e.g. its result was lost with a restart): never twice
            outcome = self._batcher.prepare(frame, self._clock(), client_id)
            for closed in outcome.closed:
                await self._close(closed)
            join = outcome.join
            if join is None:
                return outcome.batch.batch_id if outcome.batch is not None else ""
            await self._write(self._store.run, self._store.append_frame, join.header(), join.frame,
                              join.seq)
            filled = self._batcher.commit(join, outcome)
            self.recent.note_frame(client_id, frame, (z.zone for z in frame.zones))
            if outcome.fast_path is not None:
                self._enqueue(_FAST, join.batch, [outcome.fast_path.frame], "fast_path")
            for closed in filled:
                await self._close(closed)
            return join.batch.batch_id

    async def flush(self, reason: str = "flush") -> int:
        """Close every open batch now (e.g. on request); returns how many were closed."""
        async with self._lock:
            closed = self._batcher.close_all(reason)
            for item in closed:
                await self._close(item)
        return len(closed)

    async def ack(self, client_id: str, verdict_ids: list[str]) -> int:
        if len(verdict_ids) > MAX_ACK_IDS:
            _LOGGER.warning(
                "Client %s acknowledged %d verdicts at once; only the first %d are taken",
                client_id[:64],
                len(verdict_ids),
                MAX_ACK_IDS,
            )
        ids = [v for v in verdict_ids[:MAX_ACK_IDS] if 0 < len(v) <= MAX_VERDICT_ID_CHARS]
        if not ids:
            return 0
        return await self._write(self._delivery.ack, client_id, ids)

    # -- outputs -------------------------------------------------------------------------------
    async def subscribe(self, client_id: str) -> asyncio.Queue[Verdict]:
        """A queue that receives every new verdict, starting with the ones this client has not
        acknowledged; unacknowledged ones come again every `resend_after_s`."""
        return await self._delivery.subscribe(client_id)

    async def unsubscribe(self, queue: asyncio.Queue[Verdict]) -> None:
        await self._delivery.unsubscribe(queue)

    @property
    def open_batches(self) -> int:
        return len(self._batcher.open_batches)

    @property
    def pending_verdicts(self) -> int:
        return self._delivery.pending

    @property
    def model_name(self) -> str:
        return self._analyzer.model_name

    # -- internals -----------------------------------------------------------------------------
    async def _write(
        self, fn: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Await a store write; a failed one is recorded (status) and raised as a retryable
        STORAGE_UNAVAILABLE FrameError."""
        try:
            result = await fn(*args, **kwargs)
        except sqlite3.Error as err:
            self.stats.storage_errors += 1
            if self.stats.storage_error != str(err):
                _LOGGER.error("Cannot write the state file: %s", err)  # noqa: TRY400 - one line
            self.stats.storage_error = str(err)
            raise FrameError(
                FrameErrorCode.STORAGE_UNAVAILABLE,
                f"the sidecar cannot record the frame in its state file ({err}); send it again "
                "later",
            ) from err
        if self.stats.storage_error:
            _LOGGER.warning("The state file can be written again")
            self.stats.storage_error = ""
        return result

    async def _close(self, closed: ClosedBatch) -> None:
        try:
            await self._write(self._store.run, self._store.mark_closed, closed.batch, closed.reason)
        except FrameError:  # still analysed now; after a restart it closes again, same verdict id
            _LOGGER.warning("Could not record batch %s as closed", closed.batch.batch_id)
        self._enqueue_final(closed.batch, closed.reason)

    def _enqueue_final(self, batch: OpenBatch, reason: str) -> None:
        self._enqueue(_FINAL, batch, list(batch.frames), reason)

    def _enqueue(
        self, priority: int, batch: OpenBatch, frames: list[FrameObservation], reason: str
    ) -> None:
        self._jobs.put_nowait(_Job(priority, next(self._seq), batch, frames, reason))

    async def _close_due_batches(self) -> None:
        while True:
            async with self._lock:
                for closed in self._batcher.due(self._clock()):
                    _LOGGER.debug("Batch %s closed (%s)", closed.batch.batch_id, closed.reason)
                    await self._close(closed)
            await asyncio.sleep(self._tick_s)

    async def _analyse(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await self._produce_verdict(job)
            except Exception:  # e.g. a full disk: keep the job, try again shortly
                _LOGGER.exception("Producing the verdict for batch %s failed", job.batch.batch_id)
                await asyncio.sleep(_RETRY_S)
                self._jobs.put_nowait(job)

    async def _produce_verdict(self, job: _Job) -> None:
        fast = job.priority == _FAST
        store = self._store
        if await store.run(store.has_verdict, verdict_id(job.batch.batch_id, fast_path=fast)):
            return  # already produced before a restart
        zone = self._zones.get(job.batch.client_id)
        local_start = min(f.captured_at for f in job.frames).astimezone(zone or self._analyzer.tz)
        labels = [lc.label for lc in label_counts(job.frames)]
        normality = await self._normality(job.batch.camera_id, labels, local_start)
        client = job.batch.client_id
        context = BatchContext(
            normality=normality,
            other_cameras=tuple(self.recent.others(
                client, job.batch.camera_id, min(f.captured_at for f in job.frames),
                max(f.captured_at for f in job.frames),
            )),
            home=self._homes.get(client),
            owner_note=self._notes.get(client, {}).get(job.batch.camera_id, ""),
            tamper=self._tampered.get(client, {}).get(job.batch.camera_id),
            feedback=await self._similar_feedback(
                client, job.batch.camera_id, labels, local_start
            ),
        )
        verdict, outcome = await assess_batch(
            self._analyzer,
            job.batch,
            job.frames,
            fast_path=fast,
            close_reason=job.reason,
            time_zone=zone,
            enricher=self.enricher,
            context=context,
        )
        if verdict.enrichment is not None:
            self.stats.enrichment_latency.add(verdict.enrichment.total_ms)
            self.recent.note_identities(
                job.batch.client_id, verdict.camera_id, verdict.camera_name, verdict.ended_at,
                (o.identity for o in verdict.enrichment.objects),
            )
        if not await self._write(store.run, store.add_verdict, verdict, finishes_batch=not fast):
            return
        if not fast:
            await self._record_activity(job.batch.batch_id, job.batch.camera_id, labels,
                                        local_start)
        self.stats.verdicts_produced += 1
        if verdict.fallback:
            self.stats.fallback_verdicts += 1
        else:
            self.stats.llm_latency.add(outcome.llm_ms)
        _LOGGER.info(
            "Verdict %s for %s: %d/%s%s%s",
            verdict.verdict_id,
            verdict.camera_id,
            verdict.risk_score,
            verdict.risk_level,
            " (fast path)" if fast else "",
            " (fallback)" if verdict.fallback else "",
        )
        await self._delivery.refresh_pending()
        self._delivery.publish(verdict)

    async def _normality(
        self, camera_id: str, labels: list[str], local_start: datetime
    ) -> Normality | None:
        try:
            return await self._store.database.run(
                self.baseline.normality, camera_id, labels, local_start
            )
        except sqlite3.Error as err:  # the verdict does not wait for context
            _LOGGER.warning("Could not read the activity baseline of %s: %s", camera_id, err)
            return None

    async def _record_activity(
        self, batch_id: str, camera_id: str, labels: list[str], local_start: datetime
    ) -> None:
        try:
            await self._write(
                self._store.database.run, self.baseline.record, batch_id, camera_id, labels,
                local_start,
            )
        except FrameError:
            _LOGGER.warning("Could not add batch %s to the activity baseline", batch_id)

    async def _similar_feedback(
        self, client_id: str, camera_id: str, labels: list[str], local_start: datetime
    ) -> tuple[SimilarFeedback, ...]:
        assert local_start.tzinfo is not None
        try:
            return tuple(await self._store.database.run(
                self.feedback.similar, client_id, camera_id, labels, local_start,
                tz=local_start.tzinfo,
            ))
        except sqlite3.Error as err:  # the verdict does not wait for context
            _LOGGER.warning("Could not read the owner's feedback: %s", err)
            return ()
