"""The Backend interface, the onnxruntime and torch backends, thread safety, and validation against samples."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import TEXTS, digit_images

import bmsdk
from bmsdk.artifact import load_samples, open_artifact
from bmsdk.compare import FP32, INT8, compare_outputs
from bmsdk.converters import get_target
from bmsdk.converters.validate import validate_artifact
from bmsdk.errors import BackendUnavailableError, UnsupportedError
from bmsdk.runtimes import Backend, open_backend
from bmsdk.runtimes.onnxruntime_backend import OnnxRuntimeBackend


def test_onnxruntime_backend_interface(cnn_onnx_artifact):
    folder, manifest = open_artifact(cnn_onnx_artifact.path)
    with open_backend(folder, manifest, threads=1) as backend:
        assert isinstance(backend, Backend) and isinstance(backend, OnnxRuntimeBackend)
        assert backend.name == "onnxruntime" and backend.thread_safe is True and backend.device_real is True
        assert backend.providers == ["CPUExecutionProvider"]
        assert [s.name for s in backend.inputs] == ["input"] and [s.name for s in backend.outputs] == ["logits"]
        out = backend.run({"input": np.zeros((5, 1, 28, 28), np.float32)})
        assert set(out) == {"logits"} and out["logits"].shape == (5, 10) and out["logits"].dtype == np.float32
    assert backend.session is None  # closed on leaving the block


def test_missing_provider_is_reported(cnn_onnx_artifact):
    folder, manifest = open_artifact(cnn_onnx_artifact.path)
    with pytest.raises(BackendUnavailableError, match="NoSuchExecutionProvider"):
        OnnxRuntimeBackend(folder, manifest, providers=["NoSuchExecutionProvider"])


def test_threads_option_gives_the_same_answer(bert_onnx):
    feeds = bmsdk.load(bert_onnx.path).preprocess(TEXTS)
    a = bmsdk.load(bert_onnx.path, threads=1).run(feeds)["logits"]
    b = bmsdk.load(bert_onnx.path, threads=2).run(feeds)["logits"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_model_context_manager(cnn_onnx_artifact):
    with bmsdk.load(cnn_onnx_artifact.path) as model:
        assert "onnxruntime" in repr(model) and "image-classification" in repr(model)
        model.predict(digit_images(1)[0])
    assert model.runner.session is None


def _concurrent(fn, jobs, workers=8):
    barrier = threading.Barrier(workers)

    def start(job):
        if job < workers:
            barrier.wait(timeout=60)  # make the first calls truly overlap
        return fn(job)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(start, range(jobs)))


def test_onnxruntime_backend_is_thread_safe(bert_onnx):
    model = bmsdk.load(bert_onnx.path, threads=1)
    assert model.runner.thread_safe
    # different inputs per job (batch sizes and lengths vary), so mixed-up results would show
    inputs = [
        model.preprocess([TEXTS[(j + k) % len(TEXTS)] * (1 + j % 3) for k in range(1 + j % 4)]) for j in range(48)
    ]
    expected = [model.run(feeds)["logits"] for feeds in inputs]
    got = _concurrent(lambda j: model.run(inputs[j])["logits"], len(inputs))
    for j, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(a, b, err_msg=f"job {j}")


def test_predict_is_thread_safe(cnn_onnx_artifact):
    model = bmsdk.load(cnn_onnx_artifact.path)
    images = digit_images(32, seed=13)
    expected = [model.predict(img) for img in images]
    got = _concurrent(lambda j: model.predict(images[j]), len(images))
    assert got == expected


def test_torch_backend_runs_pt2(converted, cnn_factory):
    result = converted("cnn-torch", cnn_factory, target="torch")
    folder, manifest = open_artifact(result.path)
    with open_backend(folder, manifest) as backend:
        assert backend.name == "torch" and backend.thread_safe is True
        out = backend.run({"input": np.zeros((3, 1, 28, 28), np.float32)})
        assert out["logits"].shape == (3, 10)


# --- validation is a real check --------------------------------------------------------


def test_revalidating_from_samples(cnn_onnx_artifact):
    folder, manifest = open_artifact(cnn_onnx_artifact.path)
    inputs, outputs, _ = load_samples(folder)
    result = validate_artifact(folder, manifest, inputs, outputs)
    assert result.validated is True and result.passed is True
    assert result.samples.max_rel_error < 1e-5
    # a reference that differs by 1% must fail an fp32 artifact
    wrong = {k: v * 1.01 for k, v in outputs.items()}
    result = validate_artifact(folder, manifest, inputs, wrong)
    assert result.passed is False and "relative error" in result.samples.reason


def test_compare_outputs_tolerances():
    rng = np.random.default_rng(0)
    ref = {"logits": rng.standard_normal((6, 10)).astype(np.float32)}
    close = {"logits": ref["logits"] + 1e-6}
    assert compare_outputs(ref, close, FP32).passed is True
    off = {"logits": ref["logits"] + 0.05}
    assert compare_outputs(ref, off, FP32).passed is False
    assert compare_outputs(ref, off, INT8).passed is True  # int8 is judged by cosine
    flipped = {"logits": -ref["logits"]}
    stats = compare_outputs(ref, flipped, INT8)
    assert stats.passed is False and stats.top1_agreement < 0.5
    assert compare_outputs(ref, {"logits": ref["logits"][:3]}, FP32).passed is False
    missing = compare_outputs(ref, {"other": ref["logits"]}, FP32)
    assert missing.passed is False and missing.n == 6 and missing.max_rel_error is None
    with pytest.raises(UnsupportedError, match="does not support precision 'int3'"):
        get_target("onnx").tolerance("int3")
