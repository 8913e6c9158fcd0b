"""object-detection: a tiny trained YOLO-style factory detector (letterbox, NMS) and a tiny YOLOS converted to ONNX,
TFLite and CoreML; detections equal to transformers' post_process_object_detection, letterbox and NMS equal to
ultralytics' arithmetic, COCO mAP from pycocotools on a hand-checked case, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from task_checks import checked_eval, conversions, quick_bench

import bmsdk
from bmsdk.benchmarks.task_models.detection import DET_LABELS, EVAL_SIZES, SIDE, build_all, write_eval_set
from bmsdk.cli import main as cli
from bmsdk.data import load_dataset
from bmsdk.tasks.image_ops import letterbox
from bmsdk.tasks.object_detection import box_agreement, coco_map, detr_detections, nms, unletterbox

# --- numerics (no model) -------------------------------------------------------------------------------------


def test_coco_map_hand_checked():
    # image 1: two boxes of label 0, found once exactly and once at IoU 0.818 (shifted by 2 of 20 in x: 18*20 /
    # (800 - 360)); image 2: its box of label 1 missed, a detection of label 1 elsewhere (a false positive)
    refs = [np.array([[0, 0, 20, 20, 0], [50, 50, 70, 70, 0]], float), np.array([[10, 10, 30, 30, 1]], float)]
    dets = [
        np.array([[0, 0, 20, 20, 0.9, 0], [52, 50, 72, 70, 0.8, 0]], float),
        np.array([[60, 60, 80, 80, 0.7, 1]], float),
    ]
    got = coco_map(dets, refs, num_labels=2)
    # label 0: both found, precision 1 at every recall up to 1 -> AP@0.5 1.0; at IoU thresholds 0.5..0.8 (7 of
    # 10) both match, from 0.85 only the exact one (recall 0.5): AP = (7 * 1 + 3 * 0.5) / 10 = 0.85 (COCO's
    # 101-point interpolation gives exactly 0.5 of the curve at recall 0.5: 51/101 points)
    # label 1: nothing found -> AP 0 at every threshold
    assert got["objects"] == 3
    assert got["map_50"] == pytest.approx((1.0 + 0.0) / 2)
    ap0 = (7 * 1.0 + 3 * 51 / 101) / 10
    assert got["map_50_95"] == pytest.approx((ap0 + 0.0) / 2, abs=1e-9)
    assert coco_map([np.zeros((0, 6))] * 2, refs, 2)["map_50"] == 0.0


def test_nms_and_letterbox_follow_ultralytics():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]], float)
    scores, labels = np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 0, 1, 0])
    # the second overlaps the first (IoU 81/119 = 0.68): kept at 0.7, dropped at 0.5; the third is another label
    assert nms(boxes, scores, labels, 0.7).tolist() == [0, 1, 2, 3]
    assert nms(boxes, scores, labels, 0.5).tolist() == [0, 2, 3]
    from PIL import Image

    image = Image.fromarray(np.full((48, 80, 3), 200, np.uint8))
    boxed = np.asarray(letterbox(image, (64, 64)))
    # gain 0.8: 64x38 (38.4 rounded), padding 26 split 13/13 rows of 114
    assert boxed.shape == (64, 64, 3) and (boxed[:13] == 114).all() and (boxed[-13:] == 114).all()
    assert (boxed[13:51] == 200).all()
    back = unletterbox(np.array([[0.0, 13.0, 64.0, 51.0]]), (64, 64), (48, 80))
    np.testing.assert_allclose(back, [[0, 0, 80, 47.5]])  # 38 rows of 38.4 map back to 47.5 of 48


def test_box_agreement():
    a = [np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 1]], float)]
    b = [np.array([[1, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 2], [0, 0, 5, 5, 0.1, 0]], float)]
    assert box_agreement(a, a, 0.5) == 1.0
    assert box_agreement(a, b, 0.5) == pytest.approx(2 * 1 / 4)  # label 1 vs 2 does not match; 0.1 not counted
    assert box_agreement([np.zeros((0, 6))], [np.zeros((0, 6))], 0.5) is None


def test_bad_detection_data_is_a_data_error(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    cases = {
        json.dumps({"image": "a.png", "objects": [{"box": [0, 0, 4], "label": "disc"}]}): "needs a 'box' of 4",
        json.dumps({"image": "a.png", "objects": [{"box": [5, 0, 4, 4], "label": "disc"}]}): "xmax < xmin",
        json.dumps({"image": "gone.png", "objects": []}): "does not exist",
        json.dumps({"image": "a.png", "objects": "disc"}): "an 'objects' list",
    }
    for row, message in cases.items():
        (tmp_path / "d.jsonl").write_text(row + "\n")
        with pytest.raises(bmsdk.DataError, match=message):
            load_dataset(tmp_path / "d.jsonl")
    coco = {
        "images": [{"id": 7, "file_name": "a.png"}],
        "annotations": [{"image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4]}],
        "categories": [{"id": 3, "name": "disc"}],
    }
    (tmp_path / "c.json").write_text(json.dumps(coco))
    data = load_dataset(tmp_path / "c.json", require_labels=True)
    assert data.labels == [[{"box": [1.0, 2.0, 4.0, 6.0], "label": "disc"}]]


# --- models ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detectors(tmp_path_factory) -> dict:
    return build_all(tmp_path_factory.mktemp("detectors"))


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory):
    return write_eval_set(tmp_path_factory.mktemp("det-data"))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, detectors, eval_set):
    """`get(arch, target, precision="fp32")`: converted once, with --eval (and the same images as calibration)."""
    return conversions(tmp_path_factory.mktemp("det-artifacts"), detectors, eval_set, calibrate=True)


def test_yolos_predict_equals_transformers_post_processing(artifacts, detectors, eval_set):
    import torch
    import transformers
    from PIL import Image

    rows = [json.loads(line) for line in eval_set.read_text().splitlines()]
    images = [Image.open(eval_set.parent / r["image"]).convert("RGB") for r in rows[: len(EVAL_SIZES)]]
    model = transformers.AutoModelForObjectDetection.from_pretrained(str(detectors["yolos"])).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(str(detectors["yolos"]))
    with torch.inference_mode():
        out = model(**proc(images=images, return_tensors="pt"))
    sizes = [(i.height, i.width) for i in images]
    result = artifacts("yolos", "onnx")
    assert result.manifest.task == "object-detection"
    assert [o.name for o in result.manifest.outputs] == ["logits", "pred_boxes"]
    with bmsdk.load(result.path) as art:
        for threshold in (0.5, 0.1):
            want = proc.post_process_object_detection(out, threshold=threshold, target_sizes=sizes)
            got = art.predict(images, threshold=threshold)
            for ours, theirs in zip(got, want):
                order = np.argsort(-theirs["scores"].numpy(), kind="stable")
                assert [d["label"] for d in ours] == [DET_LABELS[int(i)] for i in theirs["labels"][order]]
                np.testing.assert_allclose([d["score"] for d in ours], theirs["scores"][order].numpy(), atol=1e-5)
                boxes = [[d["box"][k] for k in ("xmin", "ymin", "xmax", "ymax")] for d in ours]
                np.testing.assert_allclose(np.reshape(boxes, (-1, 4)), theirs["boxes"][order].numpy(), atol=1e-3)
        with pytest.raises(bmsdk.InputError, match="unknown option"):
            art.predict(images[0], nms=0.3)
    # the numpy decoder itself, on the raw outputs, without the artifact
    mine = detr_detections(out.logits[0].numpy(), out.pred_boxes[0].numpy(), sizes[0], 0.0)
    assert len(mine) == out.logits.shape[1]


def test_yolo_letterbox_and_nms_in_predict(artifacts, eval_set):
    result = artifacts("yolo", "onnx")
    pre, post = result.manifest.preprocessing, result.manifest.postprocessing
    assert pre["resize"] == {"mode": "letterbox", "size": [SIDE, SIDE], "resample": 2, "pad_value": 114}
    assert post["format"] == "yolo" and post["labels"] == DET_LABELS
    rows = [json.loads(line) for line in eval_set.read_text().splitlines()]
    with bmsdk.load(result.path) as model:
        answered = 0
        for row in rows[: len(EVAL_SIZES)]:
            found = model.predict(str(eval_set.parent / row["image"]))
            answered += bool(found)
            assert all(d["label"] in DET_LABELS and 0.25 < d["score"] <= 1 for d in found)
            best = {o["label"]: o["box"] for o in row["objects"]}
            for d in found[:1]:  # the most confident detection lies on a labelled object of its label
                if d["label"] in best:
                    x0, y0, x1, y1 = best[d["label"]]
                    box = d["box"]
                    inter = max(0, min(x1, box["xmax"]) - max(x0, box["xmin"])) * max(
                        0, min(y1, box["ymax"]) - max(y0, box["ymin"])
                    )
                    assert inter > 0
        assert answered >= len(EVAL_SIZES) // 2
        loose = model.predict(str(eval_set.parent / rows[1]["image"]), threshold=0.01, iou_threshold=0.99)
        strict = model.predict(str(eval_set.parent / rows[1]["image"]), threshold=0.01, iou_threshold=0.1)
        assert len(loose) > len(strict)
        with pytest.raises(bmsdk.DataError, match="iou_threshold"):
            model.predict(str(eval_set.parent / rows[1]["image"]), iou_threshold=2)


CELLS = [
    tuple(cell.split())
    for cell in (
        "yolo onnx fp32", "yolo onnx int8", "yolo tflite fp32", "yolo tflite int8-dynamic", "yolo coreml fp32",
        "yolo coreml int8", "yolos onnx fp32", "yolos onnx int8", "yolos tflite fp32", "yolos coreml fp32",
    )
]  # fmt: skip


@pytest.mark.parametrize("arch,target,precision", CELLS)
def test_targets_validate_with_map(artifacts, arch, target, precision):
    result = artifacts(arch, target, precision)
    ev = checked_eval(result, precision)
    assert ev.n == 16 and ev.objects > 0
    if arch == "yolo":  # the tiny YOLO learnt: about 0.85 mAP@0.5, 0.49 mAP@0.5:0.95 here
        assert ev.source_map_50 > 0.6 and ev.source_map_50_95 > 0.25, ev
    if arch == "yolos":  # the tiny YOLOS learnt the boxes too: about 0.89 mAP@0.5, 0.35 mAP@0.5:0.95 here
        assert ev.source_map_50 > 0.45 and ev.source_map_50_95 > 0.15, ev
    if precision == "fp32":
        assert ev.map_50 == pytest.approx(ev.source_map_50, abs=1e-6) and ev.top1_agreement >= 0.99
    else:
        assert abs(ev.map_50_95 - ev.source_map_50_95) <= 0.1
    print(f"{arch} {target} {precision}: mAP@0.5 {ev.map_50:.4f} mAP@0.5:0.95 {ev.map_50_95:.4f} (source "
          f"{ev.source_map_50:.4f} / {ev.source_map_50_95:.4f}), agreement {ev.top1_agreement}")  # fmt: skip


def test_yolos_position_embeddings_resize_to_a_constant_on_coreml(artifacts):
    """YOLOS resizes its position embeddings bicubically (MIL has no bicubic resize); at the export size that is a
    constant, which the CoreML program holds: equal to the ONNX artifact."""
    with bmsdk.load(artifacts("yolos", "coreml").path) as coreml, bmsdk.load(artifacts("yolos", "onnx").path) as onnx:
        pixels = np.random.default_rng(0).standard_normal((2, 3, SIDE, SIDE)).astype(np.float32)
        got, want = coreml.run({"pixel_values": pixels}), onnx.run({"pixel_values": pixels})
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-4)


# --- command line ----------------------------------------------------------------------------------------------


def test_cli_predict_validate_and_bench(artifacts, detectors, eval_set, capsys, tmp_path):
    path = str(artifacts("yolo", "onnx").path)
    image = str(eval_set.parent / "img" / "1.png")
    assert cli(["predict", path, image]) == 0
    out = capsys.readouterr().out
    assert " object" in out and out.rstrip().endswith(image)
    assert cli(["predict", path, image, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]["output"]
    assert set(row[0]) == {"label", "score", "box"}
    assert cli(["validate", path, "--eval", str(eval_set)]) == 0
    out = capsys.readouterr().out
    assert "mAP@0.5" in out and "source mAP@0.5" in out
    cell, source = quick_bench(detectors["yolos"], eval_set, tmp_path / "bench")
    assert cell["metric"]["map_50"] == source["metric"]["map_50"]
    assert cell["accuracy_change_pt"] == 0
