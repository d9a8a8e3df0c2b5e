"""Flags and their SECMON_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.events.batching import BatchingRules
from sidecar.server.config import MIB, Settings, parse_settings


def test_defaults() -> None:
    s = parse_settings([], env={})
    assert s == Settings()
    assert s.listen == "127.0.0.1:50051"
    assert s.detector == "PekingU/rtdetr_v2_r18vd"
    assert (s.device, s.threshold, s.token) == ("auto", 0.5, None)
    assert s.max_frame_bytes == 32 * MIB
    assert s.data_dir == Path("sidecar-data")
    assert s.preprocess == "fast"


def test_environment_variables() -> None:
    env = {
        "SECMON_LISTEN": "0.0.0.0:6000",
        "SECMON_DETECTOR": "random:tiny",
        "SECMON_DEVICE": "cpu",
        "SECMON_THRESHOLD": "0.3",
        "SECMON_MAX_BATCH": "8",
        "SECMON_MAX_DELAY_MS": "5.5",
        "SECMON_TOKEN": "s3cret",
        "SECMON_MAX_FRAME_BYTES": "1000",
        "SECMON_MAX_PIXELS": "2000",
        "SECMON_DATA_DIR": "/var/lib/secmon",
        "SECMON_LOG_LEVEL": "debug",
        "SECMON_PREPROCESS": "exact",
    }
    s = parse_settings([], env=env)
    assert s.listen == "0.0.0.0:6000"
    assert (s.detector, s.device, s.threshold) == ("random:tiny", "cpu", 0.3)
    assert (s.max_batch, s.max_delay_ms, s.token) == (8, 5.5, "s3cret")
    assert (s.max_frame_bytes, s.max_pixels) == (1000, 2000)
    assert s.data_dir == Path("/var/lib/secmon")
    assert s.log_level == "DEBUG"
    assert s.preprocess == "exact"


def test_flags_win_over_the_environment() -> None:
    s = parse_settings(["--max-batch", "2", "--threshold", "0.9"],
                       env={"SECMON_MAX_BATCH": "8", "SECMON_THRESHOLD": "0.1"})
    assert (s.max_batch, s.threshold) == (2, 0.9)


def test_empty_token_means_no_auth() -> None:
    assert parse_settings([], env={"SECMON_TOKEN": ""}).token is None


@pytest.mark.parametrize(
    "argv",
    [["--threshold", "1.5"], ["--max-batch", "0"], ["--max-delay-ms", "-1"], ["--device", "tpu"],
     ["--preprocess", "magic"]],
)
def test_invalid_flags_exit(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv, env={})


@pytest.mark.parametrize("env", [{"SECMON_DEVICE": "gpu"}, {"SECMON_PREPROCESS": "x"}])
def test_invalid_environment_exits(env: dict[str, str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings([], env=env)


def test_grpc_limit_is_clearly_above_the_frame_limit() -> None:
    for frame_bytes in (1000, 32 * MIB, 900 * MIB):
        s = Settings(max_frame_bytes=frame_bytes)
        assert s.grpc_message_limit >= frame_bytes + 4 * MIB
        assert s.grpc_message_limit < 2**31


def test_llm_default_follows_the_detector() -> None:
    from sidecar.server.config import DEFAULT_LLM

    assert parse_settings([], env={}).llm == DEFAULT_LLM
    assert parse_settings(["--detector", "random:tiny"], env={}).llm == "random:tiny"
    assert parse_settings(["--detector", "random:r18", "--llm", "none"], env={}).llm == "none"
    from_env = parse_settings(["--detector", "/models/rtdetr"], env={"SECMON_LLM": "x.gguf"})
    assert from_env.llm == "x.gguf"


def test_batching_flags_build_the_default_rules() -> None:
    assert parse_settings([], env={}).batching == BatchingRules()
    s = parse_settings(
        ["--batch-window-s", "60", "--fast-path-labels", "person, car"],
        env={"SECMON_BATCH_IDLE_S": "12", "SECMON_FAST_PATH_CONFIDENCE": "0.8"},
    )
    assert s.batching == BatchingRules(
        window_s=60, idle_s=12, fast_path_labels=frozenset({"person", "car"}),
        fast_path_confidence=0.8,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--batch-window-s", "nan"],
        ["--batch-window-s", "0"],
        ["--batch-window-s", "1e12"],
        ["--batch-idle-s", "-1"],
        ["--batch-idle-s", "inf"],
        ["--batch-window-s", "10", "--batch-idle-s", "20"],
        ["--max-delay-ms", "nan"],
        ["--llm-timeout-s", "inf"],
        ["--state-max-mib", "-1"],
        ["--batch-max-frames", "0"],
    ],
)
def test_unusable_values_are_refused_at_start(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_settings(argv, env={})
    assert exited.value.code == 2


def test_batch_limits_from_flags() -> None:
    s = parse_settings(["--batch-max-frames", "50", "--state-max-mib", "64"], env={})
    assert s.batching.max_frames == 50 and s.state_max_mib == 64
    with pytest.raises(SystemExit):
        parse_settings([], env={"SECMON_BATCH_WINDOW_S": "nan"})
