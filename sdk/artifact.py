"""Writing an artifact folder atomically; opening one with its checksums (and, given a key, its signature) verified."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bmsdk import cleanup
from bmsdk.errors import BmsdkError, IntegrityError, ManifestError
from bmsdk.manifest import MANIFEST_NAME, SIGNATURE_NAME, Manifest, manifest_bytes, sha256_file
from bmsdk.signing import ALGORITHM, check_signature, fingerprint, load_private_key, load_public_key, replace_atomically

SAMPLES_NAME = "samples.npz"
PUBLIC_KEY_ENV = "BMSDK_PUBLIC_KEY"  # when set, every open_artifact/load requires a signature by this key


@contextlib.contextmanager
def staged_folder(out: str | Path, overwrite: bool = False):
    """Yield a temporary sibling of `out`; rename it to `out` only if the block completes.

    On any failure (an exception, SIGTERM, SIGINT) the temporary folder is removed, so no half-written artifact is
    ever left at `out`; one left by a killed process is removed by the next conversion to the same place.
    `overwrite` replaces only a folder that is a bmsdk artifact.
    """
    out = Path(out).absolute()
    check_output(out, overwrite)
    created = _make_parents(out.parent)
    cleanup.remove_stale(out.parent, _partial_pattern(out))
    tmp = cleanup.track(Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".partial", dir=out.parent)))
    trash = out.parent / f".{out.name}.{os.getpid()}.replaced.partial"
    try:
        yield tmp
        if out.exists():
            check_output(out, overwrite)
            cleanup.track(trash)
            os.replace(out, trash)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        cleanup.untrack(tmp)
        cleanup.untrack(trash)


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that exists (unless it is an artifact and `overwrite`) or cannot be
    written."""
    out = Path(out).absolute()
    if out.is_symlink() or out.exists():
        if not overwrite:
            raise BmsdkError(f"{out} already exists", "pass --overwrite (overwrite=True) or choose another output path")
        if out.is_symlink() or not is_artifact(out):
            raise BmsdkError(
                f"{out} exists and is not a bmsdk artifact, so --overwrite will not replace it",
                "choose another output path, or remove it yourself",
            )
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise BmsdkError(f"cannot write {out}: {ancestor} is a file, not a folder", "choose an output path in a folder")
    try:
        Path(tempfile.mkdtemp(prefix=".bmsdk-write-check.", dir=ancestor)).rmdir()
    except OSError as e:
        raise BmsdkError(
            f"cannot write to {ancestor} ({e.strerror or e})", "choose an output folder you can write to"
        ) from None


def is_artifact(folder: Path) -> bool:
    """A folder holding a bmsdk.json with a schema version: what `--overwrite` may replace."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return folder.is_dir() and isinstance(data, dict) and isinstance(data.get("schema_version"), int)


def _make_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return what was created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def _partial_pattern(out: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(out.name)}\.(?P<pid>\d+)\.\w+\.partial")


def artifact_files(folder: Path) -> list[str]:
    """Relative POSIX paths of every file below `folder` but the manifest and its signature."""
    files = (p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file())
    return [rel for rel in files if rel not in (MANIFEST_NAME, SIGNATURE_NAME)]


def file_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder` except the manifest and its signature, keyed by relative POSIX path."""
    return {rel: sha256_file(folder / rel) for rel in artifact_files(folder)}


def artifact_folder(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise ManifestError(f"artifact {folder} does not exist", "pass the folder written by `bmsdk convert`")
    if not folder.is_dir():
        raise ManifestError(
            f"{folder} is a file, not an artifact folder", "pass the .bmsdk folder written by `bmsdk convert`"
        )
    return folder


def open_artifact(
    path: str | Path, verify: bool = True, public_key: str | Path | bytes | None = None
) -> tuple[Path, Manifest]:
    """Read and validate the manifest; with `verify`, check every file against its sha256.

    With `public_key` (a PEM file's path or its bytes; default: the file named by $BMSDK_PUBLIC_KEY), bmsdk.sig must
    be a valid signature of bmsdk.json by that key, checked before anything else is read; the files are then always
    verified, whatever `verify` says. Without a key, a bmsdk.sig present is not checked.
    """
    folder = artifact_folder(path)
    origin = None
    if public_key is None and os.environ.get(PUBLIC_KEY_ENV):
        public_key, origin = os.environ[PUBLIC_KEY_ENV], f"${PUBLIC_KEY_ENV}"
    data = manifest_bytes(folder)
    if public_key is not None:
        check_signature(folder, data, public_key, origin)
    manifest = Manifest.parse(data, folder / MANIFEST_NAME)  # the bytes just verified, not a second read
    if verify or public_key is not None:
        verify_files(folder, manifest)
    return folder, manifest


def verify_files(folder: Path, manifest: Manifest) -> None:
    """Every listed file is present with its sha256, and no other file is there (a runtime might read it)."""
    unlisted = sorted(set(artifact_files(folder)) - set(manifest.files))
    if unlisted:
        more = f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else ""
        raise IntegrityError(
            f"bmsdk.json does not list {unlisted[0]}{more}, found in {folder}",
            "delete what was added, or re-create the artifact with `bmsdk convert`; never add files to an artifact",
        )
    for rel, expected in manifest.files.items():
        file = folder / rel
        if not file.is_file():
            raise IntegrityError(f"artifact file {rel} is missing", "re-create the artifact with `bmsdk convert`")
        if sha256_file(file) != expected:
            raise IntegrityError(
                f"{rel} does not match the sha256 in bmsdk.json (modified or corrupted)",
                "re-create the artifact with `bmsdk convert`; never edit files inside an artifact",
            )


def save_samples(
    folder: Path, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], raw: np.ndarray | None
) -> None:
    arrays = {f"input.{k}": v for k, v in inputs.items()}
    arrays.update({f"output.{k}": v for k, v in outputs.items()})
    if raw is not None:
        arrays["raw"] = raw
    np.savez_compressed(folder / SAMPLES_NAME, **arrays)


def load_samples(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
    """Inputs, the source model's outputs, and the raw inputs (texts or images) if stored."""
    with np.load(folder / SAMPLES_NAME, allow_pickle=False) as data:
        inputs = {k[len("input.") :]: data[k] for k in data.files if k.startswith("input.")}
        outputs = {k[len("output.") :]: data[k] for k in data.files if k.startswith("output.")}
        raw = data["raw"] if "raw" in data.files else None
    return inputs, outputs, raw


def sign_artifact(path: str | Path, private_key: str | Path) -> Path:
    """Verify the artifact's files, then write bmsdk.sig: `private_key`'s signature of bmsdk.json.

    Re-signing replaces an old bmsdk.sig atomically. Returns the path of bmsdk.sig.
    """
    key = load_private_key(private_key)
    folder = artifact_folder(path)
    data = manifest_bytes(folder)
    verify_files(folder, Manifest.parse(data, folder / MANIFEST_NAME))  # never sign a corrupted artifact
    record = {
        "algorithm": ALGORITHM,
        "public_key_sha256": fingerprint(key.public_key()),
        "signature": base64.b64encode(key.sign(data)).decode("ascii"),
    }
    target = folder / SIGNATURE_NAME
    replace_atomically(target, (json.dumps(record, indent=2) + "\n").encode())
    return target


def verify_artifact(path: str | Path, public_key: str | Path | bytes) -> str:
    """Check bmsdk.sig against `public_key`, then every file's sha256; return the signer's key fingerprint."""
    open_artifact(path, public_key=public_key)
    return fingerprint(load_public_key(public_key))
