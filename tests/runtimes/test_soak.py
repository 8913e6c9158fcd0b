"""Soak and concurrency on every backend that runs on Linux: onnxruntime, litert, mil-reference and torch.

Soak: 10,000 predictions of one image after a warm-up; the process RSS may grow by less than 10 MB and the last
prediction must equal the first. Concurrency: one loaded Model shared by 8 threads, each predicting its own
images, must give what the same predictions give one after another.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import TEXTS, digit_images

import bmsdk

BACKENDS = ["onnxruntime", "litert", "mil-reference", "torch"]
WARMUP, CALLS, MAX_GROWTH_MB = 300, 10_000, 10.0
THREADS, PER_THREAD = 8, 20


@pytest.fixture
def cnn_artifact(backend, request, converted, cnn_factory, calib_npz):
    """The small CNN converted for the backend's target, with the same cache keys as the target's own tests."""
    if backend == "onnxruntime":
        return request.getfixturevalue("cnn_onnx_artifact")
    if backend == "torch":
        return request.getfixturevalue("torch_artifact")
    if backend == "litert":
        return converted("tflite-cnn-fp32", cnn_factory, target="tflite", precision="fp32", calibration=None)
    return converted(
        "coreml-cnn-fp32", cnn_factory, target="coreml", precision="fp32", calibration=calib_npz, weight_threshold=64
    )


def rss_mb() -> float:
    """This process's resident set size, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def load(artifact, backend: str):
    model = bmsdk.load(artifact.path, backend=backend, threads=1)
    assert model.backend == backend and model.runner.thread_safe
    return model


@pytest.mark.parametrize("backend", BACKENDS, ids=BACKENDS)
def test_soak_rss_stays_flat(backend, cnn_artifact):
    model = load(cnn_artifact, backend)
    image = digit_images(1, seed=7)[0]
    first = model.predict(image)
    for _ in range(WARMUP):
        model.predict(image)
    before, start = rss_mb(), time.perf_counter()
    for _ in range(CALLS):
        last = model.predict(image)
    seconds, growth = time.perf_counter() - start, rss_mb() - before
    print(
        f"\n[soak] {backend}: {CALLS} calls in {seconds:.1f} s ({1e3 * seconds / CALLS:.2f} ms/call), "
        f"RSS {before:.1f} MB -> {before + growth:.1f} MB ({growth:+.2f} MB)"
    )
    assert growth < MAX_GROWTH_MB, f"{backend}: RSS grew {growth:.1f} MB over {CALLS} calls"
    assert last == first


def concurrent_matches_serial(model, jobs: list[list]) -> None:
    """Each job is a list of inputs for one thread; every thread's predictions must match the serial ones."""
    serial = [[model.predict(x) for x in job] for job in jobs]
    with ThreadPoolExecutor(len(jobs)) as pool:
        threaded = list(pool.map(lambda job: [model.predict(x) for x in job], jobs))
    scores = {round(p["score"], 6) for job in serial for p in job}
    assert len(scores) > len(jobs), "the inputs should give different scores, or mixed-up results would not show"
    for t, (want_job, got_job) in enumerate(zip(serial, threaded)):
        for i, (want, got) in enumerate(zip(want_job, got_job)):
            assert got["label"] == want["label"], f"thread {t}, input {i}"
            assert got["scores"].keys() == want["scores"].keys()
            for name, p in want["scores"].items():
                assert got["scores"][name] == pytest.approx(p, abs=1e-6), f"thread {t}, input {i}, class {name}"


@pytest.mark.parametrize("backend", BACKENDS, ids=BACKENDS)
def test_one_model_shared_by_threads(backend, cnn_artifact):
    model = load(cnn_artifact, backend)
    images = digit_images(THREADS * PER_THREAD, seed=21)
    concurrent_matches_serial(model, [list(images[t::THREADS]) for t in range(THREADS)])


def test_text_model_shared_by_threads(bert_onnx):
    model = load(bert_onnx, "onnxruntime")
    jobs = [
        [
            f"{TEXTS[(t + i) % len(TEXTS)]} {TEXTS[(3 * t + 2 * i) % len(TEXTS)]}" * (1 + i % 3)
            for i in range(PER_THREAD)
        ]
        for t in range(THREADS)
    ]
    concurrent_matches_serial(model, jobs)
