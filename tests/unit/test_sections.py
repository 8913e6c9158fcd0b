"""The typed report sections of bmsdk.json (bmsdk.sections) and the schema v1 -> v2 migration. No conversions.

The v1 manifests under fixtures/v1 were written by the converters before schema v2 (one per writer path:
each target and precision family, pruning with recovery and search, the accuracy budget, the latency objective).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from bmsdk.converters import all_targets, get_target
from bmsdk.errors import ManifestError, UnsupportedError
from bmsdk.manifest import MANIFEST_NAME, SCHEMA_VERSION, Manifest
from bmsdk.sections import (
    REMAKE,
    BuildConfig,
    Compression,
    CoreMLConfig,
    LiteRTConfig,
    OnnxConfig,
    Profile,
    Quantization,
    SampleCheck,
    TensorRTConfig,
    Tolerance,
    Validation,
    WeightCompression,
    target_config_from_dict,
)

V1 = sorted((Path(__file__).parent / "fixtures" / "v1").glob("*.json"))
IOS_FIXTURES = Path(__file__).parents[2] / "examples" / "ios" / "Tests" / "BMSDKTests" / "Fixtures"
# the v1 manifests of converted artifacts (the image-* fixtures hold only a pre-processing around made-up logits;
# the vectors of the device fixtures (spans-*, audio-*, segmentation-*, detection-*) are written as schema v2)
DEVICE_FIXTURES = ("spans-", "audio-", "segmentation-", "detection-")
IOS_V1 = sorted(
    p
    for p in IOS_FIXTURES.glob("*/bmsdk.json")
    if "files" in json.loads(p.read_text()) and not p.parent.name.startswith(DEVICE_FIXTURES)
)


def v1(name: str) -> dict:
    return json.loads((Path(__file__).parent / "fixtures" / "v1" / f"{name}.json").read_text())


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def refused(d: dict, match: str) -> ManifestError:
    with pytest.raises(ManifestError, match=match) as info:
        Manifest.from_dict(d)
    assert info.value.fix == REMAKE
    return info.value


# --- v1 manifests load, migrated; v2 is written ---------------------------------------------------------------


def test_the_fixtures_are_schema_v1():
    assert len(V1) >= 10 and len(IOS_V1) == 2
    assert {json.loads(p.read_text())["schema_version"] for p in V1 + IOS_V1} == {1}


@pytest.mark.parametrize("path", V1 + IOS_V1, ids=lambda p: p.stem if p.stem != "bmsdk" else p.parent.name)
def test_v1_manifest_migrates_on_read_and_writes_v2(tmp_path, path):
    old = json.loads(path.read_text())
    shutil.copyfile(path, tmp_path / MANIFEST_NAME)
    m = Manifest.read(tmp_path)
    assert m.schema_version == SCHEMA_VERSION == 2
    assert isinstance(m.validation, Validation) and isinstance(m.compression, Compression)
    m.write(tmp_path)
    new = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert new["schema_version"] == 2
    # the same JSON but for the version and the nulls v1 wrote for unset fields
    assert {k: without_nulls(v) for k, v in new.items() if k != "schema_version"} == {
        k: without_nulls(v) for k, v in old.items() if k != "schema_version"
    }
    assert Manifest.read(tmp_path) == m


def test_v1_sections_become_typed_objects():
    trt = Manifest.from_dict(v1("tensorrt-int8"))
    assert isinstance(trt.target_config, TensorRTConfig) and isinstance(trt.target_config.build, BuildConfig)
    assert isinstance(trt.target_config.build.profiles["input"], Profile)
    assert trt.target_config.engine is None  # v1 wrote null: no engine was built here
    assert trt.compression.quantization.calibration.method == "max"
    assert trt.validation.samples.tolerance == Tolerance(min_cosine=0.98)
    tflite = Manifest.from_dict(v1("bert-tflite-int8"))
    assert isinstance(tflite.target_config, LiteRTConfig)
    assert set(tflite.target_config.signatures) == {"seq_16", "seq_32", "seq_64"}
    assert tflite.compression.quantization.tolerance_search.all_int8.share_within >= 0
    assert tflite.validation.eval.artifact.n == tflite.validation.eval.n
    coreml = Manifest.from_dict(v1("coreml-int4"))
    assert isinstance(coreml.target_config, CoreMLConfig)
    assert isinstance(coreml.compression.quantization.weights, WeightCompression)
    assert coreml.compression.quantization.weights.block_size == 32
    assert isinstance(Manifest.from_dict(v1("onnx-fp16")).compression.quantization.weights, type(None))
    auto = Manifest.from_dict(v1("onnx-prune-auto"))
    assert auto.compression.pruning.search.chosen in [t.ratio for t in auto.compression.pruning.search.tried]
    assert auto.compression.objective.shipped in auto.compression.objective.p50_ms
    assert [stage for stage, _ in auto.compression.pruning.metric.stages()] == ["source", "pruned"]
    assert Manifest.from_dict(v1("enc-torch")).target_config is None  # the torch target records none
    assert Manifest.from_dict(v1("enc-onnx-eval")).validation.eval.mean_cosine > 0.99


def test_v1_is_migrated_by_an_explicit_step():
    import bmsdk.manifest

    d = v1("onnx-fp16")
    assert bmsdk.manifest.migrate(d)["schema_version"] == 2
    assert d["schema_version"] == 1  # the caller's dict is left alone


@pytest.mark.parametrize("version", [0, -1])
def test_schema_versions_no_bmsdk_wrote_are_refused(version):
    d = v1("onnx-fp16")
    d["schema_version"] = version
    refused(d, "no bmsdk wrote")


def test_a_newer_schema_is_refused():
    d = v1("onnx-fp16")
    d["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ManifestError, match="upgrade"):
        Manifest.from_dict(d)


# --- each section round trips and leaves out None --------------------------------------------------------------


@pytest.mark.parametrize("path", V1, ids=lambda p: p.stem)
def test_sections_round_trip(path):
    d = json.loads(path.read_text())
    for cls, key in ((Validation, "validation"), (Compression, "compression")):
        section = cls.from_dict(copy.deepcopy(d[key]), key)
        assert section.to_dict() == without_nulls(d[key])
        assert cls.from_dict(section.to_dict(), key) == section
    config = target_config_from_dict(d["target"], copy.deepcopy(d["target_config"]))
    assert (config.to_dict() if config else {}) == without_nulls(d["target_config"])


def test_to_dict_leaves_out_unset_fields():
    check = SampleCheck(n=2, tolerance=Tolerance(min_cosine=0.98), passed=False, reason="artifact has no output 'x'")
    assert check.to_dict() == {
        "n": 2,
        "tolerance": {"min_cosine": 0.98},
        "passed": False,
        "reason": "artifact has no output 'x'",
    }
    assert Compression().to_dict() == {} and Validation().to_dict() == {"validated": False}


def test_empty_sections_are_the_defaults():
    d = v1("onnx-fp16")
    d["validation"], d["compression"], d["target_config"] = {}, {}, {}
    m = Manifest.from_dict(d)
    assert m.validation == Validation() and m.compression == Compression() and m.target_config is None
    for key in ("validation", "compression", "target_config"):
        del d[key]
    assert Manifest.from_dict(d) == m


def test_numbers_load_as_floats_and_ints_stay_ints():
    d = v1("onnx-fp16")
    d["validation"]["samples"]["max_abs_error"] = 0
    m = Manifest.from_dict(d)
    assert m.validation.samples.max_abs_error == 0.0 and isinstance(m.validation.samples.max_abs_error, float)
    assert isinstance(m.validation.samples.n, int)


# --- bad input is refused with the field named -----------------------------------------------------------------


def _set(d: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    node = d
    for key in parents:
        node = node[key]
    node[last] = value
    return d


BAD_TYPES = [
    ("onnx-fp16", "validation.validated", "yes", "'validation.validated' must be true or false"),
    ("onnx-fp16", "validation.passed", 1, "'validation.passed' must be true or false or null"),
    ("onnx-fp16", "validation.samples.n", "8", "'validation.samples.n' must be an integer"),
    ("onnx-fp16", "validation.samples.n", True, "'validation.samples.n' must be an integer"),
    ("onnx-fp16", "validation.samples.n", 8.5, "'validation.samples.n' must be an integer"),
    ("onnx-fp16", "validation.samples.min_cosine", "0.9", "'validation.samples.min_cosine' must be a number"),
    ("onnx-fp16", "validation.samples.tolerance", [0.98], "'validation.samples.tolerance' must be an object"),
    ("onnx-fp16", "validation.samples", "ok", "'validation.samples' must be an object"),
    ("onnx-fp16", "compression.quantization.scheme", 16, "'compression.quantization.scheme' must be a string"),
    ("onnx-fp16", "compression.quantization", ["fp16"], "'compression.quantization' must be an object"),
    ("onnx-int8-budget", "compression.quantization.float_nodes", "Conv:x", "float_nodes' must be a list"),
    ("onnx-int8-budget", "compression.quantization.float_nodes", ["Conv:a", 3], r"float_nodes\[1\]' must be a string"),
    ("onnx-int8-budget", "compression.budget.met", "no", "'compression.budget.met' must be true or false"),
    ("onnx-prune-recover", "compression.pruning.params.before", 1.5, "'compression.pruning.params.before' must be"),
    ("onnx-prune-recover", "compression.pruning.recovery.steps", None, "'compression.pruning.recovery.steps' must be"),
    ("coreml-int4", "compression.quantization.weights", 4, "quantization.weights' must be a string or an object"),
    ("coreml-int4", "compression.quantization.weights.nbits", "4", "weights.nbits' must be an integer or null"),
    ("coreml-int4", "target_config.flexible_shapes.batch", "1-1024", "'target_config.flexible_shapes.batch' must be a"),
    ("onnx-fp16", "target_config.opset", "18", "'target_config.opset' must be an integer"),
    (
        "tensorrt-int8",
        "target_config.build.profiles.input.min",
        [1, "1", 28, 28],
        r"'target_config.build.profiles.input.min\[1\]' must be an integer",
    ),
    ("tensorrt-int8", "target_config.op_check.op_types.Conv", "2", "'target_config.op_check.op_types.Conv' must be"),
    ("bert-tflite-int8", "target_config.signatures.seq_16.inputs.input_ids.tensor", None, "input_ids.tensor' must"),
    (
        "tflite-int8-budget",
        "target_config.signatures.serving_default.inputs.input.quantization.scale",
        "0.1",
        "quantization.scale' must be a number",
    ),
    ("bert-tflite-int8", "target_config.pad_values.input_ids", 0.5, "'target_config.pad_values.input_ids' must be"),
]


@pytest.mark.parametrize("fixture,path,value,match", BAD_TYPES, ids=[f"{p}={v!r}" for _, p, v, _ in BAD_TYPES])
def test_each_bad_type_is_refused_naming_the_field(fixture, path, value, match):
    refused(_set(v1(fixture), path, value), match)


@pytest.mark.parametrize(
    "fixture,path",
    [
        ("onnx-fp16", "validation"),
        ("onnx-fp16", "validation.samples"),
        ("onnx-fp16", "validation.samples.tolerance"),
        ("onnx-fp16", "compression"),
        ("onnx-fp16", "compression.quantization"),
        ("onnx-prune-recover", "compression.pruning.macs"),
        ("onnx-fp16", "target_config"),
        ("tensorrt-int8", "target_config.build"),
        ("coreml-pal4", "compression.quantization.weights"),
        ("bert-tflite-int8", "target_config.signatures.seq_16.outputs.logits"),
    ],
)
def test_unknown_keys_are_refused(fixture, path):
    d = v1(fixture)
    node = d
    for key in path.split("."):
        node = node[key]
    node["surprise"] = 1
    refused(d, rf"'{path}' has unknown fields \['surprise'\]")


@pytest.mark.parametrize(
    "fixture,path,field",
    [
        ("tensorrt-int8", "target_config", "config_hash"),
        ("tensorrt-int8", "target_config.build", "profiles"),
        ("onnx-fp16", "validation.samples", "tolerance"),
        ("onnx-fp16", "compression.quantization", "scheme"),
        ("bert-tflite-int8", "target_config", "signatures"),
        ("coreml-int8", "compression.quantization.weights", "method"),
    ],
)
def test_missing_required_fields_are_refused(fixture, path, field):
    d = v1(fixture)
    node = d
    for key in path.split("."):
        node = node[key]
    del node[field]
    refused(d, f"'{path}' is missing '{field}'")


def test_tensorrt_config_hashes_stay_those_of_v1():
    """Engine caches are keyed by the build config's hash: the typed BuildConfig must hash as v1's dict did."""
    from bmsdk.runtimes.tensorrt_engine import config_hash

    for name in ("tensorrt-int8", "tensorrt-fp16-sparse", "bert-trt-2-4"):
        d = v1(name)
        m = Manifest.from_dict(d)
        assert config_hash(d["files"]["model.onnx"], m.target_config.build) == d["target_config"]["config_hash"]


def test_the_target_selects_the_config_class():
    d = v1("onnx-fp16")
    d["target_config"] = v1("coreml-int8")["target_config"]
    refused(d, r"'target_config' has unknown fields \['flexible_shapes'")
    d = v1("enc-torch")
    d["target_config"] = {"opset": 18}
    refused(d, "must be empty for target 'torch'")
    assert isinstance(Manifest.from_dict(v1("onnx-fp16")).target_config, OnnxConfig)


def test_long_field_paths_and_values_are_cut_in_errors():
    d = v1("coreml-int8")
    d["target_config"]["io_dtypes"]["k" * 10_000] = ["x" * 10_000]
    err = refused(d, "must be a string")
    assert len(str(err)) < 400


def test_sections_refuse_non_objects_directly():
    with pytest.raises(ManifestError, match="'quantization' must be an object"):
        Quantization.from_dict("fp16", "quantization")
    with pytest.raises(ManifestError, match="'quantization' is missing 'scheme'"):
        Quantization.from_dict({}, "quantization")


# --- tolerances -------------------------------------------------------------------------------------------------


def test_tolerances_are_typed_and_keep_their_numbers():
    onnx, tflite, coreml, tensorrt = (get_target(n) for n in ("onnx", "tflite", "coreml", "tensorrt"))
    assert onnx.tolerance("fp32") == Tolerance(max_rel_error=1e-4, min_cosine=0.9999)
    assert onnx.tolerance("fp16") == Tolerance(max_rel_error=2e-2, min_cosine=0.999)
    for target, precision in ((onnx, "int8"), (tflite, "int8-dynamic"), (tensorrt, "fp8"), (coreml, "int8")):
        assert target.tolerance(precision) == Tolerance(min_cosine=0.98)
    for precision in ("int4", "palettize4", "palettize6", "palettize8", "sparse50"):
        assert coreml.tolerance(precision) == Tolerance(min_cosine=0.98, min_top1_agreement=0.99)


def test_every_target_precision_has_a_typed_tolerance():
    for target in all_targets():
        assert all(isinstance(target.tolerance(p), Tolerance) for p in target.precisions)


def test_an_unknown_precision_has_no_tolerance():
    with pytest.raises(UnsupportedError, match="does not support precision 'int3'"):
        get_target("onnx").tolerance("int3")
