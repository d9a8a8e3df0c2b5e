"""The detection path: frame request -> checks -> decode + resize (worker pool) -> dynamic batcher
-> model -> FrameOutcome. Owns readiness, idempotency, draining and the statistics; keeps the order
that `ordering.py` describes."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ..domain import (
    Detection,
    FrameError,
    FrameErrorCode,
    FrameOutcome,
    FrameRequest,
    PreprocessMode,
)
from .frames import FrameLimits, check_size, validate_ids
from .model_batcher import BatcherClosedError, DynamicBatcher
from .models.base import Detector
from .ordering import ArrivalOrder, Turn
from .preprocess import PreparedFrame, prepare_frame
from .result_cache import ResultCache
from .stats import DetectionStats

_LOGGER = logging.getLogger(__name__)

_MODEL = "model"  # the key of the model's arrival line

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
        stats: DetectionStats | None = None,
    ) -> None:
        self.detector = detector
        self.default_threshold = default_threshold
        self.limits = limits
        self.preprocess_mode: PreprocessMode = preprocess_mode
        self.stats = stats or DetectionStats()
        self.ready = asyncio.Event()
        self._batcher: DynamicBatcher[PreparedFrame, list[Detection]] = DynamicBatcher(
            detector.infer,
            max_batch=max_batch,
            max_delay_s=max_delay_s,
            on_batch=self.stats.batch_done,
        )
        workers = decode_workers or min(4, os.cpu_count() or 1)
        self._decode_pool = ThreadPoolExecutor(workers, thread_name_prefix="secmon-decode")
        self._cache = ResultCache(result_cache_size)
        self._inflight: set[asyncio.Future[FrameOutcome]] = set()
        self._model_order: ArrivalOrder[str] = ArrivalOrder()  # one line: the model
        self._hook_order: ArrivalOrder[str] = ArrivalOrder()  # a line per camera
        self._before_model = 0
        self._accepting = True

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Load and warm up the model off the event loop, then accept work."""
        await asyncio.to_thread(self.detector.load)
        await asyncio.to_thread(self.detector.warmup)
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
                self._model_order.take(_MODEL),
                self._hook_order.take(request.camera_id),
            ),
        )
        if started:
            self._inflight.add(future)
            future.add_done_callback(self._inflight.discard)
        return future

    async def detect(self, request: FrameRequest) -> FrameOutcome:
        """One frame through the model (no idempotency, no hook): Analyze."""
        return await self._detect_owned(request, self._model_order.take(_MODEL))

    async def _detect_owned(self, request: FrameRequest, model_turn: Turn) -> FrameOutcome:
        started = time.monotonic()
        self.stats.frame_received()
        task = asyncio.ensure_future(self._detect(request, started, model_turn))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        # The work is owned by the pipeline: a caller that goes away does not cancel it.
        return await asyncio.shield(task)

    async def _stream_frame(
        self, request: FrameRequest, hook: FrameHook | None, model_turn: Turn, hook_turn: Turn
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

    async def _detect(self, request: FrameRequest, started: float, turn: Turn) -> FrameOutcome:
        self._before_model += 1
        in_queue = True
        try:
            self._check_accepting()
            check_size(request.image, self.limits)
            threshold = self.default_threshold if request.threshold is None else request.threshold
            await self.ready.wait()
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(
                self._decode_pool, prepare_frame, request.image, self.limits,
                self.detector.preprocess, threshold, self.preprocess_mode,
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
        )

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


def _done(outcome: FrameOutcome) -> asyncio.Future[FrameOutcome]:
    future: asyncio.Future[FrameOutcome] = asyncio.get_running_loop().create_future()
    future.set_result(outcome)
    return future

