"""The core and the ONNX runtime path need no torch: `import bmsdk` stays light, and ONNX artifacts run without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import TEXTS, digit_images

import bmsdk

HEAVY = ("torch", "transformers", "onnx", "onnxscript", "onnxslim", "coremltools", "tensorflow")


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=300
    )


def test_import_bmsdk_does_not_import_heavy_modules():
    proc = run_python(f"""
        import sys
        import bmsdk, bmsdk.manifest, bmsdk.artifact, bmsdk.data, bmsdk.tasks.metrics, bmsdk.tasks.preprocessing
        import bmsdk.runtimes, bmsdk.runtimes.model, bmsdk.converters, bmsdk.converters.validate, bmsdk.cli
        import bmsdk.converters.pipeline, bmsdk.benchmarks.harness, bmsdk.tasks
        from bmsdk.converters import all_targets
        all_targets()
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_onnx_artifacts_run_with_torch_blocked(bert_onnx, cnn_onnx_artifact, tmp_path):
    """With torch and transformers unimportable, ONNX artifacts load, verify, and predict exactly as here."""
    from PIL import Image

    image = digit_images(1, seed=4)[0]
    png = tmp_path / "digit.png"
    Image.fromarray(image).save(png)
    proc = run_python(f"""
        import json, sys
        for name in ("torch", "transformers"):
            sys.modules[name] = None  # any `import torch` now raises ImportError
        import bmsdk
        text = bmsdk.load({str(bert_onnx.path)!r})
        image = bmsdk.load({str(cnn_onnx_artifact.path)!r}, threads=1)
        result = {{"text": text.predict({TEXTS!r}), "image": image.predict({str(png)!r}),
                   "backends": [text.backend, image.backend],
                   "heavy": sorted(m for m in {HEAVY!r} if sys.modules.get(m) is not None)}}
        print(json.dumps(result))
    """)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["backends"] == ["onnxruntime", "onnxruntime"]
    assert got["heavy"] == [], "the ONNX runtime path imported a converter dependency"

    here_text = bmsdk.load(bert_onnx.path).predict(TEXTS)
    assert [p["label"] for p in got["text"]] == [p["label"] for p in here_text]
    for a, b in zip(got["text"], here_text):
        assert abs(a["score"] - b["score"]) < 1e-6
    here_image = bmsdk.load(cnn_onnx_artifact.path).predict(png)
    assert got["image"]["label"] == here_image["label"]
    assert abs(got["image"]["score"] - here_image["score"]) < 1e-6


def test_converting_without_torch_leaves_nothing(cnn_onnx, tmp_path):
    """Converting needs the convert extra; without torch it fails with a typed error, before writing anything."""
    out = tmp_path / "x.bmsdk"
    proc = run_python(f"""
        import sys
        sys.modules["torch"] = None
        import bmsdk
        try:
            bmsdk.convert({str(cnn_onnx)!r}, output={str(out)!r})
        except bmsdk.BmsdkError as e:
            print("typed:", type(e).__name__, e)
        except ImportError as e:
            print("import:", e)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("typed: BackendUnavailableError"), proc.stdout
    assert "bmsdk[convert]" in proc.stdout
    assert not out.exists() and list(tmp_path.iterdir()) == []
