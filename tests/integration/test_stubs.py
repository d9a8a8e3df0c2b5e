"""The integration's gRPC stubs match protos/ and load under Home Assistant 2025.4's pins."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
from google.protobuf import __version__ as protobuf_version

REPO = Path(__file__).resolve().parents[2]


def test_committed_integration_stubs_match_the_proto() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "gen-protos"), "--check", "ha"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_stubs_load_under_home_assistant_pins() -> None:
    from custom_components.secmon.link.proto import secmon_pb2, secmon_pb2_grpc

    assert grpc.__version__ == "1.67.1"
    assert protobuf_version == "5.29.2"
    assert secmon_pb2.DESCRIPTOR.package == "secmon.v1"
    assert hasattr(secmon_pb2_grpc, "SidecarStub")
