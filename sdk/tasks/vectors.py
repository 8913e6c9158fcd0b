"""Test vectors for on-device runtimes (`bmsdk export-vectors`): raw inputs, the exact model feeds bmsdk's
pre-processing makes from them, and the source model's outputs, so an Android or iOS port can check its
tokenizer, image and audio pre-processing and post-processing against the Python side."""

from __future__ import annotations

from pathlib import Path

from bmsdk.artifact import load_samples, open_artifact
from bmsdk.tasks import get_task
from bmsdk.tasks.preprocessing import make_preprocessor


def export_vectors(artifact: str | Path, public_key: str | Path | bytes | None = None) -> dict:
    folder, manifest = open_artifact(artifact, public_key=public_key)
    inputs, outputs, raw = load_samples(folder)
    pre = make_preprocessor(manifest.preprocessing, folder, manifest.inputs)
    kind = manifest.input_kind
    task = get_task(manifest.task)
    cases = []
    for i in range(len(next(iter(outputs.values())))):
        case: dict = {}
        if kind == "text" and raw is not None:
            text = str(raw[i])
            case["text"] = text
            case["feeds"] = {k: v[0].tolist() for k, v in pre([text]).items()}  # one text alone: no batch padding
        elif kind == "image" and raw is not None:
            case["pixels_hwc"] = raw[i].tolist()
            case["feeds"] = {k: v[i].tolist() for k, v in inputs.items()}
        elif kind == "audio" and raw is not None:
            case["waveform"] = raw[i].tolist()  # mono float32 at the model's rate and clip length
            case["feeds"] = {k: v[i].tolist() for k, v in inputs.items()}
        else:
            case["feeds"] = {k: v[i].tolist() for k, v in inputs.items()}
        case["outputs"] = {k: v[i].tolist() for k, v in outputs.items()}
        row_feeds = {k: v[i : i + 1] for k, v in inputs.items()}  # as the outputs were computed (padded batch)
        row_outputs = {k: v[i : i + 1] for k, v in outputs.items()}
        case["prediction"] = task.vector_prediction(manifest.postprocessing, row_outputs, row_feeds)
        cases.append(case)
    return {
        "format": "bmsdk-test-vectors",
        "version": 1,
        "name": manifest.name,
        "task": manifest.task,
        "target": manifest.target,
        "precision": manifest.precision,
        "preprocessing": manifest.preprocessing,
        "postprocessing": manifest.postprocessing,
        "inputs": [vars(s) for s in manifest.inputs],
        "outputs": [vars(s) for s in manifest.outputs],
        "cases": cases,
    }
