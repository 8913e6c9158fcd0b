"""semantic-segmentation: a per-pixel classifier (`*ForSemanticSegmentation`: SegFormer, MobileViT) with logits
[batch, labels, h, w], usually at a fraction of the input's resolution.

predict(image) gives, per image, what transformers' image processors' `post_process_semantic_segmentation` gives
(the logits upsampled to the image's own size, bilinear with align_corners=False as `torch.nn.functional.
interpolate` does, then the argmax over labels), as a dict: `mask` (H x W int32 label indices, H x W the size of
the image given), `labels` (the model's label names, indexed by mask value) and `fractions` ({label: share of the
image's pixels}, labels present only, largest first).

Over --eval data (JSON lines `{"image": path, "mask": path}`, the mask a one-channel PNG of label indices; or .npz
`x` images N x H x W x 3 with `y` masks N x H x W; bmsdk.data) the predicted masks are scored by mean IoU and pixel
accuracy exactly as Hugging Face `evaluate`'s mean_iou computes them (mean_iou()); artifact and source are compared
by their pixel-wise argmax agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bmsdk.errors import DataError

from .base import Task

IGNORE_INDEX = 255  # label pixels that count for nothing (evaluate's and the SegFormer scripts' convention)


class SemanticSegmentation(Task):
    name = "semantic-segmentation"
    hf_suffixes = ("ForSemanticSegmentation",)
    hf_auto_class = "AutoModelForSemanticSegmentation"
    hf_inputs = "image"
    agreement_floor = True  # the target's min_top1_agreement applies to the pixel agreement

    def postprocessing(self, output, labels):
        return {"output": output, "labels": labels, "label_axis": 1}

    def postprocess_images(self, post, outputs, feeds, sizes, options=None):
        logits = self.primary(post, outputs, feeds)
        names = label_names(post, logits.shape[1])
        return [segment(logits[i], sizes[i], names) for i in range(len(logits))]

    def postprocess(self, post, outputs, feeds):
        """Without the images' own sizes (pre-processed arrays, test vectors): masks at the model's input size."""
        sizes = [_input_size(feeds)] * len(next(iter(outputs.values())))
        return self.postprocess_images(post, outputs, feeds, sizes)

    def vector_prediction(self, post, outputs, feeds):
        result = self.postprocess(post, outputs, feeds)[0]
        return {"mask": result["mask"].tolist(), "fractions": result["fractions"]}

    def primary_images(self, post, outputs, feeds, sizes):
        """Per image its mask at its own size (object array of H x W int32), what the metric and agreement read."""
        logits = self.primary(post, outputs, feeds)
        out = np.empty(len(logits), dtype=object)
        for i in range(len(logits)):
            out[i] = upsample_argmax(logits[i], sizes[i])
        return out

    def primary(self, post, outputs, feeds):
        logits = super().primary(post, outputs, feeds)
        if logits.ndim != 4:
            raise DataError(
                f"a segmentation model's output must be [batch, labels, height, width], got shape {logits.shape}",
                "convert the model with its segmentation head (--task semantic-segmentation)",
            )
        return logits

    def metrics(self, primary, labels, label_names):
        if labels is None:
            return None
        num_labels = len(label_names) if label_names else _num_labels(primary)
        scores = mean_iou(list(primary), list(labels), num_labels, IGNORE_INDEX)
        return {k: scores[k] for k in ("mean_iou", "mean_accuracy", "pixel_accuracy", "pixels")}

    def source_scores(self, primary, labels, label_names):
        scores = self.metrics(primary, labels, label_names)
        if not scores:
            return {}
        return {"source_mean_iou": scores["mean_iou"], "source_pixel_accuracy": scores["pixel_accuracy"]}

    def agreement(self, reference, actual):
        same = sum(int(np.count_nonzero(r == a)) for r, a in zip(reference, actual))
        total = sum(int(r.size) for r in reference)
        return {"top1_agreement": same / total if total else None}


def label_names(post: dict, count: int) -> list[str]:
    labels = post.get("labels")
    return list(labels) if labels else [f"LABEL_{i}" for i in range(count)]


def segment(logits: np.ndarray, size: Sequence[int], names: list[str]) -> dict:
    """One image's result: its mask at `size` (height, width), the label names, each present label's pixel share."""
    mask = upsample_argmax(logits, size)
    counts = np.bincount(mask.ravel(), minlength=len(names))
    order = np.argsort(-counts, kind="stable")
    fractions = {names[c]: float(counts[c] / mask.size) for c in order if counts[c]}
    return {"mask": mask, "labels": names, "fractions": fractions}


def _input_size(feeds: dict[str, np.ndarray]) -> tuple[int, int]:
    pixels = next(iter(feeds.values()))
    return (int(pixels.shape[2]), int(pixels.shape[3])) if pixels.shape[1] in (1, 3) else tuple(pixels.shape[1:3])


def _num_labels(primary) -> int:
    return int(max((int(m.max()) for m in primary if m.size), default=0)) + 1


# --- bilinear upsampling ---------------------------------------------------------------


def _linear_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of each output position, as torch's upsample_bilinear2d (align_corners=False,
    output size given): src = (dst + 0.5) * in / out - 0.5, clamped at 0; the far index clamped at in - 1."""
    scale = np.float32(in_size / out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = src - i0.astype(np.float32)
    w0 = np.float32(1.0) - w1
    return i0, i1, w0, w1


def upsample(logits: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """[C, h, w] logits resized to [C, H, W] as `torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)` does, in float32."""
    x = np.asarray(logits, dtype=np.float32)
    height, width = int(size[0]), int(size[1])
    y0, y1, hw0, hw1 = _linear_weights(x.shape[1], height)
    x0, x1, ww0, ww1 = _linear_weights(x.shape[2], width)
    top = x[:, y0]  # [C, H, w]
    bottom = x[:, y1]
    return hw0[None, :, None] * (ww0 * top[:, :, x0] + ww1 * top[:, :, x1]) + hw1[None, :, None] * (
        ww0 * bottom[:, :, x0] + ww1 * bottom[:, :, x1]
    )


def upsample_argmax(logits: np.ndarray, size: Sequence[int], rows: int = 256) -> np.ndarray:
    """The label of every pixel of an H x W image: argmax over labels of the upsampled logits (a band of rows at a
    time, so a large image never holds all its upsampled logits at once)."""
    height, width = int(size[0]), int(size[1])
    x = np.asarray(logits, dtype=np.float32)
    y0, y1, hw0, hw1 = _linear_weights(x.shape[1], height)
    x0, x1, ww0, ww1 = _linear_weights(x.shape[2], width)
    mask = np.empty((height, width), dtype=np.int32)
    for start in range(0, height, rows):
        band = slice(start, min(start + rows, height))
        top, bottom = x[:, y0[band]], x[:, y1[band]]
        a, b = hw0[band][None, :, None], hw1[band][None, :, None]
        values = a * (ww0 * top[:, :, x0] + ww1 * top[:, :, x1]) + b * (ww0 * bottom[:, :, x0] + ww1 * bottom[:, :, x1])
        mask[band] = values.argmax(axis=0)
    return mask


# --- mean IoU ------------------------------------------------------------------------------


def reduce_labels(mask: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """evaluate's / SegFormer's `reduce_labels`: 0 (background) becomes the ignore index, every other label one less."""
    out = np.asarray(mask).astype(np.int64)
    out[out == 0] = ignore_index
    out = out - 1
    out[out == ignore_index - 1] = ignore_index
    return out


def mean_iou(
    predictions: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    num_labels: int,
    ignore_index: int | None = IGNORE_INDEX,
    reduce: bool = False,
) -> dict:
    """Mean IoU, mean per-class accuracy and overall pixel accuracy over a dataset, as `evaluate`'s mean_iou:
    per class, intersections, predicted and labelled areas summed over all images (label pixels equal to
    `ignore_index` left out, values outside 0..num_labels-1 counted in no class); IoU = intersection / union,
    classes whose union is 0 (absent from both predictions and labels) skipped by the mean; accuracy per class =
    intersection / labelled area (classes never labelled skipped); pixel accuracy = all intersections / all
    labelled pixels. `per_class_iou` holds None for skipped classes."""
    if len(predictions) != len(references):
        raise DataError(
            f"{len(predictions)} predicted masks for {len(references)} label masks", "give one mask per image"
        )
    intersect = np.zeros(num_labels, dtype=np.int64)
    area_pred = np.zeros(num_labels, dtype=np.int64)
    area_label = np.zeros(num_labels, dtype=np.int64)
    for i, (pred, label) in enumerate(zip(predictions, references)):
        pred, label = np.asarray(pred).astype(np.int64), np.asarray(label).astype(np.int64)
        if pred.shape != label.shape:
            raise DataError(
                f"image {i + 1}: the predicted mask is {pred.shape[0]}x{pred.shape[1]} but its label mask is "
                f"{'x'.join(map(str, label.shape))}",
                "give each label mask the size of its image",
            )
        if reduce:
            label = reduce_labels(label, IGNORE_INDEX if ignore_index is None else ignore_index)
        if ignore_index is not None:
            keep = label != ignore_index
            pred, label = pred[keep], label[keep]
        hit = pred[pred == label]
        intersect += _histogram(hit, num_labels)
        area_pred += _histogram(pred, num_labels)
        area_label += _histogram(label, num_labels)
    union = area_pred + area_label - intersect
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, intersect / np.maximum(union, 1), np.nan)
        acc = np.where(area_label > 0, intersect / np.maximum(area_label, 1), np.nan)
    labelled = int(area_label.sum())
    return {
        "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "mean_accuracy": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
        "pixel_accuracy": float(intersect.sum() / labelled) if labelled else float("nan"),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
        "pixels": labelled,
    }


def _histogram(values: np.ndarray, num_labels: int) -> np.ndarray:
    """Counts of 0..num_labels-1 (evaluate's np.histogram(bins=num_labels, range=(0, num_labels - 1)): other
    values fall outside every bin)."""
    values = values[(values >= 0) & (values < num_labels)]
    return np.bincount(values, minlength=num_labels)[:num_labels]
