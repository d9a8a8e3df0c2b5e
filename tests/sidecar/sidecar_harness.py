"""Helpers for sidecar tests: test images and a real `python -m sidecar` process on loopback.

Used by conftest.py's fixtures; importable by other test modules (and by other suites that run in
.venv-sidecar) as `sidecar_harness`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image, ImageDraw, ImageFilter

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (\S+):(\d+)")


# -- images ------------------------------------------------------------------------------------
def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic, photo-like RGB image: gradients, blurred shapes, mild noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack(
        [np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
         np.broadcast_to((x + y) / 2, (height, width))],
        axis=-1,
    ).astype(np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, width - 4)), int(rng.integers(0, height - 4))
        x1 = x0 + int(rng.integers(3, max(4, width // 3)))
        y1 = y0 + int(rng.integers(3, max(4, height // 3)))
        fill = tuple(int(v) for v in rng.integers(0, 255, 3))
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(1))
    noise = rng.normal(0, 2, (height, width, 3)).astype(np.int16)
    noisy = np.asarray(image).astype(np.int16) + noise
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG" and "quality" not in params:
        params["quality"] = 90
    image.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    return encode(scene(width, height, seed), "JPEG")


def png(width: int, height: int, seed: int = 0, mode: str = "RGB") -> bytes:
    return encode(scene(width, height, seed).convert(mode), "PNG")


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def png_bomb(width: int, height: int) -> bytes:
    """A tiny, valid PNG header claiming width x height pixels (a decompression bomb's shape):
    the sidecar must refuse it from the header, before decoding anything."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    idat = zlib.compress(row * 16)  # a few rows; the rest is "missing"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    """Wait until `check()` is true (polling; a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


# -- the sidecar process -----------------------------------------------------------------------
class SidecarProcess:
    """`python -m sidecar` on 127.0.0.1 with a port the OS picks; logs are collected."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        token: str | None = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.token = token
        full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        full_env.update(env or {})
        # Each process gets its own state directory, the tiny random LLM and tiny random
        # enrichment models unless args say otherwise (argparse keeps the last occurrence).
        self.data_dir = Path(tempfile.mkdtemp(prefix="secmon-sidecar-"))
        command = [
            sys.executable, "-m", "sidecar", "--listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir), "--llm", "random:tiny", *TINY_ENRICHMENT, *args,
        ]
        if token:
            command += ["--token", token]
        self.proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        self.lines: list[str] = []
        self._port: int | None = None
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        if not self._listening.wait(startup_timeout_s) or self._port is None:
            self.kill()
            raise RuntimeError("sidecar did not start listening:\n" + self.log)

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            match = LISTENING.search(line)
            if match and self._port is None:
                self._port = int(match.group(2))
                self._listening.set()
        self._listening.set()  # exited before listening

    @property
    def port(self) -> int:
        assert self._port is not None
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[grpc.aio.Channel]:
        limit = 64 * 1024 * 1024
        async with grpc.aio.insecure_channel(
            self.address,
            options=[("grpc.max_receive_message_length", limit),
                     ("grpc.max_send_message_length", limit)],
        ) as channel:
            yield channel

    async def health(self, service: str = "") -> int:
        async with self.channel() as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=10
            )
            return int(reply.status)

    async def wait_serving(self, timeout_s: float = 120.0) -> None:
        """Poll health until SERVING (a start-up guard, not a performance assertion)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}:\n{self.log}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                if await self.health() == health_pb2.HealthCheckResponse.SERVING:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("sidecar did not become SERVING:\n" + self.log)
            await asyncio.sleep(0.1)

    def wait_serving_sync(self, timeout_s: float = 120.0) -> None:
        """Blocking variant of `wait_serving` for fixtures."""
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"sidecar exited with {self.proc.returncode}:\n{self.log}")
                with contextlib.suppress(grpc.RpcError):
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError("sidecar did not become SERVING:\n" + self.log)
                time.sleep(0.1)

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._reader.join(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)


# Every enrichment model as a tiny random one, built offline.
TINY_ENRICHMENT = (
    "--enrich-caption-model", "random:tiny",
    "--enrich-attributes-model", "random:tiny",
    "--enrich-pose-model", "random:tiny",
    "--enrich-depth-model", "random:tiny",
)


def run_sidecar_to_exit(
    args: Sequence[str], env: dict[str, str] | None = None, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m sidecar ARGS` expecting it to exit by itself (start-up failures)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "--listen", "127.0.0.1:0",
         "--data-dir", tempfile.mkdtemp(prefix="secmon-sidecar-"), "--llm", "none", *args],
        cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )
