"""Semantic-segmentation vectors for the device libraries' tests (test_android_jvm.py, test_ios_swift.py).

The tiny trained SegFormer of task_models.segmentation (48x48 input, logits 4 x 12 x 12), converted to ONNX fp32 with
scenes as samples, in one folder (segmentation-segformer): bmsdk.json, `bmsdk export-vectors`' vectors.json (model-size
pixels, feeds, logits, the mask at the input size and the label fractions) and segmentation.json: scenes of other
sizes, each with the model's raw logits and what `predict()` returned for the image at its own size (the mask,
upsampled bilinear with align_corners=False, and the fractions). The device tests upsample the recorded logits
themselves; masks must be equal pixel for pixel (both sides compute in float32 in the same order, and a tie between
labels goes to the first, as numpy's argmax), fractions within 1e-12.
"""

from __future__ import annotations

import json
from pathlib import Path

from vector_folders import float32s, made_once, write_by_hand, write_vectors_folder

from bmsdk.benchmarks.task_models.segmentation import build_segmenter, scenes, write_eval_set

SIZES = ((48, 48), (56, 56), (40, 64), (72, 72), (7, 5), (13, 100), (12, 12))


def segmentation_cases(model, seed: int = 9) -> list[dict]:

    images, _ = scenes(len(SIZES), seed, SIZES)
    cases = []
    for image in images:
        outputs = model.run(model.preprocess([image]))
        result = model.predict(image)
        cases.append(
            {
                "size": list(image.shape[:2]),
                "outputs": {k: float32s(v[0]) for k, v in outputs.items()},
                "mask": result["mask"].tolist(),
                "fractions": result["fractions"],
                "order": list(result["fractions"]),  # largest first (JSON readers need not keep key order)
            }
        )
    return cases


def write_segmentation_folders(root: Path, work: Path, max_cases: int | None = 3) -> list[Path]:
    """segmentation-segformer under `root`; the model is built and converted once per process."""
    return made_once("segmentation", root, lambda: _write(root, work, max_cases))


def _write(root: Path, work: Path, max_cases) -> list[Path]:

    import bmsdk

    source = build_segmenter("segformer", work / "segformer-source")
    scenes = write_eval_set(work / "segformer-scenes", n=4)
    made = bmsdk.convert(str(source), target="onnx", output=work / "segformer.bmsdk", eval_data=str(scenes))
    folder = write_vectors_folder(made.path, root / "segmentation-segformer", max_cases)
    with bmsdk.load(made.path) as model:
        cases = segmentation_cases(model)
    (folder / "segmentation.json").write_text(json.dumps({"task": model.manifest.task, "cases": cases}) + "\n")
    return [folder]


if __name__ == "__main__":  # refresh the committed Swift fixture: python tests/devices/segmentation_fixtures.py DIR
    write_by_hand(lambda root, work: write_segmentation_folders(root, work, max_cases=1))
