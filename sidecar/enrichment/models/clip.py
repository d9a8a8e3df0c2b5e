"""Appearance: one image-text embedding model (CLIP, `CLIPModel`) on object crops.

It gives each crop an L2-normalised embedding (re-identification, identities.py) and zero-shot
attributes: for each attribute group (clothing colour, carrying, face covered, vehicle type and
colour, species, and the scene's lighting and weather) the text prompt closest to the image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import checkpoints
from .pretrained import CheckpointModel


@dataclass(frozen=True, slots=True)
class AttributeGroup:
    name: str
    template: str
    options: tuple[str, ...]


_COLOURS = ("black", "white", "grey", "red", "blue", "green", "yellow", "brown")
PERSON_GROUPS = (
    AttributeGroup("clothing", "a photo of a person wearing {} clothes", _COLOURS),
    AttributeGroup(
        "carrying",
        "a photo of a person carrying {}",
        ("a parcel", "a bag", "a tool", "nothing"),
    ),
    AttributeGroup(
        "face",
        "a photo of a person {}",
        ("with a visible face", "with a covered face"),
    ),
)
VEHICLE_GROUPS = (
    AttributeGroup("type", "a photo of a {}", ("car", "van", "truck", "motorcycle", "bicycle")),
    AttributeGroup("colour", "a photo of a {} vehicle", _COLOURS),
)
ANIMAL_GROUPS = (
    AttributeGroup("species", "a photo of a {}", ("dog", "cat", "fox", "bird", "deer", "horse")),
)
SCENE_GROUPS = (
    AttributeGroup("lighting", "a photo taken {}", ("in daylight", "at night", "under lamp light")),
    AttributeGroup(
        "weather", "a photo taken {}", ("in clear weather", "in rain", "in snow", "in fog")
    ),
)
ALL_GROUPS = PERSON_GROUPS + VEHICLE_GROUPS + ANIMAL_GROUPS + SCENE_GROUPS


@dataclass(frozen=True, slots=True)
class Attribute:
    group: str
    value: str
    score: float


def _prompts() -> list[str]:
    return [g.template.format(option) for g in ALL_GROUPS for option in g.options]


def build_tiny(directory: Path, seed: int = 0) -> None:
    """A random-weight CLIPModel with a word-level tokenizer over the attribute prompts and a CLIP
    image processor at 32 px, written like a real checkpoint."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors  # noqa: PLC0415
    tf = checkpoints.transformers()

    words = sorted({w for prompt in _prompts() for w in prompt.lower().split()})
    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=32,
    )
    config = tf.CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 32,
            "bos_token_id": 2,
            "eos_token_id": 3,
            "pad_token_id": 0,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=32,
    )
    model = checkpoints.seeded(seed)(lambda: tf.CLIPModel(config))
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)  # type: ignore[attr-defined]
    tokenizer.save_pretrained(directory)
    image_processor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": 32},
        "do_center_crop": True,
        "crop_size": {"height": 32, "width": 32},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "do_convert_rgb": True,
        "resample": 3,
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(image_processor, indent=2))


class ClipModel(CheckpointModel):
    name = "attributes"

    def __init__(
        self, spec: str, device: torch.device, cache_dir: Path, max_batch: int = 8
    ) -> None:
        super().__init__(spec, device, cache_dir)
        self.max_batch = max_batch
        self._tokenizer: Any = None
        self._images: Any = None
        self._text: torch.Tensor | None = None  # normalised prompt embeddings

    def transformers_classes(self) -> tuple[str, ...]:
        return ("CLIPModel", "AutoImageProcessor", "AutoTokenizer")

    def build_tiny(self, directory: Path) -> None:
        build_tiny(directory)

    def load(self) -> Any:
        tf = checkpoints.transformers()
        location = self.prepare_location()
        try:
            dtype = checkpoints.dtype_for(self._device)
            model = tf.CLIPModel.from_pretrained(location, dtype=dtype)
            self._tokenizer = tf.AutoTokenizer.from_pretrained(location)
            self._images = tf.AutoImageProcessor.from_pretrained(location)
        except (OSError, ValueError, KeyError) as err:
            raise checkpoints.load_error(self._spec, self.name, "CLIPModel", err) from err
        self._model = model.to(self._device).eval()
        with torch.inference_mode():
            tokens = self._tokenizer(_prompts(), padding=True, return_tensors="pt").to(self._device)
            text = self._model.text_projection(
                self._model.text_model(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                ).pooler_output
            )
            self._text = torch.nn.functional.normalize(text.float(), dim=-1)
        return self._model

    def warmup(self) -> None:
        blank = Image.new("RGB", (640, 640))
        self.embed([blank] * self.max_batch)

    def unload(self) -> None:
        self._model = None
        self._text = None
        self._tokenizer = None
        self._images = None

    def embed(self, crops: Sequence[Image.Image], *, smaller: bool = False) -> np.ndarray:
        """L2-normalised embeddings, one row per crop."""
        if self._model is None:
            raise RuntimeError("the attributes model is not loaded")
        step = 1 if smaller else self.max_batch
        rows: list[torch.Tensor] = []
        for start in range(0, len(crops), step):
            chunk = list(crops[start : start + step])
            pixels = self._images(images=chunk, return_tensors="pt")["pixel_values"]
            pixels = pixels.to(self._device, dtype=self._model.dtype)
            with torch.inference_mode():
                pooled = self._model.vision_model(pixel_values=pixels).pooler_output
                rows.append(
                    torch.nn.functional.normalize(
                        self._model.visual_projection(pooled).float(), dim=-1
                    ).cpu()
                )
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return torch.cat(rows).numpy().astype(np.float32)

    def attributes(
        self, embeddings: np.ndarray, groups: Sequence[AttributeGroup]
    ) -> list[list[Attribute]]:
        """Per embedding, the best option of each group with its probability within the group."""
        assert self._text is not None
        assert self._model is not None
        prompts = _prompts()
        index = {p: i for i, p in enumerate(prompts)}
        scale = float(self._model.logit_scale.exp().item())
        text = self._text.numpy()
        results: list[list[Attribute]] = []
        for row in embeddings:
            found: list[Attribute] = []
            for group in groups:
                ids = [index[group.template.format(o)] for o in group.options]
                logits = scale * (text[ids] @ row)
                probs = np.exp(logits - logits.max())
                probs /= probs.sum()
                best = int(probs.argmax())
                found.append(
                    Attribute(group.name, group.options[best], round(float(probs[best]), 3))
                )
            results.append(found)
        return results
