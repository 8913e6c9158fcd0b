"""Text generation on ONNX: greedy tokens equal transformers' generate, perplexity on eval data, the generate API
(streaming, stop strings, sampling, chat templates, the cache policies) and `bmsdk predict` on a prompt."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tiny_lms

import bmsdk
from bmsdk.errors import InputError, UnsupportedError

PROMPTS = ["the model runs", "we ship small", "café au", "greedy decoding picks"]


@pytest.fixture(scope="module")
def lms(tiny_lm) -> dict:
    return {arch: tiny_lm(arch) for arch in tiny_lms.ARCHITECTURES}


@pytest.fixture(scope="module")
def eval_texts(lm_texts):
    return lm_texts


@pytest.fixture(scope="module")
def onnx_lms(lms, eval_texts, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("lm-artifacts")
    return {
        arch: bmsdk.convert(str(lms[arch]), target="onnx", output=root / f"{arch}.bmsdk", eval_data=str(eval_texts))
        for arch in lms
    }


def transformers_greedy(folder, prompt: str, new_tokens: int) -> list[int]:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    ids = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(prompt).ids
    with torch.inference_mode():
        out = model.generate(
            torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0
        )
    return out[0, len(ids) :].tolist()


@pytest.mark.parametrize("arch", tiny_lms.ARCHITECTURES)
def test_greedy_tokens_equal_transformers(onnx_lms, lms, arch):
    result = onnx_lms[arch]
    assert result.passed, result.manifest.validation.reason
    assert result.manifest.validation.greedy.identical == result.manifest.validation.greedy.prompts
    model = bmsdk.load(result.path)
    model.generator.eos_ids = set()  # compare a full 20 tokens, as transformers does without an eos
    for prompt in PROMPTS:
        assert model.generate(prompt, max_new_tokens=20).token_ids == transformers_greedy(lms[arch], prompt, 20)


def test_manifest_describes_the_cache(onnx_lms):
    m = onnx_lms["llama"].manifest
    pre = m.preprocessing
    assert (pre["kind"], pre["layers"], pre["kv_heads"], pre["head_dim"]) == ("generation", 2, 2, 16)
    assert pre["cache_length"] == 128  # the model's max_position_embeddings caps the default 256
    assert pre["eos_ids"] == [2] and "chat_template" in pre
    assert {"input_ids", "position_ids", "attention_mask", "past_key_0", "past_value_1"} <= {s.name for s in m.inputs}
    assert [s.name for s in m.outputs][:3] == ["logits", "present_key_0", "present_value_0"]


def test_perplexity_on_eval_data(onnx_lms):
    ev = onnx_lms["llama"].manifest.validation.eval
    assert ev.tokens > 100 and 1 < ev.perplexity < 50
    assert abs(ev.perplexity_change) < 1e-4 and ev.top1_agreement == 1.0


def test_int8_within_its_perplexity_budget(lms, eval_texts, tmp_path):
    result = bmsdk.convert(
        str(lms["llama"]), target="onnx", precision="int8", output=tmp_path / "q.bmsdk", eval_data=str(eval_texts)
    )
    ev = result.manifest.validation.eval
    assert result.passed, result.manifest.validation.reason
    assert ev.perplexity_budget == 0.02 and ev.perplexity_change <= 0.02
    assert result.manifest.compression.quantization.scheme == "dynamic"  # weights int8, as for transformers
    assert bmsdk.load(result.path).generate("the model", max_new_tokens=8).token_ids


def test_streaming_gives_the_same_text(onnx_lms):
    model = bmsdk.load(onnx_lms["llama"].path)
    whole = model.generate("café au", max_new_tokens=12)
    stream = model.generate("café au", max_new_tokens=12, stream=True)
    pieces = list(stream)
    assert "".join(pieces) == whole.text == stream.result.text
    assert stream.result.token_ids == whole.token_ids and len(pieces) > 1
    assert all("\ufffd" not in p for p in pieces)
    assert whole.time_to_first_token_s > 0 and whole.decode_tokens_per_s > 0


def test_stop_string_ends_the_text(onnx_lms):
    model = bmsdk.load(onnx_lms["llama"].path)
    full = model.generate("the quick brown", max_new_tokens=16).text
    stop = full.strip().split(" ")[1]
    cut = model.generate("the quick brown", max_new_tokens=16, stop=stop)
    assert cut.finish_reason == "stop" and stop not in cut.text and full.startswith(cut.text)


def test_sampling_is_seeded(onnx_lms):
    model = bmsdk.load(onnx_lms["llama"].path)
    a = model.generate("we", max_new_tokens=12, temperature=1.5, top_k=50, seed=3)
    b = model.generate("we", max_new_tokens=12, temperature=1.5, top_k=50, seed=3)
    greedy = model.generate("we", max_new_tokens=12)
    assert a.token_ids == b.token_ids
    others = [model.generate("we", max_new_tokens=12, temperature=1.5, seed=s).token_ids for s in range(4)]
    assert any(o != greedy.token_ids for o in others)  # sampling at a high temperature leaves the greedy path
    top1 = model.generate("we", max_new_tokens=12, temperature=1.0, top_k=1, seed=0)
    assert top1.token_ids == greedy.token_ids  # top_k=1 is greedy


def test_chat_messages_use_the_template(onnx_lms):
    model = bmsdk.load(onnx_lms["llama"].path)
    messages = [{"role": "user", "content": "hello"}]
    rendered = model.generator.render_chat(messages)
    assert rendered == "<|user|>hello\n<|assistant|>"
    assert model.generate(messages, max_new_tokens=4).prompt_ids == model.generator.encode(rendered)


def test_cache_full_refuses_or_slides(lms, tmp_path):
    result = bmsdk.convert(str(lms["llama"]), target="onnx", output=tmp_path / "short.bmsdk", max_length=16)
    model = bmsdk.load(result.path)
    model.generator.eos_ids = set()
    assert result.manifest.preprocessing["cache_length"] == 16
    with pytest.raises(InputError, match="KV cache is full"):
        model.generate("the model runs", max_new_tokens=30)
    slid = model.generate("the model runs", max_new_tokens=30, cache="slide")
    assert len(slid.token_ids) == 30
    with pytest.raises(InputError, match="cache policy"):
        model.generate("x", cache="grow")


def test_bad_generation_arguments(onnx_lms):
    model = bmsdk.load(onnx_lms["llama"].path)
    for kwargs in ({"temperature": -1}, {"top_p": 0}, {"top_k": 0}, {"max_new_tokens": 0}):
        with pytest.raises(InputError):
            model.generate("x", **kwargs)
    with pytest.raises(InputError, match="prompt"):
        model.generate(42)


def test_generate_on_a_classifier_is_refused(bert_onnx):
    with pytest.raises(UnsupportedError, match="text-generation"):
        bmsdk.load(bert_onnx.path).generate("hello")


def test_cli_predict_streams_a_prompt(onnx_lms):
    path = str(onnx_lms["llama"].path)
    run = subprocess.run(
        [sys.executable, "-m", "bmsdk.cli", "predict", path, "the quick brown", "--max-new-tokens", "8"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    expected = bmsdk.load(path).generate("the quick brown", max_new_tokens=8)
    assert run.stdout.rstrip("\n") == expected.text
    assert "8 tokens" in run.stderr or expected.finish_reason == "eos"
    out = subprocess.run(
        [sys.executable, "-m", "bmsdk.cli", "predict", path, "we", "--max-new-tokens", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    rows = json.loads(out.stdout)
    assert rows[0]["prompt"] == "we" and len(rows[0]["token_ids"]) <= 4 and rows[0]["prompt_ids"][0] == 1


def test_predict_returns_generated_text(onnx_lms):
    model = bmsdk.load(onnx_lms["gpt2"].path)
    assert model.predict("we ship") == model.generate("we ship").text
    assert np.asarray(model.predict(["a", "b"])).shape == (2,)


def test_int4_weights_hold_the_budget(lms, eval_texts, tmp_path):
    result = bmsdk.convert(
        str(lms["qwen2"]),
        target="onnx",
        precision="int4",
        output=tmp_path / "q4.bmsdk",
        eval_data=str(eval_texts),
        int4_block_size=32,
    )
    q = result.manifest.compression.quantization
    assert q.weights == "int4 per-group (group 32), HQQ" and q.tool == "onnxruntime MatMulNBits"
    ev = result.manifest.validation.eval
    assert result.passed, result.manifest.validation.reason
    assert ev.perplexity_budget == 0.05 and ev.perplexity_change <= 0.05
    import onnx

    graph = onnx.load(str(result.path / "model.onnx")).graph
    weights = {i.name for i in graph.initializer}
    assert any(n.op_type == "MatMulNBits" for n in graph.node)
    assert not [n.name for n in graph.node if n.op_type == "MatMul" and set(n.input) & weights]  # no float weights
    with pytest.raises(UnsupportedError, match="int4-block-size"):
        bmsdk.convert(str(lms["qwen2"]), target="onnx", precision="int8", output=tmp_path / "x", int4_block_size=32)


def test_export_vectors_record_the_artifacts_generation(onnx_lms, tmp_path):
    path = onnx_lms["llama"].path
    out = tmp_path / "vectors.json"
    run = subprocess.run(
        [sys.executable, "-m", "bmsdk.cli", "export-vectors", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    vectors = json.loads(out.read_text())
    assert vectors["task"] == "text-generation" and vectors["generation"]["cache_length"] == 128
    model = bmsdk.load(path)
    assert len(vectors["cases"]) >= 2
    for case in vectors["cases"]:
        result = model.generate(case["prompt"], max_new_tokens=case["max_new_tokens"])
        eos = [2] if result.finish_reason == "eos" else []
        assert case["token_ids"] == result.token_ids + eos and case["prompt_ids"] == result.prompt_ids
        assert case["steps"][0]["input_ids"] == case["prompt_ids"] and "logits" in case["steps"][0]
