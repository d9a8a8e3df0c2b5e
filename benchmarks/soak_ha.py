"""Soak: many cameras uploading for a long time through the real integration and sidecar.

    .venv/bin/python benchmarks/soak_ha.py                 # 16 cameras x 2 fps for 10 minutes
    .venv/bin/python benchmarks/soak_ha.py --short         # smoke run: 30 s

Runs Home Assistant's test harness (the same `hass` the integration tests use) in this process
with a secmon entry, and the real sidecar (`python -m sidecar`, tiny random detector and LLM) as
a child process on loopback. One writer per camera drops a distinct JPEG into its folder every
1/fps seconds the way an FTP server does (written aside, renamed into place).

Prints frames written / analysed / still queued, verdicts, file-to-entity latency (the file is
renamed into place -> the camera's entities are told about its result) p50/p99, HA event-loop
lag p99 (a 50 ms ticker's oversleep), and the RSS of both processes at start and end. Not a test:
nothing is asserted; the figures are what this machine measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from homeassistant import loader  # noqa: E402
from homeassistant.core import Event, HomeAssistant  # noqa: E402
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]  # noqa: E402
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.secmon.const import (  # noqa: E402
    CONF_ADDRESS,
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_CAMERA_ROOT,
    CONF_DEBOUNCE,
    CONF_THRESHOLD,
    DOMAIN,
    EVENT_SECURITY,
    EVENT_SECURITY_UPDATED,
)
from custom_components.secmon.coordinator import SecmonCoordinator  # noqa: E402
from tests.integration.helpers import frame_id_of, image_bytes  # noqa: E402
from tests.integration.sidecar_process import SidecarProcess  # noqa: E402

TICK = 0.05


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Soak:
    """Writers, the loop-lag ticker and what they measured."""

    def __init__(self, hass: HomeAssistant, root: Path, cameras: int, fps: float) -> None:
        self.hass = hass
        self.root = root
        self.cameras = [f"Camera {n:02d}" for n in range(cameras)]
        self.interval = 1 / fps
        self.pool = [image_bytes(n, size=(640, 360)) for n in range(32)]
        self.written: dict[str, float] = {}  # frame id -> when renamed into place
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.verdicts = 0
        self.sequence = 0

    def next_image(self) -> bytes:
        """A distinct JPEG each time (a counter after the end-of-image marker)."""
        self.sequence += 1
        base = self.pool[self.sequence % len(self.pool)]
        return base + self.sequence.to_bytes(8, "big")

    async def write_loop(self, name: str, camera_id: str, until: float) -> None:
        folder = self.root / name
        n = 0
        next_at = time.monotonic()
        while (now := time.monotonic()) < until:
            if now < next_at:
                await asyncio.sleep(next_at - now)
            next_at += self.interval
            data = self.next_image()
            n += 1
            target = folder / f"snap_{n:06d}.jpg"
            await self.hass.async_add_executor_job(_write_atomically, target, data)
            self.written[frame_id_of(camera_id, data)] = time.monotonic()

    async def lag_loop(self, until: float) -> None:
        while time.monotonic() < until:
            before = time.monotonic()
            await asyncio.sleep(TICK)
            self.lags.append(max(0.0, time.monotonic() - before - TICK))

    async def sample_loop(
        self, coordinator: SecmonCoordinator, sidecar_pid: int, until: float, every: float
    ) -> None:
        """Print RSS of both processes, queue depth and frames analysed every `every` seconds."""
        started = time.monotonic()
        while time.monotonic() + every <= until:
            await asyncio.sleep(every)
            print(
                f"  t={time.monotonic() - started:4.0f} s  RSS HA {rss_mib(os.getpid()):.0f} MiB,"
                f" sidecar {rss_mib(sidecar_pid):.0f} MiB; queued {coordinator.queue_depth},"
                f" analysed {coordinator.counters['frames_processed']}",
                flush=True,
            )

    def on_camera_update(self, coordinator: SecmonCoordinator, camera_id: str) -> None:
        camera = coordinator.cameras[camera_id]
        if camera.frame_id is not None and (at := self.written.pop(camera.frame_id, None)):
            self.latencies.append(time.monotonic() - at)

    def on_verdict(self, _event: Event) -> None:
        self.verdicts += 1


def _write_atomically(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    tmp.rename(target)


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="secmon-soak-"))
    root = workdir / "cameras"
    config = workdir / "config"
    config.mkdir()
    sidecar = SidecarProcess()
    sidecar.start()
    try:
        async with async_test_home_assistant(config_dir=str(config)) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            hass.config.allowlist_external_dirs = {str(workdir)}
            soak = Soak(hass, root, args.cameras, args.fps)
            for name in soak.cameras:
                (root / name).mkdir(parents=True)
            entry = MockConfigEntry(
                domain=DOMAIN,
                unique_id=sidecar.address,
                data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(root)},
                # Random weights score low: a low threshold gives the batches and verdicts a
                # real home would have; events of a minute keep verdicts coming in a short run.
                options={
                    CONF_DEBOUNCE: args.debounce,
                    CONF_THRESHOLD: args.threshold,
                    CONF_BATCH_WINDOW: args.window,
                    CONF_BATCH_IDLE: min(args.window, 30.0),
                },
            )
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            coordinator: SecmonCoordinator = entry.runtime_data
            for name in soak.cameras:
                camera_id = coordinator.camera_id_for(name)
                coordinator.async_add_listener(
                    camera_id, functools.partial(soak.on_camera_update, coordinator, camera_id)
                )
            hass.bus.async_listen(EVENT_SECURITY, soak.on_verdict)
            hass.bus.async_listen(EVENT_SECURITY_UPDATED, soak.on_verdict)

            assert sidecar.process is not None
            sidecar_pid = sidecar.process.pid
            rss_start = (rss_mib(os.getpid()), rss_mib(sidecar_pid))
            started = time.monotonic()
            until = started + args.duration
            print(
                f"soak: {args.cameras} cameras x {args.fps:g} fps for {args.duration:.0f} s",
                flush=True,
            )
            await asyncio.gather(
                soak.lag_loop(until + args.drain),
                soak.sample_loop(coordinator, sidecar_pid, until + args.drain, args.sample),
                *(
                    soak.write_loop(name, coordinator.camera_id_for(name), until)
                    for name in soak.cameras
                ),
            )
            rss_end = (rss_mib(os.getpid()), rss_mib(sidecar_pid))
            written = soak.sequence
            processed = coordinator.counters["frames_processed"]
            status = coordinator.sidecar.status
            print(f"frames written       {written}")
            counters = coordinator.counters
            print(
                f"frames analysed      {processed}  (failed {counters['frames_failed']},"
                f" skipped {coordinator.counters['frames_skipped']},"
                f" dropped {coordinator.counters['frames_dropped']})"
            )
            print(
                f"still queued at end  {coordinator.queue_depth}  (after {args.drain:.0f} s drain)"
            )
            print(
                f"throughput           {processed / (time.monotonic() - started):.1f} frames/s"
                f" (offered {args.cameras * args.fps:g})"
            )
            print(
                f"verdicts (HA events) {soak.verdicts}  (sidecar produced"
                f" {status.verdicts_produced if status else '?'})"
            )
            print(
                f"file->entity latency p50 {percentile(soak.latencies, 50):.2f} s,"
                f" p99 {percentile(soak.latencies, 99):.2f} s"
                f" (n={len(soak.latencies)}, mean {statistics.fmean(soak.latencies or [0]):.2f} s)"
            )
            if status is not None:
                print(
                    f"sidecar              processed {status.frames_processed},"
                    f" arrival->result p50 {status.frame_latency.p50_ms:.0f} ms,"
                    f" model p50 {status.inference_latency.p50_ms:.0f} ms per batch of"
                    f" {status.mean_model_batch_size:.1f}"
                )
            print(
                f"HA loop lag          p99 {1000 * percentile(soak.lags, 99):.1f} ms,"
                f" max {1000 * max(soak.lags or [0]):.1f} ms"
            )
            print(f"RSS HA               {rss_start[0]:.0f} -> {rss_end[0]:.0f} MiB")
            print(f"RSS sidecar          {rss_start[1]:.0f} -> {rss_end[1]:.0f} MiB")
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            await hass.async_stop(force=True)
    finally:
        sidecar.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of uploads")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to let the queue drain")
    parser.add_argument("--debounce", type=float, default=0.5)
    parser.add_argument("--threshold", type=float, default=0.001, help="detection threshold")
    parser.add_argument("--window", type=float, default=60.0, help="event window, seconds")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between RSS samples")
    parser.add_argument("--short", action="store_true", help="smoke run: 30 s, 10 s drain")
    args = parser.parse_args()
    if args.short:
        args.duration, args.drain, args.sample = 30.0, 10.0, 10.0
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
