"""Making untrusted text safe to quote inside an LLM prompt.

Camera names (folder names on an FTP drop) and any other text from outside the sidecar are not
trusted. Before they reach a prompt they are reduced to one short line of plain text that cannot
close the quoted field it sits in, cannot forge chat-template or role markers, and cannot smuggle
instructions that the prompt would otherwise present as its own. The prompt additionally presents
such text as quoted data.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_MAX_CHARS = 64

# Chat-template and role markers of the families we run (ChatML, Llama 3, Nemotron, Mistral, Gemma).
_TEMPLATE_TOKEN_RE = re.compile(
    r"(?:<\|[^|>]{0,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|<extra_id_\d+>|</?think>"
    r"|<start_of_turn>|<end_of_turn>|<SPECIAL_\d+>)"
    # ...and the role name that follows an opening marker.
    r"(\s*(system|user|assistant|developer|model)\b)?",
    re.IGNORECASE,
)
# Phrases that only make sense as instructions to the model.
_INSTRUCTION_RE = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.]{0,40}\b(instruction|instructions|prompt|rules|above|previous)\b"
    r"|\b(system|assistant|developer)\s*:"
    r"|\brisk[_ ]?(score|level)\b",
    re.IGNORECASE,
)
# Characters that could open or close structure in our prompt or the JSON answer.
# The prompt quotes untrusted text in «guillemets», so those (and look-alikes) go too.
_STRUCTURAL_RE = re.compile(r"[\"'`{}\[\]<>\\|#*«»‹›“”„〈〉《》]")
_SPACE_RE = re.compile(r"\s+")


def sanitize_untrusted(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """One line of harmless text; `unknown` when nothing is left."""
    text = unicodedata.normalize("NFKC", text)
    # Drop control, format (zero-width, bidi overrides), private-use and unassigned characters.
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = _TEMPLATE_TOKEN_RE.sub(" ", text)
    text = _STRUCTURAL_RE.sub(" ", text)
    text = _INSTRUCTION_RE.sub("(filtered)", text)
    text = _SPACE_RE.sub(" ", text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text or "unknown"
