"""gRPC plumbing shared by the config flow, the stream and the analyze service."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..const import GRPC_MAX_MESSAGE_BYTES, HEALTH_TIMEOUT
from .proto import secmon_pb2, secmon_pb2_grpc

_ADDRESS = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-_]+)):(?P<port>\d{1,5})$"
)

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
    # Notice a sidecar machine that vanished without closing the connection. Servers refuse
    # pings more often than every 5 minutes by default.
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    # Our own backoff decides when to reconnect.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


class InvalidAddressError(ValueError):
    """The sidecar address is not host:port."""


class SidecarNotReadyError(Exception):
    """The sidecar answers but its model is not warm yet (health NOT_SERVING)."""


class SidecarAuthError(Exception):
    """The sidecar refused our token."""


class SidecarUnavailableError(Exception):
    """The sidecar could not be reached."""


@dataclass(frozen=True, slots=True)
class SidecarAddress:
    """A parsed host:port."""

    host: str
    port: int

    @property
    def target(self) -> str:
        """The gRPC target string."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(value: str) -> SidecarAddress:
    """Parse `host:port` or `[v6]:port`."""
    match = _ADDRESS.match(value.strip())
    if match is None:
        raise InvalidAddressError(value)
    port = int(match["port"])
    if not 0 < port < 65536:
        raise InvalidAddressError(value)
    host = match["v6"] or match["host"]
    return SidecarAddress(host=host.lower(), port=port)


def create_channel(address: SidecarAddress) -> grpc.aio.Channel:
    """A plaintext channel to the sidecar (a LAN service; auth is the bearer token)."""
    return grpc.aio.insecure_channel(address.target, options=CHANNEL_OPTIONS)


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the bearer token, if there is one."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def _call_error(err: grpc.aio.AioRpcError) -> SidecarAuthError | SidecarUnavailableError:
    """What a failed authenticated call means: the token is refused, or the sidecar is away."""
    if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return SidecarAuthError()
    return SidecarUnavailableError(err.details() or str(err.code()))


async def async_check_sidecar(
    address: SidecarAddress, token: str | None
) -> secmon_pb2.SidecarStatus:
    """Check health (SERVING) and that our token is accepted; returns the sidecar's status.

    Raises SidecarUnavailableError, SidecarNotReadyError or SidecarAuthError.
    """
    channel = create_channel(address)
    try:
        health = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT)
        except grpc.aio.AioRpcError as err:
            raise SidecarUnavailableError(err.details() or str(err.code())) from err
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise SidecarNotReadyError
        stub = secmon_pb2_grpc.SidecarStub(channel)
        try:
            status: secmon_pb2.GetStatusResponse = await stub.GetStatus(
                secmon_pb2.GetStatusRequest(),
                metadata=auth_metadata(token),
                timeout=HEALTH_TIMEOUT,
            )
        except grpc.aio.AioRpcError as err:
            raise _call_error(err) from err
        return status.status
    finally:
        await channel.close()


async def async_analyze(
    address: SidecarAddress,
    token: str | None,
    frame: secmon_pb2.Frame,
    threshold: float,
    deadline: float = 30.0,
) -> secmon_pb2.FrameResult:
    """One-shot `Analyze` call on a fresh channel."""
    channel = create_channel(address)
    try:
        stub = secmon_pb2_grpc.SidecarStub(channel)
        try:
            response: secmon_pb2.AnalyzeResponse = await stub.Analyze(
                secmon_pb2.AnalyzeRequest(frame=frame, threshold=threshold),
                metadata=auth_metadata(token),
                timeout=deadline,
            )
        except grpc.aio.AioRpcError as err:
            raise _call_error(err) from err
        return response.result
    finally:
        await channel.close()
