"""Writing an artifact folder atomically, and opening one with its checksums verified."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import BmsdkError, IntegrityError, ManifestError
from .manifest import MANIFEST_NAME, Manifest, sha256_file

SAMPLES_NAME = "samples.npz"


@contextlib.contextmanager
def staged_folder(out: str | Path, overwrite: bool = False):
    """Yield a temporary sibling of `out`; rename it to `out` only if the block completes.

    On any failure the temporary folder is removed, so no half-written artifact is ever left at `out`.
    """
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        raise BmsdkError(f"{out} already exists", "pass --overwrite (overwrite=True) or choose another output path")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder` except the manifest, keyed by relative POSIX path."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def open_artifact(path: str | Path, verify: bool = True) -> tuple[Path, Manifest]:
    """Read and validate the manifest; with `verify`, check every listed file's sha256."""
    folder = Path(path)
    if not folder.exists():
        raise ManifestError(f"artifact {folder} does not exist", "pass the folder written by `bmsdk convert`")
    if not folder.is_dir():
        raise ManifestError(f"{folder} is a file, not an artifact folder", "pass the .bmsdk folder written by `bmsdk convert`")
    manifest = Manifest.read(folder)
    if verify:
        for rel, expected in manifest.files.items():
            file = folder / rel
            if not file.is_file():
                raise IntegrityError(f"artifact file {rel} is missing", "re-create the artifact with `bmsdk convert`")
            if sha256_file(file) != expected:
                raise IntegrityError(
                    f"{rel} does not match the sha256 in bmsdk.json (modified or corrupted)",
                    "re-create the artifact with `bmsdk convert`; never edit files inside an artifact",
                )
    return folder, manifest


def save_samples(folder: Path, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], raw: np.ndarray | None) -> None:
    arrays = {f"input.{k}": v for k, v in inputs.items()}
    arrays.update({f"output.{k}": v for k, v in outputs.items()})
    if raw is not None:
        arrays["raw"] = raw
    np.savez_compressed(folder / SAMPLES_NAME, **arrays)


def load_samples(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
    """Inputs, the source model's outputs, and the raw inputs (texts or images) if stored."""
    with np.load(folder / SAMPLES_NAME, allow_pickle=False) as data:
        inputs = {k[len("input."):]: data[k] for k in data.files if k.startswith("input.")}
        outputs = {k[len("output."):]: data[k] for k in data.files if k.startswith("output.")}
        raw = data["raw"] if "raw" in data.files else None
    return inputs, outputs, raw
