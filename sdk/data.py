"""Evaluation and calibration data: JSONL/CSV of texts, an image or audio folder, JSONL of audio paths, or .npz
arrays."""

from __future__ import annotations

import csv
import json
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from bmsdk.errors import DataError, InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
AUDIO_SUFFIXES = {".wav", ".wave"}
FILE_SUFFIXES = (".jsonl", ".csv", ".npz", ".json")
MAX_LINE_BYTES = 10 * 2**20
ROW_FIX = 'write one object per line: {"text": ..., "label": ...}'
ARRAY_ERRORS = (ValueError, OSError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error)  # what np.load raises


@dataclass
class Dataset:
    """`kind` is "text" (items are strings), "image" (paths or pixel arrays), "audio" (WAV paths or waveforms) or
    "tensor" (a preprocessed batch)."""

    kind: str
    items: Any
    labels: list | None
    origin: str

    def __len__(self) -> int:
        return len(self.items)

    def head(self, n: int) -> Dataset:
        return Dataset(self.kind, self.items[:n], self.labels[:n] if self.labels is not None else None, self.origin)

    def batches(self, size: int) -> Iterator[Any]:
        for start in range(0, len(self.items), size):
            yield self.items[start : start + size]


def load_dataset(path: str | Path, require_labels: bool = False) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise DataError(f"data {path} does not exist", "pass a .jsonl, .csv, .npz file or an image folder")
    try:
        data = _load(path)
    except OSError as e:
        raise DataError(f"cannot read data {path} ({e.strerror or e})", "check that the file is readable") from None
    if len(data) == 0:
        raise DataError(f"{path} holds no examples", "pass a file with at least one example")
    if require_labels and data.labels is None:
        raise DataError(
            f"{path} has no labels",
            "evaluation data needs a 'label' column (JSONL/CSV), a 'y' array (.npz) or, for segmentation, a 'mask' "
            "per image (detection: 'objects')",
        )
    return data


def _load(path: Path) -> Dataset:
    if path.is_dir():
        if path.suffix in FILE_SUFFIXES:
            raise DataError(f"{path} is a folder, not a {path.suffix} file", "pass the data file itself")
        return _image_folder(path)
    if path.suffix == ".jsonl":
        return _jsonl(path)
    if path.suffix == ".csv":
        return _csv(path)
    if path.suffix == ".npz":
        return _npz(path)
    if path.suffix == ".json":
        return _coco(path)
    raise DataError(
        f"cannot read data from {path.name}",
        "use .jsonl/.csv (text,label), .npz (x, y) or a folder of class subfolders",
    )


def _lines(f: IO[bytes], path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file opened in binary mode, each at most MAX_LINE_BYTES long, line endings kept."""
    number = 0
    while True:
        raw = f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise DataError(
                f"{path} line {number} is longer than {MAX_LINE_BYTES >> 20} MB",
                "write one example per line, each of reasonable length",
            )
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path} line {number} is not valid UTF-8 (byte {e.start + 1} of the line)", "save the file as UTF-8"
            ) from None


def _label(value: Any, path: Path, row: int) -> Any:
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise DataError(
        f"{path} row {row} has a label of type {type(value).__name__} ({str(value)[:50]})",
        "write labels as class names (strings) or class indices (integers)",
    )


def _rows_to_dataset(rows: list[dict], path: Path) -> Dataset:
    if rows and "image" in rows[0] and "objects" in rows[0] and "text" not in rows[0]:
        return _detection_rows(rows, path)
    if rows and "image" in rows[0] and "text" not in rows[0]:
        return _segmentation_rows(rows, path)
    if rows and "tokens" in rows[0] and "text" not in rows[0]:
        return _tagged_words(rows, path)
    if rows and "question" in rows[0] and "text" not in rows[0]:
        return _questions(rows, path)
    if rows and "audio" in rows[0] and "text" not in rows[0]:
        return _audio_rows(rows, path)
    if not rows or "text" not in rows[0]:
        raise DataError(f"{path} has no 'text' field", "each row needs 'text' and, for evaluation, 'label'")
    texts, labels = [], []
    for i, row in enumerate(rows):
        if not isinstance(row.get("text"), str):
            raise DataError(f"{path} row {i + 1} has no text", "each row needs a 'text' string")
        texts.append(row["text"])
        labels.append(_label(row.get("label"), path, i + 1))
    has_labels = all(label is not None and label != "" for label in labels)
    return Dataset("text", texts, labels if has_labels else None, str(path))


def _tagged_words(rows: list[dict], path: Path) -> Dataset:
    """Token classification data: `{"tokens": [words], "tags": [one tag per word]}`; the text is the words joined
    by single spaces, the labels are the tag lists (None when no row has tags)."""
    fix = 'write one object per line: {"tokens": ["John", "lives"], "tags": ["B-PER", "O"]}, words without spaces'
    texts, labels = [], []
    for i, row in enumerate(rows):
        words, tags = row.get("tokens"), row.get("tags")
        if not isinstance(words, list) or not words or not all(_is_word(w) for w in words):
            raise DataError(f"{path} row {i + 1} has no list of words without whitespace in 'tokens'", fix)
        if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) and t for t in tags)):
            raise DataError(f"{path} row {i + 1} has 'tags' that are not a list of tag names", fix)
        if tags is not None and len(tags) != len(words):
            raise DataError(f"{path} row {i + 1} has {len(words)} words but {len(tags)} tags", fix)
        texts.append(" ".join(words))
        labels.append(tags)
    has_labels = all(tags is not None for tags in labels)
    return Dataset("text", texts, labels if has_labels else None, str(path))


def _questions(rows: list[dict], path: Path) -> Dataset:
    """Question answering data: `{"question", "context", "answers": [texts]}` (SQuAD's `{"text": [...]}` form of
    answers too); items are (question, context) pairs, labels the answer lists (None when no row has answers)."""
    fix = 'write one object per line: {"question": "...", "context": "...", "answers": ["..."]}'
    items, labels = [], []
    for i, row in enumerate(rows):
        question, context, answers = row.get("question"), row.get("context"), row.get("answers")
        if not (isinstance(question, str) and question.strip() and isinstance(context, str) and context.strip()):
            raise DataError(f"{path} row {i + 1} needs a 'question' and a 'context' string", fix)
        if isinstance(answers, dict):
            answers = answers.get("text")
        if answers is not None and not (isinstance(answers, list) and all(isinstance(a, str) for a in answers)):
            raise DataError(f"{path} row {i + 1} has 'answers' that are not a list of strings", fix)
        items.append((question, context))
        labels.append(answers)
    has_labels = all(a is not None for a in labels)
    return Dataset("text", items, labels if has_labels else None, str(path))


def _segmentation_rows(rows: list[dict], path: Path) -> Dataset:
    """Semantic segmentation data: `{"image": path, "mask": path}` (paths relative to the JSONL file's folder), the
    mask a one-channel image (PNG, mode L, P or I) of label indices at the image's size, 255 where no label counts;
    items are the image paths, labels the masks as H x W int arrays (None when no row has a mask)."""
    fix = 'write one object per line: {"image": "img/0.png", "mask": "masks/0.png"}, paths relative to the file'
    items, labels = [], []
    for i, row in enumerate(rows):
        image, mask = row.get("image"), row.get("mask")
        if not isinstance(image, str) or not image or (mask is not None and not (isinstance(mask, str) and mask)):
            raise DataError(f"{path} row {i + 1} needs an 'image' path (and a 'mask' path to score)", fix)
        image_path = _inside(path, image)
        if not image_path.is_file():
            raise DataError(f"{path} row {i + 1}: image {image_path} does not exist", fix)
        items.append(image_path)
        labels.append(None if mask is None else read_mask(_inside(path, mask), image_path))
    has_labels = all(m is not None for m in labels)
    return Dataset("image", items, labels if has_labels else None, str(path))


DETECTION_FIX = (
    'write one object per line: {"image": "img/0.png", "objects": [{"box": [xmin, ymin, xmax, ymax], "label": '
    '"cat"}]}, boxes in the image\'s pixels, paths relative to the file'
)


def _detection_rows(rows: list[dict], path: Path) -> Dataset:
    """Object detection data: `{"image": path, "objects": [{"box": [xmin, ymin, xmax, ymax], "label": name}]}`
    (paths relative to the JSONL file's folder, boxes in the image's pixels, `objects` [] for an image without any);
    items are the image paths, labels each image's objects as [{"box": [4 floats], "label": str}]."""
    items, labels = [], []
    for i, row in enumerate(rows):
        image, objects = row.get("image"), row.get("objects")
        if not isinstance(image, str) or not image or not isinstance(objects, list):
            raise DataError(f"{path} row {i + 1} needs an 'image' path and an 'objects' list", DETECTION_FIX)
        image_path = _inside(path, image)
        if not image_path.is_file():
            raise DataError(f"{path} row {i + 1}: image {image_path} does not exist", DETECTION_FIX)
        items.append(image_path)
        labels.append([_object(obj, f"{path} row {i + 1}") for obj in objects])
    return Dataset("image", items, labels, str(path))


def _object(obj: Any, where: str) -> dict:
    box = obj.get("box") if isinstance(obj, dict) else None
    label = obj.get("label") if isinstance(obj, dict) else None
    numbers = isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box)
    if not numbers or not isinstance(label, str) or not label:
        raise DataError(
            f"{where}: object {str(obj)[:80]} needs a 'box' of 4 numbers [xmin, ymin, xmax, ymax] and a 'label' name",
            DETECTION_FIX,
        )
    if box[2] < box[0] or box[3] < box[1]:
        raise DataError(f"{where}: box {box} has xmax < xmin or ymax < ymin", "write boxes as [xmin, ymin, xmax, ymax]")
    return {"box": [float(v) for v in box], "label": label}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _coco(path: Path) -> Dataset:
    """A COCO annotations file (`images` with `file_name` relative to the file's folder, `annotations` with `bbox`
    [x, y, w, h] and `category_id`, `categories` with `name`) as detection data; crowd annotations left out."""
    fix = "pass a COCO instances JSON (images, annotations, categories), image file names relative to it"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({_reason(e)})", fix) from None
    if not isinstance(record, dict) or not all(isinstance(record.get(k), list) for k in ("images", "categories")):
        raise DataError(f"{path} is not a COCO annotations file (no 'images' and 'categories' lists)", fix)
    try:
        names = {c["id"]: str(c["name"]) for c in record["categories"]}
        files = {im["id"]: str(im["file_name"]) for im in record["images"]}
        objects: dict = {k: [] for k in files}
        for ann in record.get("annotations") or []:
            if ann.get("iscrowd"):
                continue
            x, y, w, h = ann["bbox"]
            objects[ann["image_id"]].append({"box": [x, y, x + w, y + h], "label": names[ann["category_id"]]})
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: an image, annotation or category lacks a field ({_reason(e)})", fix) from None
    rows = [{"image": name, "objects": objects[k]} for k, name in files.items()]
    return _detection_rows(rows, path)


def _inside(path: Path, name: str) -> Path:
    """A path of a data row, relative to the data file's folder unless absolute."""
    target = Path(name)
    return target if target.is_absolute() else path.parent / target


def read_mask(path: Path, image: Path | None = None) -> np.ndarray:
    """A label mask: a one-channel image of label indices as an H x W int64 array; it must have its image's size."""
    from PIL import Image

    fix = "save each mask as a one-channel PNG (mode L, P or I) of label indices, 255 for pixels to ignore"
    if not path.is_file():
        raise DataError(f"mask {path} does not exist", fix)
    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            mask = np.asarray(img)
    except Exception as e:  # Pillow raises several types for unreadable files
        raise DataError(f"mask {path} is not a readable image ({_reason(e)})", fix) from None
    if mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L") or mask.ndim != 2:
        raise DataError(f"mask {path} is a {mode} image, not one channel of label indices", fix)
    if image is not None:
        try:
            with Image.open(image) as img:
                image_size = img.size
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{image} is not a readable image ({_reason(e)})", "pass PNG/JPEG images") from None
        if image_size != size:
            raise DataError(
                f"mask {path} is {size[0]}x{size[1]} but its image {image} is {image_size[0]}x{image_size[1]} "
                "(width x height)",
                "give each mask the size of its image",
            )
    return mask.astype(np.int64)


def _audio_rows(rows: list[dict], path: Path) -> Dataset:
    """Audio data: `{"audio": "clips/a.wav", "label": "yes"}`, paths relative to the data file's folder."""
    fix = 'write one object per line: {"audio": "clips/yes_01.wav", "label": "yes"} (paths relative to this file)'
    items, labels = [], []
    for i, row in enumerate(rows):
        audio = row.get("audio")
        if not isinstance(audio, str) or not audio.strip():
            raise DataError(f"{path} row {i + 1} has no 'audio' path", fix)
        file = path.parent / audio
        if file.suffix.lower() not in AUDIO_SUFFIXES:
            raise DataError(f"{path} row {i + 1}: {audio[:100]} is not a .wav file", fix)
        if not file.is_file():
            raise DataError(f"{path} row {i + 1}: audio file {file} does not exist", fix)
        items.append(file)
        labels.append(_label(row.get("label"), path, i + 1))
    has_labels = all(label is not None and label != "" for label in labels)
    return Dataset("audio", items, labels if has_labels else None, str(path))


def _is_word(word: Any) -> bool:
    return isinstance(word, str) and bool(word) and not any(c.isspace() for c in word)


def _jsonl(path: Path) -> Dataset:
    rows = []
    with open(path, "rb") as f:
        for i, line in enumerate(_lines(f, path)):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {i + 1} is not JSON ({e.msg})", ROW_FIX) from None
            except RecursionError:
                raise DataError(f"{path} line {i + 1} is nested too deeply", ROW_FIX) from None
            if not isinstance(row, dict):
                raise DataError(f"{path} line {i + 1} is not a JSON object", ROW_FIX)
            rows.append(row)
    return _rows_to_dataset(rows, path)


def _csv(path: Path) -> Dataset:
    with open(path, "rb") as f:
        reader = csv.DictReader(_lines(f, path))
        try:
            rows = list(reader)
        except csv.Error as e:
            raise DataError(
                f"{path} line {reader.line_num} is not valid CSV ({e})",
                f"quote fields that hold commas, quotes or line breaks; keep each field under "
                f"{csv.field_size_limit() // 1024} KB",
            ) from None
    return _rows_to_dataset(rows, path)


def _npz(path: Path) -> Dataset:
    x, y = _npz_arrays(path)
    _check_x(x, path)
    if y is not None and y.ndim == 3:
        return _npz_masks(x, y, path)
    labels = _npz_labels(y, len(x), path) if y is not None else None
    if x.dtype.kind in "US":
        return Dataset("text", _strings(x, path, "x"), labels, str(path))
    # 4-D float arrays are taken as preprocessed model inputs; anything else as images (pixel values)
    kind = "tensor" if (x.ndim == 4 and x.dtype.kind == "f" and x.shape[-1] not in (1, 3)) else "image"
    return Dataset(kind, x, labels, str(path))


def _npz_masks(x: np.ndarray, y: np.ndarray, path: Path) -> Dataset:
    """Semantic segmentation arrays: x images N x H x W x C (or N x H x W) of pixels, y masks N x H x W of label
    indices (255 for pixels to ignore)."""
    fix = "save x as N x H x W x 3 uint8 images and y as N x H x W integer label masks of the same H x W"
    if y.dtype.kind not in "iu":
        raise DataError(f"{path}: y holds {y.dtype} masks, not integer label indices", fix)
    if x.ndim not in (3, 4) or x.dtype.kind not in "uif" or x.shape[:3] != y.shape:
        raise DataError(
            f"{path}: x of shape {x.shape} and masks y of shape {y.shape} do not pair up (N x H x W each)", fix
        )
    return Dataset("image", x, [m.astype(np.int64) for m in y], str(path))


def _npz_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    fix = "save with numpy.savez(path, x=..., y=...) and no object arrays"
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path} holds a single .npy array, not an .npz archive", fix)
        with archive:
            if "x" not in archive.files:
                raise DataError(f"{path} has no 'x' array", "save inputs as x (and labels as y) with numpy.savez")
            return archive["x"], archive["y"] if "y" in archive.files else None
    except ARRAY_ERRORS as e:
        raise DataError(f"{path} is not a plain .npz ({_reason(e)})", fix) from None


def _check_x(x: np.ndarray, path: Path) -> None:
    if x.ndim == 0 or x.dtype.kind not in "buifUS":
        raise DataError(
            f"{path}: x is a {x.ndim}-d {x.dtype} array", "save x as one row per example: numbers, or strings"
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{path}: x holds NaN or infinite values", "save finite values only")


def _npz_labels(y: np.ndarray, n: int, path: Path) -> list:
    if y.ndim != 1 or y.dtype.kind not in "iuUS":
        raise DataError(
            f"{path}: y is a {y.ndim}-d {y.dtype} array",
            "save y as one class index (integer) or class name (string) per example",
        )
    if len(y) != n:
        raise DataError(f"{path}: x has {n} rows but y has {len(y)}", "give one label per input")
    return _strings(y, path, "y") if y.dtype.kind in "US" else y.tolist()


def _strings(array: np.ndarray, path: Path, name: str) -> list[str]:
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.tolist()]
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: {name} holds bytes that are not UTF-8", f"save {name} as str, or as UTF-8 bytes"
        ) from None


def _image_folder(path: Path) -> Dataset:
    """A folder of class subfolders of images (DATA/<label>/<image>.png) or of WAV clips (DATA/<label>/<clip>.wav)."""
    classes = sorted(d for d in path.iterdir() if d.is_dir())
    if not classes:
        raise DataError(
            f"{path} has no class subfolders",
            "lay images out as DATA/<label>/<image>.png, audio as DATA/<label>/<clip>.wav",
        )
    found: dict[str, tuple[list, list]] = {"image": ([], []), "audio": ([], [])}
    for class_dir in classes:
        for file in sorted(class_dir.iterdir()):
            suffix = file.suffix.lower()
            kind = "image" if suffix in IMAGE_SUFFIXES else "audio" if suffix in AUDIO_SUFFIXES else None
            if kind:
                found[kind][0].append(file)
                found[kind][1].append(class_dir.name)
    if found["image"][0] and found["audio"][0]:
        raise DataError(f"{path} holds both images and audio clips", "keep one kind of example per data folder")
    kind = "audio" if found["audio"][0] else "image"
    items, labels = found[kind]
    return Dataset(kind, items, labels, str(path))


def read_npy(path: str | Path) -> np.ndarray:
    """One array from a .npy file, never unpickled; anything else is an InputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file", "pass an existing .npy file")
    try:
        with open(path, "rb") as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except ARRAY_ERRORS as e:
        raise InputError(
            f"{path} is not a readable .npy array ({_reason(e)})",
            "save it with numpy.save(path, array), with numbers, not objects",
        ) from None


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
