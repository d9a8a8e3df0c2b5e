"""An in-process gRPC server for config-flow error cases only (model still loading, token
rejected): states a real sidecar passes through too briefly to test against. Everything else
runs against the real sidecar process."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from custom_components.secmon.link.proto import secmon_pb2, secmon_pb2_grpc


class _StatusOnly(secmon_pb2_grpc.SidecarServicer):
    def __init__(self, token: str | None) -> None:
        self.token = token

    async def GetStatus(
        self, request: secmon_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> secmon_pb2.GetStatusResponse:
        metadata = dict(context.invocation_metadata() or ())
        if self.token and metadata.get("authorization") != f"Bearer {self.token}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        return secmon_pb2.GetStatusResponse(status=secmon_pb2.SidecarStatus(ready=True))


async def start_flow_error_server(
    port: int, *, serving: bool, token: str | None = None
) -> grpc.aio.Server:
    """Health NOT_SERVING (serving=False) or a GetStatus that demands `token`."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set(
        "",
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    secmon_pb2_grpc.add_SidecarServicer_to_server(_StatusOnly(token), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server
