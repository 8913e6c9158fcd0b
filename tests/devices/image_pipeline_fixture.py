"""Image pre-processing vectors for the device libraries' tests (test_android_jvm.py, test_ios_swift.py).

One folder per checkpoint image processor (transformers' classes saved with save_pretrained and read by bmsdk's
loader), in the layout of `bmsdk export-vectors`: bmsdk.json (a classifier manifest around that `preprocessing`)
and vectors.json, whose cases hold the model-size pixels bmsdk's resize and crop made (`pixels_hwc`), the exact
feeds, made-up logits and their prediction; plus `geometry`: for images of many sizes, the size the `resize` gives
and the centre crop's top-left (negative: zero padding), which the Java/Swift helpers must reproduce.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from vector_folders import float32s

from bmsdk.converters.sources.image_processors import checkpoint_pipeline
from bmsdk.manifest import TensorSpec
from bmsdk.tasks import get_task
from bmsdk.tasks.image_ops import resized_size
from bmsdk.tasks.preprocessing import ImagePreprocessor

LABELS = ["cat", "dog", "bird"]
SIZES = [(60, 40), (40, 60), (37, 53), (9, 5), (500, 90), (33, 33), (31, 29)]
PROCESSORS = {  # small sizes keep the JSON small; every step of the pipeline appears at least once
    "image-convnext-crop-pct": ("ConvNextImageProcessor", {"size": {"shortest_edge": 32}, "crop_pct": 0.875}),
    "image-efficientnet-offset-top": (
        "EfficientNetImageProcessor",
        {"size": {"height": 40, "width": 36}, "crop_size": {"height": 32, "width": 30}, "do_center_crop": True}
        | {"rescale_offset": True, "resample": 0},
    ),
    "image-mobilevit-bgr": (
        "MobileViTImageProcessor",
        {"size": {"shortest_edge": 36}, "crop_size": {"height": 32, "width": 28}},
    ),
}


def write_image_pipeline_folders(root: Path, layouts=("NCHW", "NHWC"), names=None, cases: int = 3) -> list[Path]:
    """One folder per processor and layout under `root` (`names`: only those of PROCESSORS)."""
    import transformers

    folders = []
    rng = np.random.default_rng(11)
    for name, (cls_name, options) in PROCESSORS.items():
        if names is not None and name not in names:
            continue
        cls = getattr(transformers, f"{cls_name}Pil", None) or getattr(transformers, cls_name)
        with tempfile.TemporaryDirectory() as saved:
            cls(**options).save_pretrained(saved)
            fields = checkpoint_pipeline(Path(saved), 3, [32, 32])
        for layout in layouts:
            folder = root / f"{name}-{layout.lower()}"
            folder.mkdir(parents=True)
            pre = {"kind": "image", "input_name": "pixel_values", "channels": 3, "layout": layout, **fields}
            _write(folder, pre, rng, cases)
            folders.append(folder)
    return folders


def _write(folder: Path, pre: dict, rng, cases: int) -> None:
    height, width = pre["size"]
    shape = ["batch", 3, height, width] if pre["layout"] == "NCHW" else ["batch", height, width, 3]
    inputs = [TensorSpec("pixel_values", "float32", shape)]
    outputs = [TensorSpec("logits", "float32", ["batch", len(LABELS)])]
    post = get_task("image-classification").postprocessing("logits", LABELS)
    manifest = {
        "schema_version": 2,
        "name": folder.name,
        "task": "image-classification",
        "target": "onnx",  # pre/post-processing only: no model file, no target_config
        "precision": "fp32",
        "model_file": "model.onnx",
        "inputs": [vars(s) for s in inputs],
        "outputs": [vars(s) for s in outputs],
        "preprocessing": pre,
        "postprocessing": post,
    }
    processor = ImagePreprocessor(pre, inputs)
    rows = []
    for h, w in SIZES[:cases]:
        pixels = processor.load(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        feeds = processor.normalize(pixels[None])
        logits = rng.normal(size=(1, len(LABELS))).astype(np.float32)
        prediction = get_task("image-classification").vector_prediction(post, {"logits": logits}, {})
        rows.append(
            {
                "pixels_hwc": pixels.astype(np.uint8).tolist(),
                "feeds": {"pixel_values": float32s(feeds[0])},
                "outputs": {"logits": float32s(logits[0])},
                "prediction": prediction,
            }
        )
    crop = pre.get("center_crop")
    geometry = []
    for h, w in SIZES:
        rh, rw = resized_size(h, w, pre["resize"])
        origin = [(rh - crop[0]) // 2, (rw - crop[1]) // 2] if crop else [0, 0]
        geometry.append({"image": [h, w], "resized": [rh, rw], "crop_origin": origin})
    vectors = {
        "format": "bmsdk-test-vectors",
        "version": 1,
        "name": folder.name,
        "task": "image-classification",
        "preprocessing": pre,
        "cases": rows,
        "geometry": geometry,
    }
    (folder / "bmsdk.json").write_text(json.dumps(manifest) + "\n")
    (folder / "vectors.json").write_text(json.dumps(vectors) + "\n")


if __name__ == "__main__":  # refresh the committed Swift fixtures: python tests/devices/image_pipeline_fixture.py DIR
    import sys

    out = Path(sys.argv[1])
    write_image_pipeline_folders(out, ("NCHW",), ["image-efficientnet-offset-top"], cases=1)
    write_image_pipeline_folders(out, ("NHWC",), ["image-mobilevit-bgr"], cases=1)
