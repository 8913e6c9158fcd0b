"""The boundary between bmsdk feeds and one LiteRT signature, numpy only.

A TFLite artifact records in `manifest.target_config` what its signatures take and give (see
`bmsdk.converters.targets.tflite.build`): one example per call, int32 where the source took int64, int8 with a scale
and zero point where static quantization put them, and for text models one signature per sequence-length bucket.
These helpers apply that record; the converter's calibration, the LiteRT backend and the Android library
(`examples/android`) all follow the same rules.
"""

from __future__ import annotations

import numpy as np

from bmsdk.errors import InputError
from bmsdk.manifest import TensorSpec, split_dim
from bmsdk.sections import QuantParams, SignatureTensor

DEFAULT_SIGNATURE = "serving_default"


def signature_for(length: int | None) -> str:
    """The signature name of a sequence bucket (text models), or the single signature of other models."""
    return DEFAULT_SIGNATURE if length is None else f"seq_{length}"


def pick_bucket(length: int, buckets: list[int]) -> int:
    """The smallest bucket that holds `length` tokens."""
    for bucket in sorted(buckets):
        if length <= bucket:
            return bucket
    raise InputError(
        f"a sequence of {length} tokens is longer than the largest bucket ({max(buckets)})",
        f"truncate to {max(buckets)} tokens, or re-convert with a larger --seq-buckets / --max-length",
    )


def pad_to(value: np.ndarray, length: int, pad_value: int) -> np.ndarray:
    """Pad (or cut) axis 1 of a [batch, sequence] array to `length`."""
    if value.shape[1] >= length:
        return value[:, :length]
    pad = np.full((value.shape[0], length - value.shape[1]), pad_value, dtype=value.dtype)
    return np.concatenate([value, pad], axis=1)


def sequence_axes(shape: list[int | str]) -> list[tuple[int, int]]:
    """(axis, offset) of each axis that follows the sequence length: "sequence" (0) or derived from it
    ("sequence+128": a step graph's attention mask over 128 cache slots and the new tokens)."""
    found = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, str) and split_dim(dim)[0] == "sequence":
            found.append((axis, split_dim(dim)[1]))
    return found


def fit_sequence(value: np.ndarray, shape: list[int | str], length: int, pad_value: int = 0) -> np.ndarray:
    """Pad on the right (or cut) every sequence axis of `value` (a tensor of that spec shape) to `length` plus its
    offset; an axis without the sequence (a KV cache of fixed slots) is left as it is."""
    for axis, offset in sequence_axes(shape):
        size = length + offset
        if value.shape[axis] > size:
            value = np.take(value, np.arange(size), axis=axis)
        elif value.shape[axis] < size:  # np.pad costs 18 µs per input at batch 1; this 1.3 µs
            padded = np.full((*value.shape[:axis], size, *value.shape[axis + 1 :]), pad_value, dtype=value.dtype)
            padded[(slice(None),) * axis + (slice(0, value.shape[axis]),)] = value
            value = padded
    return value


def pad_feeds(
    feeds: dict[str, np.ndarray], length: int, pad_values: dict, specs: list[TensorSpec] | None = None
) -> dict[str, np.ndarray]:
    """A text batch padded (or cut) to a bucket: along each input's sequence axes where the specs are known, else
    along axis 1 of every [batch, sequence] feed."""
    if specs is None:
        return {k: pad_to(v, length, int(pad_values.get(k, 0))) for k, v in feeds.items()}
    shapes = {s.name: s.shape for s in specs}
    return {k: fit_sequence(v, shapes[k], length, int(pad_values.get(k, 0))) for k, v in feeds.items()}


def tensor_record(details: dict, name: str) -> SignatureTensor:
    """What the manifest records of the LiteRT tensor `name` (from a signature runner's input/output details)."""
    scale, zero_point = details["quantization"]
    return SignatureTensor(
        tensor=name,
        dtype=np.dtype(details["dtype"]).name,
        shape=[int(d) for d in details["shape"]],
        quantization=QuantParams(scale=float(scale), zero_point=int(zero_point)) if scale else None,
    )


def to_signature(value: np.ndarray, tensor: SignatureTensor, range_checked: bool = False) -> np.ndarray:
    """A feed in the signature's dtype: int64 -> int32, or float -> int8/uint8 with the recorded scale and zero
    point. `range_checked`: the values are known to fit the signature's integer dtype (no scan)."""
    dtype = np.dtype(tensor.dtype)
    q = tensor.quantization
    if q:
        info = np.iinfo(dtype)
        quantized = np.round(value.astype(np.float32) / np.float32(q.scale)) + q.zero_point
        return np.clip(quantized, info.min, info.max).astype(dtype)
    if dtype.kind in "iu" and value.dtype.kind in "iu" and value.size and not range_checked:
        info = np.iinfo(dtype)
        if value.min() < info.min or value.max() > info.max:
            raise InputError(f"input values outside the {dtype} range the TFLite model takes", "check the token ids")
    return np.ascontiguousarray(value, dtype=dtype)


class SignatureFeeder:
    """`to_signature` of one input compiled once at load: its dtype and quantization constants resolved, and for
    quantized inputs a float scratch and an output buffer per shape, reused on every call (the interpreter copies
    what it is given, so nothing outside sees them; callers serialise calls, as the backend's lock does)."""

    def __init__(self, tensor: SignatureTensor, range_checked: bool = False):
        self.tensor = tensor
        self.dtype = np.dtype(tensor.dtype)
        self.range_checked = range_checked
        q = tensor.quantization
        self.quantized = q is not None
        if q is not None:
            info = np.iinfo(self.dtype)
            self.scale, self.zero_point = np.float32(q.scale), np.float32(q.zero_point)
            self.low, self.high = np.float32(info.min), np.float32(info.max)
        self.buffers: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, value: np.ndarray) -> np.ndarray:
        if not self.quantized:
            if self.dtype.kind in "iu" and not self.range_checked:
                return to_signature(value, self.tensor)
            return np.ascontiguousarray(value, dtype=self.dtype)
        buffers = self.buffers.get(value.shape)
        if buffers is None:
            buffers = self.buffers[value.shape] = (np.empty(value.shape, np.float32), np.empty(value.shape, self.dtype))
        scratch, out = buffers
        np.divide(value, self.scale, out=scratch, casting="unsafe")  # as to_signature: round(x / scale) + zero point
        np.rint(scratch, out=scratch)
        scratch += self.zero_point
        np.clip(scratch, self.low, self.high, out=scratch)
        np.copyto(out, scratch, casting="unsafe")
        return out


def from_signature(value: np.ndarray, tensor: SignatureTensor, dtype: str) -> np.ndarray:
    """A signature output in the manifest's dtype: int8/uint8 dequantized with the recorded scale and zero point."""
    q = tensor.quantization
    if q:
        result = value.astype(np.float32)  # a new array, changed in place
        result -= np.float32(q.zero_point)
        result *= np.float32(q.scale)
        return result.astype(dtype, copy=False)
    return value.astype(dtype, copy=False)


def sequence_length(feeds: dict[str, np.ndarray]) -> int:
    """The padded sequence length of a text batch (axis 1 of input_ids)."""
    return int(feeds["input_ids"].shape[1])


def row_lengths(feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Tokens per row before padding: the last position the attention mask keeps, else the full length. A mask
    longer than the ids (a step graph's, over the cache slots first) is read over its last columns, the new tokens."""
    mask = feeds.get("attention_mask")
    if mask is None:
        return np.full(len(feeds["input_ids"]), feeds["input_ids"].shape[1])
    kept = mask[:, mask.shape[1] - feeds["input_ids"].shape[1] :] != 0
    return np.where(kept.any(1), kept.shape[1] - np.argmax(kept[:, ::-1], axis=1), 0)
