"""A .pt2 from a stranger never runs code: each crafted archive is refused before torch deserializes it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hostile.pt2 import ATTACKS, NEUTRALIZED, plain_archive, rewrite

from bmsdk.errors import SourceError

UNSAFE_LOAD = "import sys, torch; torch.export.load(sys.argv[1]).module()(torch.randn(2, 1, 4, 4))"


@pytest.fixture(scope="module")
def plain_pt2(tmp_path_factory):
    return plain_archive(tmp_path_factory.mktemp("pt2") / "plain.pt2")


def _hostile(plain_pt2, tmp_path, name):
    marker = tmp_path / "marker"
    make = ATTACKS[name][0] if name in ATTACKS else NEUTRALIZED[name]
    return rewrite(plain_pt2, tmp_path / f"{name}.pt2", make(marker)), marker


@pytest.mark.parametrize("name", [n for n, (_, runs) in ATTACKS.items() if runs] + list(NEUTRALIZED))
def test_crafted_archive_really_runs_code_through_plain_torch(plain_pt2, tmp_path, name):
    """The attacks are real: torch's own loader runs them (in a child process, so this suite stays clean)."""
    path, marker = _hostile(plain_pt2, tmp_path, name)
    subprocess.run([sys.executable, "-c", UNSAFE_LOAD, str(path)], capture_output=True, timeout=300)
    assert marker.exists()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_source_loader_refuses_hostile_archive(plain_pt2, tmp_path, name):
    from bmsdk.converters.sources.loader import load_source

    path, marker = _hostile(plain_pt2, tmp_path, name)
    with pytest.raises(SourceError) as info:
        load_source(path)
    assert not marker.exists()
    assert len(str(info.value).splitlines()) == 1


def test_plain_archive_still_loads(plain_pt2):
    from bmsdk.converters.sources.loader import load_source

    src = load_source(plain_pt2)
    assert src.task == "image-classification" and src.input_names == ["x"]


def test_guard_code_is_dropped_not_run(plain_pt2, tmp_path):
    """torch's ExportedProgram.module() execs an archive's guard code; bmsdk's loader drops it first."""
    import torch

    from bmsdk.runtimes.pt2_archive import load_exported_program

    path, marker = _hostile(plain_pt2, tmp_path, "guards-code")
    module = load_exported_program(path).module()
    assert module(torch.ones(5, 1, 4, 4)).shape == (5, 2)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["opaque-constant", "sample-inputs-pickle"])
def test_cli_convert_of_hostile_archive_exits_2_without_running_it(plain_pt2, tmp_path, name):
    path, marker = _hostile(plain_pt2, tmp_path, name)
    out = tmp_path / "out.bmsdk"
    proc = subprocess.run(
        [sys.executable, "-m", "bmsdk.cli", "convert", str(path), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not marker.exists() and not out.exists()


def test_torch_backend_refuses_a_hostile_model_file(plain_pt2, tmp_path, torch_artifact):
    """An artifact whose model.pt2 was swapped (checksums recomputed) is refused by the torch backend."""
    import json
    import shutil

    import bmsdk
    from bmsdk.artifact import file_checksums
    from bmsdk.errors import ModelFileError

    art = tmp_path / "art.bmsdk"
    shutil.copytree(torch_artifact.path, art)
    path, marker = _hostile(plain_pt2, tmp_path, "weight-use-pickle")
    shutil.copyfile(path, art / "model.pt2")
    manifest = json.loads((art / "bmsdk.json").read_text())
    manifest["files"] = file_checksums(art)
    (art / "bmsdk.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError):
        bmsdk.load(art)
    assert not marker.exists()


def test_input_names_cannot_inject_code():
    from bmsdk.converters.sources.loader import _named_forward

    with pytest.raises(SourceError, match="not a Python identifier"):
        _named_forward(object(), ["x=__import__('os').system('true')"])
