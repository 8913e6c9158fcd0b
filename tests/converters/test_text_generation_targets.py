"""Text generation on ExecuTorch and TFLite (LiteRT), with the real toolchains (CPU): greedy tokens of the converted
step graph equal transformers' generate on tiny Llama, Qwen2 and GPT-2 in fp32, int8 converts, validates and generates,
and the backends run prefill batches of any length (TFLite: padded to a bucket, the derived mask axis too) and the
decode step."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import tiny_lms

import bmsdk
from bmsdk.manifest import TensorSpec
from bmsdk.runtimes.litert_io import fit_sequence, pad_feeds, row_lengths

pytest.importorskip("executorch")
pytest.importorskip("litert_torch")

ARCHS = ("llama", "qwen2", "gpt2")
PROMPTS = ["the model runs", "we ship small", "café au", "greedy decoding picks"]
NEW_TOKENS = 16
INT8 = {"executorch": "int8", "tflite": "int8-dynamic"}  # the weight-int8 scheme of each target with no calibration


@pytest.fixture(scope="module")
def lms(tiny_lm) -> dict:
    return {arch: tiny_lm(arch) for arch in ARCHS}


@pytest.fixture(scope="module")
def texts(lm_texts):
    return lm_texts


@pytest.fixture(scope="module")
def artifact(lms, texts, tmp_path_factory):
    """`artifact(arch, target, precision, **options)`: converted once per module (eval data: the corpus)."""
    root, done = tmp_path_factory.mktemp("lm-targets"), {}

    def convert(arch: str, target: str, precision: str = "fp32", **options):
        key = (arch, target, precision, tuple(sorted(options.items())))
        if key not in done:
            out = root / f"{arch}-{target}-{precision}-{len(done)}.bmsdk"
            done[key] = bmsdk.convert(
                str(lms[arch]), target=target, precision=precision, output=out, eval_data=str(texts), **options
            )
        return done[key]

    return convert


@pytest.fixture(scope="module")
def reference(lms):
    """`reference(arch, prompt)`: transformers' greedy continuation (no eos stop), the prompt ids stripped."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    cache: dict = {}

    def greedy(arch: str, prompt: str) -> list[int]:
        if (arch, prompt) not in cache:
            model = AutoModelForCausalLM.from_pretrained(str(lms[arch]), local_files_only=True).eval()
            ids = Tokenizer.from_file(str(lms[arch] / "tokenizer.json")).encode(prompt).ids
            with torch.inference_mode():
                out = model.generate(
                    torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0
                )
            cache[arch, prompt] = out[0, len(ids) :].tolist()
        return cache[arch, prompt]

    return greedy


def generated(result) -> dict[str, list[int]]:
    model = bmsdk.load(result.path)
    model.generator.eos_ids = set()  # a full NEW_TOKENS, as transformers gives without an eos
    return {p: model.generate(p, max_new_tokens=NEW_TOKENS).token_ids for p in PROMPTS}


# each architecture on one target (llama meets both through the int8 test below)
@pytest.mark.parametrize("arch,target", [("llama", "executorch"), ("qwen2", "tflite"), ("gpt2", "tflite")])
def test_fp32_greedy_tokens_equal_transformers(artifact, reference, arch, target):
    result = artifact(arch, target)
    validation = result.manifest.validation
    assert result.passed, validation.reason
    assert validation.greedy.identical == validation.greedy.prompts
    assert abs(validation.eval.perplexity_change) < 1e-4
    for prompt, tokens in generated(result).items():
        assert tokens == reference(arch, prompt), prompt


@pytest.mark.parametrize("target", ["executorch", "tflite"])
def test_int8_converts_validates_and_generates(artifact, reference, target):
    result = artifact("llama", target, INT8[target])
    validation = result.manifest.validation
    assert result.passed, validation.reason
    assert validation.eval.perplexity_change <= validation.eval.perplexity_budget
    quantization = result.manifest.compression.quantization
    assert quantization.scheme == {"executorch": "dynamic", "tflite": "dynamic_wi8_afp32"}[target]
    tokens = generated(result)
    assert all(len(t) == NEW_TOKENS for t in tokens.values())
    # int8 need not keep every greedy token; on this model it keeps the first ones of every prompt
    assert all(t[:4] == reference("llama", p)[:4] for p, t in tokens.items())


def test_tflite_static_int8_calibrates_on_texts(artifact, texts):
    result = artifact("llama", "tflite", "int8", calibration=str(texts))
    assert result.passed, result.manifest.validation.reason
    calibrated = result.manifest.compression.quantization.calibration.examples_per_signature
    assert set(calibrated) == {"seq_1", "seq_8", "seq_32", "seq_128"} and min(calibrated.values()) > 0
    assert len(bmsdk.load(result.path).generate("the model", max_new_tokens=8).token_ids) == 8


def test_tflite_signatures_are_the_buckets_and_decode(artifact):
    config = artifact("llama", "tflite").manifest.target_config
    assert config.sequence_buckets == [1, 8, 32, 128]  # 1 is the decode step; 128 the cache length
    for bucket in config.sequence_buckets:
        inputs = config.signatures[f"seq_{bucket}"].inputs
        assert inputs["input_ids"].shape == [1, bucket]
        assert inputs["attention_mask"].shape == [1, 128 + bucket]
        assert inputs["past_key_0"].shape == [1, 2, 128, 16]


def test_prefill_batches_and_decode_agree_across_targets(artifact):
    """A batch of texts of several lengths (padded on the right) and a decode step after a prompt: TFLite pads them
    to a bucket and slices the outputs back; ExecuTorch runs them as they are, in parts of its planned batch."""
    tflite, et = bmsdk.load(artifact("llama", "tflite").path), bmsdk.load(artifact("llama", "executorch").path)
    assert et.runner.max_dims == {"batch": 4, "sequence": 128, "sequence+128": 256}
    feeds = et.preprocess(tiny_lms.CORPUS[:6])  # 6 rows > the planned batch of 4
    width = feeds["input_ids"].shape[1]
    assert width not in tflite.manifest.target_config.sequence_buckets
    want, got = et.run(feeds), tflite.run(feeds)
    for spec in et.manifest.outputs:
        assert got[spec.name].shape == want[spec.name].shape
    real = feeds["attention_mask"][:, -width:].astype(bool)
    assert np.allclose(got["logits"][real], want["logits"][real], atol=1e-4)
    # a decode step: the prompt's keys and values in the cache, one new token
    cache = {k: v[:1] for k, v in feeds.items()}
    step = et.run(cache)
    n = int(real[0].sum())
    decode = {
        "input_ids": np.array([[int(step["logits"][0, n - 1].argmax())]]),
        "position_ids": np.array([[n]]),
        "attention_mask": np.concatenate([np.arange(128) < n, [True]])[None].astype(np.int64),
    }
    for name in [s.name for s in et.manifest.inputs if s.name.startswith("past_")]:
        past = np.zeros_like(feeds[name][:1])
        past[:, :, :n] = step[name.replace("past_", "present_")][:, :, :n]
        decode[name] = past
    one, other = et.run(decode), tflite.run(decode)
    assert one["logits"].shape == (1, 1, 320) and np.allclose(one["logits"], other["logits"], atol=1e-4)


def test_bucket_padding_follows_the_sequence_axes():
    specs = [
        TensorSpec("input_ids", "int64", ["batch", "sequence"]),
        TensorSpec("attention_mask", "int64", ["batch", "sequence+4"]),
        TensorSpec("past_key_0", "float32", ["batch", 2, 4, 3]),
    ]
    feeds = {
        "input_ids": np.array([[5, 6, 7]]),
        "attention_mask": np.array([[1, 1, 0, 0, 1, 1, 1]]),
        "past_key_0": np.ones((1, 2, 4, 3), np.float32),
    }
    padded = pad_feeds(feeds, 8, {"input_ids": 0, "attention_mask": 0}, specs)
    assert padded["input_ids"].tolist() == [[5, 6, 7, 0, 0, 0, 0, 0]]
    assert padded["attention_mask"].tolist() == [[1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]]  # the padding is masked
    assert padded["past_key_0"].shape == (1, 2, 4, 3)  # the cache slots are fixed
    assert row_lengths(padded).tolist() == [3]
    present = np.zeros((1, 2, 8, 3))
    assert fit_sequence(present, ["batch", 2, "sequence", 3], 3).shape == (1, 2, 3, 3)


def test_generation_buckets_always_hold_the_decode_step():
    from bmsdk.converters.targets.tflite.build import sequence_buckets

    def source(cache: int):
        inputs = [TensorSpec("input_ids", "int64", ["batch", "sequence"])]
        return SimpleNamespace(inputs=inputs, preprocessing={"kind": "generation", "cache_length": cache})

    assert sequence_buckets(source(128), None) == [1, 8, 32, 128]
    assert sequence_buckets(source(256), None) == [1, 8, 32, 128, 256]
    assert sequence_buckets(source(16), None) == [1, 8, 16]
    assert sequence_buckets(source(128), "16,64") == [1, 16, 64, 128]


def test_executorch_plans_a_step_graph_by_its_cache():
    from bmsdk.converters.targets.executorch.build import dim_bounds, int8_scheme

    ids = TensorSpec("input_ids", "int64", ["batch", "sequence"], None, {"sequence": 64})
    mask = TensorSpec("attention_mask", "int64", ["batch", "sequence+64"])
    source = SimpleNamespace(inputs=[ids, mask], preprocessing={"kind": "generation"}, data_kind="text")
    assert dim_bounds(source, None) == {"batch": 4, "sequence": 64, "sequence+64": 128}
    assert dim_bounds(source, 16)["batch"] == 16
    assert int8_scheme(source, None, has_calibration=True) == "dynamic"  # as for text models; static when asked
