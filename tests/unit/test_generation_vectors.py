"""bmsdk.tasks.generation_vectors: the reference generation loop that the device libraries' vectors come from.

A numpy "model" stands in for a step graph: its logits depend on the last token (a bigram table) and on what the
token attends to (the valid cache slots and the real new tokens), so a wrong mask, a wrong cache write or padding
that leaks into attention changes the generated tokens.
"""

from __future__ import annotations

import numpy as np
import pytest

from bmsdk.tasks.generation_vectors import CacheFullError, generation_vectors

LAYERS, HEADS, DIM = 2, 2, 4
PROMPTS = ["the quick brown fox jumps over the lazy dog, café au lait", "héllo"]


class ToyStep:
    def __init__(self, vocab: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.embed = rng.normal(size=(vocab, HEADS, DIM)).astype(np.float32)
        self.bigram = (3 * rng.normal(size=(vocab, vocab))).astype(np.float32)
        self.readout = (3 * rng.normal(size=(HEADS * DIM, vocab))).astype(np.float32)
        self.calls: list[tuple[dict, dict]] = []

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids, positions, mask = feeds["input_ids"][0], feeds["position_ids"][0], feeds["attention_mask"][0]
        length, width = feeds["past_key_0"].shape[2], len(ids)
        outputs = {}
        for i in range(LAYERS):
            new = (self.embed[ids] * (i + 1) + 0.01 * positions[:, None, None]).transpose(1, 0, 2)[None]
            new = new.astype(np.float32)
            outputs[f"present_key_{i}"] = new
            outputs[f"present_value_{i}"] = -new
        values = np.concatenate([feeds["past_value_0"], outputs["present_value_0"]], axis=2)[0]  # [H, C+T, D]
        logits = np.zeros((1, width, len(self.bigram)), np.float32)
        for t in range(width):
            seen = mask.astype(bool).copy()
            seen[length + t + 1 :] = False  # causal among the new tokens
            context = values[:, seen].mean(axis=1).reshape(-1)
            logits[0, t] = self.bigram[ids[t]] + context @ self.readout
        self.calls.append(({k: v.copy() for k, v in feeds.items()}, outputs))  # the past feeds are the live cache
        return {"logits": logits, **outputs}


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    from tokenizers import ByteLevelBPETokenizer, processors

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(PROMPTS * 10, vocab_size=320, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


def vectors(step, tokenizer_json, **kw):
    args = {"max_new_tokens": 8, "cache_length": 64, "cache_shape": (LAYERS, HEADS, DIM), **kw}
    return generation_vectors(step, tokenizer_json, PROMPTS, **args)


def vocab_size(tokenizer_json) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_json)).get_vocab_size()


def test_padded_prefill_lengths_give_the_tokens_of_dynamic_lengths(tokenizer_json):
    dynamic = vectors(ToyStep(vocab_size(tokenizer_json)), tokenizer_json)
    step = ToyStep(vocab_size(tokenizer_json))
    padded = vectors(step, tokenizer_json, prefill_lengths=[8, 4])
    assert padded["generation"]["prefill_lengths"] == [4, 8]
    long_case = padded["cases"][0]
    assert len(long_case["prompt_ids"]) > 8  # split into chunks
    for d, p in zip(dynamic["cases"], padded["cases"]):
        assert p["token_ids"] == d["token_ids"]
        assert p["text"] == d["text"]
        assert len(set(d["token_ids"])) > 1  # not a degenerate model
    prefill = [s for s in long_case["steps"] if s["valid"] + len(s["input_ids"]) <= len(long_case["prompt_ids"])]
    assert [i for s in prefill for i in s["input_ids"]] == long_case["prompt_ids"]
    assert all(len(s["input_ids"]) <= 8 for s in prefill) and prefill[-1]["token_id"] is not None
    assert all(s["token_id"] is None for s in prefill[:-1])
    assert {feeds["input_ids"].shape[1] for feeds, _ in step.calls} == {4, 8}  # no length 1: decode is padded too


def test_cache_slots_hold_the_presents_of_earlier_steps(tokenizer_json):
    step = ToyStep(vocab_size(tokenizer_json))
    vectors(step, tokenizer_json, prefill_lengths=[4, 8])
    written: list[np.ndarray] = []
    for feeds, outputs in step.calls:
        valid = int(feeds["attention_mask"][0, : feeds["past_key_0"].shape[2]].sum())
        if valid == 0:
            written = []  # a new prompt
        if written:
            np.testing.assert_array_equal(feeds["past_key_1"][:, :, :valid], np.concatenate(written, axis=2))
        assert not feeds["past_key_1"][:, :, valid:].any()  # only the real tokens' slots are written
        real = int(feeds["attention_mask"][0, feeds["past_key_0"].shape[2] :].sum())
        written.append(outputs["present_key_1"][:, :, :real])


def test_stops_at_eos_and_records_logits_of_the_first_steps(tokenizer_json):
    step = ToyStep(vocab_size(tokenizer_json))
    free = vectors(step, tokenizer_json, logits_steps=2)
    first = free["cases"][0]
    eos = first["token_ids"][2]
    stopped = vectors(step, tokenizer_json, eos_ids=[eos])
    cut = stopped["cases"][0]["token_ids"]
    assert cut == first["token_ids"][: first["token_ids"].index(eos) + 1]
    assert stopped["generation"]["eos_ids"] == [eos] and stopped["generation"]["pad_id"] == eos
    assert free["generation"]["vocab_size"] == vocab_size(tokenizer_json)
    assert [("logits" in s) for s in first["steps"]] == [True, True] + [False] * (len(first["steps"]) - 2)
    assert int(np.argmax(first["steps"][0]["logits"])) == first["token_ids"][0]
    assert len(first["steps"]) == 1 + free["cases"][0]["max_new_tokens"] - 1  # one prefill, then N-1 decodes


def test_a_full_cache_is_refused_with_the_length_to_raise(tokenizer_json):
    step = ToyStep(vocab_size(tokenizer_json))
    with pytest.raises(CacheFullError, match="KV cache .*20"):
        vectors(step, tokenizer_json, cache_length=20)


def test_eos_and_pad_come_from_a_generation_config(tokenizer_json, tmp_path):
    import json
    import shutil

    shutil.copyfile(tokenizer_json, tmp_path / "tokenizer.json")
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 5], "pad_token_id": 2}))
    out = vectors(ToyStep(vocab_size(tokenizer_json)), tmp_path / "tokenizer.json", max_new_tokens=2)
    assert out["generation"]["eos_ids"] == [1, 5] and out["generation"]["pad_id"] == 2
