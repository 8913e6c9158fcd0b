"""fp16 and int8 ONNX artifacts: the right scheme is applied, recorded in the manifest, and validated."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TEXTS, digit_images

import bmsdk
from bmsdk.errors import DataError


def onnx_graph(path):
    import onnx

    return onnx.load(str(path / "model.onnx"))


def initializer_types(model) -> set[int]:
    return {init.data_type for init in model.graph.initializer}


def test_text_fp16(converted, bert_classifier_dir, bert_onnx):
    import onnx

    result = converted("bert-fp16", bert_classifier_dir, target="onnx", precision="fp16")
    m = result.manifest
    assert m.precision == "fp16"
    assert m.compression.quantization.scheme == "fp16"
    assert m.validation.passed is True
    assert m.validation.samples.max_rel_error < 2e-2 and m.validation.samples.min_cosine > 0.999
    graph = onnx_graph(result.path)
    assert onnx.TensorProto.FLOAT16 in initializer_types(graph)
    # inputs and outputs keep their types: callers see no difference
    assert [i.dtype for i in m.inputs] == ["int64"] * 3 and m.outputs[0].dtype == "float32"
    half = bmsdk.load(result.path).predict(TEXTS)
    full = bmsdk.load(bert_onnx.path).predict(TEXTS)
    assert [p["label"] for p in half] == [p["label"] for p in full]
    np.testing.assert_allclose(
        [p["scores"]["positive"] for p in half], [p["scores"]["positive"] for p in full], atol=1e-2
    )
    assert (result.path / "model.onnx").stat().st_size < 0.75 * (bert_onnx.path / "model.onnx").stat().st_size


def test_text_int8_is_dynamic(converted, bert_classifier_dir, bert_onnx):
    result = converted("bert-int8", bert_classifier_dir, target="onnx", precision="int8")
    m = result.manifest
    q = m.compression.quantization
    assert q.scheme == "dynamic" and "per-channel" in q.weights
    assert isinstance(q.float_nodes, list)
    assert m.validation.passed is True and m.validation.samples.min_cosine >= 0.98
    ops = {n.op_type for n in onnx_graph(result.path).graph.node}
    assert ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}, ops
    preds = bmsdk.load(result.path).predict(TEXTS)
    ref = bmsdk.load(bert_onnx.path).predict(TEXTS)
    agree = np.mean([a["label"] == b["label"] for a, b in zip(preds, ref)])
    assert agree >= 0.8


def test_cnn_fp16(converted, cnn_factory):
    result = converted("cnn-fp16", cnn_factory, target="onnx", precision="fp16")
    assert result.manifest.compression.quantization.scheme == "fp16"
    assert result.manifest.validation.passed is True
    out = bmsdk.load(result.path).run({"input": np.zeros((2, 1, 28, 28), np.float32)})["logits"]
    assert out.dtype == np.float32 and out.shape == (2, 10)


def test_cnn_int8_static_qdq(converted, cnn_factory, calib_npz, cnn_onnx_artifact):
    result = converted("cnn-int8", cnn_factory, target="onnx", precision="int8", calibration=calib_npz)
    m = result.manifest
    q = m.compression.quantization
    assert q.scheme == "static-qdq"
    assert q.calibration.examples == 32 and q.calibration.batches == 4
    assert q.float_nodes == [], "every Conv/Gemm should run on quantized inputs"
    assert m.validation.passed is True, m.validation
    ops = [n.op_type for n in onnx_graph(result.path).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # the samples come from the calibration data (real images), not random noise
    from bmsdk.artifact import load_samples

    inputs, _, _ = load_samples(result.path)
    expected = bmsdk.load(cnn_onnx_artifact.path).preprocess(list(digit_images(8, seed=1)))
    np.testing.assert_allclose(inputs["input"], expected["input"], atol=1e-6)

    images = list(digit_images(16, seed=9))
    q8 = bmsdk.load(result.path).predict(images)
    f32 = bmsdk.load(cnn_onnx_artifact.path).predict(images)
    assert np.mean([a["label"] == b["label"] for a, b in zip(q8, f32)]) >= 0.75


def test_static_int8_of_poolformer_group_norms_loads_and_validates(tmp_path):
    """torch exports GroupNorm as InstanceNormalization with one scale and bias shared by every GroupNorm; static
    QDQ of those wired one node's output in as another's bias, and onnxruntime refused to load the model (a tiny
    PoolFormer, nine GroupNorms). They stay float; the convs are int8."""
    import torch
    import transformers
    from PIL import Image

    config = transformers.PoolFormerConfig(hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1], num_labels=2)
    torch.manual_seed(0)
    folder = tmp_path / "poolformer"
    transformers.PoolFormerForImageClassification(config).eval().save_pretrained(folder)
    transformers.PoolFormerImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    images = tmp_path / "calibration" / "any"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(images / f"{i}.png")
    result = bmsdk.convert(folder, output=tmp_path / "q.bmsdk", precision="int8", calibration=images.parent)
    assert result.manifest.validation.validated, result.manifest.validation
    ops = [n.op_type for n in onnx_graph(result.path).graph.node]
    assert ops.count("InstanceNormalization") == 9 and "QuantizeLinear" in ops
    assert result.manifest.compression.quantization.float_nodes == []


def test_cnn_int8_calibration_size_limit(cnn_factory, calib_npz, tmp_path):
    result = bmsdk.convert(
        cnn_factory, output=tmp_path / "q.bmsdk", precision="int8", calibration=calib_npz, calibration_size=10
    )
    assert result.manifest.compression.quantization.calibration.examples == 10


def test_cnn_int8_without_calibration_fails_cleanly(cnn_factory, tmp_path):
    out = tmp_path / "nocal.bmsdk"
    with pytest.raises(DataError, match="calibration"):
        bmsdk.convert(cnn_factory, output=out, precision="int8")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [], "a staging folder was left behind"


def test_text_int8_static_with_text_calibration(converted, bert_classifier_dir, text_jsonl):
    result = converted(
        "bert-int8-static",
        bert_classifier_dir,
        target="onnx",
        precision="int8",
        calibration=text_jsonl,
        quant_scheme="static",
    )
    q = result.manifest.compression.quantization
    assert q.scheme == "static-qdq" and q.calibration.examples == len(TEXTS)
    # static QDQ collapses this tiny BERT (all outputs one class); what matters is that validation says so honestly
    v = result.manifest.validation
    assert v.validated is True
    assert v.passed is (v.samples.min_cosine >= 0.98)
    if not v.passed:
        assert "cosine" in v.samples.reason
    nodes = onnx_graph(result.path).graph.node
    assert "QuantizeLinear" in {n.op_type for n in nodes}
    # only the matmuls are quantized (as on TFLite): LayerNorm, Softmax, GELU and the residual Adds stay float
    assert q.ops == ["MatMul", "Gemm"]
    dequantized = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    takes_int8 = {n.op_type for n in nodes if any(i in dequantized for i in n.input)}
    assert takes_int8 <= {"MatMul", "Gemm"} and "MatMul" in takes_int8, takes_int8
    matmul_outputs = {o for n in nodes if n.op_type in ("MatMul", "Gemm") for o in n.output}
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in matmul_outputs for n in nodes)  # outputs float
    # the samples are the calibration texts, stored raw so any runtime can re-check itself
    from bmsdk.artifact import load_samples

    _, _, raw = load_samples(result.path)
    assert list(raw) == TEXTS[: len(raw)]
