"""Scene description: Florence-2 (`Florence2ForConditionalGeneration`, native in transformers, no
remote code), a detailed caption of the batch's snapshot frame. The caption is model output about
a camera image: untrusted text, sanitised and quoted in prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from . import checkpoints
from .pretrained import CheckpointModel

TASK = "<DETAILED_CAPTION>"
_TINY_WORDS = (
    "describe in detail what is shown the image a an person people car van dog cat at night "
    "day door street driveway garden standing walking near house with . ,"
)


def build_tiny(directory: Path, seed: int = 0) -> None:
    """A random-weight Florence-2 (tiny DaViT vision tower, one-layer BART), a word-level tokenizer
    that knows `<image>`, and its processor at 64 px (5 image tokens), written like a real
    checkpoint."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: PLC0415

    tf = checkpoints.transformers()
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<image>": 4}
    for word in _TINY_WORDS.split():
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", extra_special_tokens={"image_token": "<image>"}, model_max_length=128,
    )
    text = {
        "model_type": "bart", "vocab_size": len(vocab), "d_model": 32, "encoder_layers": 1,
        "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 128,
        "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2,
        "forced_bos_token_id": 0, "forced_eos_token_id": 2,
    }
    vision = {
        "depths": [1, 1, 1, 1], "embed_dim": [16, 16, 32, 32], "num_heads": [1, 1, 2, 2],
        "num_groups": [1, 1, 2, 2], "window_size": 2, "projection_dim": 32,
        "max_position_embeddings": 16, "drop_path_rate": 0.0,
    }
    config = tf.Florence2Config(text_config=text, vision_config=vision, image_token_id=4)
    model: Any = checkpoints.seeded(seed)(lambda: tf.Florence2ForConditionalGeneration(config))
    # Random weights tend to end at once; a checkpoint's generation config may ask for more.
    model.generation_config.min_new_tokens = 8
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    images = tf.CLIPImageProcessorPil(
        size={"height": 64, "width": 64}, do_center_crop=False,
        crop_size={"height": 64, "width": 64}, image_seq_length=5,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    tf.Florence2Processor(image_processor=images, tokenizer=tokenizer).save_pretrained(directory)


class CaptionModel(CheckpointModel):
    name = "caption"

    def __init__(
        self, spec: str, device: torch.device, cache_dir: Path, max_new_tokens: int = 64
    ) -> None:
        super().__init__(spec, device, cache_dir)
        self.max_new_tokens = max_new_tokens
        self._processor: Any = None

    def transformers_classes(self) -> tuple[str, ...]:
        return ("Florence2ForConditionalGeneration", "AutoProcessor")

    def build_tiny(self, directory: Path) -> None:
        build_tiny(directory)

    def estimate_bytes(self) -> int:
        return checkpoints.checkpoint_bytes(self.prepare_location())

    def load(self) -> Any:
        tf = checkpoints.transformers()
        location = self.prepare_location()
        try:
            dtype = checkpoints.dtype_for(self._device)
            model = tf.Florence2ForConditionalGeneration.from_pretrained(location, dtype=dtype)
            self._processor = tf.AutoProcessor.from_pretrained(location)
        except (OSError, ValueError, KeyError) as err:
            raise checkpoints.load_error(
                self._spec, self.name, "Florence2ForConditionalGeneration", err
            ) from err
        self._model = model.to(self._device).eval()
        return self._model

    def warmup(self) -> None:
        self.caption(Image.new("RGB", (1920, 1080)))

    def unload(self) -> None:
        self._model = None
        self._processor = None

    def caption(self, image: Image.Image, *, smaller: bool = False) -> str:
        """A detailed caption (greedy decoding; half as many tokens when `smaller`)."""
        if self._model is None:
            raise RuntimeError("the caption model is not loaded")
        inputs = self._processor(text=TASK, images=image.convert("RGB"), return_tensors="pt")
        inputs = {
            k: v.to(self._device, dtype=self._model.dtype) if k == "pixel_values" else
            v.to(self._device)
            for k, v in inputs.items()
        }
        with torch.inference_mode():
            ids = self._model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens // 2 if smaller else self.max_new_tokens,
                num_beams=1,
                do_sample=False,
            )
        text = self._processor.batch_decode(ids, skip_special_tokens=True)[0]
        return " ".join(str(text).split())
