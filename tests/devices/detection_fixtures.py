"""Object-detection vectors for the device libraries' tests (test_android_jvm.py, test_ios_swift.py).

The tiny trained detectors of task_models.detection, converted to ONNX fp32 with scenes as samples, one folder each:
detection-yolo (YOLO-style, one output [batch, 64 anchors, 4 + 3], letterboxed 64x64 input) and detection-yolos
(YOLOS, logits [batch, 8 queries, 3 + 1] and pred_boxes, an exact 64x64 resize). Each holds bmsdk.json, `bmsdk
export-vectors`' vectors.json and detection.json: scenes of several sizes, each with the image's pixels as Pillow
resized them for the letterbox (`resized`, what the app's own resize gives on device) and the letterboxed input
Python fed the model (`letterboxed`; YOLO only), the model's raw outputs and what `predict()` returned for the image at
its own size under several threshold / iou_threshold / max_detections options. The device tests pad the resized pixels
themselves (equal, pixel for pixel), decode the recorded outputs and compare labels and order (equal), scores (1e-6)
and boxes (1e-4 px).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from vector_folders import float32s, made_once, write_by_hand, write_vectors_folder

from bmsdk.benchmarks.task_models.detection import SIDE, build_detector, scenes, train_yolo, write_eval_set

# (height, width); at (20, 30) scale_boxes pads by 11 rows where the letterbox pasted at 10
SIZES = ((64, 64), (48, 80), (80, 72), (56, 96), (20, 30), (100, 40), (13, 7))
OPTIONS = {
    "yolo": (
        {},
        {"threshold": 0.05},
        {"threshold": 0.01, "iou_threshold": 0.3},
        {"threshold": 0.01, "iou_threshold": 0.9, "max_detections": 4},
        {"threshold": 0.001, "iou_threshold": 0.5},
    ),
    "detr": ({}, {"threshold": 0.1}, {"threshold": 0.0, "max_detections": 3}),
}


def _resized(image: np.ndarray) -> np.ndarray:
    """The image scaled as the letterbox scales it (Pillow's bilinear), before the padding."""
    from PIL import Image

    height, width = image.shape[:2]
    gain = min(SIDE / height, SIDE / width)
    size = (int(round(width * gain)), int(round(height * gain)))
    pil = Image.fromarray(image)
    return np.asarray(pil if size == pil.size else pil.resize(size, resample=2))


def detection_cases(model, seed: int = 11, sizes=SIZES) -> list[dict]:
    images, _ = scenes(len(sizes), seed, sizes)
    fmt = model.manifest.postprocessing["format"]
    letterbox = model.manifest.preprocessing["resize"]["mode"] == "letterbox"
    cases = []
    for image in images:
        feeds = model.preprocess([image])
        outputs = model.run(feeds)
        case = {"size": list(image.shape[:2]), "outputs": {k: float32s(v[0]) for k, v in outputs.items()}}
        if letterbox:
            resized = _resized(image)
            pixels = next(iter(feeds.values()))[0].transpose(1, 2, 0) * 255.0  # NCHW, scale 1/255: back to bytes
            case["resized_size"] = list(resized.shape[:2])
            case["resized"] = resized.ravel().tolist()
            case["letterboxed"] = np.rint(pixels).astype(int).ravel().tolist()
        case["predictions"] = [
            {"options": options, "detections": model.predict(image, **options)} for options in OPTIONS[fmt]
        ]
        cases.append(case)
    return cases


def write_detection_folders(root: Path, work: Path, max_cases: int | None = 3, sizes=SIZES) -> list[Path]:
    """detection-yolo and detection-yolos under `root`; the models are built and converted once per process."""
    return made_once("detection", root, lambda: _write(root, work, max_cases, sizes))


def _write(root: Path, work: Path, max_cases, sizes) -> list[Path]:
    import bmsdk

    scenes_set = write_eval_set(work / "det-scenes", n=4)
    factory, weights = train_yolo(work / "yolo-source")
    yolos = build_detector("yolos", work / "yolos-source")
    folders = []
    for name, source, extra in (("yolo", factory, {"weights": weights}), ("yolos", str(yolos), {})):
        made = bmsdk.convert(source, target="onnx", output=work / f"{name}.bmsdk", eval_data=str(scenes_set), **extra)
        folder = write_vectors_folder(made.path, root / f"detection-{name}", max_cases)
        with bmsdk.load(made.path) as model:
            cases = detection_cases(model, sizes=sizes)
        (folder / "detection.json").write_text(json.dumps({"task": model.manifest.task, "cases": cases}) + "\n")
        folders.append(folder)
    return folders


if __name__ == "__main__":  # refresh the committed Swift fixtures: python tests/devices/detection_fixtures.py DIR
    # small: three scenes, and vectors.json without cases (a case's feeds alone are 12,288 floats)
    write_by_hand(lambda root, work: write_detection_folders(root, work, max_cases=0, sizes=SIZES[4:]))
