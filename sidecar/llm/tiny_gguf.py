"""A tiny random-weight llama GGUF, for `--llm random:tiny` and for tests.

Its verdicts are meaningless (random weights) but every part of the real path runs: GGUF loading,
the chat template from the file, tokenisation, grammar-constrained sampling and validation.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

# A plain ChatML template, stored in the file like a real model's.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _vocab() -> tuple[list[str], list[float], list[int]]:
    # gguf.TokenType values: NORMAL=1, UNKNOWN=2, CONTROL=3, BYTE=6.
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    tokens.append("▁")
    types.append(1)
    printable = [c for c in string.printable if c not in " \t\n\r\x0b\x0c"]
    tokens += printable
    types += [1] * len(printable)
    scores = [0.0] * len(tokens)
    return tokens, scores, types


def write_tiny_gguf(path: Path, *, seed: int = 0, dim: int = 64, blocks: int = 2) -> Path:
    """Write a llama-architecture GGUF with random f32 weights to `path`."""
    import gguf  # noqa: PLC0415 - only needed when a random model is asked for

    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    n_vocab, n_heads, ffn = len(tokens), 4, dim * 2
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("secmon-random-tiny")
    writer.add_context_length(8192)
    writer.add_embedding_length(dim)
    writer.add_block_count(blocks)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(n_heads)
    writer.add_rope_dimension_count(dim // n_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.02, size=shape).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(n_vocab, dim))
    writer.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, dim))
    for i in range(blocks):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(dim, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(dim, dim))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(dim, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(ffn, dim))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(ffn, dim))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(dim, ffn))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
