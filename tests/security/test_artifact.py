"""Artifact folders: checksums verified on load, and atomic writes that never leave half an artifact."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import bmsdk
from bmsdk.artifact import open_artifact, staged_folder
from bmsdk.errors import BmsdkError, IntegrityError, ManifestError
from bmsdk.manifest import MANIFEST_NAME, sha256_file


@pytest.fixture
def artifact_copy(cnn_onnx_artifact, tmp_path):
    """A private copy of a converted artifact that a test may damage."""
    return shutil.copytree(cnn_onnx_artifact.path, tmp_path / "copy.bmsdk")


def test_checksums_match_files(cnn_onnx_artifact):
    folder, manifest = open_artifact(cnn_onnx_artifact.path)
    assert manifest.model_file in manifest.files and "samples.npz" in manifest.files
    for rel, digest in manifest.files.items():
        assert sha256_file(folder / rel) == digest


def test_tampered_model_file_is_refused(artifact_copy):
    model = artifact_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte in the middle (weights)
    model.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model.onnx does not match the sha256"):
        bmsdk.load(artifact_copy)
    # an explicit opt-out still opens it (the caller takes the risk)
    assert bmsdk.load(artifact_copy, verify=False).manifest.model_file == "model.onnx"


def test_tampered_sample_file_is_refused(artifact_copy):
    with open(artifact_copy / "samples.npz", "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError, match="samples.npz"):
        bmsdk.load(artifact_copy)


def test_missing_model_file(artifact_copy):
    (artifact_copy / "model.onnx").unlink()
    with pytest.raises(IntegrityError, match="model.onnx is missing"):
        bmsdk.load(artifact_copy)


def test_edited_manifest_checksum(artifact_copy):
    data = json.loads((artifact_copy / MANIFEST_NAME).read_text())
    data["files"]["model.onnx"] = "0" * 64
    (artifact_copy / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(IntegrityError):
        bmsdk.load(artifact_copy)


def test_newer_schema_artifact_is_refused(artifact_copy):
    data = json.loads((artifact_copy / MANIFEST_NAME).read_text())
    data["schema_version"] += 1
    (artifact_copy / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="upgrade"):
        bmsdk.load(artifact_copy)


def test_not_an_artifact(tmp_path, cnn_onnx):
    with pytest.raises(ManifestError, match="does not exist"):
        bmsdk.load(tmp_path / "missing.bmsdk")
    with pytest.raises(ManifestError, match="not an artifact folder"):
        bmsdk.load(cnn_onnx)  # a bare model file
    with pytest.raises(ManifestError, match="no bmsdk.json"):
        bmsdk.load(tmp_path)


# --- staged_folder -------------------------------------------------------------------


def test_staged_folder_publishes_on_success(tmp_path):
    out = tmp_path / "a.bmsdk"
    with staged_folder(out) as stage:
        assert stage.parent == out.parent and stage != out and not out.exists()
        (stage / "f.txt").write_text("hello")
    assert (out / "f.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bmsdk"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_staged_folder_leaves_nothing_when_the_block_raises(tmp_path, exc):
    out = tmp_path / "sub" / "b.bmsdk"
    with pytest.raises(exc):
        with staged_folder(out) as stage:
            (stage / "half.bin").write_bytes(b"x" * 100)
            (stage / "deeper").mkdir()
            (stage / "deeper" / "more.bin").write_bytes(b"y")
            raise exc("boom")
    assert not out.exists()
    assert not out.parent.exists(), "the folder made for the output, or a .partial staging folder, was left behind"


def test_staged_folder_refuses_existing_output(tmp_path):
    out = tmp_path / "c.bmsdk"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(BmsdkError, match="already exists"):
        with staged_folder(out):
            pytest.fail("the block must not run")
    assert (out / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.bmsdk"]


def test_staged_folder_overwrite_replaces_and_cleans_up(tmp_path):
    out = _old_artifact(tmp_path / "d.bmsdk")
    with staged_folder(out, overwrite=True) as stage:
        assert (out / "old.txt").exists(), "the old artifact must stay until the new one is complete"
        (stage / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.bmsdk"], "a .old or .partial folder was left behind"


def test_staged_folder_overwrite_keeps_old_on_failure(tmp_path):
    out = _old_artifact(tmp_path / "e.bmsdk")
    with pytest.raises(ValueError):
        with staged_folder(out, overwrite=True) as stage:
            (stage / "new.txt").write_text("new")
            raise ValueError
    assert sorted(p.name for p in out.iterdir()) == ["bmsdk.json", "old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.bmsdk"]


def _old_artifact(out):
    out.mkdir()
    (out / "old.txt").write_text("old")
    (out / "bmsdk.json").write_text('{"schema_version": 1}')
    return out


@pytest.mark.parametrize("kind", ["folder", "file", "symlink"])
def test_overwrite_never_replaces_what_is_not_an_artifact(tmp_path, kind):
    """--overwrite once deleted any folder given as -o, e.g. a user's documents."""
    out = tmp_path / "documents"
    if kind == "folder":
        out.mkdir()
        (out / "thesis.txt").write_text("years of work")
    elif kind == "file":
        out.write_text("years of work")
    else:
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    with pytest.raises(BmsdkError, match="not a bmsdk artifact"):
        with staged_folder(out, overwrite=True):
            pytest.fail("the block must not run")
    assert out.exists() or out.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["documents"] + (["real"] if kind == "symlink" else []))


def test_output_under_a_file_is_refused_before_work(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(BmsdkError, match="is a file, not a folder"):
        with staged_folder(tmp_path / "notes.txt" / "out.bmsdk"):
            pytest.fail("the block must not run")


def test_partial_folder_of_a_killed_process_is_removed_by_the_next_run(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".f.bmsdk.{int(dead.stdout)}.abc123.partial"
    (leftover / "model.onnx").parent.mkdir()
    (leftover / "model.onnx").write_bytes(b"half")
    alive = tmp_path / f".f.bmsdk.{os.getppid()}.xyz.partial"  # a conversion still running elsewhere: kept
    alive.mkdir()
    with staged_folder(tmp_path / "f.bmsdk") as stage:
        (stage / "x").write_text("x")
    assert not leftover.exists() and alive.exists()


def test_convert_refuses_existing_output(cnn_factory, tmp_path):
    out = tmp_path / "exists.bmsdk"
    out.mkdir()
    (out / "mine.txt").write_text("do not delete")
    with pytest.raises(BmsdkError, match="already exists"):
        bmsdk.convert(cnn_factory, output=out)
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.bmsdk"]


def test_convert_overwrite(cnn_factory, tmp_path):
    out = _old_artifact(tmp_path / "over.bmsdk")
    (out / "stale.txt").write_text("stale")
    result = bmsdk.convert(cnn_factory, output=out, overwrite=True)
    assert result.path == out.resolve() and not (out / "stale.txt").exists()
    model = bmsdk.load(out)
    assert model.run({"input": np.zeros((3, 1, 28, 28), np.float32)})["logits"].shape == (3, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["over.bmsdk"]
