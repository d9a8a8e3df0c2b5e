"""The detection path: frame request -> checks -> decode + resize (worker pool) -> dynamic batcher
-> model -> FrameOutcome. Owns readiness, idempotency, draining and the statistics; keeps the order
that `ordering.py` describes.

Memory is bounded by stage: the decode pool has a worker per two cores (the model needs the
others), and at most `max_decoded` frames are being decoded or wait decoded for the model; the
frames behind them wait as the encoded bytes they arrived as. Frames take those places in
arrival order, so a frame holding one never waits for a frame without one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

from ..context.tamper import TamperState, TamperWatch
from ..domain import (
    Detection,
    FrameError,
    FrameErrorCode,
    FrameOutcome,
    FrameRequest,
    PreprocessMode,
)
from .batch_costs import BatchCosts
from .frames import FrameLimits, check_size, validate_ids
from .model_batcher import BatcherClosedError, DynamicBatcher
from .models.base import Detector
from .ordering import ArrivalOrder, Turn
from .preprocess import PreparedFrame, prepare_frame
from .result_cache import ResultCache
from .stats import DetectionStats

_LOGGER = logging.getLogger(__name__)

_MODEL = "model"  # the key of the model's arrival line
# A frame's places in line for a decode slot and for the model, and whether its view is watched.
_Turns = tuple[Turn, Turn, bool]

# Called once per unique successful stream frame before its result is sent; returns the id of the
# event batch the frame joined ("" for none). The stream observer (event batching) plugs in here.
# Raising domain.FrameError turns the frame's result into that error (STORAGE_UNAVAILABLE when the
# state file cannot record it); any other exception into INTERNAL. Both are retryable.
FrameHook = Callable[[FrameRequest, FrameOutcome], Awaitable[str]]


class DetectionPipeline:
    def __init__(
        self,
        detector: Detector,
        *,
        default_threshold: float,
        limits: FrameLimits,
        max_batch: int,
        max_delay_s: float,
        preprocess_mode: PreprocessMode = "fast",
        result_cache_size: int = 4096,
        decode_workers: int | None = None,
        max_decoded: int | None = None,
        adaptive_batching: bool = True,
        stats: DetectionStats | None = None,
        tamper: TamperWatch | None = None,
    ) -> None:
        self.detector = detector
        self.default_threshold = default_threshold
        self.limits = limits
        self.preprocess_mode: PreprocessMode = preprocess_mode
        self.stats = stats or DetectionStats()
        # Stream frames' views, per client and camera, checked in the decode workers.
        self.tamper = tamper or TamperWatch()
        self.ready = asyncio.Event()
        self._batcher: DynamicBatcher[PreparedFrame, list[Detection]] = DynamicBatcher(
            detector.infer,
            max_batch=max_batch,
            max_delay_s=max_delay_s,
            on_batch=self.stats.batch_done,
            costs=BatchCosts(max_batch, adaptive=adaptive_batching),
        )
        self.decode_workers = decode_workers or default_decode_workers()
        self._decode_pool = ThreadPoolExecutor(
            self.decode_workers, thread_name_prefix="secmon-decode"
        )
        # Decoding or decoded, not yet through the model: two batches' worth and the decoders.
        self.max_decoded = max_decoded or 2 * max_batch + self.decode_workers
        self._decoded_slots = asyncio.Semaphore(self.max_decoded)
        self.decoded_in_use = 0  # decoding, or decoded and waiting for / in the model
        self._admission_order: ArrivalOrder[str] = ArrivalOrder()  # one line: decode admission
        self._cache = ResultCache(result_cache_size)
        self._inflight: set[asyncio.Future[FrameOutcome]] = set()
        self._model_order: ArrivalOrder[str] = ArrivalOrder()  # one line: the model
        self._hook_order: ArrivalOrder[str] = ArrivalOrder()  # a line per camera
        self._before_model = 0
        self._accepting = True

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Load and warm up the model off the event loop, time its batch sizes (when batching is
        latency-aware), then accept work."""
        await asyncio.to_thread(self.detector.load)
        await asyncio.to_thread(self.detector.warmup)
        if self._batcher.costs.adaptive and self._batcher.max_batch > 1:
            await self._batcher.calibrate(self.detector.blank_frame())
        self._batcher.start()
        self.ready.set()

    def stop_accepting(self) -> None:
        """New frames now get UNAVAILABLE; frames already accepted still finish."""
        self._accepting = False

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until every accepted frame has its outcome (queued frames run without waiting for
        the batch delay). Returns False if the timeout passed first."""
        self._batcher.expedite()
        pending = set(self._inflight)
        if not pending:
            return True
        _, not_done = await asyncio.wait(pending, timeout=timeout_s)
        return not not_done

    async def close(self) -> None:
        await self._batcher.close()
        self._decode_pool.shutdown(wait=True, cancel_futures=True)

    # -- queries -----------------------------------------------------------------------------
    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def queue_depth(self) -> int:
        """Frames accepted but not yet through the model."""
        return self._before_model

    @property
    def batch_costs(self) -> BatchCosts:
        return self._batcher.costs

    @property
    def frames_in_flight_wanted(self) -> int:
        """How many frames all clients together should keep in flight: enough for one batch in
        the model and the next one decoded and waiting (plus one per decoder), no more - frames
        beyond that only wait, which adds latency and memory but no throughput."""
        return 2 * self._batcher.costs.best_size() + self.decode_workers

    # -- work --------------------------------------------------------------------------------
    def submit_stream_frame(
        self, request: FrameRequest, hook: FrameHook | None = None
    ) -> asyncio.Future[FrameOutcome]:
        """Process a Stream frame once per (camera id, frame id): a re-sent frame gets the stored
        outcome, or joins the processing of its first copy. `hook` runs once per unique frame."""
        try:
            validate_ids(request.frame_id, request.camera_id)
        except FrameError as err:
            self.stats.frame_received()
            return _done(self._failed(request, err, time.monotonic()))
        future, started = self._cache.get_or_start(
            (request.camera_id, request.frame_id),
            lambda: self._stream_frame(
                request,
                hook,
                self._take_model_turn(watch_tamper=True),
                self._hook_order.take(request.camera_id),
            ),
        )
        if started:
            self._inflight.add(future)
            future.add_done_callback(self._inflight.discard)
        return future

    async def detect(self, request: FrameRequest) -> FrameOutcome:
        """One frame through the model (no idempotency, no hook): Analyze."""
        return await self._detect_owned(request, self._take_model_turn())

    def _take_model_turn(self, *, watch_tamper: bool = False) -> _Turns:
        """A place in line for a decode slot and one for the model, in arrival order."""
        return self._admission_order.take(_MODEL), self._model_order.take(_MODEL), watch_tamper

    async def _detect_owned(self, request: FrameRequest, model_turn: _Turns) -> FrameOutcome:
        started = time.monotonic()
        self.stats.frame_received()
        task = asyncio.ensure_future(self._detect(request, started, model_turn))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        # The work is owned by the pipeline: a caller that goes away does not cancel it.
        return await asyncio.shield(task)

    async def _stream_frame(
        self,
        request: FrameRequest,
        hook: FrameHook | None,
        model_turn: _Turns,
        hook_turn: Turn,
    ) -> FrameOutcome:
        try:
            outcome = await self._detect_owned(request, model_turn)
            await hook_turn.wait()
            if hook is not None and outcome.ok:
                arrived = time.monotonic() - outcome.total_ms / 1000.0
                # A frame the event path could not take gets a retryable error, never an OK that
                # would let the client drop it: it comes again and joins its batch then.
                try:
                    batch_id = await hook(request, outcome)
                except FrameError as err:
                    return self._failed(request, err, arrived)
                except Exception as exc:
                    _LOGGER.exception(
                        "Frame hook failed for %s/%s", request.camera_id, request.frame_id
                    )
                    internal = FrameError(FrameErrorCode.INTERNAL, f"event batching failed: {exc}")
                    return self._failed(request, internal, arrived)
                if batch_id:
                    outcome = replace(outcome, batch_id=batch_id)
            return outcome
        finally:
            hook_turn.end()

    async def _detect(
        self, request: FrameRequest, started: float, turns: _Turns
    ) -> FrameOutcome:
        admission, turn, watch_tamper = turns
        self._before_model += 1
        in_queue = True
        slot = False
        try:
            self._check_accepting()
            check_size(request.image, self.limits)
            threshold = self.default_threshold if request.threshold is None else request.threshold
            await self.ready.wait()
            await admission.wait()
            await self._decoded_slots.acquire()
            slot = True
            self.decoded_in_use += 1
            admission.end()
            loop = asyncio.get_running_loop()
            prepared, tamper = await loop.run_in_executor(
                self._decode_pool, self._prepare, request, threshold, watch_tamper
            )
            await turn.wait()
            entered = self._batcher.enqueue(prepared)
            turn.end()
            batched = await entered
            self._before_model -= 1
            in_queue = False
        except FrameError as err:
            return self._failed(request, err, started)
        except BatcherClosedError:
            unavailable = FrameError(FrameErrorCode.UNAVAILABLE, "the sidecar is shutting down")
            return self._failed(request, unavailable, started)
        except Exception as exc:
            _LOGGER.exception("Frame %s/%s failed", request.camera_id, request.frame_id)
            internal = FrameError(FrameErrorCode.INTERNAL, f"processing failed: {exc}")
            return self._failed(request, internal, started)
        finally:
            if in_queue:
                self._before_model -= 1
            if slot:
                self.decoded_in_use -= 1
                self._decoded_slots.release()
            admission.end()
            turn.end()
        total_ms = (time.monotonic() - started) * 1000.0
        self.stats.frame_processed(total_ms)
        return FrameOutcome(
            frame_id=request.frame_id,
            camera_id=request.camera_id,
            width=prepared.width,
            height=prepared.height,
            detections=tuple(batched.value),
            inference_ms=batched.batch_ms / batched.batch_size,
            total_ms=total_ms,
            model_batch_size=batched.batch_size,
            captured_at=request.captured_at,
            tamper=tamper,
        )

    def _prepare(
        self, request: FrameRequest, threshold: float, watch_tamper: bool
    ) -> tuple[PreparedFrame, TamperState | None]:
        """In a decode worker: decode and resize the frame, and (for stream frames) check its
        camera's view for tampering on the decoded image's thumbnail."""
        prepared = prepare_frame(
            request.image, self.limits, self.detector.preprocess, threshold,
            self.preprocess_mode, with_thumbnail=watch_tamper,
        )
        if prepared.thumbnail is None:
            return prepared, None
        state = self.tamper.observe(
            request.client_id, request.camera_id, prepared.thumbnail,
            request.captured_at or datetime.now(UTC),
        )
        return replace(prepared, thumbnail=None), state

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise FrameError(FrameErrorCode.UNAVAILABLE, "the sidecar is shutting down")

    def _failed(self, request: FrameRequest, err: FrameError, started: float) -> FrameOutcome:
        self.stats.frame_failed(err.code.name)
        if err.code.retryable:
            _LOGGER.warning("Frame %s/%s: %s", request.camera_id, request.frame_id, err.message)
        else:
            _LOGGER.info(
                "Frame %s/%s rejected: %s (%s)",
                request.camera_id, request.frame_id, err.code.name, err.message,
            )
        return FrameOutcome(
            frame_id=request.frame_id,
            camera_id=request.camera_id,
            error=err,
            total_ms=(time.monotonic() - started) * 1000.0,
            captured_at=request.captured_at,
        )


def default_decode_workers() -> int:
    """A decoder per two usable cores (1 to 8): the model's own threads need the rest."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // 2))


def _done(outcome: FrameOutcome) -> asyncio.Future[FrameOutcome]:
    future: asyncio.Future[FrameOutcome] = asyncio.get_running_loop().create_future()
    future.set_result(outcome)
    return future

