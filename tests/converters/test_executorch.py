"""ExecuTorch target and backend on the tiny test models, with the real executorch (no mocks, CPU): every precision
validates on the executorch runtime, int8 reports what it quantized, predictions match the ONNX artifact, one .pte
takes several batch sizes and sequence lengths, and bad requests, files and inputs give typed errors."""

from __future__ import annotations

import json
import shutil
import sys
import threading

import numpy as np
import pytest
from conftest import TEXTS, digit_images, torch_logits_cnn

import bmsdk
from bmsdk.artifact import open_artifact
from bmsdk.cli import main as cli
from bmsdk.errors import BackendUnavailableError, DataError, InputError, ModelFileError, UnsupportedError

pytest.importorskip("executorch")

VARIANTS = {  # name -> (precision, what the conversion is given besides the source)
    "fp32": ("fp32", {}),
    "int8-dynamic": ("int8", {}),
    "int8-static": ("int8", {"quant_scheme": "static"}),
}


@pytest.fixture(scope="module")
def cnn_et(converted, cnn_factory, calib_npz):
    """The tiny CNN: fp32, int8 without calibration (dynamic), int8 with calibration (static by default)."""
    return {
        name: converted(
            f"et-cnn-{name}",
            cnn_factory,
            target="executorch",
            precision=precision,
            calibration=calib_npz if name == "int8-static" else None,
        )
        for name, (precision, _) in VARIANTS.items()
    }


@pytest.fixture(scope="module")
def bert_et(converted, bert_classifier_dir, text_jsonl):
    """The tiny BERT classifier: fp32, int8 dynamic (the text default), int8 static (asked for, calibrated)."""
    return {
        name: converted(
            f"et-bert-{name}",
            bert_classifier_dir,
            target="executorch",
            precision=precision,
            eval_data=text_jsonl,
            calibration=text_jsonl if name == "int8-static" else None,
            **extra,
        )
        for name, (precision, extra) in VARIANTS.items()
    }


@pytest.mark.parametrize("model", ["cnn", "bert"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_precision_validates_on_executorch(model, variant, cnn_et, bert_et):
    result = (cnn_et if model == "cnn" else bert_et)[variant]
    m, v = result.manifest, result.manifest.validation
    assert v.validated is True and v.backend == "executorch" and v.passed is True and v.device_real is True, v
    assert (
        m.target == "executorch" and m.model_file == "model.pte" and (result.path / "model.pte").stat().st_size > 5000
    )
    assert m.target_config is None  # no config class: everything the runtime needs is in the .pte
    assert m.toolchain["executorch"].startswith("1.5") and "xnnpack" in m.toolchain["executorch-delegate"]
    if variant == "fp32":
        assert v.samples.max_rel_error < 1e-5 and m.compression.quantization is None
    else:
        assert v.samples.min_cosine >= 0.98 and m.compression.quantization.scheme == variant.split("-")[1]
    if model == "bert":
        assert v.eval.top1_agreement == 1.0 and "sequence<=64" in m.toolchain["executorch-memory-plan"]


def test_int8_reports_what_it_quantized(cnn_et, bert_et):
    # dynamic int8 quantizes bare linear/conv only: the CNN's conv+ReLU stay float, and the manifest says which
    q = cnn_et["int8-dynamic"].manifest.compression.quantization
    assert q.weights.endswith("1 of 3 linear/conv ops") and q.calibration is None
    assert q.float_nodes == ["conv2d:conv1", "conv2d:conv2"] and "stays float" in q.other_ops
    q = cnn_et["int8-static"].manifest.compression.quantization
    assert q.scheme == "static" and q.weights.endswith("3 of 3 linear/conv ops") and q.float_nodes == []
    assert q.calibration.method == "minmax" and q.calibration.examples == 32
    assert (cnn_et["int8-static"].path / "model.pte").stat().st_size < (
        cnn_et["fp32"].path / "model.pte"
    ).stat().st_size
    for variant in ("int8-dynamic", "int8-static"):
        m = bert_et[variant].manifest
        assert m.compression.quantization.weights.endswith("14 of 14 linear/conv ops")
        assert "cast back to integer" in m.toolchain["executorch-pt2e-fix"]  # transformers 5's mask constants
    sizes = {v: (bert_et[v].path / "model.pte").stat().st_size for v in VARIANTS}
    assert sizes["int8-dynamic"] < 0.8 * sizes["fp32"]
    # what inspect shows reads back from the written manifest
    assert open_artifact(bert_et["int8-static"].path)[1].compression.quantization.calibration.batches >= 1


def test_predictions_match_the_onnx_artifact_and_the_source(cnn_et, bert_et, cnn_onnx_artifact, bert_onnx, cnn_module):
    images = digit_images(12, seed=5)
    source_labels = torch_logits_cnn(cnn_module, images).argmax(-1)
    with bmsdk.load(cnn_onnx_artifact.path) as onnx_model:
        onnx_labels = [p["label"] for p in onnx_model.predict(list(images))]
    for variant in VARIANTS:
        with bmsdk.load(cnn_et[variant].path) as model:
            assert model.backend == "executorch"
            predictions = model.predict(list(images))
        assert [p["label"] for p in predictions] == onnx_labels, variant
        if variant == "fp32":
            assert [int(p["label"]) for p in predictions] == list(source_labels)
    with bmsdk.load(bert_onnx.path) as onnx_model:
        onnx_labels = [p["label"] for p in onnx_model.predict(TEXTS)]
        single = onnx_model.predict(TEXTS[0])
    for variant in VARIANTS:
        with bmsdk.load(bert_et[variant].path) as model:
            assert [p["label"] for p in model.predict(TEXTS)] == onnx_labels, variant
            assert model.predict(TEXTS[0])["label"] == single["label"]


def test_one_pte_takes_several_batch_sizes_and_sequence_lengths(bert_et, bert_onnx, cnn_et, cnn_module):
    rng = np.random.default_rng(0)
    with bmsdk.load(bert_et["fp32"].path) as et, bmsdk.load(bert_onnx.path) as onnx_model:
        for batch, sequence in [(1, 8), (3, 24), (2, 64)]:
            feeds = {
                "input_ids": rng.integers(5, 43, (batch, sequence)).astype(np.int64),
                "attention_mask": np.ones((batch, sequence), np.int64),
                "token_type_ids": np.zeros((batch, sequence), np.int64),
            }
            feeds = {s.name: feeds[s.name] for s in et.manifest.inputs}
            got, want = et.run(feeds)["logits"], onnx_model.run(feeds)["logits"]
            assert got.shape == (batch, 2) and np.allclose(got, want, atol=1e-5), (batch, sequence)
    # more than the planned batch (64) runs in parts, in order
    x = ((digit_images(130, seed=2).astype(np.float32) / 255 - 0.1307) / 0.3081)[:, None]
    with bmsdk.load(cnn_et["fp32"].path) as model:
        assert model.runner.max_dims == {"batch": 64}
        got = model.run({"input": x})["logits"]
        assert model.run({"input": x[:1]})["logits"].shape == (1, 10)
    import torch

    with torch.no_grad():
        want = cnn_module(torch.from_numpy(x)).numpy()
    assert got.shape == (130, 10) and np.allclose(got, want, atol=1e-4)


def test_conv1d_and_a_mask_unsqueeze_over_batch_and_sequence_lower(vocab_file, tmp_path):
    """SqueezeBERT: grouped 1x1 Conv1d over [batch, channels, sequence] and the attention mask unsqueezed. XNNPACK's
    reshape takes one dynamic dim (lowering failed); those ops stay on portable kernels and one .pte still takes
    every batch and length, with the source's logits."""
    import torch
    from transformers import BertTokenizerFast, SqueezeBertConfig, SqueezeBertForSequenceClassification

    config = SqueezeBertConfig(
        vocab_size=len(vocab_file.read_text().split()), hidden_size=32, embedding_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    source = SqueezeBertForSequenceClassification(config).eval()
    folder = tmp_path / "squeezebert"
    source.save_pretrained(folder)
    BertTokenizerFast(str(vocab_file)).save_pretrained(folder)
    result = bmsdk.convert(folder, target="executorch", output=tmp_path / "squeezebert.bmsdk")
    assert result.passed
    rng = np.random.default_rng(0)
    with bmsdk.load(result.path) as model:
        for batch, sequence in [(1, 5), (3, 17)]:
            ids = rng.integers(5, 40, (batch, sequence)).astype(np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            feeds = {s.name: feeds[s.name] for s in model.manifest.inputs}
            with torch.no_grad():
                want = source(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
            np.testing.assert_allclose(model.run(feeds)["logits"], want, atol=1e-4)


def test_inputs_beyond_the_planned_bounds_are_refused(bert_et):
    from bmsdk.runtimes.executorch_backend import ExecuTorchBackend

    _, manifest = open_artifact(bert_et["fp32"].path)
    with bmsdk.load(bert_et["fp32"].path) as model:  # the manifest's max_dims refuse first
        feeds = {s.name: np.ones((1, 80), np.int64) for s in manifest.inputs}
        with pytest.raises(InputError, match="sequence=80, more than the model takes"):
            model.run(feeds)
    for spec in manifest.inputs:  # without them, the backend refuses from the program's own bounds
        spec.max_dims = None
    with ExecuTorchBackend(bert_et["fp32"].path, manifest) as backend:
        with pytest.raises(InputError, match=r"sequence=80, more than this \.pte was built for \(64\)"):
            backend.run(feeds)


def test_bad_requests_are_refused_before_any_work(cnn_factory, cnn_onnx, cnn_torchscript):
    with pytest.raises(DataError, match="static int8 needs calibration data") as e:
        bmsdk.convert(cnn_factory, target="executorch", precision="int8", quant_scheme="static")
    assert "--calibration" in e.value.fix
    with pytest.raises(UnsupportedError, match="converts PyTorch models only"):
        bmsdk.convert(str(cnn_onnx), target="executorch")
    with pytest.raises(UnsupportedError, match="cannot convert TorchScript"):
        bmsdk.convert(str(cnn_torchscript), target="executorch", input_shapes={"input": [1, 1, 28, 28]})
    with pytest.raises(UnsupportedError, match="does not support precision 'fp16'") as e:
        bmsdk.convert(cnn_factory, target="executorch", precision="fp16")
    assert "fp32, int8" in e.value.fix
    with pytest.raises(UnsupportedError, match="unknown quantization scheme 'qat'"):
        bmsdk.convert(cnn_factory, target="executorch", precision="int8", quant_scheme="qat")
    with pytest.raises(UnsupportedError, match="does not take the option"):
        bmsdk.convert(cnn_factory, target="executorch", opset=17)


def test_a_corrupt_pte_is_a_model_file_error(cnn_et, tmp_path):
    broken = tmp_path / "broken.bmsdk"
    shutil.copytree(cnn_et["fp32"].path, broken)
    data = (broken / "model.pte").read_bytes()
    (broken / "model.pte").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="executorch cannot load model.pte"):
        bmsdk.load(broken, verify=False)
    (broken / "model.pte").write_bytes(b"not a program" * 100)
    with pytest.raises(ModelFileError, match="executorch cannot load model.pte"):
        bmsdk.load(broken, verify=False)


def test_a_missing_runtime_names_the_extra(cnn_et, monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)
    with pytest.raises(BackendUnavailableError, match="executorch runtime is not available") as e:
        bmsdk.load(cnn_et["fp32"].path)
    assert e.value.fix == "pip install 'bmsdk[executorch]'"


def test_threads_and_concurrent_calls(cnn_et):
    import executorch.extension.pybindings.portable_lib as portable

    before = portable._threadpool_get_thread_count()
    images = list(digit_images(8, seed=3))
    try:
        with bmsdk.load(cnn_et["int8-static"].path, threads=1) as model:
            assert portable._threadpool_get_thread_count() == 1  # process-global in ExecuTorch
            assert model.runner.thread_safe
            expected = model.predict(images)
            results, errors = [], []

            def work():
                try:
                    for _ in range(5):
                        results.append(model.predict(images))
                except Exception as e:  # noqa: BLE001
                    errors.append(e)

            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not errors and len(results) == 20 and all(r == expected for r in results)
    finally:
        portable._unsafe_reset_threadpool(before)


def test_cli_convert_with_a_smaller_batch_plan(cnn_factory, tmp_path, capsys):
    out = tmp_path / "cnn-et.bmsdk"
    args = ["convert", cnn_factory, "--target", "executorch", "--max-batch", "16", "-o", str(out), "-q"]
    assert cli(args) == 0
    manifest = json.loads((out / "bmsdk.json").read_text())
    assert manifest["toolchain"]["executorch-memory-plan"] == "batch<=16" and manifest["validation"]["passed"]
    with bmsdk.load(out) as model:
        assert len(model.predict(list(digit_images(40, seed=4)))) == 40  # 64 per call, run in parts of 16
    assert cli(["inspect", str(out)]) == 0
    assert "executorch" in capsys.readouterr().out


def test_doctor_lists_the_executorch_target(capsys):
    assert cli(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "executorch (ready)" in out


def test_bench_gives_a_validated_executorch_cell(cnn_factory, calib_npz, tmp_path):
    args = ["bench", cnn_factory, "--targets", "executorch", "--precisions", "fp32,int8", "--calibration"]
    args += [str(calib_npz), "--batch", "1,8", "--warmup", "2", "--iterations", "20", "--repeats", "1"]
    args += ["--seconds", "1", "-o", str(tmp_path), "-q"]
    assert cli(args) == 0
    cells = {c["precision"]: c for c in json.loads((tmp_path / "report.json").read_text())["cells"]}
    for precision in ("fp32", "int8"):
        cell = cells[precision]
        assert cell["target"] == "executorch" and cell["status"] == "validated", cell
        assert cell["device_real"] is True and cell["latency"]["8"]["p50_ms"] > 0
        assert cell["speedup_vs_source"]["1"] > 0 and cell["overhead"]["raw"].startswith("executorch")


def test_the_target_and_backend_declare_themselves_without_importing_torch():
    import subprocess
    from pathlib import Path

    import tomllib

    from bmsdk.converters import get_target
    from bmsdk.runtimes import backend_class, backends_for

    target = get_target("executorch")
    assert set(target.precisions) == {"fp32", "int8"} and target.capabilities.calibration == ("int8",)
    assert target.backend == "executorch" and backends_for("executorch") == ["executorch"]
    assert backend_class("executorch").thread_safe and target.demo_precisions == ("int8",)
    extras = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert (
        any(r.startswith("executorch") for r in extras["convert-executorch"])
        and "bmsdk[convert]" in extras["convert-executorch"]
    )
    assert {r.split(">")[0] for r in extras["executorch"]} == {"executorch", "torch"}  # the wheel needs torch
    code = (
        "import sys, bmsdk; from bmsdk.converters import get_target; from bmsdk.runtimes import backend_class; "
        "get_target('executorch'); backend_class('executorch'); "
        "print(sorted(m for m in ('torch', 'executorch', 'torchao') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
