"""The conversion stages alone, on a tiny torch module and fakes of bmsdk's own stages (no conversion)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bmsdk.converters.compression import CompressionRequest
from bmsdk.converters.registry import get_target
from bmsdk.converters.sources.loader import Source
from bmsdk.converters.stages import (
    ConversionContext,
    ConversionRequest,
    CopySourceFiles,
    Describe,
    Package,
    PrepareData,
    Prune,
    Rebuild,
    RunReference,
    _ranking_feeds,
    check_request,
    make_request,
    run_stages,
)
from bmsdk.errors import DataError, UnsupportedError
from bmsdk.manifest import TensorSpec

torch = pytest.importorskip("torch")


class Doubler(torch.nn.Module):
    def forward(self, x):
        return x * 2


def tiny_source(tmp_path: Path) -> Source:
    extra = tmp_path / "labels.txt"
    extra.write_text("a\nb\n")
    return Source(
        format="factory",
        path="tests:doubler",
        task="feature-extraction",
        inputs=[TensorSpec("x", "float32", ["batch", 4])],
        outputs=[TensorSpec("y", "float32", ["batch", 4])],
        module=Doubler().eval(),
        files={"extra/labels.txt": extra},
        name="doubler",
    )


def context(tmp_path: Path, **request) -> ConversionContext:
    ctx = ConversionContext(ConversionRequest("src", **request), get_target("onnx"), CompressionRequest())
    ctx.source, ctx.name, ctx.folder = tiny_source(tmp_path), "doubler", tmp_path / "out"
    ctx.folder.mkdir()
    return ctx


def test_make_request_types_the_target_options():
    request = make_request({"source": "m", "target": "onnx", "precision": "int8"}, {"opset": 17})
    assert type(request.options).__name__ == "OnnxOptions" and request.options.opset == 17
    assert request.progress is not None  # SILENT when none is given


def test_make_request_refuses_a_precision_or_option_the_target_lacks():
    with pytest.raises(UnsupportedError, match="precision"):
        make_request({"source": "m", "target": "onnx", "precision": "int3"}, {})
    with pytest.raises(UnsupportedError, match="does not take"):
        make_request({"source": "m", "target": "onnx", "precision": "fp32"}, {"workspace": 4})


def test_check_request_refuses_before_any_work(tmp_path):
    with pytest.raises(DataError, match="--eval"):
        check_request(ConversionRequest(tmp_path / "never-read", max_accuracy_drop=0.5))
    ctx = check_request(ConversionRequest("m", precision="fp32", source_outputs={"k": 1}))
    assert ctx.precision == "fp32" and ctx.validation_cache == {"k": 1} and ctx.source is None


def test_stages_run_in_order_on_one_context(tmp_path):
    class Mark:
        def __init__(self, name):
            self.name = name

        def run(self, ctx):
            ctx.float_layers.append(self.name)
            return ctx

    ctx = run_stages(context(tmp_path), [Mark("a"), Mark("b")])
    assert ctx.float_layers == ["a", "b"]


def test_describe_prepare_and_run_reference(tmp_path):
    ctx = run_stages(context(tmp_path, num_samples=3), [CopySourceFiles(), Describe(), PrepareData(), RunReference()])
    assert (ctx.folder / "extra/labels.txt").read_text() == "a\nb\n"
    assert ctx.manifest.target == "onnx" and ctx.manifest.files == {"model.onnx": ""}
    assert ctx.sample_feeds["x"].shape == (3, 4) and ctx.sample_raw is None and ctx.calibration_feeds is None
    np.testing.assert_allclose(ctx.sample_reference["y"], 2 * ctx.sample_feeds["x"])
    assert _ranking_feeds(ctx) == [ctx.sample_feeds]  # no calibration or eval data: the samples rank the layers


def test_prune_stage_leaves_an_unpruned_request_alone(tmp_path):
    ctx = context(tmp_path)
    module = ctx.source.module
    assert Prune().run(ctx).source.module is module and ctx.pruning is None


def test_package_checksums_the_files_as_built(tmp_path):
    ctx = run_stages(context(tmp_path), [Describe()])
    (ctx.folder / "model.onnx").write_bytes(b"model")
    ctx = Package().run(ctx)
    assert set(ctx.manifest.files) == {"model.onnx"} and ctx.manifest.bmsdk_version and ctx.manifest.created


def test_rebuild_runs_the_stages_on_a_copy_and_copies_source_files_into_a_sibling(tmp_path):
    seen = []

    class Record:
        def run(self, ctx):
            seen.append((ctx.folder.name, ctx.precision, ctx.float_layers))
            ctx.manifest = dataclasses.replace(ctx.manifest, precision=ctx.precision)
            return ctx

    ctx = run_stages(context(tmp_path, precision="int8"), [Describe()])
    attempt = Rebuild(ctx, stages=(Record(),))
    assert attempt(ctx.folder, "int8", ["fc"]).precision == "int8"
    twin = tmp_path / "out.float"
    assert attempt(twin, "fp32", []).precision == "fp32"
    assert seen == [("out", "int8", ["fc"]), ("out.float", "fp32", [])]
    assert (twin / "extra/labels.txt").exists() and not (ctx.folder / "extra").exists()
    assert ctx.manifest.precision == "int8" and ctx.float_layers == []  # the parent context is untouched
