"""The gRPC server: Sidecar service, standard health and reflection, auth, graceful shutdown.

Start-up: the server listens at once and reports NOT_SERVING while the model loads and warms up
(off the event loop), SERVING after. SIGTERM/SIGINT: health goes NOT_SERVING, new frames get
UNAVAILABLE, every accepted frame finishes and its result is sent, streams end with UNAVAILABLE (so
clients reconnect elsewhere or later), then the server stops and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .. import __version__
from ..detection.frames import FrameLimits
from ..detection.models.base import Detector, DetectorLoadError
from ..detection.models.rtdetr_v2 import RTDetrV2Detector, parse_model_spec
from ..detection.pipeline import DetectionPipeline
from ..domain import StartupError
from ..proto import secmon_pb2, secmon_pb2_grpc
from .auth import BearerTokenInterceptor
from .config import Settings, configure_logging, parse_settings
from .gpu import GpuMonitor
from .observer import NoObserver, ObserverFactory
from .servicer import SidecarServicer
from .sessions import SessionRegistry

_LOGGER = logging.getLogger(__name__)

SERVICE_NAME: str = secmon_pb2.DESCRIPTOR.services_by_name["Sidecar"].full_name
EXIT_OK = 0
EXIT_STARTUP_ERROR = 2
EXIT_BIND_ERROR = 3
# The data directory or its state file cannot be written (StateStorageError).
EXIT_STATE_ERROR = 4

class SidecarServer:
    def __init__(
        self,
        settings: Settings,
        *,
        detector: Detector | None = None,
        observer_factory: ObserverFactory | None = None,
    ) -> None:
        self.settings = settings
        self.detector = detector or RTDetrV2Detector(settings.detector, settings.device)
        self.sessions = SessionRegistry(settings.max_inflight_per_stream)
        self.observer = (
            observer_factory(settings, self.sessions) if observer_factory else NoObserver()
        )
        self.pipeline = DetectionPipeline(
            self.detector,
            default_threshold=settings.threshold,
            limits=FrameLimits(settings.max_frame_bytes, settings.max_pixels),
            max_batch=settings.max_batch,
            max_delay_s=settings.max_delay_ms / 1000.0,
            preprocess_mode=settings.preprocess,
            result_cache_size=settings.result_cache_size,
        )
        self.health = health.aio.HealthServicer()
        self.gpus = GpuMonitor()
        interceptors = [BearerTokenInterceptor(settings.token)] if settings.token else []
        limit = settings.grpc_message_limit
        self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
                # Tolerate the integration's keepalive pings on an idle stream.
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
            ],
        )
        secmon_pb2_grpc.add_SidecarServicer_to_server(
            SidecarServicer(
                self.pipeline,
                self.sessions,
                max_batch=settings.max_batch,
                max_delay_ms=settings.max_delay_ms,
                observer=self.observer,
                gpus=self.gpus,
            ),
            self.server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = 0

    async def start(self) -> int:
        """Listen (NOT_SERVING until `load_model` finishes). Returns the bound port."""
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        try:
            self.port = self.server.add_insecure_port(self.settings.listen)
        except RuntimeError as err:
            raise OSError(f"cannot listen on {self.settings.listen}: {err}") from err
        if not self.port:
            raise OSError(f"cannot listen on {self.settings.listen}")
        await self.server.start()
        host = self.settings.listen.rpartition(":")[0] or "0.0.0.0"
        _LOGGER.info("secmon sidecar %s listening on %s:%d", __version__, host, self.port)
        await self.observer.start()
        return self.port

    async def load_model(self) -> None:
        """Load and warm up the detector, and run the observer's `load`, side by side; then
        report SERVING. Raises what they raise (StartupError for the expected failures)."""
        detector = asyncio.ensure_future(self.pipeline.start())
        observer = asyncio.ensure_future(self.observer.load())
        try:
            await asyncio.gather(detector, observer)
        except BaseException:
            for task in (detector, observer):
                task.cancel()
            raise
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        _LOGGER.info("Ready: serving %s", SERVICE_NAME)

    async def shutdown(self, grace_s: float | None = None) -> None:
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        _LOGGER.info("Shutting down: finishing in-flight frames (up to %.0f s)", grace)
        await self.health.enter_graceful_shutdown()
        self.pipeline.stop_accepting()
        if not await self.pipeline.drain(timeout_s=grace):
            _LOGGER.warning("In-flight frames did not finish within %.0f s", grace)
        await self.sessions.finish_all(shutdown=True)
        await self.server.stop(grace)
        with contextlib.suppress(Exception):
            await self.observer.close()
        await self.pipeline.close()
        self.gpus.close()
        _LOGGER.info("Stopped")


async def serve(
    settings: Settings,
    *,
    observer_factory: ObserverFactory | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or `stop` is set). Returns the process exit code."""
    try:
        parse_model_spec(settings.detector)  # fail fast on specs that cannot work
    except DetectorLoadError as err:
        _LOGGER.error("%s", err)  # noqa: TRY400 - one clear message, no traceback
        return EXIT_STARTUP_ERROR
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            _LOGGER.warning("Second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        _LOGGER.info("%s received", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    try:
        server = SidecarServer(settings, observer_factory=observer_factory)
    except StartupError as err:  # a state file from a newer sidecar, a read-only data dir, ...
        _LOGGER.error("Cannot start: %s", err)  # noqa: TRY400
        return err.exit_code
    try:
        await server.start()
    except OSError as err:
        _LOGGER.error("%s", err)  # noqa: TRY400
        return EXIT_BIND_ERROR

    loading = asyncio.create_task(server.load_model())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if loading.done() and loading.exception() is not None:
        failure = loading.exception()
        message = str(failure) if isinstance(failure, StartupError) else repr(failure)
        _LOGGER.error("Cannot start: %s", message)
        stopping.cancel()
        await server.server.stop(0)
        return failure.exit_code if isinstance(failure, StartupError) else EXIT_STARTUP_ERROR
    await stop.wait()
    await server.shutdown()
    if not loading.done():
        loading.cancel()
    return EXIT_OK


def main(
    argv: Sequence[str] | None = None, *, observer_factory: ObserverFactory | None = None
) -> int:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    try:
        return asyncio.run(serve(settings, observer_factory=observer_factory))
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()
