"""Tiny object detectors built in code for the object-detection tests and the demo: a synthetic labelled set (a red
rectangle, a green disc and a blue triangle on a noisy gray background, each box the bounding box of its shape's
pixels), a YOLOS and a DETR (tiny ResNet backbone, no timm, no pretrained weights) from transformers, saved with
save_pretrained and their image processors (an exact 64x64 resize), and a YOLO-style torch module (output [batch,
anchors, 4 + classes], boxes cx, cy, w, h in input pixels; yolo.py) as a factory source with a letterbox pre-
processing. The YOLO-style detector (seconds) and YOLOS (about a minute on one core) learn boxes (RECIPES); DETR,
trained briefly, learns the labels only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .segmentation import shape_pixels

DET_LABELS = ["rectangle", "disc", "triangle"]
SIDE = 64  # the models' input size
COLOURS = {0: (220, 40, 40), 1: (40, 200, 60), 2: (50, 70, 230)}
EVAL_SIZES = ((64, 64), (48, 80), (80, 72), (56, 96))  # (height, width): letterboxed / resized to 64x64


def scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, list[dict]]:
    """(H x W x 3 uint8 image, objects [{"box": [xmin, ymin, xmax, ymax], "label": name}]) of 1-2 shapes that do
    not overlap much, boxes in pixels (xmax/ymax one past the last pixel, as COCO's x + w)."""
    image = np.clip(rng.normal(120, 30, (height, width, 3)), 0, 255)
    yy, xx = np.mgrid[0:height, 0:width]
    objects, taken = [], np.zeros((height, width), bool)
    for label in rng.choice([0, 1, 2], size=int(rng.integers(1, 3)), replace=False):
        for _ in range(20):
            size = rng.uniform(0.3, 0.5) * min(height, width)
            cy, cx = rng.uniform(size / 2, height - size / 2), rng.uniform(size / 2, width - size / 2)
            inside = shape_pixels(int(label), yy, xx, cy, cx, size)
            if inside.sum() > 20 and (inside & taken).sum() < 0.1 * inside.sum():
                break
        taken |= inside
        image[inside] = np.clip(np.asarray(COLOURS[int(label)]) + rng.normal(0, 15, (int(inside.sum()), 3)), 0, 255)
        ys, xs = np.nonzero(inside)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        objects.append({"box": box, "label": DET_LABELS[int(label)]})
    return image.astype(np.uint8), objects


def scenes(n: int, seed: int, sizes=((SIDE, SIDE),)) -> tuple[list[np.ndarray], list[list[dict]]]:
    rng = np.random.default_rng(seed)
    pairs = [scene(rng, *sizes[i % len(sizes)]) for i in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def write_eval_set(folder: Path, n: int = 16, seed: int = 5) -> Path:
    """JSON lines {"image", "objects"} of PNG scenes at EVAL_SIZES."""
    from PIL import Image

    images, objects = scenes(n, seed, EVAL_SIZES)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (image, objs) in enumerate(zip(images, objects)):
        Image.fromarray(image).save(folder / "img" / f"{i}.png")
        lines.append(json.dumps({"image": f"img/{i}.png", "objects": objs}))
    path = folder / "eval.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- Hugging Face detectors (DETR-style set prediction) -------------------------------------------------------


def _processor(arch: str):
    import transformers

    cls = transformers.YolosImageProcessorPil if arch == "yolos" else transformers.DetrImageProcessorPil
    return cls(size={"height": SIDE, "width": SIDE})


def _model(arch: str):
    import transformers

    labels = dict(id2label=dict(enumerate(DET_LABELS)), label2id={n: i for i, n in enumerate(DET_LABELS)})
    if arch == "yolos":
        config = transformers.YolosConfig(
            hidden_size=48,
            num_hidden_layers=3,
            num_attention_heads=3,
            intermediate_size=96,
            image_size=[SIDE, SIDE],
            patch_size=8,
            num_detection_tokens=8,
            use_mid_position_embeddings=False,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            **labels,
        )
        model = transformers.YolosForObjectDetection(config)
        _sincos_positions(model.vit.embeddings.position_embeddings, SIDE // 8)
        return model
    backbone = transformers.ResNetConfig(
        embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic", out_features=["stage2"]
    )
    config = transformers.DetrConfig(
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        backbone_config=backbone,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_queries=8,
        dropout=0.0,
        attention_dropout=0.0,
        auxiliary_loss=False,
        **labels,
    )
    return transformers.DetrForObjectDetection(config)


def _sincos_positions(table, cells: int) -> None:
    """2-D sine-cosine position embeddings for the patch tokens (as MAE initialises ViTs): the stock init of YOLOS'
    learned table is noise of std 0.02, from which a detector takes thousands of steps to learn where things are."""
    import torch

    dim = table.shape[-1] // 4
    freq = 1.0 / 100.0 ** (torch.arange(dim) / dim)
    gy, gx = torch.meshgrid(torch.arange(cells).float(), torch.arange(cells).float(), indexing="ij")
    angles = [g.reshape(-1, 1) * freq for g in (gx, gy)]
    grid = torch.cat([torch.sin(angles[0]), torch.cos(angles[0]), torch.sin(angles[1]), torch.cos(angles[1])], 1)
    with torch.no_grad():
        table[0, 1 : 1 + cells * cells, : grid.shape[1]] = grid


# How each is trained: steps, batch, peak learning rate, training scenes and their sizes ((height, width); the
# processor resizes each to 64x64, as at eval), the weight of the GIoU box loss (beside 5 x L1), the warm-up steps of
# a cosine decay (0: a constant rate). YOLOS, so trained (about a minute on one core), learns the boxes: mAP@0.5 0.89,
# mAP@0.5:0.95 0.28 on write_eval_set(n=60); at 150 steps of 160 scenes, a constant rate and L1 alone it learnt the
# labels only (mAP about 0.01). DETR learns the labels, not the boxes, even so trained with its backbone unfrozen
# (transformers' DetrConvEncoder freezes every parameter of a transformers ResNet backbone: it keeps names holding
# "stage.1", which read "stages.1"): mAP@0.5:0.95 0.016 after 1200 steps; its attention adds the positions to queries
# and keys, not to values, so where a shape is has to come from the CNN's padding. It keeps the short recipe.
RECIPES = {
    "yolos": dict(steps=1200, batch=16, lr=2e-3, scenes=1600, sizes=EVAL_SIZES, giou=2.0, warmup=50),
    "detr": dict(steps=150, batch=16, lr=2e-3, scenes=160, sizes=((SIDE, SIDE),), giou=0.0, warmup=0),
}


def _slot_targets(objects: list[list[dict]], queries: int, sizes=None) -> tuple:
    """Training targets with a fixed matching (each scene holds a shape at most once): query k answers for the
    object of label k, every other query for "no object". It learns in seconds where the Hungarian matching of
    transformers' DETR loss needs thousands of steps; the model and its outputs are the stock ones either way. Boxes
    are normalised by each image's (height, width) in `sizes` (default: 64x64)."""
    import torch

    classes = torch.full((len(objects), queries), len(DET_LABELS), dtype=torch.int64)
    boxes = torch.zeros(len(objects), queries, 4)
    for i, objs in enumerate(objects):
        height, width = sizes[i] if sizes else (SIDE, SIDE)
        for o in objs:
            k = DET_LABELS.index(o["label"])
            x0, y0, x1, y1 = o["box"][0] / width, o["box"][1] / height, o["box"][2] / width, o["box"][3] / height
            classes[i, k] = k
            boxes[i, k] = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
    return classes, boxes


def _giou_loss(a, b):
    """1 - generalized IoU (Rezatofighi et al.; DETR's box loss beside L1) of boxes (n, 4) cx, cy, w, h, averaged."""
    import torch

    a = torch.cat([a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2], 1)
    b = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
    inter = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    union = (a[:, 2:] - a[:, :2]).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).prod(1)
    return (1 - inter / union + (hull - union) / hull).mean()


def build_detector(arch: str, folder: Path, probe=None) -> Path:
    """A trained tiny `yolos` or `detr` saved with its image processor (`probe(step, model)`, if given, is called
    every 100 steps: for experiments)."""
    import math

    import torch

    torch.manual_seed(0)
    recipe = RECIPES[arch]
    processor, model = _processor(arch), _model(arch)
    images, objects = scenes(recipe["scenes"], seed=1, sizes=recipe["sizes"])
    pixels = torch.from_numpy(processor(images=images, return_tensors="np")["pixel_values"])
    queries = model.config.num_detection_tokens if arch == "yolos" else model.config.num_queries
    classes, boxes = _slot_targets(objects, queries, [image.shape[:2] for image in images])
    weight = torch.tensor([1.0] * len(DET_LABELS) + [0.3])  # DETR's eos_coef idea: "no object" counts less
    steps, batch, warmup = recipe["steps"], recipe["batch"], recipe["warmup"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=1e-4)
    rate = (lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))) if warmup else None
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate) if rate else None
    model.train()
    for step in range(steps):
        rows = torch.from_numpy(np.random.default_rng(step).choice(len(images), batch, replace=False))
        optimizer.zero_grad()
        out = model(pixel_values=pixels[rows])
        target = classes[rows]
        loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), target.flatten(), weight=weight)
        real = target < len(DET_LABELS)
        loss = loss + 5 * torch.nn.functional.l1_loss(out.pred_boxes[real], boxes[rows][real])
        if recipe["giou"]:
            loss = loss + recipe["giou"] * _giou_loss(out.pred_boxes[real], boxes[rows][real])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if schedule:
            schedule.step()
        if probe and (step + 1) % 100 == 0:
            probe(step + 1, model)
            model.train()
    model.eval().save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


# --- a YOLO-style detector as a factory --------------------------------------------------------------------------

YOLO_FACTORY = "bmsdk.benchmarks.task_models.yolo:make_model"


def yolo_model():
    """A fresh (untrained) YOLO-style detector of yolo.py (which imports torch: not imported at module level)."""
    import importlib

    return importlib.import_module(YOLO_FACTORY.split(":")[0]).make_model()


def train_yolo(root: Path) -> tuple[str, Path]:
    """(factory spec, weights): the YOLO-style model (task_models/yolo.py) trained briefly, its state dict saved as
    root/yolo.safetensors; cells hold the object whose box centre falls in them (class BCE everywhere, an L1 box
    loss on those cells)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = yolo_model()
    images, objects = scenes(192, seed=1)
    pixels = torch.from_numpy(np.stack(images).astype(np.float32).transpose(0, 3, 1, 2) / 255.0)
    cells, stride = SIDE // 8, 8
    cls_t = torch.zeros(len(images), cells * cells, len(DET_LABELS))
    box_t = torch.zeros(len(images), cells * cells, 4)
    for i, objs in enumerate(objects):
        for o in objs:
            x0, y0, x1, y1 = o["box"]
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            cell = int(cy // stride) * cells + int(cx // stride)
            cls_t[i, cell, DET_LABELS.index(o["label"])] = 1.0
            box_t[i, cell] = torch.tensor([cx, cy, x1 - x0, y1 - y0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(300):
        rows = torch.from_numpy(np.random.default_rng(step).choice(len(images), 32, replace=False))
        optimizer.zero_grad()
        boxes, logits = model.raw(pixels[rows])
        positive = cls_t[rows].amax(-1) > 0
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, cls_t[rows], reduction="sum") / 32
        loss = loss + torch.nn.functional.l1_loss(boxes[positive], box_t[rows][positive]) / stride
        loss.backward()
        optimizer.step()
    root.mkdir(parents=True, exist_ok=True)
    weights = root / "yolo.safetensors"
    save_file({k: v.contiguous() for k, v in model.eval().state_dict().items()}, str(weights))
    return YOLO_FACTORY, weights


def build_all(root: Path) -> dict:
    """{"yolos": folder, "yolo": (factory spec, weights)} (DETR: build_detector("detr", folder), not in the suite:
    it learns no boxes in a minute (RECIPES) and converts the same way as YOLOS)."""
    return {"yolos": build_detector("yolos", root / "yolos"), "yolo": train_yolo(root / "yolo")}
