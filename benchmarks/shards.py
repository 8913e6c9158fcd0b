"""Evaluation data larger than one machine's memory (`bmsdk bench --eval-shards DIR`): one task per shard file, the
metric merged exactly.

Each shard returns its confusion counts, never its metric: summed counts give the accuracy and macro-F1 of the
whole set (an average of per-shard macro-F1 is not the macro-F1 of the whole: classes weigh differently per shard).
A shard is one data file; a folder of them (`*.npz`, `*.jsonl`, `*.csv`) is the whole set, read one shard per task.
On a cluster every worker must be able to read the folder (a shared path); the artifacts travel as checksummed bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bmsdk.artifact import open_artifact
from bmsdk.benchmarks.cluster import connect, folder_digest, pack, unpack
from bmsdk.data import load_dataset
from bmsdk.errors import BmsdkError, DataError
from bmsdk.runtimes.model import load
from bmsdk.tasks import get_task
from bmsdk.tasks.metrics import label_indices

SHARD_SUFFIXES = (".npz", ".jsonl", ".csv")


def confusion(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true class, predicted class]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(truth), np.asarray(pred)), 1)
    return counts


def metrics_from_confusion(counts: np.ndarray) -> dict:
    """Accuracy and macro-F1 as `classification_metrics` computes them (a class absent from both truth and
    predictions does not count)."""
    tp = np.diag(counts).astype(float)
    fp, fn = counts.sum(0) - tp, counts.sum(1) - tp
    present = (tp + fp + fn) > 0
    f1 = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
    n = int(counts.sum())
    return {
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "macro_f1": float(np.mean(f1)) if present.any() else float("nan"),
        "n": n,
    }


def shard_files(data: str | Path) -> list[Path]:
    path = Path(data)
    files = sorted(p for p in path.iterdir() if p.suffix in SHARD_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{data} holds no shard files ({', '.join(SHARD_SUFFIXES)})", "pass a folder of data files")
    return files


def shard_counts(artifact: str | Path, shard: str | Path, batch_size: int = 32) -> np.ndarray:
    """The confusion counts of a classifier artifact on one shard (this process holds only that shard)."""
    data = load_dataset(shard, require_labels=True)
    with load(artifact) as model:
        logits = model.primary_outputs(data, batch_size)
        truth = label_indices(data.labels, model.labels, logits.shape[-1])
    return confusion(logits.argmax(-1), truth, logits.shape[-1])


def sharded_eval(artifact: str | Path, data: str | Path, cluster: str | None = None) -> dict:
    """The metric of `artifact` over every shard of `data`: on a Ray cluster one task per shard, else in turn."""
    shards = shard_files(data)
    if cluster is None:
        counts = [shard_counts(artifact, s) for s in shards]
    else:
        with connect(cluster) as ray:
            task = ray.remote(max_retries=2)(shard_counts)
            counts = ray.get([task.remote(str(artifact), str(s)) for s in shards])
    return {**metrics_from_confusion(sum(counts)), "shards": len(shards)}


def _remote_counts(packed: bytes, digest: str, shard: str) -> np.ndarray:
    """shard_counts on a worker, over the artifact's bytes (checksummed on arrival)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bmsdk-shard-") as tmp:
        return shard_counts(unpack(packed, Path(tmp), digest), shard)


def score_cells(cells: list[dict], data: str | Path, cluster: str | None = None) -> int:
    """Each classifier cell's accuracy and macro-F1 over every shard of `data`, into cell["sharded_metric"]: on a Ray
    cluster one task per (cell, shard), all cells at once, else in turn. A cell that cannot be scored gets the reason
    instead; other cells (text generation, no artifact) are left as they are. Returns the number of shards."""
    shards = shard_files(data)
    if cluster is None:
        _score(cells, shards, None)
    else:
        with connect(cluster) as ray:
            _score(cells, shards, ray)
    return len(shards)


def _score(cells: list[dict], shards: list[Path], ray) -> None:
    jobs = {}  # cell index -> counts of each shard, or their Ray refs
    for i, cell in enumerate(cells):
        if "artifact" not in cell:
            continue
        try:
            path, manifest = open_artifact(cell["artifact"])
        except BmsdkError as e:
            cell["sharded_metric"] = {"error": str(e)}
            continue
        if not get_task(manifest.task).classifier:
            continue
        if ray is None:
            jobs[i] = lambda path=path: [shard_counts(path, s) for s in shards]
        else:
            task = ray.remote(max_retries=2)(_remote_counts)
            packed = ray.put(pack(path))
            refs = [task.remote(packed, folder_digest(path), str(s)) for s in shards]
            jobs[i] = lambda refs=refs: ray.get(refs)
    for i, counts in jobs.items():
        try:
            cells[i]["sharded_metric"] = {**metrics_from_confusion(sum(counts())), "shards": len(shards)}
        except Exception as e:  # one cell's failure must not lose the others' scores
            cells[i]["sharded_metric"] = {"error": f"{type(e).__name__}: {str(e).strip()[:300]}"}
