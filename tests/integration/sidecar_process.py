"""Run the real sidecar (`python -m sidecar`) as a child process on loopback for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
SIDECAR_PYTHON = REPO / ".venv-sidecar" / "bin" / "python"
START_TIMEOUT = 120.0


def free_port() -> int:
    """A loopback port nobody listens on right now.

    Asked of a child interpreter: pytest-socket blocks Python sockets inside tests.
    """
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0));"
            " print(s.getsockname()[1]); s.close()",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


class SidecarProcess:
    """One sidecar process; can be killed and started again on the same port and data dir."""

    def __init__(self, *, detector: str = "random:tiny", extra_args: tuple[str, ...] = ()) -> None:
        """Pick a port and a private data directory."""
        self.port = free_port()
        self.detector = detector
        self.extra_args = extra_args
        self.workdir = Path(tempfile.mkdtemp(prefix="secmon-sidecar-"))
        self.log_path = self.workdir / "sidecar.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        """host:port for the config entry."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The sidecar's command line."""
        return [
            str(SIDECAR_PYTHON),
            "-m",
            "sidecar",
            "--listen",
            self.address,
            "--detector",
            self.detector,
            "--data-dir",
            str(self.workdir / "data"),
            "--llm",
            "random:tiny",
            *self.extra_args,
        ]

    def start(self) -> None:
        """Start it and wait until its health service says SERVING."""
        if not SIDECAR_PYTHON.exists():
            raise RuntimeError(f"{SIDECAR_PYTHON} is missing; run scripts/setup")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        env.pop("PYTHONPATH", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.starts += 1
        self.wait_serving()

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Poll grpc.health.v1 until SERVING (the model is warm)."""
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"sidecar exited with {self.process.returncode}:\n{self.log()}"
                    )
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"sidecar not SERVING after {timeout:.0f} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: the sidecar vanishes mid-stream without a goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL if it does not go."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def log(self) -> str:
        """The sidecar's output so far (tail)."""
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""
