"""CoreML text generation on Linux: tiny Llama / Qwen2 / GPT-2 step graphs converted to ML programs, run by the MIL
reference executor through `bmsdk.load(...).generate()`, token by token against transformers' greedy `generate`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("coremltools")
transformers = pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPTS = ["the model runs", "greedy decoding picks", "café au"]
NEW_TOKENS = 16


@pytest.fixture(scope="module")
def checkpoints(tiny_lm):
    """`checkpoints(arch)`: a tiny trained checkpoint folder (built once per session)."""
    return tiny_lm


@pytest.fixture(scope="module")
def coreml_lm(checkpoints, tmp_path_factory):
    """`coreml_lm(arch, precision)`: the ConversionResult of a coreml conversion, converted once."""
    import bmsdk

    root = tmp_path_factory.mktemp("coreml-lms")
    done: dict = {}

    def get(arch: str, precision: str = "fp32", **options):
        key = (arch, precision, tuple(sorted(options.items())))
        if key not in done:
            out = root / f"{arch}-{precision}-{len(done)}.bmsdk"
            source = str(checkpoints(arch))
            done[key] = bmsdk.convert(source, target="coreml", precision=precision, output=out, **options)
        return done[key]

    return get


def transformers_greedy(folder: Path, prompt: str, new_tokens: int = NEW_TOKENS) -> list[int]:
    """transformers' greedy tokens for the prompt, up to (not including) an end-of-sequence token."""
    import torch
    from tokenizers import Tokenizer

    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(prompt).ids
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=new_tokens, do_sample=False)[0, len(ids) :].tolist()
    eos = model.generation_config.eos_token_id
    eos = {eos} if isinstance(eos, int) else set(eos or [])
    return out[: next((i for i, t in enumerate(out) if t in eos), len(out))]


def agreeing_prefix(got: list[int], want: list[int]) -> int:
    n = 0
    while n < min(len(got), len(want)) and got[n] == want[n]:
        n += 1
    return n


def generate_all(path, backend=None) -> list[list[int]]:
    import bmsdk

    with bmsdk.load(path, backend=backend) as model:
        return [model.generate(p, max_new_tokens=NEW_TOKENS).token_ids for p in PROMPTS]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_fp32_greedy_tokens_equal_transformers(coreml_lm, checkpoints, arch):
    result = coreml_lm(arch, "fp32")
    v = result.manifest.validation
    assert v.validated and v.backend == "mil-reference" and v.passed, v
    got = generate_all(result.path)
    want = [transformers_greedy(checkpoints(arch), p) for p in PROMPTS]
    assert got == want


def test_step_graph_dims_follow_the_cache_window(coreml_lm):
    """Sequence 1..C (1: a decode step), the attention mask C+1..2C: what the Generator feeds."""
    manifest = coreml_lm("llama", "fp32").manifest
    window = manifest.preprocessing["cache_length"]
    shapes = manifest.target_config.flexible_shapes
    assert shapes["sequence"] == [1, window]
    assert shapes[f"sequence+{window}"] == [window + 1, 2 * window]


def _infinite_constants(package: Path) -> list[str]:
    import numpy as np

    from bmsdk.runtimes.mil_executor import _read_program

    ops = _read_program(package).functions["main"].operations
    values = ((op.name, op.outputs[0].val) for op in ops if op.op_type == "const")
    return [name for name, v in values if isinstance(v, np.ndarray | np.floating) and np.isinf(v).any()]


def test_fp16_converts_and_generates(coreml_lm, checkpoints):
    """fp16 compute (its attention mask finite in fp16): validated, and greedy tokens (nearly) those of fp32."""
    result = coreml_lm("llama", "fp16")
    assert result.manifest.validation.passed, result.manifest.validation
    assert not _infinite_constants(result.path / "model.mlpackage")
    got = generate_all(result.path)
    want = [transformers_greedy(checkpoints("llama"), p) for p in PROMPTS]
    agreeing = [agreeing_prefix(g, w) for g, w in zip(got, want)]
    print(f"fp16 llama: agreeing greedy tokens per prompt {agreeing} of {[len(w) for w in want]}")
    assert all(len(g) == len(w) or len(g) >= NEW_TOKENS // 2 for g, w in zip(got, want))
    assert min(agreeing) >= NEW_TOKENS // 2  # measured: all 16 of 16 on each prompt


def test_fp16_infinite_mask_constants_become_finite(tmp_path):
    """An eager-attention mask of finfo(float32).min is -inf in fp16 (NaN on the device for a row with no key):
    the coreml target's pass makes it -65504, so a fully masked row is uniform, as in torch."""
    import coremltools as ct
    import numpy as np
    import torch

    from bmsdk.converters.targets.coreml import passes
    from bmsdk.runtimes.mil_executor import MilProgram

    class Masked(torch.nn.Module):
        def forward(self, x, mask):
            scores = x @ x.transpose(-1, -2) + (1.0 - mask[:, None, :]) * torch.finfo(torch.float32).min
            return scores.softmax(-1) @ x

    x, mask = torch.randn(2, 3, 4), torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    passes.register()
    paths = []
    for finite in (False, True):
        pipeline = ct.PassPipeline.DEFAULT
        if finite:
            pipeline.append_pass(passes.FINITE_FP16)
        model = ct.convert(
            torch.jit.trace(Masked(), (x, mask)),
            inputs=[ct.TensorType(name="x", shape=(2, 3, 4)), ct.TensorType(name="mask", shape=(2, 3))],
            outputs=[ct.TensorType(name="y")],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS17,
            pass_pipeline=pipeline,
        )
        paths.append(tmp_path / f"masked-{finite}.mlpackage")
        model.save(str(paths[-1]))
    assert _infinite_constants(paths[0]) and not _infinite_constants(paths[1])
    got = MilProgram(paths[1]).run({"x": x.numpy(), "mask": mask.numpy()})["y"]
    np.testing.assert_allclose(got, Masked()(x, mask).numpy(), atol=2e-3)


# --- the stateful form (--coreml-state): the KV cache in CoreML states (iOS18) ------------------------------------


def _count_loads(monkeypatch) -> list:
    """Calls of the adapter's reload of the states from the feeds (a slide, another conversation)."""
    from bmsdk.runtimes.coreml_state import StatefulSteps

    loads: list = []
    original = StatefulSteps._load
    monkeypatch.setattr(StatefulSteps, "_load", lambda self, *a: (loads.append(1), original(self, *a))[1])
    return loads


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_stateful_fp32_greedy_tokens_equal_transformers(coreml_lm, checkpoints, arch, monkeypatch):
    from bmsdk.runtimes.mil_executor import MilProgram

    result = coreml_lm(arch, "fp32", coreml_state=True)
    manifest = result.manifest
    config = manifest.target_config
    window = manifest.preprocessing["cache_length"]
    assert config.minimum_deployment_target == "iOS18"
    assert config.states == {f"{k}_cache_{i}": [1, 2, window, 16] for i in range(2) for k in ("key", "value")}
    program = MilProgram(result.path / "model.mlpackage")
    assert set(program.states) == set(config.states) and set(program.inputs) == set(config.io_dtypes)
    assert {"read_state", "slice_update", "coreml_update_state"} <= {s.op_type for s in program.steps}
    # samples (batch 8) go through the adapter; the fp16 cache holds fp32 to fp16's tolerance
    v = manifest.validation
    assert v.validated and v.passed and v.samples.min_cosine > 0.9999, v
    assert v.samples.tolerance.max_rel_error == 2e-2 and v.greedy.identical == v.greedy.prompts
    loads = _count_loads(monkeypatch)
    got = generate_all(result.path)
    assert got == [transformers_greedy(checkpoints(arch), p) for p in PROMPTS]
    assert not loads  # prefill then decode steps: the states already hold the cache, nothing is copied in


def test_stateful_slides_like_the_step_graph(coreml_lm, monkeypatch):
    """Past the window with cache='slide': the adapter reloads the slid cache; same tokens as the plain step graph."""
    import bmsdk

    loads = _count_loads(monkeypatch)
    tokens = []
    short = {"max_length": 32}  # a window of 32 inside the model's 128 positions
    for path in (coreml_lm("llama", "fp32", coreml_state=True, **short).path, coreml_lm("llama", "fp32", **short).path):
        with bmsdk.load(path) as model:
            model.generator.eos_ids = set()  # keep going past the window
            tokens.append(model.generate(PROMPTS[0], max_new_tokens=80, cache="slide").token_ids)
    assert len(tokens[0]) == 80 and tokens[0] == tokens[1]
    assert loads  # the window slid


def test_stateful_fp16_converts_and_generates(coreml_lm, checkpoints):
    result = coreml_lm("llama", "fp16", coreml_state=True)
    assert result.manifest.validation.passed, result.manifest.validation
    got = generate_all(result.path)
    want = [transformers_greedy(checkpoints("llama"), p) for p in PROMPTS]
    agreeing = [agreeing_prefix(g, w) for g, w in zip(got, want)]
    print(f"stateful fp16 llama: agreeing greedy tokens per prompt {agreeing} of {[len(w) for w in want]}")
    assert min(agreeing) >= NEW_TOKENS // 2  # measured: all 16 of 16 on each prompt


def test_stateful_needs_ios18_and_a_language_model(checkpoints, tmp_path):
    import bmsdk
    from bmsdk.converters.sources.loader import Source
    from bmsdk.converters.targets.coreml import stateful
    from bmsdk.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="iOS18"):
        bmsdk.convert(
            str(checkpoints("llama")),
            target="coreml",
            output=tmp_path / "a.bmsdk",
            coreml_state=True,
            minimum_deployment_target="iOS17",
        )
    classifier = Source(format="huggingface", path="x", task="text-classification", inputs=[], outputs=[])
    with pytest.raises(UnsupportedError, match="text-generation"):
        stateful.check(classifier, "trace", "iOS18")
