"""object-detection: boxes, labels and scores per image, from a set-prediction detector (`*ForObjectDetection`:
DETR, YOLOS; logits [batch, queries, labels + 1] with a last "no object" class and pred_boxes [batch, queries, 4],
cx, cy, w, h normalised to the image) or a YOLO-style detector (one output [batch, anchors, 4 + labels]: boxes cx,
cy, w, h in input pixels, then per-class scores; YOLOv8's layout with the anchors first).

predict(image) gives, per image, what transformers' object-detection pipeline gives: a list of `{"label", "score",
"box": {"xmin", "ymin", "xmax", "ymax"}}`, best first, boxes in the pixels of the image given (floats; the pipeline
truncates them to ints).

- "detr" (post_process_object_detection of DETR and YOLOS): softmax over the labels, the no-object class dropped,
  each query's best label and its probability, kept when above `threshold` (default 0.5); boxes to corners and
  scaled by the image's own width and height (the export resizes every image to one size, so the normalised boxes
  map straight back).
- "yolo": each anchor's best class score, kept when above `threshold` (default 0.25, ultralytics' predict), boxes to
  corners, class-wise non-maximum suppression at `iou_threshold` (default 0.7), at most `max_detections` (300), then
  mapped back through the letterbox (ultralytics' `scale_boxes`) or the plain resize, clipped to the image.

Over --eval data (JSON lines `{"image": path, "objects": [{"box": [xmin, ymin, xmax, ymax], "label": name}]}`;
bmsdk.data) the detections (all above EVAL_THRESHOLD, at most 100 per image) are scored by COCO mAP@0.5 and
mAP@[.5:.95] with pycocotools' COCOeval (coco_map()); artifact and source are compared by the F1 of their matched
confident detections (box_agreement()).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from bmsdk.errors import DataError, UnsupportedError
from bmsdk.image_pipeline import BILINEAR

from .base import Task

FORMATS = ("detr", "yolo")
DEFAULT_THRESHOLD = {"detr": 0.5, "yolo": 0.25}  # transformers' pipeline; ultralytics' predict
DEFAULT_IOU = 0.7  # ultralytics' NMS IoU threshold
MAX_DETECTIONS = 300  # ultralytics' max_det
EVAL_THRESHOLD = 0.001  # detections scored by mAP (ultralytics' val conf); COCO keeps the 100 best per image
EVAL_MAX_DETECTIONS = 100
AGREEMENT_IOU = 0.5  # a detection of the artifact matches one of the source's: same label, IoU at least this
LETTERBOX_PAD = 114  # ultralytics' gray
SAMPLE_SCORE = 0.05  # queries/anchors a sample check compares: those the source gives at least this score


class ObjectDetection(Task):
    name = "object-detection"
    hf_suffixes = ("ForObjectDetection",)
    hf_auto_class = "AutoModelForObjectDetection"
    hf_inputs = "image"
    hf_outputs = ("logits", "pred_boxes")
    predict_options = ("threshold", "iou_threshold", "max_detections")
    agreement_floor = True  # the target's min_top1_agreement applies to the matched-detection F1

    def postprocessing(self, output, labels):
        """A single-output detector from a file or a factory: YOLO-style [batch, anchors, 4 + labels]."""
        return {"output": output, "format": "yolo", "labels": labels, "label_extra": 4, "letterbox": True}

    def hf_postprocessing(self, labels):
        """DETR/YOLOS: logits [batch, queries, labels + 1] (the last: no object) and normalised pred_boxes."""
        return {"output": "logits", "boxes": "pred_boxes", "format": "detr", "labels": labels, "label_extra": 1}

    def source_resize(self, height, width, hints):
        """A YOLO-style detector's images go through ultralytics' letterbox."""
        return {"mode": "letterbox", "size": [height, width], "resample": BILINEAR, "pad_value": LETTERBOX_PAD}

    def postprocess_images(self, post, outputs, feeds, sizes, options=None):
        names = _names(post, outputs)
        found = self.detections(post, outputs, feeds, sizes, **(options or {}))
        return [[_entry(row, names) for row in image] for image in found]

    def postprocess(self, post, outputs, feeds):
        """Without the images' own sizes (pre-processed arrays, test vectors): boxes in the model's input pixels."""
        size = input_size(feeds)
        return self.postprocess_images(post, outputs, feeds, [size] * len(next(iter(outputs.values()))))

    def primary_images(self, post, outputs, feeds, sizes):
        """Per image its detections as an (n, 6) array (xmin, ymin, xmax, ymax, score, label), what the metric and
        the agreement read: all above EVAL_THRESHOLD, at most EVAL_MAX_DETECTIONS."""
        found = self.detections(post, outputs, feeds, sizes, EVAL_THRESHOLD, max_detections=EVAL_MAX_DETECTIONS)
        out = np.empty(len(found), dtype=object)
        for i, rows in enumerate(found):
            out[i] = rows
        return out

    def primary(self, post, outputs, feeds):
        size = input_size(feeds)
        return self.primary_images(post, outputs, feeds, [size] * len(next(iter(outputs.values()))))

    def detections(
        self,
        post: dict,
        outputs: dict[str, np.ndarray],
        feeds: dict[str, np.ndarray],
        sizes: Sequence[tuple[int, int]],
        threshold: float | None = None,
        iou_threshold: float | None = None,
        max_detections: int | None = None,
    ) -> list[np.ndarray]:
        """Each image's detections, (n, 6) float64 arrays sorted by score, boxes in that image's pixels."""
        fmt = post.get("format", "yolo")
        if fmt not in FORMATS:
            raise UnsupportedError(
                f"bmsdk.json names detection format {fmt!r}", f"this bmsdk reads {', '.join(FORMATS)}; upgrade it"
            )
        threshold = _probability(DEFAULT_THRESHOLD[fmt] if threshold is None else threshold, "threshold")
        iou = _probability(DEFAULT_IOU if iou_threshold is None else iou_threshold, "iou_threshold")
        limit = MAX_DETECTIONS if max_detections is None else max_detections
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise DataError(f"max_detections must be a positive int, got {limit!r}", "pass e.g. max_detections=100")
        if fmt == "detr":
            logits, boxes = _detr_outputs(post, outputs)
            return [detr_detections(logits[i], boxes[i], sizes[i], threshold)[:limit] for i in range(len(logits))]
        raw = _yolo_output(post, outputs)
        model_size = input_size(feeds)
        letterbox = bool(post.get("letterbox", True))
        return [
            yolo_detections(raw[i], model_size, sizes[i], threshold, iou, limit, letterbox) for i in range(len(raw))
        ]

    def sample_masks(self, post, feeds, reference=None):
        """The queries (anchors) whose best label the source scores at least SAMPLE_SCORE: a sample check compares
        those, each as one sample, and skips the no-object ones, whose boxes nothing reads."""
        if not reference:
            return {}
        try:
            if post.get("format") == "detr":
                logits, _ = _detr_outputs(post, reference)
                scores = _softmax(logits)[..., :-1].max(axis=-1)
                names = [post.get("output", "logits"), post.get("boxes", "pred_boxes")]
            else:
                raw = _yolo_output(post, reference)
                scores, names = raw[..., 4:].max(axis=-1), [post.get("output") or next(iter(reference))]
        except (DataError, KeyError):
            return {}  # the sample check itself names what is wrong with the outputs
        keep = scores >= SAMPLE_SCORE
        return {name: keep for name in names} if keep.any() else {}

    def metrics(self, primary, labels, label_names):
        if labels is None:
            return None
        names = list(label_names or [])
        references = [_reference(objects, names, i) for i, objects in enumerate(labels)]
        scores = coco_map(list(primary), references, max(len(names), 1))
        return {"map_50": scores["map_50"], "map_50_95": scores["map_50_95"], "objects": scores["objects"]}

    def source_scores(self, primary, labels, label_names):
        scores = self.metrics(primary, labels, label_names)
        if not scores:
            return {}
        return {"source_map_50": scores["map_50"], "source_map_50_95": scores["map_50_95"]}

    def agreement(self, reference, actual):
        threshold = DEFAULT_THRESHOLD["detr"]
        return {"top1_agreement": box_agreement(list(reference), list(actual), threshold)}


# --- decoding ------------------------------------------------------------------------------------------------


def input_size(feeds: dict[str, np.ndarray]) -> tuple[int, int]:
    pixels = next(iter(feeds.values()))
    return (int(pixels.shape[2]), int(pixels.shape[3])) if pixels.shape[1] in (1, 3) else tuple(pixels.shape[1:3])


def _names(post: dict, outputs: dict[str, np.ndarray]) -> list[str]:
    labels = post.get("labels")
    if labels:
        return list(labels)
    width = outputs[post.get("output") or next(iter(outputs))].shape[-1]
    return [f"LABEL_{i}" for i in range(width - int(post.get("label_extra", 0)))]


def _entry(row: np.ndarray, names: list[str]) -> dict:
    x0, y0, x1, y1, score, label = (float(v) for v in row)
    return {"label": names[int(label)], "score": score, "box": {"xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1}}


def _probability(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DataError(f"{name} must be a number from 0 to 1, got {value!r}", f"pass e.g. {name}=0.5")
    return float(value)


def _detr_outputs(post: dict, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    logits = outputs[post.get("output", "logits")].astype(np.float32)
    boxes = outputs[post.get("boxes", "pred_boxes")].astype(np.float32)
    if logits.ndim != 3 or boxes.shape != (*logits.shape[:2], 4):
        raise DataError(
            f"a DETR-style detector gives logits [batch, queries, labels + 1] and pred_boxes [batch, queries, 4], got "
            f"{list(logits.shape)} and {list(boxes.shape)}",
            "convert the model with its detection head (--task object-detection)",
        )
    return logits, boxes


def _yolo_output(post: dict, outputs: dict[str, np.ndarray]) -> np.ndarray:
    raw = outputs[post.get("output") or next(iter(outputs))].astype(np.float32)
    if raw.ndim != 3 or raw.shape[-1] < 5:
        raise DataError(
            f"a YOLO-style detector's output must be [batch, anchors, 4 + labels], got {list(raw.shape)}",
            "export the head's output with the anchors first (transpose ultralytics' [batch, 4 + labels, anchors])",
        )
    return raw


def corners(boxes: np.ndarray) -> np.ndarray:
    """cx, cy, w, h -> xmin, ymin, xmax, ymax (transformers' center_to_corners_format)."""
    cx, cy, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return np.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], axis=-1)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def detr_detections(logits: np.ndarray, boxes: np.ndarray, size: Sequence[int], threshold: float) -> np.ndarray:
    """One image's detections as transformers' DETR/YOLOS `post_process_object_detection(outputs, threshold,
    target_sizes=[(height, width)])`: softmax, best real label, score > threshold, corners scaled to the image."""
    probs = _softmax(logits.astype(np.float32))[:, :-1]
    scores, labels = probs.max(axis=-1), probs.argmax(axis=-1)
    height, width = float(size[0]), float(size[1])
    xyxy = corners(boxes.astype(np.float32)) * np.asarray([width, height, width, height], dtype=np.float32)
    keep = scores > threshold
    rows = np.column_stack([xyxy[keep], scores[keep], labels[keep]]).astype(np.float64)
    return rows[np.argsort(-rows[:, 4], kind="stable")]


def unletterbox(xyxy: np.ndarray, model_size: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """Boxes in the letterboxed input's pixels back to the original image's (ultralytics' `scale_boxes`), clipped."""
    gain = min(model_size[0] / size[0], model_size[1] / size[1])
    pad_x = round((model_size[1] - size[1] * gain) / 2 - 0.1)
    pad_y = round((model_size[0] - size[0] * gain) / 2 - 0.1)
    out = (xyxy - np.asarray([pad_x, pad_y, pad_x, pad_y], dtype=np.float64)) / gain
    return _clip(out, size)


def _clip(xyxy: np.ndarray, size: Sequence[int]) -> np.ndarray:
    out = xyxy.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, size[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, size[0])
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of a (n, 4) with every box of b (m, 4), corners."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-wise non-maximum suppression (torchvision's batched_nms): indices kept, best score first; a box is
    dropped when its IoU with a better kept box of the same label is above iou_threshold."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    overlaps = iou_matrix(boxes[order], boxes[order])
    same = labels[order][:, None] == labels[order][None, :]
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        suppressed |= same[i] & (overlaps[i] > iou_threshold)
    return np.asarray(keep, dtype=np.int64)


def yolo_detections(
    raw: np.ndarray,
    model_size: Sequence[int],
    size: Sequence[int],
    threshold: float,
    iou_threshold: float,
    limit: int,
    letterbox: bool = True,
) -> np.ndarray:
    """One image's detections from a YOLO-style output (anchors, 4 + labels): ultralytics' non_max_suppression
    (best class per anchor, score > threshold, class-wise NMS, at most `limit`), then the boxes mapped back to the
    image of `size` through the letterbox (or the plain resize)."""
    scores, labels = raw[:, 4:].max(axis=-1), raw[:, 4:].argmax(axis=-1)
    keep = scores > threshold
    xyxy = corners(raw[keep, :4].astype(np.float64))
    scores, labels = scores[keep].astype(np.float64), labels[keep]
    kept = nms(xyxy, scores, labels, iou_threshold)[:limit]
    xyxy, scores, labels = xyxy[kept], scores[kept], labels[kept]
    if letterbox:
        xyxy = unletterbox(xyxy, model_size, size)
    else:
        sy, sx = size[0] / model_size[0], size[1] / model_size[1]
        xyxy = _clip(xyxy * np.asarray([sx, sy, sx, sy]), size)
    return np.column_stack([xyxy, scores, labels]).astype(np.float64).reshape(-1, 6)


# --- scoring -------------------------------------------------------------------------------------------------


def _reference(objects, names: list[str], row: int) -> np.ndarray:
    """One image's labelled objects as an (n, 5) array (xmin, ymin, xmax, ymax, label index)."""
    out = np.zeros((len(objects), 5), dtype=np.float64)
    for j, obj in enumerate(objects):
        box, label = obj["box"], obj["label"]
        if label not in names:
            raise DataError(
                f"eval image {row + 1}: object label {label!r} is not one of the model's labels ({', '.join(names)})",
                "label the objects with the model's own label names (config.json id2label)",
            )
        out[j] = [*box, names.index(label)]
    return out


def coco_map(detections: Sequence[np.ndarray], references: Sequence[np.ndarray], num_labels: int) -> dict:
    """COCO box mAP over a dataset with pycocotools' COCOeval ("bbox", its defaults: IoU 0.50:0.05:0.95, 100
    detections per image, all areas): `map_50_95` is its stats[0], `map_50` stats[1]. `detections` are (n, 6) arrays
    (xmin, ymin, xmax, ymax, score, label) per image, `references` (m, 5) arrays (xmin, ymin, xmax, ymax, label).
    Labels with no reference box are skipped by the mean, as COCOeval does; no reference box at all gives None."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise UnsupportedError(
            "object-detection mAP needs pycocotools", "pip install 'bmsdk[eval]' (or pycocotools)"
        ) from None
    if len(detections) != len(references):
        raise DataError(
            f"{len(detections)} images of detections for {len(references)} labelled images", "give one row per image"
        )
    images = [{"id": i + 1} for i in range(len(references))]
    annotations = []
    for i, refs in enumerate(references):
        for x0, y0, x1, y1, label in np.asarray(refs, dtype=np.float64).reshape(-1, 5):
            w, h = x1 - x0, y1 - y0
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                 "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0}
            )  # fmt: skip
    found = [
        {"image_id": i + 1, "category_id": int(label) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score}
        for i, rows in enumerate(detections)
        for x0, y0, x1, y1, score, label in np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    ]
    if not annotations:
        return {"map_50": None, "map_50_95": None, "objects": 0}
    if not found:
        return {"map_50": 0.0, "map_50_95": 0.0, "objects": len(annotations)}
    truth = COCO()
    truth.dataset = {
        "info": {},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c + 1} for c in range(num_labels)],
    }
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and table
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(found), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {
        "map_50": max(float(evaluation.stats[1]), 0.0),
        "map_50_95": max(float(evaluation.stats[0]), 0.0),
        "objects": len(annotations),
    }


def box_agreement(reference: Sequence[np.ndarray], actual: Sequence[np.ndarray], threshold: float) -> float | None:
    """How closely an artifact's detections follow the source's: over all images, the F1 of the confident detections
    (score > threshold) matched one to one (same label, IoU >= AGREEMENT_IOU, greedily by the source's score), i.e.
    2 * matched / (source's + artifact's); None when neither found anything."""
    matched = total = 0
    for ref, got in zip(reference, actual):
        ref = np.asarray(ref).reshape(-1, 6)
        got = np.asarray(got).reshape(-1, 6)
        ref, got = ref[ref[:, 4] > threshold], got[got[:, 4] > threshold]
        total += len(ref) + len(got)
        if not len(ref) or not len(got):
            continue
        overlaps = iou_matrix(ref[:, :4], got[:, :4])
        overlaps[ref[:, 5][:, None] != got[:, 5][None, :]] = -1.0
        used = np.zeros(len(got), dtype=bool)
        for i in np.argsort(-ref[:, 4], kind="stable"):
            candidates = np.where(used, -1.0, overlaps[i])
            j = int(candidates.argmax())
            if candidates[j] >= AGREEMENT_IOU:
                used[j] = True
                matched += 1
    return 2 * matched / total if total else None
