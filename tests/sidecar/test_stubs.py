"""The committed gRPC stubs match protos/ and load under the sidecar's runtime."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
from google.protobuf import __version__ as protobuf_version

REPO = Path(__file__).resolve().parents[2]


def _check(root: Path, side: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "scripts" / "gen-protos"), "--check", side],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )


def test_committed_sidecar_stubs_match_the_proto() -> None:
    result = _check(REPO, "sidecar")
    assert result.returncode == 0, result.stderr


def test_drift_is_detected(tmp_path: Path) -> None:
    for part in ("scripts", "protos", "sidecar/proto"):
        shutil.copytree(REPO / part, tmp_path / part)
    (tmp_path / ".venv-sidecar").symlink_to(REPO / ".venv-sidecar")
    (tmp_path / "pyproject.toml").symlink_to(REPO / "pyproject.toml")
    proto = tmp_path / "protos/secmon/v1/secmon.proto"
    proto.write_text(proto.read_text() + "\nmessage Drift { string x = 1; }\n")
    result = _check(tmp_path, "sidecar")
    assert result.returncode != 0
    assert "out of date" in result.stderr


def test_stubs_load_under_the_sidecar_runtime() -> None:
    from sidecar.proto import secmon_pb2, secmon_pb2_grpc

    assert int(grpc.__version__.split(".")[1]) >= 85
    assert int(protobuf_version.split(".")[0]) >= 7
    assert secmon_pb2.DESCRIPTOR.package == "secmon.v1"
    assert hasattr(secmon_pb2_grpc, "SidecarStub")
    assert secmon_pb2.ClientMessage.DESCRIPTOR.oneofs_by_name["kind"]
