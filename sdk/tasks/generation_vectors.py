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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bmsdk.artifact import load_samples

from .generation import CacheFullError, Generator, Sampling, Step

__all__ = ["CacheFullError", "generation_vectors"]


class _Recorder:
    """`step`, with each call's feeds and outputs kept (and the outputs checked against the contract's shapes)."""

    def __init__(self, step: Step, kv_heads: int, head_dim: int):
        self.step, self.kv_heads, self.head_dim = step, kv_heads, head_dim
        self.calls: list[tuple[dict, dict]] = []
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
        self.calls.append((feeds, {"logits": logits}))
        return outputs


def _records(calls: list[tuple[dict, dict]], cache_length: int, prompt_length: int, logits_steps: int) -> list[dict]:
    """One record per step call: the real tokens fed, their positions, the valid slots before, the logits row used
    and the token chosen from it (None for a prompt chunk that is not the last)."""
    records = []
    for k, (feeds, outputs) in enumerate(calls):
        mask = feeds["attention_mask"][0]
        real, valid = int(mask[cache_length:].sum()), int(mask[:cache_length].sum())
        start = int(feeds["position_ids"][0, 0])
        next_start = int(calls[k + 1][0]["position_ids"][0, 0]) if k + 1 < len(calls) else None
        row = outputs["logits"][0, real - 1]
        chooses = start + real >= prompt_length or next_start is None
        record = {
            "input_ids": feeds["input_ids"][0, :real].tolist(),
            "position_ids": list(range(start, start + real)),
            "valid": valid,
        }
        if len(records) < logits_steps:
            record["logits"] = [float(f"{v:.9g}") for v in row]  # float32 exactly, in 9 digits
        records.append({**record, "token_id": int(np.argmax(row)) if chooses else None})
    return records


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
    """Greedy generation of each prompt through `step` with bmsdk's own Generator, as test vectors (format in the
    module docstring).

    `cache_shape` is (layers, kv_heads, head_dim) of the step's `past_*` inputs; the presents are checked against
    it and the vocabulary size is read from the logits. `eos_ids` and `pad_id` default to `eos_token_id` /
    `pad_token_id` of a `generation_config.json` next to the tokenizer; without one there is no eos and the pad id
    is the first eos id, else 0. A full cache raises (vectors use the "refuse" policy).
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
    pre = dict(layers=layers, kv_heads=kv_heads, head_dim=head_dim, cache_length=cache_length, eos_ids=eos, pad_id=pad)
    cases = []
    for prompt in prompts:
        recorder = _Recorder(step, kv_heads, head_dim)
        generator = Generator(recorder, pre, tokenizer, prefill_lengths)
        ids = generator.encode(prompt)
        generated = list(generator.tokens(ids, max_new_tokens, Sampling()))
        cases.append(
            {
                "prompt": prompt,
                "prompt_ids": ids,
                "max_new_tokens": max_new_tokens,
                "steps": _records(recorder.calls, cache_length, len(ids), logits_steps),
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
            "vocab_size": recorder.vocab_size if prompts else None,
            "prefill_lengths": sorted(prefill_lengths) if prefill_lengths else None,
            "eos_ids": eos,
            "pad_id": int(pad),
        },
        "cases": cases,
    }


def artifact_vectors(folder: Path, manifest, step: Step, max_new_tokens: int = 16) -> dict:
    """`bmsdk export-vectors` of a text-generation artifact: greedy generation through its own runtime (`step`)
    from the first half of each sample text, with the manifest's cache shape, ids and prefill lengths."""
    pre = manifest.preprocessing
    _, _, raw = load_samples(folder)
    texts = [str(t) for t in (raw if raw is not None else ["the"])]
    prompts = [" ".join(t.split()[: max(1, len(t.split()) // 2)]) for t in texts]
    room = max(1, min(max_new_tokens, pre["cache_length"] // 2))
    vectors = generation_vectors(
        step,
        folder / pre["tokenizer"],
        prompts,
        room,
        pre["cache_length"],
        getattr(manifest.target_config, "sequence_buckets", None),
        cache_shape=(pre["layers"], pre["kv_heads"], pre["head_dim"]),
        eos_ids=pre.get("eos_ids", []),
        pad_id=pre.get("pad_id", 0),
    )
    return {**vectors, "name": manifest.name, "target": manifest.target, "precision": manifest.precision}
