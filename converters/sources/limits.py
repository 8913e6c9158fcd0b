"""What a model source may declare, checked before anything is built or allocated.

A stranger's file can declare a 100000x100000 input or a config with 100,000 layers; either would take minutes
and all memory before failing. These checks refuse such sources in well under a second, with the number that
is out of bounds. Each bound is far above any model this SDK ships to a device.
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path

from bmsdk.errors import SourceError

MAX_RANK = 8
MAX_ELEMENTS = 1 << 27  # per example: a 3x4096x4096 image is 5e7
MAX_CONFIG_VALUES = {  # config.json keys that size the model: the largest value accepted
    "num_hidden_layers": 1024,
    "n_layer": 1024,
    "num_layers": 1024,
    "n_layers": 1024,
    "encoder_layers": 1024,
    "decoder_layers": 1024,
    "hidden_size": 1 << 16,
    "n_embd": 1 << 16,
    "d_model": 1 << 16,
    "intermediate_size": 1 << 18,
    "n_inner": 1 << 18,
    "num_attention_heads": 1024,
    "n_head": 1024,
    "vocab_size": 1 << 22,
    "max_position_embeddings": 1 << 20,
    "n_positions": 1 << 20,
    "image_size": 1 << 14,
    "num_labels": 1 << 20,
}
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
NOT_BLOCK_COUNTS = {"efficientnet"}  # model types whose num_hidden_layers is not the number of indexed weight blocks
LAYER_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|blocks|block)\.(\d+)\.")
MAX_HEADER_BYTES = 100 << 20


def check_shape(name: str, dims: list, what: str) -> None:
    """A declared input shape: at most MAX_RANK dims, fixed dims >= 1, at most MAX_ELEMENTS elements per example."""
    fixed = [d for d in dims[1:] if isinstance(d, int)]
    if len(dims) > MAX_RANK:
        raise SourceError(f"{what} input '{name}' has {len(dims)} dims (at most {MAX_RANK})", "check the input shape")
    if any(d < 1 for d in fixed) or (dims and isinstance(dims[0], int) and dims[0] < 1):
        raise SourceError(
            f"{what} input '{name}' has a dim below 1: {dims}", "every dim of an input shape is at least 1"
        )
    if math.prod(fixed) > MAX_ELEMENTS:
        raise SourceError(
            f"{what} input '{name}' declares {math.prod(fixed):,} elements per example (at most {MAX_ELEMENTS:,})",
            "check the input shape; bmsdk refuses sizes no device model has",
        )


def check_hf_config(path: Path, config: dict) -> None:
    """Sizes in config.json within bounds, and no more layers than the weights hold (before the model is built)."""
    for key, limit in MAX_CONFIG_VALUES.items():
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= limit:
            raise SourceError(
                f"{path}/config.json sets {key} = {value:,} (bmsdk accepts 0 to {limit:,})",
                "check the checkpoint's config.json",
            )
    files = sorted(path.glob("*.safetensors"))
    if not files or config.get("model_type") in NOT_BLOCK_COUNTS:
        return
    names = [name for file in files for name in safetensors_names(file)]
    declared = next((config[k] for k in LAYER_KEYS if isinstance(config.get(k), int)), None)
    if isinstance(config.get("num_hidden_groups"), int):  # ALBERT shares one set of weights between layers
        declared = config["num_hidden_groups"]
    indices = [int(m.group(1)) for n in names for m in [LAYER_INDEX.search(n)] if m]
    if declared and indices and declared > max(indices) + 1:
        raise SourceError(
            f"{path}/config.json declares {declared:,} layers but the weights hold {max(indices) + 1}",
            "pass the config.json that was saved with these weights",
        )


def safetensors_names(file: Path) -> list[str]:
    """Tensor names from a .safetensors header (8-byte little-endian length, then JSON), without reading the data."""
    try:
        with open(file, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > MAX_HEADER_BYTES or length > file.stat().st_size - 8:
                raise ValueError(f"header length {length:,} does not fit the file")
            header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (OSError, struct.error, ValueError, RecursionError) as e:
        raise SourceError(
            f"{file} is not a valid safetensors file ({str(e)[:120]})",
            "re-save the model with save_pretrained(safe_serialization=True)",
        ) from None
    return [k for k in header if k != "__metadata__"]
