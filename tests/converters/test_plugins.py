"""A third party adds a target, its backend, its config section and a task from its own package (entry points).

The plugin below is a real installed distribution (a .dist-info folder on sys.path, as pip writes one): bmsdk's
registries find it, `bmsdk convert --target` builds with it, and `bmsdk.load` runs its artifacts on its backend.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
from bmsdk.converters.targets.onnx import OnnxTarget
from bmsdk.runtimes.onnxruntime_backend import OnnxRuntimeBackend


class LabTarget(OnnxTarget):
    """ONNX with the company's own runtime wrapper: a third-party target reusing bmsdk's ONNX export."""

    name = "lab-onnx"
    backend = "lab-runtime"
    demo_precisions = ()


class LabBackend(OnnxRuntimeBackend):
    name = "lab-runtime"
    runs = {"lab-onnx": 0}


import numpy as np
from bmsdk.compare import cosines
from bmsdk.tasks.base import Task


class ImageEmbedding(Task):
    """A new task, from its own module only: an image model's outputs as L2-normalised embeddings."""

    name = "image-embedding"
    hf_inputs = "image"

    def primary(self, post, outputs, feeds):
        out = outputs[post["output"]].astype(np.float32)
        return out / np.linalg.norm(out, axis=-1, keepdims=True)

    def agreement(self, reference, actual):
        cos = cosines(actual, reference)
        return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
'''

ENTRY_POINTS = """
[bmsdk.targets]
lab-onnx = lab_plugin:LabTarget

[bmsdk.backends]
lab-runtime = lab_plugin:LabBackend

[bmsdk.target_configs]
lab-onnx = bmsdk.sections:OnnxConfig

[bmsdk.tasks]
image-embedding = lab_plugin:ImageEmbedding
"""


def install_plugin(folder, *paths):
    folder.mkdir()
    (folder / "lab_plugin.py").write_text(PLUGIN)
    info = folder / "lab_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *paths, os.environ.get("PYTHONPATH", "")])}


def convert_with_plugin(tmp_path, factory: str, *args: str) -> tuple[dict, Path, dict]:
    """`bmsdk convert FACTORY ARGS` in a fresh process that has the plugin installed: (manifest, artifact, env)."""
    factories = str(Path(importlib.import_module(factory.split(".")[0]).__path__[0]).parent)
    env = install_plugin(tmp_path / "site", factories)
    out = tmp_path / "model.bmsdk"
    command = [sys.executable, "-m", "bmsdk.cli", "convert", factory, *args, "-o", str(out), "-q"]
    convert = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert convert.returncode == 0, convert.stderr
    return json.loads((out / "bmsdk.json").read_text()), out, env


def test_a_third_party_target_and_backend_plug_in(tmp_path, cnn_factory):
    manifest, out, env = convert_with_plugin(tmp_path, cnn_factory, "--target", "lab-onnx")
    assert manifest["target"] == "lab-onnx" and manifest["validation"]["backend"] == "lab-runtime"
    assert manifest["validation"]["passed"] is True and manifest["target_config"]["opset"] == 18
    code = textwrap.dedent(f"""
        import numpy as np, bmsdk
        from bmsdk.converters import target_names
        with bmsdk.load({str(out)!r}) as model:
            print(model.backend, "lab-onnx" in target_names(), len(model.predict(np.zeros((3, 1, 28, 28), np.float32))))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["lab-runtime", "True", "3"]
    # without the plugin installed, the artifact is refused with a clear error, not a crash
    plain = subprocess.run(
        [sys.executable, "-m", "bmsdk.cli", "inspect", str(out)], capture_output=True, text=True, timeout=300
    )
    assert plain.returncode == 2 and "lab-onnx" in plain.stderr and "Traceback" not in plain.stderr


def test_a_third_party_task_plugs_in(tmp_path, cnn_factory):
    """A new task is its own module plus an entry point: convert, validate and predict work with nothing else."""
    manifest, out, env = convert_with_plugin(tmp_path, cnn_factory, "--task", "image-embedding")
    assert manifest["task"] == "image-embedding" and manifest["validation"]["passed"] is True
    code = textwrap.dedent(f"""
        import numpy as np, bmsdk
        with bmsdk.load({str(out)!r}) as model:
            emb = model.predict(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
            print(emb.shape, round(float(np.linalg.norm(emb[0])), 4))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(3, 10) 1.0"
