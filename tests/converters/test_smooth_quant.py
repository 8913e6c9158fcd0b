"""SmoothQuant scale migration (`--smooth-quant ALPHA`): the same function in float, flatter activations, less int8
error, and int8 artifacts that validate on their runtimes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEXTS

import bmsdk
from bmsdk.converters.sensitivity import fake_quant_input, fake_quant_weight
from bmsdk.converters.smooth import smooth_source, smoothed_linear
from bmsdk.converters.sources.loader import Source
from bmsdk.errors import UnsupportedError


def _outlier_source():
    """Linear -> GELU -> Linear whose second layer sees two channels 40x the others, as a transformer's FFN does."""
    import torch

    torch.manual_seed(0)
    first = torch.nn.Linear(16, 64)
    with torch.no_grad():
        first.weight[[5, 40]] *= 40
    module = torch.nn.Sequential(first, torch.nn.GELU(), torch.nn.Linear(64, 8)).eval()

    class Named(torch.nn.Module):  # keyword inputs, as a Source's module takes them
        def __init__(self):
            super().__init__()
            self.net = module

        def forward(self, x):
            return self.net(x)

    return Source(format="factory", path="test", task="feature-extraction", inputs=[], outputs=[], module=Named())


def _int8_error(module, x) -> float:
    """Relative error of the output with every linear layer's weight int8 per output channel and its input uint8
    per tensor (the dynamic int8 that onnxruntime and LiteRT run), quantized where the matmul reads it: after a
    SmoothedLinear's 1/s."""
    import torch

    layers = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    for m in layers:
        smoothed = getattr(m, "smoothed_input", None)

        def forward(a, m=m, smoothed=smoothed):
            a = smoothed(a) if smoothed is not None else a
            return torch.nn.functional.linear(fake_quant_input(a), fake_quant_weight(m.weight), m.bias)

        m.forward = forward  # an instance attribute: deleting it restores the class's forward
    try:
        with torch.no_grad():
            quantized = module(x=x)
    finally:
        for m in layers:
            del m.forward
    with torch.no_grad():
        reference = module(x=x)
    return float((quantized - reference).norm() / reference.norm())


def test_smoothing_keeps_the_function_and_cuts_int8_error():
    import torch

    source = _outlier_source()
    x = torch.randn(64, 16)
    feeds = [{"x": x[:32].numpy()}]
    smoothed, report = smooth_source(source, feeds, 0.5)
    assert report.layers == 2 and report.examples == 32 and report.alpha == 0.5
    assert source.module.net[2].__class__ is torch.nn.Linear  # the caller's model is left as it was
    assert smoothed.module.net[2].__class__ is smoothed_linear()
    with torch.no_grad():
        np.testing.assert_allclose(smoothed.module(x=x).numpy(), source.module(x=x).numpy(), rtol=1e-4, atol=1e-5)
    before, after = _int8_error(source.module, x[32:]), _int8_error(smoothed.module, x[32:])
    assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize(
    "target,precision,options",
    [
        ("onnx", "int8", {}),
        ("onnx", "int8", {"quant_scheme": "static"}),
        ("tflite", "int8", {}),
        ("tflite", "int8-dynamic", {}),
    ],
)
def test_smoothed_int8_validates(tmp_path, bert_classifier_dir, text_jsonl, bert_onnx, target, precision, options):
    result = bmsdk.convert(
        bert_classifier_dir,
        target=target,
        precision=precision,
        calibration=text_jsonl,
        smooth_quant=0.5,
        output=tmp_path / "smoothed.bmsdk",
        **options,
    )
    m = result.manifest
    assert m.compression.smoothing.alpha == 0.5
    assert m.compression.smoothing.layers == 14  # 2 layers x (q, k, v, attention out, ffn in, ffn out) + pooler + head
    assert m.compression.smoothing.scales == 10 and m.compression.smoothing.folded == 2
    assert m.validation.passed is True, m.validation
    if target == "onnx":
        import onnx

        nodes = onnx.load(str(result.path / "model.onnx")).graph.node
        # the 1/s of every smoothed input but attention's outputs and its zeroing of padded positions, in float
        assert sum(n.op_type == "Mul" for n in nodes) >= 2 * 3 * 2 + 2
        int8_ops = ("QuantizeLinear",) if options else ("MatMulInteger", "DynamicQuantizeMatMul")
        assert any(n.op_type in int8_ops for n in nodes)
    preds = bmsdk.load(result.path).predict(TEXTS)
    ref = bmsdk.load(bert_onnx.path).predict(TEXTS)
    assert np.mean([a["label"] == b["label"] for a, b in zip(preds, ref)]) >= 0.8


def test_smooth_quant_is_refused_where_it_means_nothing(tmp_path, bert_classifier_dir, cnn_onnx):
    with pytest.raises(UnsupportedError, match="--precision int8"):
        bmsdk.convert(bert_classifier_dir, precision="fp32", smooth_quant=0.5, output=tmp_path / "a.bmsdk")
    with pytest.raises(UnsupportedError, match=r"not in \(0, 1\]"):
        bmsdk.convert(bert_classifier_dir, precision="int8", smooth_quant=1.5, output=tmp_path / "b.bmsdk")
    with pytest.raises(UnsupportedError, match="exported graph"):
        bmsdk.convert(cnn_onnx, precision="int8", smooth_quant=0.5, output=tmp_path / "c.bmsdk")
    assert not list(tmp_path.iterdir())


def test_padded_positions_do_not_set_the_ranges():
    import torch

    from bmsdk.converters.smooth import _calibrate

    layer = torch.nn.Linear(4, 2)

    class Masked(torch.nn.Module):  # a text model's signature: the mask is an input beside the hidden states
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, x, attention_mask):
            return self.layer(x)

    x = np.ones((2, 3, 4), dtype=np.float32)
    x[1, 2] = 1000.0  # the padded position of the second row
    mask = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.int64)
    peaks = _calibrate(Masked(), [{"x": x, "attention_mask": mask}]).peaks
    np.testing.assert_allclose(peaks["layer"].numpy(), np.ones(4))
    unmasked = _calibrate(Masked(), [{"x": x, "attention_mask": np.ones_like(mask)}]).peaks
    np.testing.assert_allclose(unmasked["layer"].numpy(), np.full(4, 1000.0))


def test_smoothed_layers_zero_padded_positions_and_keep_real_tokens():
    import torch

    torch.manual_seed(0)

    class Masked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def forward(self, x, attention_mask):
            return self.layer(x)

    source = Source(format="factory", path="test", task="feature-extraction", inputs=[], outputs=[], module=Masked())
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    x[1, 2] = 1000.0  # a padded position's outlier
    mask = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.int64)
    smoothed, _ = smooth_source(source, [{"x": x, "attention_mask": mask}], 0.5)
    x_t, mask_t = torch.from_numpy(x), torch.from_numpy(mask)
    with torch.no_grad():
        got = smoothed.module(x_t, attention_mask=mask_t)  # the mask given by keyword ...
        positional = smoothed.module(x_t, mask_t)  # ... or by position
        want = source.module(x_t, mask_t)
    real = mask.astype(bool)
    np.testing.assert_allclose(got.numpy()[real], want.numpy()[real], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.numpy()[1, 2], source.module.layer.bias.detach().numpy(), atol=1e-6)  # input 0
    np.testing.assert_allclose(positional.numpy(), got.numpy())
    assert smoothed.module.smooth_state == {}  # neither the mask nor the inputs kept past the call


def _tiny_bert():
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_labels=3
    )
    module = BertForSequenceClassification(config).eval()
    return Source(format="factory", path="test", task="text-classification", inputs=[], outputs=[], module=module)


def _muls(module, feed) -> int:
    import torch

    program = torch.export.export(module, (), kwargs=feed)
    return sum(node.target == torch.ops.aten.mul.Tensor for node in program.graph.nodes)


def test_layers_reading_one_tensor_share_a_division_and_attention_output_takes_its_own_from_value():
    import torch

    source = _tiny_bert()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 64, size=(4, 12))
    mask = np.ones_like(ids)
    mask[1, 8:] = mask[3, 5:] = 0
    feed = {"input_ids": ids, "attention_mask": mask}
    smoothed, report = smooth_source(source, [feed], 0.8)
    # per layer: (query, key, value), attention output, FFN in, FFN out; then the pooler and the classifier
    assert report.layers == 2 * 6 + 2 and report.scales == 2 * 4 + 2
    assert report.folded == 2  # each layer's attention output, into its value projection
    attention = smoothed.module.bert.encoder.layer[0].attention
    assert attention.self.query.smooth_inverse is attention.self.value.smooth_inverse
    assert attention.output.dense.smooth_folded and not attention.self.query.smooth_folded
    torch_feed = {k: torch.from_numpy(v) for k, v in feed.items()}
    with torch.no_grad():
        got, want = smoothed.module(**torch_feed).logits, source.module(**torch_feed).logits
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
    # the float ops smoothing adds: 1/s and the mask's zeroing for (q, k, v), FFN in and FFN out, 1/s alone for
    # the pooler's and the classifier's 2-D inputs
    assert _muls(smoothed.module, torch_feed) - _muls(source.module, torch_feed) == 2 * 3 * 2 + 2


def test_cli_refuses_smooth_quant_with_auto(tmp_path, bert_classifier_dir, text_jsonl, capsys):
    from bmsdk.cli import main

    code = main(
        [
            "convert",
            str(bert_classifier_dir),
            "--precision",
            "auto",
            "--smooth-quant",
            "0.5",
            "--eval",
            str(text_jsonl),
            "-o",
            str(tmp_path / "x.bmsdk"),
        ]
    )
    assert code == 2
    assert "--smooth-quant" in capsys.readouterr().err
    assert not (tmp_path / "x.bmsdk").exists()


def test_a_layer_run_twice_keeps_the_function_and_folds_only_where_exact():
    import torch

    torch.manual_seed(0)

    class Shared(torch.nn.Module):  # b reads a's output beside c, then runs again on another input (ALBERT-style)
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = (torch.nn.Linear(8, 8) for _ in range(3))

        def forward(self, x):
            h = self.a(x)
            return self.b(self.b(h) + self.c(h))

    source = Source(format="factory", path="test", task="feature-extraction", inputs=[], outputs=[], module=Shared())
    x = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    smoothed, report = smooth_source(source, [{"x": x}], 0.5)
    assert (report.layers, report.scales) == (3, 2)  # (a), (b, c)
    # b's 1/s in a's rows would hold for b's first call and not for its second: refused by the output check
    assert report.folded == 0
    with torch.no_grad():
        np.testing.assert_allclose(
            smoothed.module(x=torch.from_numpy(x)).numpy(), source.module(x=torch.from_numpy(x)).numpy(), rtol=1e-4
        )
