"""The demo's real image model end to end: ccexam's pretrained MNIST CNN on the official MNIST test set."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import bmsdk
from bmsdk.benchmarks import zoo


def test_mnist_test_set_is_the_official_one(mnist):
    with np.load(mnist[0]) as data:
        assert (
            data["x"].shape == (2000, 28, 28)
            and data["x"].dtype == np.uint8
            and set(data["y"].tolist()) == set(range(10))
        )


def test_mnist_pickle_loader_refuses_anything_but_arrays(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    payload = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        zoo._NumpyOnlyUnpickler(__import__("io").BytesIO(payload)).load()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_ccexam_cnn_converts_and_keeps_accuracy(tmp_path, mnist, precision):
    test, calib = mnist
    result = bmsdk.convert(
        "bmsdk.benchmarks.zoo:mnist_cnn",
        target="onnx",
        precision=precision,
        eval_data=test,
        calibration=calib,
        output=tmp_path / f"mnist-{precision}.bmsdk",
    )
    v = result.manifest.validation
    assert v.passed is True
    ev = v.eval
    assert ev.n == 2000
    assert ev.source.accuracy > 0.98  # the pretrained CNN, measured through bmsdk's own pre-processing
    assert abs(ev.delta.accuracy) <= 0.005
    if precision == "fp32":
        assert ev.top1_agreement == 1.0 and v.samples.max_rel_error < 1e-4
    else:
        assert result.manifest.compression.quantization.scheme == "static-qdq"
        assert ev.top1_agreement > 0.99
    with bmsdk.load(result.path) as model:
        with np.load(test) as data:
            images, labels = data["x"][:16], data["y"][:16]
        predicted = [int(p["label"]) for p in model.predict(list(images))]
    assert np.mean(np.asarray(predicted) == labels) >= 0.9
