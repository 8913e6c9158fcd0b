"""Quantization under an accuracy budget, measured on the artifact through its own runtime, and the latency objective.

The budget tests use ccexam's MNIST CNN on the 200 test digits it is least sure about, labelled with its own float
predictions: float accuracy is 100%, int8 flips a few of these close calls, so a 0-point budget forces layers back
to float.
"""

from __future__ import annotations

import numpy as np
import pytest

import bmsdk
from bmsdk.benchmarks import zoo

CNN = "bmsdk.benchmarks.zoo:mnist_cnn"


@pytest.fixture(scope="module")
def close_calls(tmp_path_factory) -> tuple:
    import torch

    test, calib = zoo.mnist_data()
    with np.load(test) as data:
        images = data["x"][:3000]
    x = (images.astype(np.float32) / 255.0 - 0.1307) / 0.3081
    with torch.no_grad():
        logits = zoo.mnist_cnn()(torch.from_numpy(x[:, None])).numpy()
    top2 = np.sort(logits, -1)[:, -2:]
    chosen = np.argsort(top2[:, 1] - top2[:, 0])[:200]
    path = tmp_path_factory.mktemp("data") / "close-calls.npz"
    np.savez(path, x=images[chosen], y=logits[chosen].argmax(-1))
    return path, calib


@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_budget_returns_sensitive_layers_to_float_until_it_fits(tmp_path, close_calls, target):
    data, calib = close_calls
    kwargs = dict(target=target, precision="int8", calibration=calib, eval_data=data)
    plain = bmsdk.convert(CNN, output=tmp_path / "plain.bmsdk", **kwargs)
    plain_drop = -100 * plain.manifest.validation.eval.delta.accuracy
    assert plain_drop > 0, "int8 should flip some of the CNN's close calls"

    result = bmsdk.convert(CNN, output=tmp_path / "budget.bmsdk", max_accuracy_drop=0.0, **kwargs)
    budget = result.manifest.compression.budget
    assert budget.rounds[0].float_layers == 0 and budget.rounds[0].drop_pt == pytest.approx(plain_drop)
    assert 1 <= len(budget.float_layers) == budget.rounds[-1].float_layers
    assert len(budget.ranking) == 4 and budget.ranking[0].error >= budget.ranking[-1].error
    assert result.manifest.compression.quantization.float_layers  # the target really kept them in float
    assert result.manifest.precision == "int8"
    if target == "onnx":  # float compute nodes with float activations: all-float equals the source
        assert budget.met is True and budget.drop_pt <= 0.0 and result.passed is True
    elif not budget.met:  # TFLite static int8 keeps int8 activations between float ops: may not reach 0 pt
        assert result.passed is False and "not met" in budget.reason


def test_unmeetable_budget_is_refused_honestly(tmp_path):
    """ccexam's CNN with half its channels pruned and no recovery loses more than 0.5 pt: float layers cannot help."""
    test, calib = zoo.mnist_data()
    subset = tmp_path / "mnist-500.npz"
    with np.load(test) as data:
        np.savez(subset, x=data["x"][:500], y=data["y"][:500])
    result = bmsdk.convert(
        CNN,
        target="onnx",
        precision="int8",
        calibration=calib,
        eval_data=subset,
        prune=0.5,
        max_accuracy_drop=0.5,
        output=tmp_path / "p.bmsdk",
    )
    budget = result.manifest.compression.budget
    assert budget.met is False and budget.drop_pt > 0.5
    assert "not met" in budget.reason and budget.float_layers  # it tried every layer in float first
    assert result.passed is False and "not met" in result.manifest.validation.reason


def test_latency_objective_ships_the_faster_and_says_why(tmp_path, cnn_factory, calib_npz):
    result = bmsdk.convert(
        cnn_factory,
        target="onnx",
        precision="int8",
        calibration=calib_npz,
        objective="latency",
        output=tmp_path / "lat.bmsdk",
    )
    decision = result.manifest.compression.objective
    times = decision.p50_ms
    assert set(times) == {"int8", "fp32"} and all(t > 0 for t in times.values())
    faster = min(times, key=times.get)
    assert decision.shipped == faster == result.manifest.precision  # no budget: the faster one ships, whichever
    assert "faster" in decision.reason
    with bmsdk.load(result.path) as model:  # what shipped is a complete, loadable artifact of that precision
        assert model.manifest.precision == faster
        assert (result.path / "samples.npz").exists()
