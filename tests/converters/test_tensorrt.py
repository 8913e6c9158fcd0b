"""TensorRT target: the portable package (ModelOpt Q/DQ int8, AutoCast fp16), its CPU checks, and the runtime backend.

No GPU here: the package's prepared ONNX is validated on onnxruntime CPU (a stand-in the manifest names), the
op-support check and the optimization profiles are tested statically, and the TensorRT backend must fail cleanly.
The GPU tests at the bottom build real engines and run where TensorRT and a CUDA GPU are present.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import bmsdk
from bmsdk.artifact import load_samples
from bmsdk.converters.targets.tensorrt.ops import check_model, op_table
from bmsdk.converters.targets.tensorrt.profiles import make_profiles, parse_shapes
from bmsdk.errors import BackendUnavailableError, ConversionError, InputError, UnsupportedError
from bmsdk.manifest import TensorSpec
from bmsdk.runtimes.tensorrt_engine import cache_dir, config_hash, engine_key, outside
from bmsdk.sections import BuildConfig, Profile

STAND_IN = "onnxruntime (TensorRT-prepared ONNX, engine not built)"


def _has_gpu_and_tensorrt() -> str | None:
    """None when TensorRT and a CUDA GPU are usable, else why not (the skip reason)."""
    try:
        from bmsdk.runtimes.cuda_memory import open_cuda
        from bmsdk.runtimes.tensorrt_engine import import_tensorrt

        open_cuda().close()
        import_tensorrt()
    except BackendUnavailableError as e:
        return f"needs an NVIDIA GPU and TensorRT: {e.problem}"
    return None


NO_GPU = _has_gpu_and_tensorrt()


def qdq_nodes(path: Path) -> list:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


# --- packages built on CPU ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_int8(converted, cnn_factory, calib_npz):
    return converted("trt-cnn-int8", cnn_factory, target="tensorrt", precision="int8", calibration=calib_npz)


@pytest.fixture(scope="module")
def bert_int8(converted, bert_classifier_dir, text_jsonl):
    return converted(
        "trt-bert-int8",
        bert_classifier_dir,
        target="tensorrt",
        precision="int8",
        calibration=text_jsonl,
        eval_data=text_jsonl,
    )


def test_cnn_int8_package_is_qdq_onnx_validated_on_a_named_stand_in(cnn_int8):
    m, folder = cnn_int8.manifest, cnn_int8.path
    assert m.target == "tensorrt" and m.model_file == "model.onnx"
    assert not (folder / "tensorrt").exists()  # no engine without a GPU
    nodes = qdq_nodes(folder / "model.onnx")
    assert len(nodes) >= 8
    # weights are quantized per output channel: their scales have one entry per channel
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(folder / "model.onnx")).graph.initializer}
    weight_scales = [inits[n.input[1]] for n in nodes if n.op_type == "QuantizeLinear" and n.input[0] in inits]
    assert weight_scales and all(s.size > 1 for s in weight_scales)
    q = m.compression.quantization
    assert q.scheme == "int8-qdq (ModelOpt)" and q.calibration.method == "max" and q.calibration.examples == 32
    assert isinstance(q.float_nodes, list)
    v = m.validation
    assert v.validated is True and v.passed is True
    assert v.backend == STAND_IN and v.stand_in is True and v.device_real is False
    assert "did not run" in v.note
    assert v.samples.min_cosine > 0.98 and v.samples.top1_agreement == 1.0
    tc = m.target_config
    assert tc.engine is None and "no engine" in tc.note and "first load" in tc.note
    assert tc.op_check.passed and tc.op_check.tensorrt_version == op_table()["tensorrt_version"]
    assert tc.build.strongly_typed is True and tc.build.precision == "int8"
    assert tc.build.profiles["input"] == Profile(min=[1, 1, 28, 28], opt=[8, 1, 28, 28], max=[32, 1, 28, 28])


def test_onnxruntime_static_int8_still_works_after_modelopt(tmp_path, cnn_factory, calib_npz):
    """ModelOpt patches onnxruntime's quantization classes and op registries in place; bmsdk puts them back."""
    from onnxruntime.quantization.calibrate import CalibraterBase, MinMaxCalibrater
    from onnxruntime.quantization.registry import QDQRegistry

    before = (dict(QDQRegistry), CalibraterBase.__init__, MinMaxCalibrater.compute_data)
    int8 = bmsdk.convert(
        cnn_factory, target="tensorrt", precision="int8", calibration=calib_npz, output=tmp_path / "t.bmsdk"
    )
    assert int8.manifest.validation.passed  # ModelOpt has run in this process
    assert (dict(QDQRegistry), CalibraterBase.__init__, MinMaxCalibrater.compute_data) == before
    result = bmsdk.convert(
        cnn_factory, target="onnx", precision="int8", calibration=calib_npz, output=tmp_path / "o.bmsdk"
    )
    assert result.manifest.validation.passed


def test_profiles_cover_the_sample_shapes(cnn_int8, bert_int8):
    for result in (cnn_int8, bert_int8):
        inputs, _, _ = load_samples(result.path)
        assert outside(result.manifest.target_config.build.profiles, inputs) == []


def test_bert_int8_keeps_the_ffn_in_fp16_and_reports_the_metric(bert_int8):
    m = bert_int8.manifest
    q = m.compression.quantization
    assert len(q.kept_in_fp16) == 4  # 2 layers x (FFN up + down projection)
    assert len(qdq_nodes(bert_int8.path / "model.onnx")) > 0
    profiles = m.target_config.build.profiles
    assert set(profiles) == {s.name for s in m.inputs}
    assert profiles["input_ids"].max == [32, m.preprocessing["max_length"]]
    v = m.validation
    assert v.passed is True and v.backend == STAND_IN
    assert v.eval.n == 10 and v.eval.top1_agreement >= 0.9


def test_fp16_is_mixed_precision_with_fp32_io(converted, cnn_factory):
    result = converted("trt-cnn-fp16", cnn_factory, target="tensorrt", precision="fp16")
    model = onnx.load(str(result.path / "model.onnx"))
    assert any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer)
    assert all(t.type.tensor_type.elem_type == TensorProto.FLOAT for t in [*model.graph.input, *model.graph.output])
    assert result.manifest.compression.quantization.scheme == "fp16 (ModelOpt AutoCast)"
    v = result.manifest.validation
    assert v.passed is True and v.samples.max_rel_error < 2e-2


def test_the_onnxruntime_backend_runs_the_package_but_the_tensorrt_one_refuses_cleanly(cnn_int8):
    """Without CUDA the TensorRT backend raises a typed error before TensorRT is even imported (the lean runtime
    segfaults without a driver); run in a fresh interpreter so sys.modules is clean."""
    code = (
        "import sys, bmsdk\n"
        f"try:\n    bmsdk.load({str(cnn_int8.path)!r})\n"
        "except bmsdk.BackendUnavailableError as e:\n    print('UNAVAILABLE', e)\n"
        "print('tensorrt imported' if 'tensorrt' in sys.modules else 'tensorrt not imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout
    assert "UNAVAILABLE" in out and "Fix:" in out and "tensorrt not imported" in out
    with bmsdk.load(cnn_int8.path, backend="onnxruntime") as model:
        inputs, outputs, _ = load_samples(cnn_int8.path)
        got = model.run(inputs)["logits"]
    assert np.array_equal(got.argmax(1), outputs["logits"].argmax(1))


def test_validation_fails_when_the_profile_does_not_cover_the_samples(tmp_path, cnn_factory):
    result = bmsdk.convert(
        cnn_factory, target="tensorrt", precision="fp32", shapes=["batch=1:2:4"], output=tmp_path / "small.bmsdk"
    )
    v = result.manifest.validation
    assert v.passed is False and "outside the optimization profile" in v.reason


def test_cli_convert_prints_what_it_produced_and_records_options(tmp_path, cnn_factory, calib_npz, capsys):
    from bmsdk.cli import main

    out = tmp_path / "cli.bmsdk"
    assert (
        main(
            [
                "convert",
                cnn_factory,
                "--target",
                "tensorrt",
                "--precision",
                "int8",
                "--calibration",
                str(calib_npz),
                "--shapes",
                "batch=1:16:64",
                "--sparsity",
                "2:4",
                "--workspace",
                "2",
                "--exclude-ops",
                "Gemm",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "no engine" in printed and "first load" in printed and STAND_IN in printed
    m = json.loads((out / "bmsdk.json").read_text())
    build = m["target_config"]["build"]
    assert build["profiles"]["input"]["max"] == [64, 1, 28, 28] and build["workspace_bytes"] == 2 << 30
    assert build["sparsity"] == "2:4"
    sparse = m["target_config"]["sparsity_check"]
    assert sparse["weights"] == 3 and sparse["weights_2_4"] == 0  # dense random weights: none already 2:4
    q = m["compression"]["quantization"]
    assert q["excluded_op_types"] == ["Gemm"]
    model = onnx.load(str(out / "model.onnx"))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    gemm_inputs = [i for n in model.graph.node if n.op_type == "Gemm" for i in n.input]
    assert not any(producers.get(i) == "DequantizeLinear" for i in gemm_inputs)  # excluded op types stay unquantized


@pytest.mark.parametrize(
    "options, message",
    [
        ({"precision": "int4"}, "does not support precision"),
        ({"precision": "int8", "sparsity": "1:2"}, "unknown sparsity"),
        ({"precision": "fp32", "shapes": ["batch=8:4:16"]}, "min <= opt <= max"),
        ({"precision": "fp32", "shapes": ["tokens=1:2:3"]}, "neither an input nor a dynamic dim"),
        ({"precision": "fp32", "workspace": -1}, "positive"),
    ],
)
def test_bad_options_are_refused(tmp_path, cnn_factory, options, message):
    with pytest.raises(UnsupportedError, match=message):
        bmsdk.convert(cnn_factory, target="tensorrt", output=tmp_path / "x.bmsdk", **options)
    assert not (tmp_path / "x.bmsdk").exists()


def test_entropy_calibration(tmp_path, cnn_factory, calib_npz):
    result = bmsdk.convert(
        cnn_factory,
        target="tensorrt",
        precision="int8",
        calibration=calib_npz,
        calibration_method="entropy",
        output=tmp_path / "entropy.bmsdk",
    )
    assert result.manifest.compression.quantization.calibration.method == "entropy"
    assert result.passed is True and len(qdq_nodes(result.path / "model.onnx")) >= 8


def test_int8_without_calibration_is_refused(tmp_path, cnn_factory):
    with pytest.raises(bmsdk.DataError, match="calibration"):
        bmsdk.convert(cnn_factory, target="tensorrt", precision="int8", output=tmp_path / "x.bmsdk")


# --- static checks ---------------------------------------------------------------------------


def _model_with(nodes, opset=17, initializers=()):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        initializer=list(initializers),
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("custom.ops", 1)]
    )


def test_op_check_names_unsupported_and_custom_ops_bad_opset_and_zero_points(tmp_path):
    nodes = [
        helper.make_node("Det", ["x"], ["d"], name="det"),
        helper.make_node("MyOp", ["d"], ["e"], domain="custom.ops"),
        helper.make_node("QuantizeLinear", ["e", "s", "zp"], ["q"], name="q"),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq"),
    ]
    inits = [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int8(3), "zp")]
    path = tmp_path / "bad.onnx"
    onnx.save(_model_with(nodes, opset=25, initializers=inits), str(path))
    report = check_model(path)
    assert report["passed"] is False
    assert "Det" in report["unsupported"] and "custom.ops::MyOp" in report["unsupported"]
    text = " | ".join(report["problems"])
    assert "Det (1 node) is not supported" in text and "needs a TensorRT plugin" in text
    assert "opset 25 is outside" in text and "non-zero zero point" in text and "dq" in text


def test_op_check_refuses_onnxruntime_dynamic_int8(converted, bert_classifier_dir):
    """onnxruntime's dynamic int8 (the onnx target's default for text) uses ops TensorRT's parser does not have."""
    result = converted("trt-ref-onnx-int8", bert_classifier_dir, target="onnx", precision="int8")
    report = check_model(result.path / "model.onnx")
    assert report["passed"] is False
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= set(report["unsupported"])


def test_conversion_stops_on_an_op_the_parser_lacks(tmp_path):
    """An image 'classifier' whose score is a determinant: onnxruntime runs it, TensorRT's parser has no Det."""
    graph = helper.make_graph(
        [helper.make_node("Det", ["x"], ["y"], name="det")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
    )
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ConversionError, match="Det"):
        bmsdk.convert(str(path), target="tensorrt", task="image-classification", output=tmp_path / "det.bmsdk")
    assert not (tmp_path / "det.bmsdk").exists()


def test_op_table_is_the_parser_matrix():
    table = op_table()
    assert table["source"].startswith("https://github.com/onnx/onnx-tensorrt") and table["tensorrt_version"]
    assert {"Conv", "MatMul", "QuantizeLinear", "DequantizeLinear", "LayerNormalization", "Erf"} <= set(
        table["supported"]
    )
    assert not set(table["supported"]) & set(table["unsupported"])


def test_profiles_from_dims_and_overrides():
    text = [
        TensorSpec("input_ids", "int64", ["batch", "sequence"]),
        TensorSpec("attention_mask", "int64", ["batch", "sequence"]),
    ]
    p = make_profiles(text, 128)
    assert p["input_ids"] == Profile(min=[1, 1], opt=[8, 64], max=[32, 128]) == p["attention_mask"]
    p = make_profiles(text, 128, parse_shapes(["sequence=8:32:64", "batch=1:1:4"]))
    assert p["input_ids"] == Profile(min=[1, 8], opt=[1, 32], max=[4, 64])
    image = [TensorSpec("input", "float32", ["batch", 3, 224, 224])]
    p = make_profiles(image, None, parse_shapes(["input=1x3x224x224:4x3x224x224:16x3x224x224"]))
    assert p["input"].max == [16, 3, 224, 224]
    with pytest.raises(UnsupportedError, match="fixed at 3"):
        make_profiles(image, None, parse_shapes(["input=1x1x224x224:4x3x224x224:16x3x224x224"]))
    with pytest.raises(UnsupportedError, match="NAME=MIN:OPT:MAX"):
        parse_shapes(["batch=1:8"])
    with pytest.raises(UnsupportedError, match="no default range"):
        make_profiles([TensorSpec("x", "float32", ["batch", "frames"])], None)
    feeds = {"input_ids": np.zeros((40, 10), np.int64)}
    assert outside(make_profiles(text, 128), feeds) == [
        "'input_ids' has shape [40, 10], outside the profile [1, 1]..[32, 128]"
    ]


def test_engine_key_and_cache(tmp_path, monkeypatch):
    build = BuildConfig(precision="int8", strongly_typed=True, profiles={"x": Profile(min=[1], opt=[8], max=[32])})
    h = config_hash("abc", build)
    assert h == config_hash("abc", dataclasses.replace(build)) and h != config_hash("abd", build)
    assert h != config_hash("abc", dataclasses.replace(build, profiles={"x": Profile(min=[1], opt=[8], max=[64])}))
    key = engine_key({"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}, "10.12.0", h)
    assert key == f"nvidia-h100-80gb-hbm3-sm90-trt10.12.0-{h}"
    monkeypatch.setenv("BMSDK_ENGINE_CACHE", str(tmp_path / "engines"))
    assert cache_dir() == tmp_path / "engines" and cache_dir(tmp_path / "mine") == tmp_path / "mine"


# --- the demo models ------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_ccexam_cnn_keeps_its_accuracy(tmp_path, mnist, precision):
    test, calib = mnist
    result = bmsdk.convert(
        "bmsdk.benchmarks.zoo:mnist_cnn",
        target="tensorrt",
        precision=precision,
        calibration=calib,
        eval_data=test,
        output=tmp_path / f"mnist-{precision}.bmsdk",
    )
    v = result.manifest.validation
    assert v.passed is True and v.backend == STAND_IN
    ev = v.eval
    assert ev.n == 2000 and ev.source.accuracy > 0.98
    assert abs(ev.delta.accuracy) <= 0.005 and ev.top1_agreement >= 0.995


@pytest.mark.slow
def test_minilm_sentiment_int8(tmp_path):
    from bmsdk.benchmarks import zoo

    checkpoint, test, calib = zoo.sentiment_checkpoint()
    result = bmsdk.convert(
        str(checkpoint),
        target="tensorrt",
        precision="int8",
        calibration=calib,
        eval_data=test,
        output=tmp_path / "minilm-int8.bmsdk",
    )
    v = result.manifest.validation
    assert v.passed is True and v.backend == STAND_IN
    assert v.eval.delta.accuracy >= -0.02 and v.eval.top1_agreement >= 0.93


# --- on a GPU with TensorRT -----------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU is not None, reason=NO_GPU or "")
@pytest.mark.parametrize("precision", ["fp16", "int8"])
@pytest.mark.parametrize("model", ["cnn", "bert"])
def test_gpu_engine_builds_runs_and_matches_the_source(
    tmp_path, monkeypatch, cnn_factory, calib_npz, bert_classifier_dir, text_jsonl, model, precision
):
    monkeypatch.setenv("BMSDK_ENGINE_CACHE", str(tmp_path / "engines"))
    source, calib = (cnn_factory, calib_npz) if model == "cnn" else (bert_classifier_dir, text_jsonl)
    result = bmsdk.convert(
        str(source), target="tensorrt", precision=precision, calibration=calib, output=tmp_path / "a.bmsdk"
    )
    m = result.manifest
    engine = m.target_config.engine
    assert engine and (result.path / engine.file).is_file() and (result.path / m.target_config.timing_cache).is_file()
    assert m.validation.backend == "tensorrt" and m.validation.passed is True and not m.validation.stand_in
    inputs, outputs, _ = load_samples(result.path)
    with bmsdk.load(result.path) as loaded:
        assert loaded.runner.engine_origin == "packaged"
        got = loaded.run(inputs)
        name = next(iter(outputs))
        assert np.mean(got[name].argmax(-1) == outputs[name].argmax(-1)) >= 0.875
        one = {k: v[:1] for k, v in inputs.items()}  # a different batch size within the profile
        assert loaded.run(one)[name].shape[0] == 1
        too_big = {k: np.repeat(v, 8, axis=0) for k, v in inputs.items()}  # 64 > the profile's max batch 32
        with pytest.raises(InputError, match="optimization profile"):
            loaded.run(too_big)
    # a package without its engine builds one on first load and caches it
    (result.path / engine.file).unlink()
    with bmsdk.load(result.path, verify=False, engine_cache=tmp_path / "cache") as rebuilt:
        assert rebuilt.runner.engine_origin == "built"
    with bmsdk.load(result.path, verify=False, engine_cache=tmp_path / "cache") as cached:
        assert cached.runner.engine_origin == "cache"


@pytest.mark.gpu
@pytest.mark.skipif(
    NO_GPU is not None or not os.environ.get("TRTEXEC", ""), reason="needs trtexec (set TRTEXEC) and a GPU"
)
def test_gpu_engine_loads_in_trtexec(tmp_path, cnn_factory):
    result = bmsdk.convert(cnn_factory, target="tensorrt", precision="fp16", output=tmp_path / "a.bmsdk")
    engine = result.path / result.manifest.target_config.engine.file
    run = subprocess.run(
        [os.environ["TRTEXEC"], f"--loadEngine={engine}", "--shapes=input:1x1x28x28"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:]
