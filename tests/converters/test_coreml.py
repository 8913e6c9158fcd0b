"""CoreML target: every precision converts and validates on Linux through the MIL reference executor."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("coremltools")

from bmsdk.converters.targets.coreml.build import COMPRESSION  # noqa: E402

SMALL = {"weight_threshold": 256}  # the tiny test models' weights are below coremltools' default of 2048


@pytest.fixture(scope="module")
def bert_coreml(converted, bert_classifier_dir, text_jsonl):
    def get(precision):
        return converted(
            f"coreml-bert-{precision}",
            bert_classifier_dir,
            target="coreml",
            precision=precision,
            eval_data=text_jsonl,
            **SMALL,
        )

    return get


@pytest.mark.parametrize("precision", list(COMPRESSION))
def test_bert_every_precision_validates_on_the_reference_executor(bert_coreml, precision):
    result = bert_coreml(precision)
    v = result.manifest.validation
    assert v.validated and v.backend == "mil-reference" and v.device_real is False
    assert (result.path / "model.mlpackage" / "Manifest.json").is_file()
    assert any(f.startswith("model.mlpackage/") for f in result.manifest.files)
    q = result.manifest.compression.quantization
    if COMPRESSION[precision]:
        assert q.weights.compressed_weights > 0  # the weights really are stored compressed
    if precision == "fp32":
        assert v.passed and v.samples.max_rel_error <= 1e-4
    if precision in ("fp16", "int8"):
        assert v.passed, v
    if v.passed is False:  # the manifest says which check failed
        assert v.reason or v.samples.reason
    assert v.eval.top1_agreement is not None
    expected_target = "iOS18" if precision == "int4" else "iOS17"
    assert result.manifest.target_config.minimum_deployment_target == expected_target


def test_fp16_padded_batch_is_finite_and_agrees(bert_coreml, bert_classifier_dir):
    """fp16 attention masks overflow to -inf; the executor saturates like the device: finite, same answers."""
    import bmsdk
    from bmsdk.converters.sources.loader import load_source

    with bmsdk.load(bert_coreml("fp16").path) as model:
        texts = ["great", "the movie was not good at all, terrible film", "fun"]
        feeds = model.preprocess(texts)
        assert feeds["attention_mask"].min() == 0  # padding present
        got = model.run(feeds)["logits"]
    want = load_source(bert_classifier_dir).run(feeds)["logits"]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=2e-2 * np.abs(want).max())
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_cnn_and_vit(converted, cnn_factory, calib_npz, vit_dir):
    for key, source, precision in (
        ("coreml-cnn-fp32", cnn_factory, "fp32"),
        ("coreml-cnn-palettize4", cnn_factory, "palettize4"),
        ("coreml-vit-fp16", vit_dir, "fp16"),
    ):
        result = converted(
            key,
            source,
            target="coreml",
            precision=precision,
            calibration=calib_npz if source == cnn_factory else None,
            weight_threshold=64,
        )
        v = result.manifest.validation
        assert v.validated and v.passed, (key, v)
        if precision == "fp32":
            assert v.samples.max_rel_error <= 1e-4


def test_torch_export_frontend(converted, bert_encoder_dir, cnn_pt2):
    encoder = converted("coreml-enc-export", bert_encoder_dir, target="coreml", coreml_frontend="export")
    assert encoder.manifest.target_config.frontend == "export"
    v = encoder.manifest.validation
    # known gap: on padded rows the export-path BERT differs by ~4e-3 relative (trace path: 5e-7); validation says so
    assert v.validated and v.samples.min_cosine > 0.9999, v
    pt2 = converted("coreml-pt2", cnn_pt2, target="coreml")  # a .pt2 source takes the export path by default
    assert pt2.manifest.target_config.frontend == "export" and pt2.manifest.validation.passed


def test_refusals(cnn_onnx, cnn_factory, tmp_path):
    import bmsdk
    from bmsdk.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="ONNX"):
        bmsdk.convert(str(cnn_onnx), target="coreml", output=tmp_path / "a.bmsdk")
    with pytest.raises(UnsupportedError, match="iOS18"):
        bmsdk.convert(
            cnn_factory,
            target="coreml",
            precision="int4",
            minimum_deployment_target="iOS17",
            output=tmp_path / "b.bmsdk",
        )
    with pytest.raises(UnsupportedError, match="precision"):
        bmsdk.convert(cnn_factory, target="coreml", precision="int2", output=tmp_path / "c.bmsdk")
    assert not (tmp_path / "b.bmsdk").exists()


def test_backends_and_cli(bert_coreml, capsys):
    import bmsdk
    from bmsdk.cli import main
    from bmsdk.errors import BackendUnavailableError

    path = bert_coreml("int8").path
    with bmsdk.load(path) as model:
        assert model.backend == ("coreml" if sys.platform == "darwin" else "mil-reference")
        assert model.predict("great fun")["label"] in ("negative", "positive")
    if sys.platform != "darwin":
        with pytest.raises(BackendUnavailableError, match="macOS"):
            bmsdk.load(path, backend="coreml")
    assert main(["inspect", str(path)]) == 0
    assert "model.mlpackage" in capsys.readouterr().out
    assert main(["validate", str(path)]) == 0


def test_light_import_keeps_coremltools_out():
    code = (
        "import bmsdk, bmsdk.runtimes.coreml_backend, bmsdk.converters.targets.coreml.build, sys; "
        "assert 'coremltools' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_op_the_reference_executor_lacks_leaves_the_artifact_unvalidated(tmp_path):
    """The conversion itself succeeded: the artifact is written, `validated: false` naming the op."""
    import torch

    import bmsdk

    class Shuffled(torch.nn.Module):  # an image classifier whose graph has a pixel shuffle (not in the executor)
        def forward(self, x):
            return torch.nn.functional.pixel_shuffle(x.repeat(1, 4, 1, 1), 2).mean((2, 3))

    path = tmp_path / "flip.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(Shuffled(), (torch.randn(2, 3, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    result = bmsdk.convert(path, target="coreml", precision="fp32", output=tmp_path / "flip.bmsdk")
    v = result.manifest.validation
    assert (result.path / "model.mlpackage").is_dir()
    assert v.validated is False and v.passed is None and "pixel_shuffle" in v.reason


def test_a_pt2_exported_from_channels_last_examples_converts(tmp_path):
    import torch

    import bmsdk

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    example = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    batch = torch.export.Dim("batch", min=1, max=64)
    path = tmp_path / "cl.pt2"
    torch.export.save(torch.export.export(net, (example,), dynamic_shapes=({0: batch},)), str(path))
    result = bmsdk.convert(path, target="coreml", precision="fp32", output=tmp_path / "cl.bmsdk")
    assert result.passed and result.manifest.validation.backend == "mil-reference"


def test_a_failed_conversion_does_not_break_the_next_one(tmp_path, cnn_factory):
    """coremltools keeps flexible-dim symbols in a global registry that only a successful conversion clears."""
    import torch

    import bmsdk

    class Broken(torch.nn.Module):  # fails inside coremltools, after the "batch" symbol was registered
        def forward(self, x):
            return torch.linalg.svd(x.flatten(2)).S

    path = tmp_path / "broken.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(Broken(), (torch.randn(2, 3, 4, 4),), dynamic_shapes=({0: batch},)), path)
    with pytest.raises(bmsdk.BmsdkError):
        bmsdk.convert(path, target="coreml", output=tmp_path / "broken.bmsdk", coreml_frontend="trace")
    result = bmsdk.convert(cnn_factory, target="coreml", output=tmp_path / "cnn.bmsdk")
    assert result.passed


def test_torch_numpy_style_aliases_convert(tmp_path):
    """torch.multiply, subtract, divide, greater, swapaxes (ConvBERT's attention uses torch.multiply) trace to ops
    coremltools registers only by their short names; bmsdk's shims give them the short names' converters."""
    import coremltools as ct
    import torch

    from bmsdk.converters.targets.coreml.shims import register
    from bmsdk.runtimes.mil_executor import MilProgram

    class Aliases(torch.nn.Module):
        def forward(self, x):
            y = torch.divide(torch.subtract(torch.multiply(x, 3.0), 1.0), 2.0)
            y = torch.where(torch.greater(y, 0.5), y, torch.negative(y))
            return torch.swapaxes(torch.concatenate([y, torch.absolute(x)], dim=1), 1, 2)

    register()
    x = torch.randn(2, 3, 4)
    model = ct.convert(
        torch.jit.trace(Aliases().eval(), x),
        inputs=[ct.TensorType(name="x", shape=x.shape)],
        outputs=[ct.TensorType(name="y")],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS17,
        compute_precision=ct.precision.FLOAT32,
    )
    model.save(str(tmp_path / "aliases.mlpackage"))
    got = MilProgram(tmp_path / "aliases.mlpackage").run({"x": x.numpy()})["y"]
    np.testing.assert_allclose(got, Aliases()(x).numpy(), rtol=1e-5, atol=1e-6)
