"""Structural pruning on real models: ccexam's pretrained MNIST CNN (channels) and a tiny BERT (heads + FFN)."""

from __future__ import annotations

import numpy as np
import pytest

import bmsdk
from bmsdk.benchmarks import zoo
from bmsdk.errors import DataError, UnsupportedError

CNN = "bmsdk.benchmarks.zoo:mnist_cnn"


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """(eval: 1000 test images, calibration: 256, recovery: 5000 labelled validation images), from the demo's data."""
    test, calib = zoo.mnist_data()
    subset = tmp_path_factory.mktemp("data") / "mnist-test-1000.npz"
    with np.load(test) as data:
        np.savez(subset, x=data["x"][:1000], y=data["y"][:1000])
    return subset, calib, zoo.mnist_recovery()


@pytest.fixture(scope="module")
def cnn_unpruned(tmp_path_factory, mnist):
    return bmsdk.convert(CNN, target="onnx", output=tmp_path_factory.mktemp("u") / "cnn.bmsdk")


def test_half_the_channels_cut_parameters_and_the_exported_model(tmp_path, cnn_unpruned):
    result = bmsdk.convert(CNN, target="onnx", prune=0.5, output=tmp_path / "cnn-p50.bmsdk")
    pruning = result.manifest.compression.pruning
    assert pruning.method == "channels" and pruning.tool == "torch-pruning"
    assert pruning.params.after <= 0.6 * pruning.params.before  # >= 40% fewer parameters
    assert pruning.macs.after < 0.5 * pruning.macs.before
    size = (result.path / "model.onnx").stat().st_size
    assert size < 0.6 * (cnn_unpruned.path / "model.onnx").stat().st_size
    assert result.passed is True  # the artifact matches the pruned model it was exported from
    assert result.manifest.source["pruning"]["ratio"] == 0.5


def test_recovery_wins_back_accuracy(tmp_path, mnist):
    test, calib, recovery = mnist
    result = bmsdk.convert(
        CNN,
        target="onnx",
        prune=0.5,
        recover=recovery,
        recover_steps=150,
        eval_data=test,
        output=tmp_path / "cnn-p50-r.bmsdk",
    )
    pruning = result.manifest.compression.pruning
    metric = pruning.metric
    assert [stage for stage, _ in metric.stages()] == ["source", "pruned", "recovered"]
    assert metric.recovered.accuracy > metric.pruned.accuracy
    assert metric.recovered.accuracy > 0.95
    assert pruning.recovery.steps == 150 and pruning.recovery.loss_last < pruning.recovery.loss_first
    # the artifact is validated against the pruned+recovered model it came from
    ev = result.manifest.validation.eval
    assert ev.source.accuracy == pytest.approx(metric.recovered.accuracy)
    assert ev.top1_agreement == 1.0


def test_taylor_importance_uses_calibration(tmp_path, mnist):
    _, calib, _ = mnist
    result = bmsdk.convert(
        CNN, target="onnx", prune=0.3, importance="taylor", calibration=calib, output=tmp_path / "t.bmsdk"
    )
    pruning = result.manifest.compression.pruning
    assert pruning.importance == "taylor" and pruning.params.after < pruning.params.before


@pytest.mark.parametrize("target", ["onnx", "torch", "tflite"])
def test_heads_and_ffn_pruned_bert_exports(tmp_path, bert_classifier_dir, target):
    result = bmsdk.convert(bert_classifier_dir, target=target, prune=0.5, output=tmp_path / f"bert-{target}.bmsdk")
    pruning = result.manifest.compression.pruning
    assert pruning.method == "heads-ffn"
    heads, ffn = pruning.heads_per_layer, pruning.ffn_per_layer
    assert all(a == b // 2 for a, b in zip(heads.after, heads.before))
    assert all(a == b // 2 for a, b in zip(ffn.after, ffn.before))
    assert pruning.params.after < pruning.params.before
    assert result.passed is True


def test_two_four_zeroes_two_of_every_four(cnn_factory):
    import torch

    from bmsdk.converters.prune import prune
    from bmsdk.converters.sources.loader import load_source

    source = load_source(cnn_factory)
    pruned, report = prune(source, 0.5, "2:4", "magnitude", None)
    assert report.layers >= 1 and report.nonzero_params.after < report.nonzero_params.before
    fc = pruned.module.inner.inner.fc.weight  # 16 inputs: four groups of four
    groups = (fc.reshape(fc.shape[0], -1, 4) != 0).sum(-1)
    assert torch.all(groups <= 2)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"prune": 0.5, "prune_method": "heads-ffn"}, UnsupportedError, "BERT-style"),
        ({"prune": 0.5, "prune_method": "magnitude"}, UnsupportedError, "only zeroes weights"),
        ({"prune": 1.5}, UnsupportedError, "between 0 and 1"),
        ({"prune": "auto"}, UnsupportedError, "--max-accuracy-drop"),
        ({"recover": "x.npz"}, DataError, "does not exist"),
        ({"prune_method": "channels"}, UnsupportedError, "only when pruning"),
        ({"prune": 0.5, "importance": "taylor"}, DataError, "calibration"),
        ({"max_accuracy_drop": 0.5}, DataError, "--eval"),
        ({"objective": "latency"}, UnsupportedError, "float twin"),
    ],
)
def test_bad_combinations_are_refused_before_any_work(tmp_path, kwargs, error, words):
    with pytest.raises(error, match=words):
        bmsdk.convert(CNN, target="onnx", output=tmp_path / "x.bmsdk", **kwargs)
    assert not (tmp_path / "x.bmsdk").exists()


def test_cli_reports_pruning(tmp_path, capsys):
    from bmsdk.cli import main

    assert main(["convert", CNN, "--prune", "0.3", "-o", str(tmp_path / "c.bmsdk"), "-q"]) == 0
    assert "pruned 30% (channels): parameters 421,642 ->" in capsys.readouterr().out
    assert main(["convert", CNN, "--max-accuracy-drop", "0.5", "-o", str(tmp_path / "d.bmsdk"), "-q"]) == 2


def test_recovery_is_repeatable_and_leaves_the_callers_random_state_alone():
    import copy

    import torch

    from bmsdk.converters.recover import recover

    class Net(torch.nn.Module):  # dropout makes an unseeded fine-tune differ from run to run
        def __init__(self):
            super().__init__()
            self.a, self.drop, self.b = torch.nn.Linear(4, 16), torch.nn.Dropout(0.5), torch.nn.Linear(16, 3)

        def forward(self, x):
            return self.b(self.drop(self.a(x)))

    torch.manual_seed(1)
    teacher, student = Net(), Net()
    batches = [{"x": np.random.default_rng(i).random((8, 4), dtype=np.float32)} for i in range(2)]
    first, second = copy.deepcopy(student), copy.deepcopy(student)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    recover(first, teacher, batches, None, 6, "image")
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(456)  # another caller state: the same recovery all the same
    recover(second, teacher, batches, None, 6, "image")
    for p, q, before in zip(first.parameters(), second.parameters(), student.parameters()):
        assert torch.equal(p, q) and not torch.equal(p, before)
