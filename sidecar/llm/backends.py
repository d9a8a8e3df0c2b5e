"""LLM backends: llama.cpp in-process (default) or an OpenAI-compatible HTTP endpoint.

Both follow the model interface the detector uses: `load`, `warmup`, `infer`. They are synchronous
and run on the analyzer's single worker thread, never on the asyncio loop.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..domain import StartupError
from .assessment import GRAMMAR, JSON_SCHEMA, MAX_COMPLETION_TOKENS
from .prompt import Message
from .tiny_gguf import CHAT_TEMPLATE, write_tiny_gguf

_LOGGER = logging.getLogger(__name__)

class LlmLoadError(StartupError):
    """The model named by a spec could not be loaded; the message says what to do."""


class LlmInferenceError(RuntimeError):
    """A completion failed (backend error, deadline passed, unreachable endpoint)."""


@dataclass(frozen=True, slots=True)
class LlmSpec:
    kind: str  # "random", "file", "hub", "http"
    value: str
    filename: str = ""

    @classmethod
    def parse(cls, spec: str) -> LlmSpec:
        if spec.startswith("random:"):
            if spec != "random:tiny":
                raise ValueError(f"unknown random LLM size {spec!r}; use random:tiny")
            return cls("random", "tiny")
        if spec.startswith(("http://", "https://")):
            return cls("http", spec.rstrip("/"))
        if spec.endswith(".gguf") and ":" not in spec:
            return cls("file", spec)
        if ":" in spec and spec.count("/") >= 1:
            repo, filename = spec.split(":", 1)
            return cls("hub", repo, filename)
        raise ValueError(
            f"LLM spec {spec!r} is not a .gguf path, REPO/NAME:FILE.gguf, an http(s) URL "
            "or random:tiny"
        )


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    completion_tokens: int
    elapsed_ms: float


class LlmBackend(Protocol):
    name: str
    n_ctx: int

    def load(self) -> None: ...
    def warmup(self) -> None: ...
    def count_tokens(self, text: str) -> int: ...
    def infer(self, messages: list[Message], deadline: float) -> Completion: ...


class LlamaCppBackend:
    """llama-cpp-python in-process, output constrained by our grammar."""

    def __init__(
        self,
        spec: LlmSpec,
        *,
        use_gpu: bool,
        n_ctx: int,
        cache_dir: Path,
        seed: int = 0,
        temperature: float = 0.2,
    ) -> None:
        self.spec = spec
        self.name = spec.value if spec.kind != "hub" else f"{spec.value}:{spec.filename}"
        self.n_ctx = n_ctx
        self._use_gpu = use_gpu
        self._cache_dir = cache_dir
        self._seed = seed
        self._temperature = temperature
        self._llm: Any = None
        self._grammar: Any = None
        self._no_think = False
        self._formatter: Any = None

    def load(self) -> None:
        from llama_cpp import Llama  # noqa: PLC0415 - heavy import
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # noqa: PLC0415
        from llama_cpp.llama_grammar import LlamaGrammar  # noqa: PLC0415

        kwargs: dict[str, Any] = {
            "n_ctx": self.n_ctx,
            "n_gpu_layers": -1 if self._use_gpu else 0,
            "seed": self._seed,
            "verbose": False,
        }
        if self.spec.kind == "random":
            _LOGGER.warning(
                "LLM is a random-weight tiny model (random:tiny): verdicts are well-formed but "
                "MEANINGLESS. Use a Nemotron GGUF for real analysis."
            )
            path = write_tiny_gguf(self._cache_dir / "random-tiny.gguf")
            self.name = "random:tiny"
            self._llm = Llama(model_path=str(path), **kwargs)
        elif self.spec.kind == "file":
            if not Path(self.spec.value).is_file():
                raise LlmLoadError(f"LLM file {self.spec.value!r} does not exist")
            try:
                self._llm = Llama(model_path=self.spec.value, **kwargs)
            except ValueError as err:
                raise LlmLoadError(f"cannot load LLM {self.spec.value!r}: {err}") from err
        else:
            try:
                self._llm = Llama.from_pretrained(
                    repo_id=self.spec.value,
                    filename=self.spec.filename,
                    cache_dir=str(self._cache_dir),
                    **kwargs,
                )
            except Exception as err:
                raise LlmLoadError(
                    f"cannot fetch LLM {self.name!r} from the model hub ({type(err).__name__}: "
                    f"{err}). Download the .gguf file once and pass its path with --llm "
                    "/path/to/model.gguf (or SECMON_LLM)."
                ) from err
        self._grammar = LlamaGrammar.from_string(GRAMMAR, verbose=False)
        template = str(self._llm.metadata.get("tokenizer.chat_template") or CHAT_TEMPLATE)
        # Reasoning models (Nemotron Nano v2/v3) honour /no_think in the system prompt.
        self._no_think = "no_think" in template or "enable_thinking" in template
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        # The chat template from the GGUF, applied here rather than by create_chat_completion so
        # that the generation can be given a stopping criterion (the deadline).
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self._llm._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def warmup(self) -> None:
        self.infer(
            [{"role": "user", "content": "Camera: «warmup». No detections."}],
            deadline=time.monotonic() + 120,
        )

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def infer(self, messages: list[Message], deadline: float) -> Completion:
        if self._no_think and messages and messages[0]["role"] == "system":
            system = {**messages[0], "content": messages[0]["content"] + "\n/no_think"}
            messages = [system, *messages[1:]]
        from llama_cpp import StoppingCriteriaList  # noqa: PLC0415

        started = time.monotonic()
        deadline_hit = False

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            nonlocal deadline_hit
            deadline_hit = time.monotonic() > deadline
            return deadline_hit

        prompt = self._formatter(messages=messages)
        try:
            reply = self._llm.create_completion(
                prompt=prompt.prompt,
                grammar=self._grammar,
                max_tokens=MAX_COMPLETION_TOKENS,
                temperature=self._temperature,
                seed=self._seed,
                stop=prompt.stop,
                stopping_criteria=StoppingCriteriaList([past_deadline]),
            )
        except Exception as err:
            raise LlmInferenceError(f"llama.cpp failed: {type(err).__name__}: {err}") from err
        if deadline_hit:
            raise LlmInferenceError("LLM deadline passed during generation")
        text = reply["choices"][0]["text"] or ""
        tokens = int(reply.get("usage", {}).get("completion_tokens", 0))
        return Completion(text, tokens, (time.monotonic() - started) * 1000)


class OpenAICompatBackend:
    """An OpenAI-compatible chat endpoint (llama.cpp server, vLLM) the user already runs."""

    def __init__(self, spec: LlmSpec, *, model: str, n_ctx: int, api_key: str = "") -> None:
        self.spec = spec
        self.name = f"{spec.value} ({model or 'default model'})"
        self.n_ctx = n_ctx
        self._model = model
        self._api_key = api_key

    def load(self) -> None:
        _LOGGER.info("LLM: OpenAI-compatible endpoint %s", self.spec.value)

    def warmup(self) -> None:
        # A remote server may come up later than we do; failures here are reported per verdict.
        try:
            self.infer([{"role": "user", "content": "ping"}], deadline=time.monotonic() + 10)
        except LlmInferenceError as err:
            _LOGGER.warning("LLM endpoint not answering yet: %s", err)

    def count_tokens(self, text: str) -> int:
        # No tokenizer here: ~3 characters per token is a safe over-estimate for English text.
        return len(text) // 3 + 1

    def infer(self, messages: list[Message], deadline: float) -> Completion:
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": MAX_COMPLETION_TOKENS,
            "temperature": 0.2,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "risk_assessment", "strict": True, "schema": JSON_SCHEMA},
            },
            # llama.cpp's server takes a GBNF grammar too; it is the stricter of the two.
            "grammar": GRAMMAR,
        }
        if self._model:
            body["model"] = self._model
        request = urllib.request.Request(
            f"{self.spec.value}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}),
            method="POST",
        )
        started = time.monotonic()
        timeout = max(0.1, deadline - started)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                reply = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as err:
            raise LlmInferenceError(f"LLM endpoint failed: {err}") from err
        try:
            text = str(reply["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as err:
            raise LlmInferenceError("LLM endpoint returned no message") from err
        tokens = int((reply.get("usage") or {}).get("completion_tokens", 0))
        return Completion(text, tokens, (time.monotonic() - started) * 1000)


def create_backend(
    spec_text: str,
    *,
    use_gpu: bool,
    n_ctx: int,
    cache_dir: Path,
    model: str = "",
    api_key: str = "",
    seed: int = 0,
) -> LlmBackend:
    spec = LlmSpec.parse(spec_text)
    if spec.kind == "http":
        return OpenAICompatBackend(spec, model=model, n_ctx=n_ctx, api_key=api_key)
    if spec.kind == "random":
        n_ctx = 8192  # character-level vocabulary: ~1 token per prompt character
    return LlamaCppBackend(spec, use_gpu=use_gpu, n_ctx=n_ctx, cache_dir=cache_dir, seed=seed)
