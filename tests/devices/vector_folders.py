"""What the device-vector fixtures share: an artifact's export-vectors folder, float32 values written exactly, and
folders built once per pytest process (test_android_jvm and test_ios_swift both ask for them in one run)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np


def write_by_hand(write: Callable[[Path, Path], list[Path]]) -> None:
    """`python tests/devices/<fixture>.py DIR`: `write(DIR, work)`'s folders, the models built in a temporary folder."""
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the model builders
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(write(target, Path(tmp)))


def float32s(array) -> list[float]:
    """Flat values, each written as its shortest float32 repr (exact once read back as float32)."""
    return [float(str(v)) for v in np.asarray(array, dtype=np.float32).ravel()]


def write_vectors_folder(artifact: Path, dest: Path, max_cases: int | None = None) -> Path:
    """The artifact's bmsdk.json and tokenizer, and its `bmsdk export-vectors` output, in one folder."""
    from bmsdk.tasks.vectors import export_vectors

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact / "bmsdk.json", dest / "bmsdk.json")
    if (artifact / "tokenizer" / "tokenizer.json").is_file():
        (dest / "tokenizer").mkdir(exist_ok=True)
        shutil.copyfile(artifact / "tokenizer" / "tokenizer.json", dest / "tokenizer" / "tokenizer.json")
    vectors = export_vectors(artifact)
    vectors["cases"] = vectors["cases"][:max_cases]
    (dest / "vectors.json").write_text(json.dumps(vectors) + "\n")
    return dest


_MADE: dict[str, list[Path]] = {}  # the folders each writer made first in this process, copied for later callers


def made_once(key: str, root: Path, write: Callable[[], list[Path]]) -> list[Path]:
    """`write()`'s folders, or, when this process already wrote them, copies of them under `root`."""
    if key in _MADE and all(f.is_dir() for f in _MADE[key]):
        copies = [root / f.name for f in _MADE[key]]
        for made, copy in zip(_MADE[key], copies):
            shutil.copytree(made, copy)
        return copies
    _MADE[key] = write()
    return _MADE[key]


# the folders and files of audio_fixtures.py, segmentation_fixtures.py and detection_fixtures.py the device tests read
TASK_FOLDERS = (
    ("audio-wav2vec2", "audio.json"),
    ("audio-hubert", "audio.json"),
    ("segmentation-segformer", "segmentation.json"),
    ("detection-yolo", "detection.json"),
    ("detection-yolos", "detection.json"),
)
