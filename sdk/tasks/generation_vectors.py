"""Test vectors for text generation: greedy decoding of a step graph with a static KV cache, recorded step by step.

The step graph (one call per prefill chunk and per decoded token) takes `input_ids` and `position_ids` [1, T]
(int64), `attention_mask` [1, C + T] (int64: 1 for the valid cache slots 0..n-1, 0 for slots n..C-1, then one entry
per new token: 1 for real tokens, 0 for right padding) and `past_key_<i>`/`past_value_<i>` [1, H, C, D] (float32);
it returns `logits` [1, T, V] and `present_key_<i>`/`present_value_<i>` [1, H, T, D], the K/V of the new tokens,
which the caller writes into cache slots n.. (only the real tokens' slots are marked valid).

With fixed prefill lengths (runtimes that take only some T), a chunk is right-padded to the smallest allowed length
that holds it and prompts longer than the largest are split; the next token comes from the last real row.

`generation_vectors` records, per step, the real tokens fed (`input_ids`, `position_ids`: without the padding, so a
device library's replay runner checks that it pads as the lengths say), the valid cache entries before the step,
the logits row used (for the first `logits_steps` steps) and the token chosen from it (null for a prompt chunk that
is not the last). The Android and iOS libraries replay these (examples/android, examples/ios):

    {"format": "bmsdk-test-vectors", "version": 1, "task": "text-generation",
     "generation": {"layers", "kv_heads", "head_dim", "cache_length", "vocab_size", "prefill_lengths", "eos_ids",
                    "pad_id"},
     "cases": [{"prompt", "prompt_ids", "max_new_tokens", "token_ids", "text",
                "steps": [{"input_ids", "position_ids", "valid", "logits" (first steps only), "token_id"}]}]}

`token_ids` include the eos id that ended a case; `text` is their decoding without special tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Step = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class CacheFullError(ValueError):
    pass


class KVCache:
    """The caller-kept cache window: `length` slots per layer, the first `valid` of them filled."""

    def __init__(self, layers: int, kv_heads: int, length: int, head_dim: int):
        self.length = length
        self.valid = 0
        self.keys = np.zeros((layers, 1, kv_heads, length, head_dim), np.float32)
        self.values = np.zeros_like(self.keys)

    def feeds(self) -> dict[str, np.ndarray]:
        feeds = {}
        for i in range(len(self.keys)):
            feeds[f"past_key_{i}"] = self.keys[i]
            feeds[f"past_value_{i}"] = self.values[i]
        return feeds

    def attention_mask(self, real: int, width: int) -> np.ndarray:
        mask = np.zeros(self.length + width, np.int64)
        mask[: self.valid] = 1
        mask[self.length : self.length + real] = 1
        return mask[None]

    def check_room(self, real: int) -> None:
        if self.valid + real > self.length:
            raise CacheFullError(
                f"the KV cache is full: {self.valid} + {real} tokens > cache_length {self.length}; "
                "pass a larger cache_length (and export the model with it) or fewer max_new_tokens"
            )

    def write(self, outputs: dict[str, np.ndarray], real: int) -> None:
        """The presents of the real tokens into slots valid..valid+real-1 (padded tokens are never kept)."""
        n = self.valid
        for i in range(len(self.keys)):
            self.keys[i][:, :, n : n + real] = outputs[f"present_key_{i}"][:, :, :real]
            self.values[i][:, :, n : n + real] = outputs[f"present_value_{i}"][:, :, :real]
        self.valid += real


def chunk_lengths(count: int, prefill_lengths: Sequence[int] | None) -> list[tuple[int, int]]:
    """(real tokens, fed length T) per prefill call: one call of the whole prompt when any T is accepted."""
    if not prefill_lengths:
        return [(count, count)]
    allowed = sorted(prefill_lengths)
    chunks = []
    while count > 0:
        real = min(count, allowed[-1])
        chunks.append((real, next(t for t in allowed if t >= real)))
        count -= real
    return chunks


def run_step(step: Step, cache: KVCache, ids: Sequence[int], width: int, pad_id: int) -> np.ndarray:
    """One call with `ids` right-padded to `width`; writes the cache and returns the logits [T, V]."""
    real = len(ids)
    cache.check_room(real)
    feeds = {
        "input_ids": np.array([list(ids) + [pad_id] * (width - real)], np.int64),
        "position_ids": np.arange(cache.valid, cache.valid + width, dtype=np.int64)[None],
        "attention_mask": cache.attention_mask(real, width),
        **cache.feeds(),
    }
    outputs = step(feeds)
    cache.write(outputs, real)
    return np.asarray(outputs["logits"], np.float32)[0]


def greedy_case(
    step: Step,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    cache: KVCache,
    prefill_lengths: Sequence[int] | None,
    eos_ids: Sequence[int],
    pad_id: int,
    logits_steps: int,
) -> tuple[list[dict], list[int]]:
    """Greedy generation of one prompt: the step records and the generated ids (an eos id included, then stop)."""
    if not prompt_ids or max_new_tokens < 1:
        raise ValueError("generation needs at least one prompt token and max_new_tokens >= 1")
    records: list[dict] = []

    def call(ids: list[int], width: int, last: bool) -> int | None:
        valid = cache.valid
        row = run_step(step, cache, ids, width, pad_id)[len(ids) - 1]
        token = int(np.argmax(row)) if last else None
        record = {"input_ids": ids, "position_ids": list(range(valid, valid + len(ids))), "valid": valid}
        if len(records) < logits_steps:
            record["logits"] = [float(f"{v:.9g}") for v in row]  # float32 exactly, in 9 digits
        records.append({**record, "token_id": token})
        return token

    start, chunks = 0, chunk_lengths(len(prompt_ids), prefill_lengths)
    for k, (real, width) in enumerate(chunks):
        token = call(list(prompt_ids[start : start + real]), width, last=k == len(chunks) - 1)
        start += real
    generated = [token]
    decode_width = chunk_lengths(1, prefill_lengths)[0][1]  # 1, unless the graph takes only longer lengths
    while len(generated) < max_new_tokens and generated[-1] not in eos_ids:
        generated.append(call([generated[-1]], decode_width, last=True))
    return records, generated


def _generation_config(tokenizer_json: Path) -> dict:
    path = tokenizer_json.parent / "generation_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list) else [int(value)]


def generation_vectors(
    step: Step,
    tokenizer_json_path: str | Path,
    prompts: Sequence[str],
    max_new_tokens: int,
    cache_length: int,
    prefill_lengths: Sequence[int] | None = None,
    logits_steps: int = 3,
    *,
    cache_shape: tuple[int, int, int],
    eos_ids: Sequence[int] | None = None,
    pad_id: int | None = None,
) -> dict:
    """Greedy generation of each prompt through `step`, as test vectors (format in the module docstring).

    `cache_shape` is (layers, kv_heads, head_dim) of the step's `past_*` inputs (the cache must exist before the
    first call); the presents are checked against it and the vocabulary size is read from the logits. `eos_ids`
    and `pad_id` default to `eos_token_id`/`pad_token_id` of a `generation_config.json` next to the tokenizer;
    without one there is no eos and the pad id is the first eos id, else 0. A full cache raises CacheFullError
    (vectors use the "refuse" policy).
    """
    from tokenizers import Tokenizer

    tokenizer_json_path = Path(tokenizer_json_path)
    tokenizer = Tokenizer.from_file(str(tokenizer_json_path))
    config = _generation_config(tokenizer_json_path)
    eos = list(eos_ids) if eos_ids is not None else _as_list(config.get("eos_token_id"))
    if pad_id is None:
        pad_id = config.get("pad_token_id")
    pad = pad_id if pad_id is not None else (eos[0] if eos else 0)
    layers, kv_heads, head_dim = cache_shape
    checked = _CheckedStep(step, kv_heads, head_dim)
    cases = []
    for prompt in prompts:
        ids = tokenizer.encode(prompt).ids
        cache = KVCache(layers, kv_heads, cache_length, head_dim)
        steps, generated = greedy_case(checked, ids, max_new_tokens, cache, prefill_lengths, eos, pad, logits_steps)
        cases.append(
            {
                "prompt": prompt,
                "prompt_ids": ids,
                "max_new_tokens": max_new_tokens,
                "steps": steps,
                "token_ids": generated,
                "text": tokenizer.decode(generated, skip_special_tokens=True),
            }
        )
    return {
        "format": "bmsdk-test-vectors",
        "version": 1,
        "task": "text-generation",
        "generation": {
            "layers": layers,
            "kv_heads": kv_heads,
            "head_dim": head_dim,
            "cache_length": cache_length,
            "vocab_size": checked.vocab_size,
            "prefill_lengths": sorted(prefill_lengths) if prefill_lengths else None,
            "eos_ids": eos,
            "pad_id": int(pad),
        },
        "cases": cases,
    }


class _CheckedStep:
    """`step`, with each call's outputs checked against the contract's shapes; remembers the vocabulary size."""

    def __init__(self, step: Step, kv_heads: int, head_dim: int):
        self.step, self.kv_heads, self.head_dim = step, kv_heads, head_dim
        self.vocab_size: int | None = None

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = {k: np.asarray(v) for k, v in self.step(feeds).items()}
        width = feeds["input_ids"].shape[1]
        logits = outputs["logits"]
        if logits.ndim != 3 or logits.shape[:2] != (1, width):
            raise ValueError(f"logits has shape {logits.shape}, expected [1, {width}, vocab]")
        self.vocab_size = int(logits.shape[2])
        for name in feeds:
            if name.startswith("past_"):
                present = outputs[name.replace("past_", "present_")]
                if present.shape != (1, self.kv_heads, width, self.head_dim):
                    raise ValueError(f"{name.replace('past_', 'present_')} has shape {present.shape}")
        return outputs
