"""TFLite target and LiteRT backend on the tiny test models: every precision validates on LiteRT, the boundary
conversions (int64 -> int32, int8 scale/zero point, sequence buckets, row-by-row batches) are recorded and applied,
and predictions match the ONNX and torch backends."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from conftest import TEXTS, digit_images

import bmsdk
from bmsdk.artifact import SAMPLES_NAME, load_samples, open_artifact
from bmsdk.cli import main as cli
from bmsdk.errors import BackendUnavailableError, DataError, InputError, UnsupportedError
from bmsdk.runtimes.litert_backend import LiteRTBackend
from bmsdk.runtimes.litert_io import pick_bucket, row_lengths
from bmsdk.sections import Compression, SignatureTensor

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")


@pytest.fixture(scope="session")
def bert_tflite(converted, bert_classifier_dir, text_jsonl):
    """The tiny BERT classifier in every precision (default buckets capped at its max length 64)."""
    return {
        p: converted(
            f"tflite-bert-{p}",
            bert_classifier_dir,
            target="tflite",
            precision=p,
            eval_data=text_jsonl,
            calibration=text_jsonl if p == "int8" else None,
        )
        for p in PRECISIONS
    }


@pytest.fixture(scope="session")
def cnn_tflite(converted, cnn_factory, calib_npz):
    return {
        p: converted(
            f"tflite-cnn-{p}", cnn_factory, target="tflite", precision=p, calibration=calib_npz if p == "int8" else None
        )
        for p in PRECISIONS
    }


@pytest.mark.parametrize("model", ["bert", "cnn"])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_validates_on_litert(model, precision, bert_tflite, cnn_tflite):
    result = (bert_tflite if model == "bert" else cnn_tflite)[precision]
    m, v = result.manifest, result.manifest.validation
    assert v.validated is True and v.backend == "litert" and v.passed is True, v
    assert (
        m.target == "tflite" and m.model_file == "model.tflite" and (result.path / "model.tflite").stat().st_size > 1000
    )
    assert m.toolchain["litert-torch"] and m.toolchain["ai-edge-litert"]
    if precision == "fp32":
        assert v.samples.max_rel_error < 1e-4 and m.compression == Compression()
    else:
        assert m.compression.quantization.scheme in ("fp16-weights", "dynamic_wi8_afp32", "static_wi8_ai8")


def _buffers(path) -> list[bytes]:
    """The data buffers (weights and constants) of a .tflite flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    out = []
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        out.append(
            data[b.Offset() : b.Offset() + b.Size()]
            if b.Offset() > 1
            else b.DataAsNumpy().tobytes()
            if b.DataLength()
            else b""
        )
    return out


def test_quantized_weights_are_smaller(bert_tflite):
    weights = {p: sum(len(b) for b in _buffers(r.path / "model.tflite")) for p, r in bert_tflite.items()}
    assert weights["int8-dynamic"] < 0.5 * weights["fp32"] and weights["fp16"] < 0.65 * weights["fp32"]
    assert weights["int8"] < 0.65 * weights["fp32"]


def test_text_model_gets_one_signature_per_bucket_with_weights_stored_once(bert_tflite, bert_classifier_dir):
    m = bert_tflite["fp32"].manifest
    config = m.target_config
    assert config.sequence_buckets == [16, 32, 64]  # 128 exceeds the model's 64 positions: capped, 64 added
    assert sorted(config.signatures) == ["seq_16", "seq_32", "seq_64"]
    assert config.batch_size == 1 and config.int64_to_int32 == ["input_ids", "attention_mask", "token_type_ids"]
    sig = config.signatures["seq_32"]
    assert sig.inputs["input_ids"] == SignatureTensor(tensor="input_ids", dtype="int32", shape=[1, 32])
    assert sig.outputs["logits"].tensor == "output_0" and sig.outputs["logits"].shape == [1, 2]
    buffers = _buffers(bert_tflite["fp32"].path / "model.tflite")
    large = [b for b in buffers if len(b) >= 2048]
    assert len(set(large)) == len(large)  # no weight stored twice
    weights = (bert_classifier_dir / "model.safetensors").stat().st_size
    assert sum(len(b) for b in buffers) < 1.2 * weights  # three signatures, one copy of the weights


def test_static_int8_keeps_float_io_and_quantizes_inside_the_graph(cnn_tflite, cnn_module):
    result = cnn_tflite["int8"]
    sig = result.manifest.target_config.signatures["serving_default"]
    q_in, q_out = sig.inputs["input"], sig.outputs["logits"]
    assert (q_in.dtype, q_out.dtype) == ("float32", "float32") and not q_in.quantization and not q_out.quantization
    calibration = result.manifest.compression.quantization.calibration
    assert calibration.examples_per_signature == {"serving_default": 24}  # 8 of the 32 rows held out
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(result.path / "model.tflite"))
    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE" and "CONV_2D" in ops  # the boundary is in the graph
    int8 = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int8 and t["quantization"][0] > 0]
    assert len(int8) >= 4  # activations between the ops are int8
    with bmsdk.load(result.path) as model:
        images = digit_images(6, seed=5)
        feeds = model.preprocess(list(images))
        logits = model.run(feeds)["logits"]
    assert logits.dtype == np.float32 and logits.shape == (6, 10)
    import torch

    with torch.no_grad():
        reference = cnn_module(torch.from_numpy(feeds["input"])).numpy()
    step = next(
        t["quantization"][0] for t in interpreter.get_tensor_details() if t["index"] == _dequantized(interpreter)
    )
    assert np.abs(logits - reference).max() < 0.2 * np.abs(reference).max() + 4 * step
    assert np.allclose(logits / step, np.round(logits / step), atol=1e-3)  # values on the output's int8 grid


def _dequantized(interpreter) -> int:
    """The int8 tensor the graph's final DEQUANTIZE reads."""
    return int([op for op in interpreter._get_ops_details() if op["op_name"] == "DEQUANTIZE"][-1]["inputs"][0])


def test_text_static_int8_quantizes_matmuls_and_keeps_int32_token_inputs(bert_tflite):
    m = bert_tflite["int8"].manifest
    assert m.compression.quantization.ops == ["FULLY_CONNECTED", "BATCH_MATMUL", "EMBEDDING_LOOKUP (weights only)"]
    # every 4th of the 10 calibration texts is held out to check the quantized model
    assert m.compression.quantization.calibration.examples_per_signature == {"seq_16": 7, "seq_32": 7, "seq_64": 7}
    search = m.compression.quantization.tolerance_search
    assert search.all_int8.rows == 9 and search.criterion.startswith("95% of 9 held-out")  # 3 texts x 3 buckets
    sig = m.target_config.signatures["seq_16"]
    assert {t.dtype for t in sig.inputs.values()} == {"int32"}
    assert m.validation.samples.top1_agreement == 1.0


def _float_model_and_calibration(result):
    with bmsdk.load(result.path) as model:
        config = model.manifest.target_config
        return (result.path / "model.tflite").read_bytes(), config, [model.preprocess(TEXTS[i : i + 5]) for i in (0, 5)]


def test_static_int8_keeps_float_the_op_groups_that_break_the_tolerance(bert_tflite):
    from bmsdk.converters.targets.tflite.mixed import SHARE, op_groups
    from bmsdk.converters.targets.tflite.quantize import quantize_static

    float_model, config, calibration = _float_model_and_calibration(bert_tflite["fp32"])
    groups = op_groups(float_model, ("FULLY_CONNECTED", "BATCH_MATMUL"))
    # the classifier writes each bucket's output tensor: one group across the signatures, not one per signature
    shared = {name: paths for name, paths in groups.items() if len(paths) > 1}
    assert (
        len(shared) == 1
        and len(next(iter(shared.values()))) == 3
        and not any(name.startswith("seq_") for name in groups)
    )
    # a cosine no all-int8 model reaches: the search must leave groups float until the held-out rows meet it, and
    # every row validation checks (the first calibration rows)
    model, details = quantize_static(
        float_model, config.sequence_buckets, calibration, config.pad_values, [], min_cosine=0.999999
    )
    search = details.quantization.tolerance_search
    assert search.all_int8.share_within < SHARE
    assert search.float_groups and set(search.float_groups) <= set(groups)
    assert search.met and search.result.share_within >= SHARE and search.groups == len(groups)
    assert search.criterion.endswith("and every row validation checks")
    assert search.int8_groups + len(search.float_groups) == len(groups)
    # every held-out text is checked in every bucket it fits (3 texts x 3 buckets)
    assert search.result.rows == 9


def test_static_int8_with_few_calibration_rows_checks_on_them(bert_tflite):
    from bmsdk.converters.targets.tflite.quantize import quantize_static

    float_model, config, calibration = _float_model_and_calibration(bert_tflite["fp32"])
    _, details = quantize_static(float_model, config.sequence_buckets, [calibration[0]], config.pad_values, [])
    search = details.quantization.tolerance_search
    assert search.all_int8.rows == 15 and "too few to hold any out" in search.criterion  # 5 texts x 3 buckets


def test_run_takes_and_gives_the_manifest_dtypes_at_any_batch_and_length(bert_tflite, bert_onnx):
    with bmsdk.load(bert_tflite["fp32"].path) as lite, bmsdk.load(bert_onnx.path) as onnx:
        for texts in (TEXTS[:1], TEXTS[:3], TEXTS):
            feeds = lite.preprocess(texts)
            assert feeds["input_ids"].dtype == np.int64
            got, want = lite.run(feeds)["logits"], onnx.run(feeds)["logits"]
            assert got.dtype == np.float32 and got.shape == want.shape == (len(texts), 2)
            np.testing.assert_allclose(got, want, atol=1e-4)
        long_feeds = lite.preprocess(["the movie was great " * 7])  # 30 tokens: the 32 bucket
        assert long_feeds["input_ids"].shape[1] == 30
        np.testing.assert_allclose(lite.run(long_feeds)["logits"], onnx.run(long_feeds)["logits"], atol=1e-4)


def test_sequence_outputs_are_trimmed_back_to_the_requested_length(converted, bert_encoder_dir):
    result = converted("tflite-bert-enc-fp32", bert_encoder_dir, target="tflite", seq_buckets="8,16")
    assert result.manifest.validation.passed is True
    assert result.manifest.target_config.sequence_buckets == [8, 16, 64]
    with bmsdk.load(result.path) as model:
        feeds = model.preprocess(["the movie was great", "bad"])  # 6 tokens, padded to bucket 8
        hidden = model.run(feeds)["last_hidden_state"]
        assert hidden.shape == (2, 6, 32) and hidden.dtype == np.float32

        from bmsdk.converters.sources.loader import load_source

        reference = load_source(bert_encoder_dir).run(feeds)["last_hidden_state"]
        np.testing.assert_allclose(hidden, reference, atol=1e-4)


def test_longer_than_the_largest_bucket_is_an_input_error(bert_tflite):
    with bmsdk.load(bert_tflite["fp32"].path) as model:
        feeds = {k: np.zeros((1, 65), np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with pytest.raises(InputError, match="more than the model takes|largest bucket"):
            model.run(feeds)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_predict_gives_the_same_labels_as_onnx_and_torch(
    precision, bert_tflite, cnn_tflite, bert_onnx, bert_classifier_dir, cnn_onnx_artifact, cnn_factory
):
    from bmsdk.converters.sources.loader import load_source
    from bmsdk.runtimes.model import Model

    images = list(digit_images(8, seed=3))
    for tflite, onnx_result, source, inputs in (
        (bert_tflite[precision], bert_onnx, bert_classifier_dir, TEXTS),
        (cnn_tflite[precision], cnn_onnx_artifact, cnn_factory, images),
    ):
        with bmsdk.load(tflite.path) as lite, bmsdk.load(onnx_result.path) as onnx:
            torch_model = Model(tflite.path, lite.manifest, load_source(str(source)))
            labels = [p["label"] for p in lite.predict(inputs)]
            assert (
                labels
                == [p["label"] for p in onnx.predict(inputs)]
                == [p["label"] for p in torch_model.predict(inputs)]
            )
            one = lite.predict(inputs[0])
            assert one["label"] == labels[0] and abs(sum(one["scores"].values()) - 1) < 1e-5


def test_int8_predictions_mostly_agree_and_eval_is_recorded(bert_tflite):
    for precision in ("int8-dynamic", "int8"):
        ev = bert_tflite[precision].manifest.validation.eval
        assert ev.n == len(TEXTS) and 0 <= ev.artifact.accuracy <= 1
        assert ev.top1_agreement >= 0.8 and abs(ev.delta.accuracy) <= 0.2


def test_threads_setting(bert_tflite):
    with (
        bmsdk.load(bert_tflite["int8-dynamic"].path, threads=1) as one,
        bmsdk.load(bert_tflite["int8-dynamic"].path, threads=2) as two,
    ):
        assert one.runner.threads == 1 and two.runner.threads == 2
        feeds = one.preprocess(TEXTS)
        np.testing.assert_allclose(one.run(feeds)["logits"], two.run(feeds)["logits"], atol=1e-5)


def test_check_on_load_refuses_an_interpreter_that_disagrees(cnn_tflite, tmp_path):
    """What a fallback interpreter (tflite-runtime, TensorFlow) goes through before use: samples.npz must agree."""
    folder, manifest = open_artifact(cnn_tflite["int8-dynamic"].path)
    LiteRTBackend(folder, manifest, verify_on_load=True).close()  # agrees: loads
    tampered = tmp_path / "tampered.bmsdk"
    shutil.copytree(folder, tampered)
    inputs, outputs, raw = load_samples(tampered)
    arrays = {f"input.{k}": v for k, v in inputs.items()}
    arrays.update({f"output.{k}": -v for k, v in outputs.items()})  # what a silently wrong runtime would give
    np.savez_compressed(tampered / SAMPLES_NAME, **arrays)
    with pytest.raises(BackendUnavailableError, match="disagrees with the source on samples.npz"):
        LiteRTBackend(tampered, manifest, verify_on_load=True)


def test_unavailable_interpreter_is_a_typed_error(cnn_tflite):
    folder, manifest = open_artifact(cnn_tflite["fp32"].path)
    if "tflite_runtime" in sys.modules or _importable("tflite_runtime"):
        pytest.skip("tflite-runtime is installed here")
    with pytest.raises(BackendUnavailableError, match="tflite-runtime"):
        LiteRTBackend(folder, manifest, runtime="tflite-runtime")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_refusals_before_any_work(cnn_factory, cnn_onnx, tmp_path):
    with pytest.raises(DataError, match="calibration"):
        bmsdk.convert(cnn_factory, target="tflite", precision="int8", output=tmp_path / "a.bmsdk")
    with pytest.raises(UnsupportedError, match="PyTorch"):
        bmsdk.convert(str(cnn_onnx), target="tflite", output=tmp_path / "b.bmsdk")
    with pytest.raises(UnsupportedError, match="text models only"):
        bmsdk.convert(cnn_factory, target="tflite", output=tmp_path / "c.bmsdk", seq_buckets="16,32")
    with pytest.raises(UnsupportedError, match="precision 'int4'"):
        bmsdk.convert(cnn_factory, target="tflite", precision="int4", output=tmp_path / "d.bmsdk")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_cli_passes_seq_buckets(bert_classifier_dir, tmp_path, capsys):
    assert (
        cli(
            [
                "convert",
                str(bert_classifier_dir),
                "--target",
                "tflite",
                "--seq-buckets",
                "abc",
                "-q",
                "-o",
                str(tmp_path / "x.bmsdk"),
            ]
        )
        == 2
    )
    assert "cannot read --seq-buckets 'abc'" in capsys.readouterr().err


def test_boundary_helpers():
    assert pick_bucket(1, [16, 32]) == 16 and pick_bucket(16, [32, 16]) == 16 and pick_bucket(17, [16, 32]) == 32
    with pytest.raises(InputError):
        pick_bucket(33, [16, 32])
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    assert row_lengths({"input_ids": mask, "attention_mask": mask}).tolist() == [3, 1, 4]
