"""The analyzer: real llama.cpp, a loopback OpenAI-compatible endpoint, deadlines and fallbacks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sidecar.domain import Box, Detection, FrameObservation
from sidecar.llm.analyzer import RiskAnalyzer
from sidecar.llm.backends import LlmSpec, create_backend
from sidecar.llm.prompt import PromptInput

NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PERSON = Detection("person", 0, 0.95, Box(34.2, 34.2, 65.8, 65.8))  # centre, area 0.1
BATCH = PromptInput(
    "Front Door",
    NOON,
    NOON,
    [FrameObservation("f1", "front_door", "Front Door", NOON, 100, 100, (PERSON,))],
)


class _Endpoint(BaseHTTPRequestHandler):
    """A reasoning model behind an OpenAI-compatible server: it thinks out loud before answering."""

    replies: list[str] = []
    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        content = type(self).replies.pop(0)
        data = json.dumps(
            {"choices": [{"message": {"content": content}}], "usage": {"completion_tokens": 42}}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Endpoint.replies, _Endpoint.requests = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


async def test_reasoning_model_output_still_yields_valid_verdict(
    endpoint: str, tmp_path: Path
) -> None:
    answer = {
        "reasoning": "Daytime visitor.",
        "risk_score": 20,
        "risk_level": "low",
        "summary": "Visitor.",
    }
    _Endpoint.replies = ["pong", "<think>Let me think about {this}.</think>\n" + json.dumps(answer)]
    backend = create_backend(
        endpoint, use_gpu=False, n_ctx=8192, cache_dir=tmp_path, model="nemotron"
    )
    analyzer = RiskAnalyzer(backend, tz=UTC)
    await analyzer.start()
    try:
        outcome = await analyzer.assess(BATCH)
    finally:
        analyzer.close()
    assert not outcome.fallback
    assert outcome.assessment.risk_score == 20 and outcome.completion_tokens == 42
    request = _Endpoint.requests[-1]
    assert request["model"] == "nemotron" and "grammar" in request
    assert request["response_format"]["json_schema"]["schema"]["required"]


async def test_invalid_answers_retry_then_fall_back(endpoint: str, tmp_path: Path) -> None:
    _Endpoint.replies = ["pong", '{"risk_score": 500}', "I cannot help with that."]
    backend = create_backend(endpoint, use_gpu=False, n_ctx=8192, cache_dir=tmp_path)
    analyzer = RiskAnalyzer(backend, tz=UTC, attempts=2)
    await analyzer.start()
    try:
        outcome = await analyzer.assess(BATCH)
    finally:
        analyzer.close()
    assert outcome.fallback and len(_Endpoint.requests) == 3  # warm-up + 2 attempts
    assert outcome.assessment.summary == "AI analysis unavailable; 1 person at Front Door."
    assert outcome.assessment.risk_score == 50 and outcome.assessment.risk_level.value == "medium"


async def test_deadline_stops_generation_and_falls_back(tmp_path: Path) -> None:
    backend = create_backend("random:tiny", use_gpu=False, n_ctx=8192, cache_dir=tmp_path)
    analyzer = RiskAnalyzer(backend, tz=UTC, timeout_s=0.005)
    await analyzer.start()
    try:
        outcome = await analyzer.assess(BATCH)
    finally:
        analyzer.close()
    assert outcome.fallback and "deadline" in outcome.error


async def test_no_llm_configured_gives_fallback() -> None:
    outcome = await RiskAnalyzer(None, tz=UTC).assess(BATCH)
    assert outcome.fallback and outcome.error == "no language model configured"


def test_llm_specs() -> None:
    assert LlmSpec.parse("random:tiny").kind == "random"
    assert LlmSpec.parse("/models/nemotron.gguf") == LlmSpec("file", "/models/nemotron.gguf")
    hub = LlmSpec.parse("bartowski/nvidia_Nemotron-3-Nano-30B-A3B-GGUF:*Q4_K_M.gguf")
    assert (hub.kind, hub.value, hub.filename) == (
        "hub",
        "bartowski/nvidia_Nemotron-3-Nano-30B-A3B-GGUF",
        "*Q4_K_M.gguf",
    )
    assert LlmSpec.parse("http://127.0.0.1:8080/v1/").value == "http://127.0.0.1:8080/v1"
    with pytest.raises(ValueError, match="random:tiny"):
        LlmSpec.parse("random:huge")
    with pytest.raises(ValueError, match=r"not a \.gguf path"):
        LlmSpec.parse("nonsense")


async def test_unreachable_hub_fails_with_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = create_backend(
        "someone/missing-GGUF:*Q4_K_M.gguf", use_gpu=False, n_ctx=8192, cache_dir=tmp_path
    )
    with pytest.raises(
        Exception, match=r"Download the \.gguf file once and pass its path with --llm"
    ):
        backend.load()
