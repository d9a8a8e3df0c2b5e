"""The verdict grammar and validation: every completion of the tiny real model must validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llama_cpp import Llama, LlamaGrammar

from sidecar.llm.assessment import (
    GRAMMAR,
    MAX_COMPLETION_TOKENS,
    RISK_BANDS,
    TEXT_CHAR_RANGES,
    AssessmentFormatError,
    RiskLevel,
    level_for_score,
    parse_assessment,
)
from sidecar.llm.prompt import SYSTEM_PROMPT
from sidecar.llm.tiny_gguf import write_tiny_gguf

SEEDS_PER_MODEL = 15
MODEL_SEEDS = (0, 1, 2)


@pytest.mark.parametrize("model_seed", MODEL_SEEDS)
def test_tiny_model_verdicts_always_valid(tmp_path: Path, model_seed: int) -> None:
    """Random weights, many sampling seeds, hot temperature: 100 % schema-valid verdicts."""
    path = write_tiny_gguf(tmp_path / "tiny.gguf", seed=model_seed)
    llm = Llama(model_path=str(path), n_ctx=8192, verbose=False)
    grammar = LlamaGrammar.from_string(GRAMMAR, verbose=False)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": "Camera: «Front Door»\n- 02:13:05 «person» 0.97 (middle-center, large)",
        },
    ]
    results = []
    for seed in range(SEEDS_PER_MODEL):
        reply = llm.create_chat_completion(
            messages=messages,
            grammar=grammar,
            max_tokens=MAX_COMPLETION_TOKENS,
            temperature=1.5,
            seed=seed,
        )
        assert reply["choices"][0]["finish_reason"] == "stop"
        results.append(parse_assessment(reply["choices"][0]["message"]["content"]))
    assert len(results) == SEEDS_PER_MODEL
    for result in results:
        assert 0 <= result.risk_score <= 100
        assert result.risk_level is level_for_score(result.risk_score)
    # Different seeds explore the space: not every verdict is the same.
    assert len({(r.risk_score, r.summary) for r in results}) > 1


def test_grammar_text_characters_are_printable() -> None:
    for low, high in TEXT_CHAR_RANGES:
        for code in range(low, high + 1):
            char = chr(code)
            assert char.isprintable(), hex(code)
            assert char not in '"\\'


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (29, "low"),
        (30, "medium"),
        (59, "medium"),
        (60, "high"),
        (84, "high"),
        (85, "critical"),
        (100, "critical"),
    ],
)
def test_score_bands(score: int, level: str) -> None:
    assert level_for_score(score) is RiskLevel(level)
    assert RISK_BANDS[RiskLevel(level)][0] <= score <= RISK_BANDS[RiskLevel(level)][1]


def _reply(**overrides: object) -> str:
    data: dict[str, object] = {
        "reasoning": "A person at the door at night.",
        "risk_score": 70,
        "risk_level": "high",
        "summary": "Person at the front door at 2 am.",
    }
    data.update(overrides)
    return json.dumps(data)


def test_parse_strips_think_blocks_and_surrounding_text() -> None:
    text = "<think>The user wants JSON. {not this}</think>\nHere you go: " + _reply() + " done"
    result = parse_assessment(text)
    assert result.risk_score == 70
    assert result.risk_level is RiskLevel.HIGH


def test_parse_handles_unterminated_leading_think() -> None:
    # Some templates open <think> in the prompt, so the completion starts inside it.
    assert parse_assessment("considering {x}</think>" + _reply()).risk_score == 70


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no json here",
        _reply(risk_score=101),
        _reply(risk_score=-1),
        _reply(risk_score=50.5),
        _reply(risk_score=True),
        _reply(risk_score="70"),
        _reply(risk_level="severe"),
        _reply(risk_level="low"),  # inconsistent with 70
        _reply(summary=""),
        _reply(summary="bell\x07"),
        _reply(reasoning="x" * 601),
        _reply(summary=None),
        "[1, 2]",
        '{"risk_score": 70',
    ],
)
def test_parse_rejects_invalid(text: str) -> None:
    with pytest.raises(AssessmentFormatError):
        parse_assessment(text)


def test_backend_path_valid_over_many_seeds(tmp_path: Path) -> None:
    """The production path (GGUF chat template, our formatter, deadline criterion, grammar)."""
    import time

    from sidecar.llm.backends import LlamaCppBackend, LlmSpec

    valid = 0
    for seed in range(20):
        backend = LlamaCppBackend(
            LlmSpec.parse("random:tiny"),
            use_gpu=False,
            n_ctx=8192,
            cache_dir=tmp_path,
            seed=seed,
            temperature=1.0,
        )
        backend.load()
        completion = backend.infer(
            [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Camera: «c{seed}»"},
            ],
            deadline=time.monotonic() + 60,
        )
        parse_assessment(completion.text)
        valid += 1
    assert valid == 20
