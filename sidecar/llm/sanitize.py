"""Making untrusted text safe to place inside an LLM prompt's data block.

Camera names (folder names on an FTP drop), and any other text from outside the sidecar (notes,
text read from images), are not trusted. The defence is structural (llm/prompt.py): such text only
ever appears inside one delimited data block that the system prompt declares to be data. This
module makes sure the text cannot break that structure, whatever it contains:

- NFKC normalisation, then control characters become spaces and format characters (zero-width,
  bidi overrides) are removed, so the text is one line of visible characters;
- confusable folding: a word that mixes Latin letters with Cyrillic or Greek look-alikes (or is
  made only of look-alikes) is spelled in Latin, so "Ignore" written with a Cyrillic I reads as
  what it pretends to be;
- every bracket, quote and markup character goes (Unicode opening/closing punctuation and quotes,
  and the ASCII ones), so the data block's delimiters, which are brackets, can never be written by
  the data; chat-template and role markers go too;
- instruction-like phrases are replaced (a second line of defence, not the defence);
- the result is bounded in length.
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
# ASCII characters that could open or close structure in the prompt or the JSON answer.
_STRUCTURAL_ASCII = frozenset("\"'`{}[]()<>\\|#*")
# Unicode categories removed: opening/closing punctuation (brackets of every script, including the
# data block's delimiters) and initial/final quotes (guillemets, curly quotes).
_STRUCTURAL_CATEGORIES = frozenset({"Ps", "Pe", "Pi", "Pf"})
_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"\w+")

# Cyrillic and Greek letters that look like Latin ones (Unicode's confusables, the common part).
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "һ": "h",
        "ӏ": "l", "ԛ": "q", "ԝ": "w", "ү": "y", "ɡ": "g",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D",
        "Ү": "Y", "Ӏ": "I", "Ԛ": "Q", "Ԝ": "W",
        # Greek
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
        "υ": "u", "χ": "x", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I",
        "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    }
)
_CONFUSABLE_CHARS = frozenset(chr(c) for c in _CONFUSABLES)


def fold_confusables(text: str) -> str:
    """Spell in Latin the words that mix Latin with look-alike letters, or consist only of
    look-alikes; words of another script that merely contain some look-alikes stay as they are."""

    def fold(match: re.Match[str]) -> str:
        word = match.group()
        letters = [ch for ch in word if ch.isalpha()]
        has_latin = any(ch.isascii() for ch in letters)
        all_lookalikes = bool(letters) and all(ch in _CONFUSABLE_CHARS for ch in letters)
        if (has_latin and any(ch in _CONFUSABLE_CHARS for ch in letters)) or all_lookalikes:
            return word.translate(_CONFUSABLES)
        return word

    return _WORD_RE.sub(fold, text)


def _visible_line(text: str) -> str:
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":  # zero-width and bidi characters: gone, so words stay whole
            continue
        invisible = category[0] == "C" or category in ("Zl", "Zp")
        structural = category in _STRUCTURAL_CATEGORIES or ch in _STRUCTURAL_ASCII
        out.append(" " if invisible or structural else ch)
    return "".join(out)


def sanitize_untrusted(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """One line of harmless text, at most `max_chars` long; `unknown` when nothing is left."""
    text = unicodedata.normalize("NFKC", text)
    text = _TEMPLATE_TOKEN_RE.sub(" ", text)
    text = _visible_line(text)
    text = fold_confusables(text)
    text = _INSTRUCTION_RE.sub("filtered", text)
    text = _SPACE_RE.sub(" ", text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text or "unknown"
