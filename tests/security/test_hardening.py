"""Edge cases found in review: NaN outputs, manifests naming files outside the artifact, malformed data files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import bmsdk
from bmsdk.compare import FP32, compare_outputs
from bmsdk.data import load_dataset
from bmsdk.errors import DataError, ManifestError


def test_nan_outputs_fail_validation():
    reference = {"logits": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)}
    result = compare_outputs(reference, {"logits": np.full((2, 2), np.nan, dtype=np.float32)}, FP32)
    assert result.passed is False and "NaN" in result.reason
    assert compare_outputs(reference, {"logits": reference["logits"] + 1e-7}, FP32).passed is True


@pytest.mark.parametrize("bad", ["../outside.onnx", "/etc/passwd", "a/../../b"])
def test_manifest_naming_files_outside_the_artifact_is_refused(tmp_path, cnn_onnx_artifact, bad):
    art = tmp_path / "evil.bmsdk"
    shutil.copytree(cnn_onnx_artifact.path, art)
    manifest = json.loads((art / "bmsdk.json").read_text())
    manifest["files"][bad] = "0" * 64
    (art / "bmsdk.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="outside the artifact"):
        bmsdk.load(art)


def test_malformed_data_files_raise_data_errors(tmp_path):
    lines = tmp_path / "list.jsonl"
    lines.write_text('["not", "an", "object"]\n')
    with pytest.raises(DataError, match="not a JSON object"):
        load_dataset(lines)
    npz = tmp_path / "broken.npz"
    npz.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError, match="not a plain .npz"):
        load_dataset(npz)
