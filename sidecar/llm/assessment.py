"""The risk assessment an LLM must produce, its grammar, and its validation.

The grammar is ours rather than llama-cpp-python's JSON-schema conversion, which (0.3.36) lets raw
control characters into strings and ignores integer bounds. Ours spells every legal score, ties the
level to the score's band, excludes control characters, quotes and backslashes from strings and
bounds their length, so any completion that finishes is a valid assessment.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

SUMMARY_MAX_CHARS = 200
REASONING_MAX_CHARS = 600


class RiskLevel(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


# Inclusive score bands per level, lowest first.
RISK_BANDS: dict[RiskLevel, tuple[int, int]] = {
    RiskLevel.LOW: (0, 29),
    RiskLevel.MEDIUM: (30, 59),
    RiskLevel.HIGH: (60, 84),
    RiskLevel.CRITICAL: (85, 100),
}


def level_for_score(score: int) -> RiskLevel:
    for level, (low, high) in RISK_BANDS.items():
        if low <= score <= high:
            return level
    raise ValueError(f"risk score {score} outside 0-100")


class AssessmentFormatError(ValueError):
    """A completion that is not a valid assessment."""


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    risk_score: int
    risk_level: RiskLevel
    summary: str
    reasoning: str


# Characters allowed in summary/reasoning: printable ASCII except quote and backslash, plus the
# printable letters and punctuation of common scripts. No controls, format characters, private-use
# or unassigned code points, so every string the grammar admits is `str.isprintable()`.
TEXT_CHAR_RANGES: tuple[tuple[int, int], ...] = (
    (0x20, 0x21),
    (0x23, 0x5B),
    (0x5D, 0x7E),
    (0xA1, 0xAC),
    (0xAE, 0x24F),  # Latin-1 supplement and Latin extended
    (0x400, 0x4FF),  # Cyrillic
    (0x2010, 0x2027),  # dashes, quotes, bullets, ellipsis
    (0x2030, 0x205E),
    (0x3041, 0x3096),  # Hiragana
    (0x30A1, 0x30FA),  # Katakana
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7A3),  # Hangul syllables
)


def _char_class(*, no_space: bool = False) -> str:
    ranges = [((0x21 if no_space and lo == 0x20 else lo), hi) for lo, hi in TEXT_CHAR_RANGES]

    def esc(code: int) -> str:
        return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}"

    return "[" + "".join(f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges) + "]"


def _string_rule(max_chars: int) -> str:
    # 1..max_chars allowed characters between quotes, not starting with a space; no escapes needed.
    return f'"\\"" text-start text-char{{0,{max_chars - 1}}} "\\""'


def _score_alternatives(low: int, high: int) -> str:
    return " | ".join(f'"{n}"' for n in range(high, low - 1, -1))


def build_grammar() -> str:
    """GBNF for one assessment: reasoning first (so the model reasons before it scores)."""
    bands = []
    for level, (low, high) in RISK_BANDS.items():
        bands.append(
            f'{level.value}-band ::= "\\"risk_score\\":" ws ({_score_alternatives(low, high)}) '
            f'"," ws "\\"risk_level\\":" ws "\\"{level.value}\\""'
        )
    band_names = " | ".join(f"{level.value}-band" for level in RISK_BANDS)
    return "\n".join(
        [
            'root ::= "{" ws "\\"reasoning\\":" ws reasoning "," ws band "," ws '
            '"\\"summary\\":" ws summary ws "}"',
            f"band ::= {band_names}",
            *bands,
            f"reasoning ::= {_string_rule(REASONING_MAX_CHARS)}",
            f"summary ::= {_string_rule(SUMMARY_MAX_CHARS)}",
            f"text-start ::= {_char_class(no_space=True)}",
            f"text-char ::= {_char_class()}",
            'ws ::= " "?',
        ]
    )


GRAMMAR = build_grammar()

# For OpenAI-compatible servers that take a JSON schema instead of a grammar.
JSON_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string", "minLength": 1, "maxLength": REASONING_MAX_CHARS},
        "risk_score": {"type": "integer", "minimum": 0, "maximum": 100},
        "risk_level": {"type": "string", "enum": [level.value for level in RiskLevel]},
        "summary": {"type": "string", "minLength": 1, "maxLength": SUMMARY_MAX_CHARS},
    },
    "required": ["reasoning", "risk_score", "risk_level", "summary"],
    "additionalProperties": False,
}

# Upper bound of completion tokens a grammar-constrained answer can take: with byte-fallback
# vocabularies a token can be a single UTF-8 byte, and the allowed characters take up to 3 bytes.
MAX_COMPLETION_TOKENS = 3 * (REASONING_MAX_CHARS + SUMMARY_MAX_CHARS) + 96

_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def strip_reasoning_trace(text: str) -> str:
    """Drop `<think>…</think>` blocks (and an unterminated trailing one's opening tag)."""
    text = _THINK_RE.sub("", text)
    if "</think>" in text.lower():
        text = text[text.lower().rindex("</think>") + len("</think>") :]
    return text.strip()


def parse_assessment(text: str) -> RiskAssessment:
    """Parse and validate a completion. Tolerates think blocks and text around the JSON object."""
    body = strip_reasoning_trace(text)
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise AssessmentFormatError("no JSON object in completion")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as err:
        raise AssessmentFormatError(f"invalid JSON: {err.msg}") from err
    if not isinstance(data, dict):
        raise AssessmentFormatError("completion is not a JSON object")
    score = data.get("risk_score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        raise AssessmentFormatError(f"risk_score must be an integer 0-100, got {score!r}")
    try:
        level = RiskLevel(str(data.get("risk_level", "")).lower())
    except ValueError as err:
        raise AssessmentFormatError(f"unknown risk_level {data.get('risk_level')!r}") from err
    if level is not level_for_score(score):
        raise AssessmentFormatError(f"risk_level {level.value} does not match score {score}")
    summary, reasoning = data.get("summary"), data.get("reasoning")
    for name, value, limit in (
        ("summary", summary, SUMMARY_MAX_CHARS),
        ("reasoning", reasoning, REASONING_MAX_CHARS),
    ):
        if not isinstance(value, str) or not value.strip():
            raise AssessmentFormatError(f"{name} must be non-empty text")
        if len(value) > limit or not value.isprintable():
            raise AssessmentFormatError(f"{name} too long or not printable text")
    return RiskAssessment(score, level, str(summary).strip(), str(reasoning).strip())
