"""Untrusted input gets a typed bmsdk error naming the file, the problem and the fix (issue #12).

A: bmsdk.json sections checked on load; B: data files; C: bench baselines; D: what predict() takes;
E: command-line arguments refused before any work.
"""

from __future__ import annotations

import copy
import io
import json
import re
import shutil

import numpy as np
import pytest
from conftest import digit_images

import bmsdk
from bmsdk.cli import _labels, main
from bmsdk.data import load_dataset
from bmsdk.errors import DataError, InputError, ManifestError, SourceError, UnsupportedError
from bmsdk.manifest import MANIFEST_NAME, Manifest


def manifest_dict(result) -> dict:
    return json.loads((result.path / MANIFEST_NAME).read_text())


def refused(d: dict, match: str) -> ManifestError:
    with pytest.raises(ManifestError, match=match) as info:
        Manifest.from_dict(d)
    return info.value


# --- A. manifest --------------------------------------------------------------------------


def test_manifest_nested_100000_levels_deep_is_a_manifest_error(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ManifestError, match="nested too deeply"):
        Manifest.read(tmp_path)


def test_manifest_section_nested_too_deep_is_refused(cnn_onnx_artifact):
    d = manifest_dict(cnn_onnx_artifact)
    deep: dict = {}
    for _ in range(200):
        deep = {"x": deep}
    d["compression"] = deep
    refused(d, "nested more than 64 levels")


def test_manifest_file_over_the_size_cap_is_not_parsed(tmp_path, monkeypatch):
    import bmsdk.manifest

    monkeypatch.setattr(bmsdk.manifest, "MAX_MANIFEST_BYTES", 1000)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"pad": "x" * 2000}))
    with pytest.raises(ManifestError, match="larger than"):
        Manifest.read(tmp_path)


def test_manifest_with_invalid_utf8_is_a_manifest_error(tmp_path):
    (tmp_path / MANIFEST_NAME).write_bytes(b'{"name": "\xff\xfe"}')
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.read(tmp_path)


def test_real_artifact_manifests_still_load(bert_onnx, cnn_onnx_artifact):
    for result in (bert_onnx, cnn_onnx_artifact):
        d = manifest_dict(result)
        assert Manifest.from_dict(copy.deepcopy(d)).to_dict() == d


@pytest.mark.parametrize("key", ["inputs", "outputs"])
def test_manifest_without_inputs_or_outputs_is_refused(cnn_onnx_artifact, key):
    d = manifest_dict(cnn_onnx_artifact)
    d[key] = []
    refused(d, f"declares no {key}")


@pytest.mark.parametrize("dim", [0, -1, 2**20 + 1, "", "x" * 100, "batch; rm -rf", 1.0, None])
def test_manifest_bad_dims_are_refused(cnn_onnx_artifact, dim):
    d = manifest_dict(cnn_onnx_artifact)
    d["inputs"][0]["shape"][0] = dim
    refused(d, "bad dim")


def test_manifest_fixed_dims_over_the_element_cap_are_refused(cnn_onnx_artifact):
    d = manifest_dict(cnn_onnx_artifact)
    d["outputs"][0]["shape"] = ["batch", 2**20, 2**20, 4]
    refused(d, "too large")


def test_manifest_dynamic_dim_names_from_onnx_are_accepted(cnn_onnx_artifact):
    d = manifest_dict(cnn_onnx_artifact)
    d["outputs"][0]["shape"] = ["batch_size", "s0 + 1"]
    d["postprocessing"]["labels"] = None
    Manifest.from_dict(d)


def test_manifest_duplicate_input_names_are_refused(bert_onnx):
    d = manifest_dict(bert_onnx)
    d["inputs"][1]["name"] = d["inputs"][0]["name"]
    refused(d, r"declares inputs \['input_ids'\] more than once")


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("tokenizer", None, "'tokenizer' must name"),
        ("tokenizer", "../tokenizer.json", "'tokenizer' must name"),
        ("tokenizer", "tokenizer/other.json", "'tokenizer' must name"),
        ("max_length", 0, "'max_length' must be an int from 1 to 65536"),
        ("max_length", 65537, "'max_length'"),
        ("max_length", "128", "'max_length'"),
        ("max_length", True, "'max_length'"),
        ("pad_id", -1, "'pad_id' must be an int >= 0"),
        ("pad_id", 0.5, "'pad_id'"),
    ],
)
def test_manifest_bad_text_preprocessing_is_refused(bert_onnx, field, value, match):
    d = manifest_dict(bert_onnx)
    d["preprocessing"][field] = value
    refused(d, match)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("size", [0, 28], "'size' must be"),
        ("size", [28], "'size' must be"),
        ("size", [28, 16385], "'size' must be"),
        ("size", [28, 32], "'size' is \\[28, 32\\] but input 'input' is 28x28"),
        ("channels", 0, "'channels' must be an int from 1 to 4"),
        ("channels", 5, "'channels' must be"),
        ("channels", 3, "'channels' is 3 but input 'input' has 1 channels"),
        ("layout", "HWC", "'layout' must be NCHW or NHWC"),
        ("scale", float("nan"), "'scale' must be a finite number"),
        ("scale", "1/255", "'scale'"),
        ("mean", [0.1, 0.2], "'mean' must be 1 finite numbers"),
        ("mean", [float("inf")], "'mean'"),
        ("std", ["x"], "'std' must be"),
        ("std", [0.0], "'std' must not contain 0"),
        ("input_name", "pixels", "'input_name' 'pixels' is not one of the inputs"),
    ],
)
def test_manifest_bad_image_preprocessing_is_refused(cnn_onnx_artifact, field, value, match):
    d = manifest_dict(cnn_onnx_artifact)
    d["preprocessing"][field] = value
    refused(d, match)


def test_manifest_unknown_preprocessing_kind_is_refused(cnn_onnx_artifact):
    d = manifest_dict(cnn_onnx_artifact)
    d["preprocessing"]["kind"] = "video"
    refused(d, "unknown kind 'video'")


def test_manifest_without_preprocessing_kind_is_a_raw_tensor_model(cnn_onnx_artifact):
    d = manifest_dict(cnn_onnx_artifact)
    d["preprocessing"] = {}
    assert Manifest.from_dict(d).preprocessing == {}


@pytest.mark.parametrize(
    "post,match",
    [
        ({"labels": "cat,dog"}, "'labels' must be a list of strings"),
        ({"labels": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, "'labels' must be a list of strings"),
        ({"labels": ["a", "b", "c"]}, "3 labels but output 'logits' has 10 classes"),
        ({"output": "probabilities"}, "names output 'probabilities', which is not declared"),
    ],
)
def test_manifest_bad_postprocessing_is_refused(cnn_onnx_artifact, post, match):
    d = manifest_dict(cnn_onnx_artifact)
    d["postprocessing"].update(post)
    refused(d, match)


@pytest.mark.parametrize("key", ["compression", "validation", "target_config", "source", "toolchain"])
def test_manifest_free_form_sections_must_be_objects(cnn_onnx_artifact, key):
    d = manifest_dict(cnn_onnx_artifact)
    d[key] = "anything"
    refused(d, f"'{key}' must be an object")


def test_manifest_error_messages_are_cut_to_a_readable_length(cnn_onnx_artifact):
    d = manifest_dict(cnn_onnx_artifact)
    d["preprocessing"]["kind"] = "x" * 100_000
    err = refused(d, "unknown kind")
    assert len(str(err)) < 400
    d = manifest_dict(cnn_onnx_artifact)
    d["task"] = "y" * 100_000
    assert len(str(refused(d, "unknown task"))) < 500


# --- B. data files ------------------------------------------------------------------------


def test_jsonl_with_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "good", "label": 1}\n{"text": "\xff\xfe", "label": 0}\n')
    with pytest.raises(DataError, match=r"bad.jsonl line 2 is not valid UTF-8.*save the file as UTF-8"):
        load_dataset(path)


def test_jsonl_and_csv_with_a_utf8_bom_load(tmp_path):
    jsonl, csv_file = tmp_path / "bom.jsonl", tmp_path / "bom.csv"
    jsonl.write_bytes(b'\xef\xbb\xbf{"text": "good", "label": 1}\n')
    csv_file.write_bytes(b"\xef\xbb\xbftext,label\ngood,1\n")
    assert load_dataset(jsonl).items == ["good"] and load_dataset(csv_file).labels == ["1"]


def test_csv_field_over_the_csv_limit_is_a_data_error(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text('text,label\n"' + "a" * 200_000 + '",1\n')
    with pytest.raises(DataError, match=r"huge.csv line \d+ is not valid CSV \(field larger than field limit"):
        load_dataset(path)


def test_csv_with_invalid_utf8_is_a_data_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\u00e9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="line 2 is not valid UTF-8"):
        load_dataset(path)


def test_line_over_10_mb_is_refused(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text('{"text": "' + "a" * (11 * 2**20) + '", "label": 1}\n')
    with pytest.raises(DataError, match="line 1 is longer than 10 MB"):
        load_dataset(path)


@pytest.mark.parametrize("name", ["data.jsonl", "data.csv", "data.npz"])
def test_data_file_that_is_a_folder_is_a_data_error(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(DataError, match=f"is a folder, not a {name[4:]} file"):
        load_dataset(tmp_path / name)


def test_unreadable_data_file_is_a_data_error(tmp_path, monkeypatch):
    import bmsdk.data

    path = tmp_path / "locked.jsonl"
    path.write_text('{"text": "good"}\n')

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(bmsdk.data, "open", denied, raising=False)
    with pytest.raises(DataError, match="cannot read data .*locked.jsonl \\(Permission denied\\)"):
        load_dataset(path)


def test_jsonl_deeply_nested_line_is_a_data_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match="line 1 is nested too deeply"):
        load_dataset(path)


@pytest.mark.parametrize("label,kind", [(0.5, "float"), ({"name": "pos"}, "dict"), ([1], "list"), (True, "bool")])
def test_jsonl_labels_that_are_not_names_or_indices_are_refused(tmp_path, label, kind):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"text": "good", "label": label}) + "\n")
    with pytest.raises(DataError, match=f"row 1 has a label of type {kind}.*class names \\(strings\\)"):
        load_dataset(path)


def npz_bytes(tmp_path, compressed=False, **arrays) -> bytes:
    path = tmp_path / "tmp.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    data = path.read_bytes()
    path.unlink()
    return data


def test_truncated_npz_is_a_data_error(tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(npz_bytes(tmp_path, x=digit_images(8))[:3000])
    with pytest.raises(DataError, match="cut.npz is not a plain .npz"):
        load_dataset(path)


def test_corrupted_compressed_npz_is_a_data_error(tmp_path):
    data = bytearray(npz_bytes(tmp_path, compressed=True, x=digit_images(64)))
    data[200:400] = b"\0" * 200  # inside the deflate stream of x: zlib.error or a CRC failure
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt.npz is not a plain .npz"):
        load_dataset(path)


def test_npz_that_is_not_a_zip_is_a_data_error(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match="text.npz is not a plain .npz"):
        load_dataset(path)


def test_npy_named_npz_is_a_data_error(tmp_path):
    path = tmp_path / "single.npz"
    with open(path, "wb") as f:
        np.save(f, digit_images(2))
    with pytest.raises(DataError, match="holds a single .npy array, not an .npz archive"):
        load_dataset(path)


def test_npz_object_x_is_a_data_error(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="obj.npz is not a plain .npz"):
        load_dataset(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_float_images_with_nan_or_inf_are_refused(tmp_path, bad):
    x = digit_images(4).astype(np.float32) / 255
    x[2, 3, 4] = bad
    path = tmp_path / "nan.npz"
    np.savez(path, x=x, y=np.arange(4))
    with pytest.raises(DataError, match="x holds NaN or infinite values"):
        load_dataset(path)


@pytest.mark.parametrize(
    "y,match",
    [
        (np.array([0.0, 1.0, 1.0, 0.0]), "y is a 1-d float64 array"),
        (np.array([[0], [1], [1], [0]]), "y is a 2-d int64 array"),
        (np.array([True, False, True, False]), "y is a 1-d bool array"),
    ],
)
def test_npz_labels_that_are_not_indices_or_names_are_refused(tmp_path, y, match):
    path = tmp_path / "y.npz"
    np.savez(path, x=digit_images(4), y=y)
    with pytest.raises(DataError, match=match):
        load_dataset(path)


def test_npz_with_a_scalar_x_is_a_data_error(tmp_path):
    path = tmp_path / "scalar.npz"
    np.savez(path, x=np.float32(3))
    with pytest.raises(DataError, match="x is a 0-d float32 array"):
        load_dataset(path)


def test_npz_bytes_texts_and_labels_are_decoded(tmp_path):
    path = tmp_path / "bytes.npz"
    np.savez(path, x=np.array([b"good", b"bad"]), y=np.array([b"positive", b"negative"]))
    data = load_dataset(path)
    assert data.items == ["good", "bad"] and data.labels == ["positive", "negative"]


def npy_file(tmp_path, name, payload: bytes):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name,payload",
    [
        ("truncated.npy", npy_bytes(digit_images(3))[:500]),
        ("objects.npy", npy_bytes(np.array([{"a": 1}, None], dtype=object))),
        ("notnpy.npy", b"just some text, not an array"),
    ],
)
def test_cli_predict_bad_npy_is_one_line_exit_2(cnn_onnx_artifact, tmp_path, capsys, name, payload):
    path = npy_file(tmp_path, name, payload)
    assert main(["predict", str(cnn_onnx_artifact.path), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{name} is not a readable .npy array" in err and "numpy.save" in err


def test_cli_predict_npz_given_as_npy_is_refused(cnn_onnx_artifact, tmp_path, capsys):
    path = npy_file(tmp_path, "archive.npy", npz_bytes(tmp_path, x=digit_images(2)))
    assert main(["predict", str(cnn_onnx_artifact.path), str(path)]) == 2
    assert "archive.npy is not a readable .npy array" in capsys.readouterr().err


def test_cli_predict_npy_batch_and_single(cnn_onnx_artifact, tmp_path, capsys):
    np.save(tmp_path / "batch.npy", digit_images(3))
    np.save(tmp_path / "one.npy", digit_images(1)[0])
    assert (
        main(["predict", str(cnn_onnx_artifact.path), str(tmp_path / "batch.npy"), str(tmp_path / "one.npy"), "--json"])
        == 0
    )
    names = [row["input"] for row in json.loads(capsys.readouterr().out)]
    assert names == [f"{tmp_path / 'batch.npy'}[{i}]" for i in range(3)] + [str(tmp_path / "one.npy")]


# --- C. bench baseline ----------------------------------------------------------------------

GOOD_CELL = {
    "target": "onnx",
    "precision": "fp32",
    "status": "validated",
    "metric": {"accuracy": 0.9},
    "latency": {"1": {"p50_ms": 0.5}},
}


@pytest.mark.parametrize(
    "report,match",
    [
        ({"cells": {"onnx": GOOD_CELL}}, "'cells' is not a list"),
        ({"cells": ["onnx fp32"]}, r"cells\[0\] is not an object"),
        ({"cells": [{**GOOD_CELL, "target": None}]}, r"cells\[0\] has no 'target' string"),
        (
            {"cells": [{k: v for k, v in GOOD_CELL.items() if k != "precision"}]},
            r"cells\[0\] has no 'precision' string",
        ),
        ({"cells": [GOOD_CELL, {**GOOD_CELL, "latency": [0.5]}]}, r"cells\[1\] 'latency' is not an object"),
        ({"cells": [{**GOOD_CELL, "latency": {"1": 0.5}}]}, r"'latency.1' is not an object"),
        ({"cells": [{**GOOD_CELL, "latency": {"1": {"p50_ms": "0.5"}}}]}, r"'latency.1.p50_ms' is not a number"),
        ({"cells": [{**GOOD_CELL, "metric": {"accuracy": "0.9"}}]}, r"'metric.accuracy' is not a number"),
        ({"cells": [{**GOOD_CELL, "metric": [0.9]}]}, r"'metric' is not an object"),
        ({"cells": [{**GOOD_CELL, "status": 1}]}, r"'status' is not a string"),
        ({"cells": [], "source_model": {"latency": "fast"}}, r"source_model 'latency' is not an object"),
        ({"cells": [], "source_model": [1]}, r"'source_model' is not an object"),
        ([GOOD_CELL], r"not a bmsdk bench report"),
    ],
)
def test_bad_baseline_report_names_the_field(tmp_path, report, match):
    from bmsdk.benchmarks.gate import load_report

    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(report))
    with pytest.raises(DataError, match=f"baseline report .*baseline.json: .*{match}"):
        load_report(path)


def test_baseline_with_null_latency_still_gates(tmp_path):
    from bmsdk.benchmarks.gate import check, load_report

    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"cells": [{**GOOD_CELL, "latency": None}], "source_model": None}))
    assert check({"cells": [GOOD_CELL]}, load_report(path), 0.5, 25) == []


@pytest.mark.parametrize(
    "payload,match", [(b"[" * 100_000, "nested too deeply"), (b'{"cells": "\xff"}', "not valid JSON")]
)
def test_unparsable_baseline_is_a_data_error(tmp_path, payload, match):
    from bmsdk.benchmarks.gate import load_report

    path = tmp_path / "baseline.json"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=match):
        load_report(path)


def test_bad_baseline_is_refused_before_the_matrix_runs(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"cells": [{"precision": "fp32"}]}))
    with pytest.raises(DataError, match="has no 'target' string"):  # not a SourceError about the missing source
        bmsdk.benchmark(str(tmp_path / "no-such-model.onnx"), tmp_path / "out", baseline=path)
    assert not (tmp_path / "out").exists()


def test_bad_settings_in_a_case_file_are_refused(tmp_path):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"source": str(tmp_path / "no-such-model.onnx"), "batch": [1, 0]}))
    with pytest.raises(UnsupportedError, match="case.json: batch must be an integer >= 1, got 0"):
        bmsdk.benchmark(case=case, out_dir=tmp_path / "out")


# --- D. predict ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_model(bert_onnx):
    with bmsdk.load(bert_onnx.path) as model:
        yield model


@pytest.fixture(scope="module")
def image_model(cnn_onnx_artifact):
    with bmsdk.load(cnn_onnx_artifact.path) as model:
        yield model


@pytest.mark.parametrize(
    "x,match",
    [
        (None, "cannot take None"),
        ({"input_ids": [1]}, "cannot take a dict"),
        (42, "cannot take a int"),
        (3.5, "cannot take a float"),
        (b"good", "cannot take a bytes"),
        (["good", None], "list of strings"),
        (np.array(["good"]), "a text model cannot take an array"),
    ],
)
def test_text_predict_of_non_text_is_an_input_error(text_model, x, match):
    with pytest.raises(InputError, match=match):
        text_model.predict(x)


@pytest.mark.parametrize(
    "x,match",
    [
        (None, "cannot take None"),
        ({"input": 1}, "run\\(\\{name: array\\}\\)"),
        (42, "cannot take a int"),
        ([digit_images(1)[0], None], "cannot read an image from NoneType"),
        (np.array(1.0), "cannot take a 0-d array"),
        (np.zeros(28), "cannot read an image array of shape \\(28,\\)"),
        (np.array([["a"]]), "must hold numbers"),
    ],
)
def test_image_predict_of_non_images_is_an_input_error(image_model, x, match):
    with pytest.raises(InputError, match=match):
        image_model.predict(x)


@pytest.mark.parametrize(
    "payload,match",
    [(b"not json at all", "not a readable tokenizer.json"), (b'{"version": "1.0"}', "not a readable tokenizer.json")],
)
def test_broken_tokenizer_json_is_a_manifest_error_at_load(bert_onnx, tmp_path, payload, match):
    art = tmp_path / "broken-tok.bmsdk"
    shutil.copytree(bert_onnx.path, art)
    (art / "tokenizer" / "tokenizer.json").write_bytes(payload)
    with pytest.raises(ManifestError, match=f"{match}.*re-create the artifact"):
        bmsdk.load(art, verify=False)


def rgb_image(seed=0, size=28, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (size, size, channels), dtype=np.uint8)


@pytest.mark.parametrize("channels", [3, 4])
def test_color_image_for_a_gray_model_is_converted_like_pil(image_model, channels):
    from PIL import Image

    image = rgb_image(channels=channels)
    gray = np.asarray(Image.fromarray(image).convert("L"))
    result = image_model.predict(image)
    assert isinstance(result, dict)
    assert result == image_model.predict(gray)


def test_chw_color_image_for_a_gray_model_is_one_prediction(image_model):
    from PIL import Image

    image = rgb_image(seed=1, size=40)  # not the model's 28x28, so not read as a batch of gray images
    gray = np.asarray(Image.fromarray(image).convert("L"))
    result = image_model.predict(np.moveaxis(image, -1, 0))
    assert isinstance(result, dict) and result == image_model.predict(gray)


@pytest.mark.parametrize("shape", [(28, 28, 2), (28, 28, 5), (2, 20, 20), (5, 7, 9), (1, 1, 28, 28, 1)])
def test_image_arrays_that_fit_no_reading_are_refused(image_model, shape):
    with pytest.raises(InputError, match=r"cannot read an image array of shape.*NxHxW at the model's 28x28"):
        image_model.predict(np.zeros(shape, np.uint8))


def test_gray_batch_at_the_model_size_is_a_batch(image_model):
    images = digit_images(3)
    batch = image_model.predict(images)
    assert isinstance(batch, list) and batch == [image_model.predict(image) for image in images]
    assert isinstance(image_model.predict(images[:1]), dict)  # 1xHxW is one image


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_pixels_are_an_input_error(image_model, bad):
    image = digit_images(1)[0].astype(np.float32) / 255
    image[5, 5] = bad
    for x in (image, [image], image[None, None]):
        with pytest.raises(InputError, match="NaN or infinite"):
            image_model.predict(x)


class CountingRunner:
    def __init__(self, runner):
        self.runner, self.batches = runner, []

    def run(self, feeds):
        self.batches.append(next(iter(feeds.values())).shape)
        return self.runner.run(feeds)


def mixed_texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "movie", "great", "terrible", "the", "film", "awful", "fun", "not", "xyz"]
    return [" ".join(rng.choice(words, int(rng.integers(1, 40)))) for _ in range(n)]


def test_text_batch_runs_in_sorted_chunks_and_keeps_the_order(bert_onnx):
    texts = mixed_texts(300)
    with bmsdk.load(bert_onnx.path) as model:
        singles = [model.predict(t) for t in texts]
        model.runner = counting = CountingRunner(model.runner)
        batch = model.predict(texts)
    assert len(counting.batches) == 5 and max(rows for rows, _ in counting.batches) == 64
    widths = [width for _, width in counting.batches]
    assert widths == sorted(widths)  # sorted by token count: short texts are not padded to the longest
    assert [r["label"] for r in batch] == [r["label"] for r in singles]
    for got, want in zip(batch, singles):
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)


def test_ten_thousand_short_texts(text_model):
    texts = ["great fun", "terrible film", "not good"] * 3334
    results = text_model.predict(texts)
    expected = [text_model.predict(t)["label"] for t in texts[:3]]
    assert len(results) == len(texts)
    assert [r["label"] for r in results] == expected * 3334


def test_feature_extraction_batch_matches_one_at_a_time(converted, bert_encoder_dir):
    texts = mixed_texts(150)
    with bmsdk.load(converted("enc-fp32", bert_encoder_dir, target="onnx").path) as model:
        batch = model.predict(texts)
        singles = np.stack([model.predict(t) for t in texts[:20]])
    assert batch.shape[0] == 150
    np.testing.assert_allclose(batch[:20], singles, atol=1e-5)


def test_preprocess_still_gives_one_padded_batch(text_model):
    feeds = text_model.preprocess(["good", "the movie was not good at all"])
    assert feeds["input_ids"].shape[0] == 2 and feeds["attention_mask"][0].sum() < feeds["attention_mask"][1].sum()
    assert feeds["input_ids"][0, -1] == 0  # right-padded with pad_id


# --- E. command-line arguments ------------------------------------------------------------

MISSING = "no_such_pkg_xyz.models:make"  # a source that would fail to import if the check came after the work


@pytest.mark.parametrize(
    "args,match",
    [
        (["--labels", ""], "empty or non-text class name"),
        (["--labels", "cat,,dog"], "empty or non-text class name"),
        (["--labels", "cat,dog,cat"], r"--labels names \['cat'\] more than once"),
        (["--mean", "nan"], "--mean must be finite numbers"),
        (["--mean", "0.5,inf"], "--mean must be finite numbers"),
        (["--std", "0.5,0"], "--std must not contain 0"),
        (["--std", "x"], "cannot read numbers from --std"),
        (["--max-length", "0"], "--max-length must be an integer from 1 to 65536"),
        (["--max-length", "70000"], "--max-length must be an integer from 1 to 65536"),
    ],
)
def test_convert_refuses_bad_overrides_before_any_work(capsys, args, match):
    assert main(["convert", MISSING, *args]) == 2
    err = capsys.readouterr().err
    assert "cannot import" not in err and len(err.strip().splitlines()) == 1
    assert re.search(match, err)


def test_labels_file_that_is_empty_is_refused(tmp_path, capsys):
    path = tmp_path / "labels.txt"
    path.write_text("\n\n")
    assert main(["convert", MISSING, "--labels", str(path)]) == 2
    assert "--labels names no classes" in capsys.readouterr().err


def test_long_labels_list_is_not_taken_for_a_file_name():
    names = [f"class_{i}" for i in range(300)]
    assert _labels(",".join(names)) == names


@pytest.mark.parametrize(
    "args,match",
    [
        (["--batch", "0"], "--batch must be an integer >= 1, got 0"),
        (["--batch", "1,-8"], "--batch must be an integer >= 1, got -8"),
        (["--batch", "1.5"], "--batch must be whole numbers"),
        (["--threads", "0"], "--threads must be an integer >= 1"),
        (["--threads", "-2"], "--threads must be an integer >= 1"),
        (["--warmup", "-1"], "--warmup must be an integer >= 0"),
        (["--iterations", "-1"], "--iterations must be an integer >= 1"),
        (["--repeats", "-3"], "--repeats must be an integer >= 1"),
        (["--seconds", "0"], "--seconds must be a number > 0"),
        (["--seconds", "-1"], "--seconds must be a number > 0"),
        (["--seconds", "nan"], "--seconds must be a number > 0"),
    ],
)
def test_bench_refuses_bad_settings_before_any_work(tmp_path, capsys, args, match):
    assert main(["bench", MISSING, "-o", str(tmp_path / "out"), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert match in err and "cannot import" not in err
    assert not (tmp_path / "out").exists()


def test_bench_non_integer_threads_is_still_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", MISSING, "--threads", "two"])
    assert info.value.code == 2


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_predict_refuses_bad_threads_before_loading(tmp_path, capsys, threads):
    assert main(["predict", str(tmp_path / "missing.bmsdk"), "good", "--threads", threads]) == 2
    err = capsys.readouterr().err
    assert "--threads must be an integer >= 1" in err and "does not exist" not in err


def test_check_overrides_counts_against_the_model():
    from bmsdk.checks import check_overrides

    check_overrides(["cat", "dog"], [0.5] * 3, [0.25] * 3, num_classes=2, channels=3)
    check_overrides(None, None, None, num_classes=10, channels=1)
    with pytest.raises(SourceError, match="--labels names 3 classes but the model has 2"):
        check_overrides(["a", "b", "c"], None, None, num_classes=2, channels=3)
    with pytest.raises(SourceError, match="--mean has 3 values but the model takes 1 channels"):
        check_overrides(None, [0.5] * 3, None, num_classes=10, channels=1)
    with pytest.raises(SourceError, match="--std has 1 values but the model takes 3 channels"):
        check_overrides(None, None, [0.5], num_classes=10, channels=3)
    with pytest.raises(SourceError, match="--std must not contain 0"):
        check_overrides(None, None, [0.5, 0.0, 0.5], num_classes=10, channels=3)


def test_check_convert_args_for_the_python_api():
    from bmsdk.checks import check_convert_args

    check_convert_args(["a", "b"], [0.1], [0.2], 128)
    for kwargs, match in [
        ({"labels": []}, "names no classes"),
        ({"labels": ["a", "a"]}, "more than once"),
        ({"mean": [float("nan")]}, "finite"),
        ({"std": [0]}, "must not contain 0"),
        ({"max_length": 0}, "from 1 to 65536"),
        ({"max_length": 2.5}, "from 1 to 65536"),
    ]:
        with pytest.raises(SourceError, match=match):
            check_convert_args(**kwargs)
