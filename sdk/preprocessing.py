"""Turning raw inputs (texts, images) into model feeds. numpy, tokenizers and Pillow only: no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import InputError
from .manifest import TensorSpec

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TextPreprocessor:
    """WordPiece/BPE tokenization from the artifact's `tokenizer.json`, padded to the longest text in a batch."""

    def __init__(self, config: dict, folder: Path, inputs: Sequence[TensorSpec]):
        from tokenizers import Tokenizer

        self.max_length = int(config["max_length"])
        self.tokenizer = Tokenizer.from_file(str(folder / config["tokenizer"]))
        self.tokenizer.enable_truncation(self.max_length)
        pad_id = int(config.get("pad_id", 0))
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=config.get("pad_token", "[PAD]"))
        self.inputs = {t.name: t for t in inputs if t.name in TEXT_INPUTS}
        if "input_ids" not in self.inputs:
            raise InputError("a text model needs an 'input_ids' input", "convert it with --task text-classification")

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Tokenize, padded to the longest text of the batch (runtimes with fixed lengths pad further themselves)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError("text input must be a list of strings", "pass predict('text') or predict(['a', 'b'])")
        encodings = self.tokenizer.encode_batch(list(texts))
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        return {name: np.asarray(columns[name], dtype=spec.dtype) for name, spec in self.inputs.items()}


class ImagePreprocessor:
    """Resize, scale, normalise and lay out images as the model expects."""

    def __init__(self, config: dict, inputs: Sequence[TensorSpec]):
        self.input_name = config.get("input_name", inputs[0].name)
        self.height, self.width = (int(v) for v in config["size"])
        self.channels = int(config.get("channels", 3))
        self.layout = config.get("layout", "NCHW")
        self.scale = float(config.get("scale", 1 / 255))
        self.mean = np.asarray(config.get("mean", [0.0] * self.channels), dtype=np.float32)
        self.std = np.asarray(config.get("std", [1.0] * self.channels), dtype=np.float32)
        spec = next(t for t in inputs if t.name == self.input_name)
        self.dtype = spec.dtype

    def load(self, image: Any) -> np.ndarray:
        """One image (path, PIL image or HxW / HxWxC array of pixel values 0-255) as HxWxC float32 pixels."""
        from PIL import Image

        if isinstance(image, (str, Path)):
            path = Path(image)
            if not path.is_file():
                raise InputError(f"image file {path} does not exist", "pass an existing image path")
            try:
                image = Image.open(path)
                image.load()
            except Exception as e:  # Pillow raises several types for unreadable files
                raise InputError(f"{path} is not a readable image ({e})", "pass a PNG/JPEG/BMP file") from None
        if isinstance(image, np.ndarray):
            array = image
            if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
                array = np.moveaxis(array, 0, -1)  # CHW -> HWC
            if array.ndim == 3 and array.shape[-1] == 1:
                array = array[..., 0]
            if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
                raise InputError(f"an image array must be HxW, HxWxC or CxHxW with C = 1, 3 or 4, got shape {image.shape}",
                                 "pass one image at a time, or a list")
            if array.dtype != np.uint8:
                if array.max() <= 1.0 + 1e-6:
                    array = array * 255.0  # float images in [0, 1]
                array = np.clip(array, 0, 255).round().astype(np.uint8)
            image = Image.fromarray(array)
        if not hasattr(image, "convert"):
            raise InputError(f"cannot read an image from {type(image).__name__}", "pass a path, a PIL image or a numpy array")
        image = image.convert("L" if self.channels == 1 else "RGB")
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
        return pixels[..., None] if pixels.ndim == 2 else pixels

    def __call__(self, images: Sequence[Any]) -> dict[str, np.ndarray]:
        batch = np.stack([self.load(img) for img in images]) * self.scale
        batch = (batch - self.mean) / self.std
        if self.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return {self.input_name: np.ascontiguousarray(batch, dtype=self.dtype)}


def make_preprocessor(config: dict, folder: Path, inputs: Sequence[TensorSpec]):
    kind = config.get("kind")
    if kind == "text":
        return TextPreprocessor(config, folder, inputs)
    if kind == "image":
        return ImagePreprocessor(config, inputs)
    return None
