"""Evaluation and calibration data: JSONL/CSV of texts, an image folder, or .npz arrays."""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Dataset:
    """`kind` is "text" (items are strings), "image" (paths or pixel arrays) or "tensor" (a preprocessed batch)."""

    kind: str
    items: Any
    labels: list | None
    origin: str

    def __len__(self) -> int:
        return len(self.items)

    def head(self, n: int) -> "Dataset":
        return Dataset(self.kind, self.items[:n], self.labels[:n] if self.labels is not None else None, self.origin)

    def batches(self, size: int) -> Iterator[Any]:
        for start in range(0, len(self.items), size):
            yield self.items[start:start + size]


def load_dataset(path: str | Path, require_labels: bool = False) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise DataError(f"data {path} does not exist", "pass a .jsonl, .csv, .npz file or an image folder")
    if path.is_dir():
        data = _image_folder(path)
    elif path.suffix == ".jsonl":
        data = _jsonl(path)
    elif path.suffix == ".csv":
        data = _csv(path)
    elif path.suffix == ".npz":
        data = _npz(path)
    else:
        raise DataError(f"cannot read data from {path.name}", "use .jsonl/.csv (text,label), .npz (x, y) or a folder of class subfolders")
    if len(data) == 0:
        raise DataError(f"{path} holds no examples", "pass a file with at least one example")
    if require_labels and data.labels is None:
        raise DataError(f"{path} has no labels", "evaluation data needs a 'label' column (JSONL/CSV) or a 'y' array (.npz)")
    return data


def _rows_to_dataset(rows: list[dict], path: Path) -> Dataset:
    if not rows or "text" not in rows[0]:
        raise DataError(f"{path} has no 'text' field", "each row needs 'text' and, for evaluation, 'label'")
    texts, labels = [], []
    for i, row in enumerate(rows):
        if not isinstance(row.get("text"), str):
            raise DataError(f"{path} row {i + 1} has no text", "each row needs a 'text' string")
        texts.append(row["text"])
        labels.append(row.get("label"))
    has_labels = all(label is not None and label != "" for label in labels)
    return Dataset("text", texts, labels if has_labels else None, str(path))


def _jsonl(path: Path) -> Dataset:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {i + 1} is not JSON ({e.msg})", "write one JSON object per line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path} line {i + 1} is not a JSON object", 'write one object per line: {"text": ..., "label": ...}')
        rows.append(row)
    return _rows_to_dataset(rows, path)


def _csv(path: Path) -> Dataset:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return _rows_to_dataset(rows, path)


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data.files:
                raise DataError(f"{path} has no 'x' array", "save inputs as x (and labels as y) with numpy.savez")
            x = data["x"]
            y = data["y"] if "y" in data.files else None
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is not a plain .npz ({e})", "save with numpy.savez and no object arrays") from None
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: x has {len(x)} rows but y has {len(y)}", "give one label per input")
    labels = y.tolist() if y is not None else None
    if x.dtype.kind in "US":
        return Dataset("text", [str(t) for t in x], labels, str(path))
    # 4-D float arrays are taken as preprocessed model inputs; anything else as images (pixel values)
    kind = "tensor" if (x.ndim == 4 and x.dtype.kind == "f" and x.shape[-1] not in (1, 3)) else "image"
    return Dataset(kind, x, labels, str(path))


def _image_folder(path: Path) -> Dataset:
    classes = sorted(d for d in path.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"{path} has no class subfolders", "lay images out as DATA/<label>/<image>.png")
    items, labels = [], []
    for class_dir in classes:
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                items.append(file)
                labels.append(class_dir.name)
    return Dataset("image", items, labels, str(path))
