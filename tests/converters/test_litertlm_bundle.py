"""The `.litertlm` bundle of a tflite text-generation artifact (`--litertlm`), exported by litert-torch's generative
export and run on LiteRT-LM's real CPU engine: its greedy text equals transformers' on tiny Llama and Qwen2, int8
bundles are smaller and still checked, and what the bundle cannot hold is refused with the reason."""

from __future__ import annotations

import pytest

import bmsdk
from bmsdk.errors import ConversionError, RunError, UnsupportedError

pytest.importorskip("litert_torch")
pytest.importorskip("litert_lm")

from bmsdk.converters.targets.tflite.litertlm import same_text  # noqa: E402
from bmsdk.runtimes.litert_lm import LiteRTLMBundle  # noqa: E402

CACHE = 64  # a short cache keeps each export to seconds


@pytest.fixture(scope="module")
def bundled(tiny_lm, tmp_path_factory):
    """`bundled(arch, precision)`: a tflite artifact with its bundle, converted once per module."""
    root, done = tmp_path_factory.mktemp("litertlm"), {}

    def convert(arch: str, precision: str = "fp32"):
        if (arch, precision) not in done:
            out = root / f"{arch}-{precision}.bmsdk"
            done[arch, precision] = bmsdk.convert(
                str(tiny_lm(arch)), target="tflite", precision=precision, output=out, litertlm=True, max_length=CACHE
            )
        return done[arch, precision]

    return convert


def transformers_text(folder, prompt: str, count: int) -> str:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tokenizer.encode(prompt).ids
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), max_new_tokens=count, do_sample=False, eos_token_id=2, pad_token_id=0)
    return tokenizer.decode(out[0, len(ids) :].tolist(), skip_special_tokens=True)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_bundle_greedy_text_equals_transformers(bundled, tiny_lm, arch):
    result = bundled(arch)
    validation = result.manifest.validation
    assert result.passed, validation.reason
    bundle = validation.bundle
    assert bundle.validated and bundle.required and bundle.identical == bundle.prompts == 8
    info = result.manifest.target_config.litertlm
    assert info.quantization_recipe == "none" and info.cache_length == CACHE
    assert info.prefill_lengths == [8, 32, CACHE]  # the step graph's buckets; 1 (decode) is the bundle's own
    assert "model.litertlm" in result.manifest.files  # checksummed like the model file
    assert not [p for p in result.path.iterdir() if "xnnpack" in p.name]  # the engine's cache stays out
    # on its own, outside the conversion: the engine's text against transformers' generate
    with LiteRTLMBundle(result.path / "model.litertlm", max_tokens=CACHE) as engine:
        stops = engine.stop_texts()
        for prompt in ["the model runs", "quantization stores"]:
            got, want = engine.complete(prompt, 12), transformers_text(tiny_lm(arch), prompt, 12)
            assert same_text(want, got, stops), (prompt, want, got)
            assert got.strip(), prompt


def test_int8_bundle_is_smaller_and_checked(bundled):
    fp32, int8 = bundled("llama"), bundled("llama", "int8-dynamic")
    assert int8.passed, int8.manifest.validation.reason
    assert int8.manifest.target_config.litertlm.quantization_recipe == "dynamic_wi8_afp32"
    bundle = int8.manifest.validation.bundle
    assert bundle.validated and not bundle.required and bundle.identical >= 6  # int8 need not keep every token
    fp32_size, int8_size = ((r.path / "model.litertlm").stat().st_size for r in (fp32, int8))
    assert int8_size < 0.7 * fp32_size


def test_engine_measures_the_bundle(bundled):
    with LiteRTLMBundle(bundled("llama").path / "model.litertlm", max_tokens=CACHE, benchmark=True) as engine:
        counters = engine.measure("the model runs on", 8)
    assert counters["decode_tokens_per_s"] > 0 and counters["first_token_ms"] > 0
    assert 1 <= counters["decode_tokens"] <= 8


def test_refusals_before_any_work(tiny_lm, bert_classifier_dir, tmp_path, lm_texts):
    with pytest.raises(UnsupportedError, match="not built in int8"):
        bmsdk.convert(
            str(tiny_lm("llama")), target="tflite", precision="int8", calibration=str(lm_texts),
            output=tmp_path / "a.bmsdk", litertlm=True,
        )  # fmt: skip
    with pytest.raises(UnsupportedError, match="text-generation models only"):
        bmsdk.convert(str(bert_classifier_dir), target="tflite", output=tmp_path / "b.bmsdk", litertlm=True)
    assert not list(tmp_path.iterdir())


def test_an_architecture_the_exporter_lacks_fails_cleanly(tiny_lm, tmp_path):
    out = tmp_path / "gpt2.bmsdk"
    with pytest.raises(ConversionError, match="generative export"):
        bmsdk.convert(str(tiny_lm("gpt2")), target="tflite", output=out, litertlm=True, max_length=CACHE)
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing half-written


def test_same_text_allows_the_bundles_stop_sequences():
    stops = ["\n", " \n"]
    assert same_text("a b", "a b", stops)
    assert same_text("a b\nc", "a b", stops)  # stopped at a stop sequence
    assert same_text("a b ", "a b", stops)  # held back " " (it may begin " \n") when the count ran out
    assert not same_text("a b c", "a b", stops) and not same_text("a c", "a b", stops)


def test_a_file_that_is_no_bundle_is_a_run_error(tmp_path):
    path = tmp_path / "model.litertlm"
    path.write_bytes(b"not a bundle" * 100)
    with pytest.raises(RunError, match="cannot open"):
        LiteRTLMBundle(path, max_tokens=CACHE)


def test_the_export_leaves_the_recursion_limit_as_it_was(bundled):
    """litert-converter raises it to 100000 on import; a deeply nested JSON read later must still fail cleanly."""
    import sys

    bundled("llama")  # exported in this process (converted once per module)
    assert sys.getrecursionlimit() < 100000
