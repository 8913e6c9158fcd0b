"""Tiny semantic segmentation models built in code for the semantic-segmentation tests and the demo: a synthetic
labelled set (a red rectangle, a green disc and a blue triangle on a noisy gray background, each mask drawn with the
shape), and a SegFormer and a MobileViT (DeepLabV3 head) trained on it for a few seconds, so that their masks are
meaningful. Saved with save_pretrained and the image processor, 48x48 inputs (SegFormer's default is 512x512)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SEG_LABELS = ["background", "rectangle", "disc", "triangle"]
SIDE = 48  # the models' input size (the processors resize every image to it)
COLOURS = {1: (220, 40, 40), 2: (40, 200, 60), 3: (50, 70, 230)}


def shape_pixels(kind: int, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, size: float) -> np.ndarray:
    """The pixels of a rectangle (0), a disc (1) or a triangle (2, apex up) of `size` centred at (cy, cx)."""
    if kind == 0:
        return (np.abs(yy - cy) < size / 2) & (np.abs(xx - cx) < size / 3)
    if kind == 1:
        return (yy - cy) ** 2 + (xx - cx) ** 2 < (size / 2) ** 2
    top = cy - size / 2  # rows below the apex widen linearly
    return (yy >= top) & (yy <= cy + size / 2) & (np.abs(xx - cx) <= (yy - top) / 2)


def scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(H x W x 3 uint8 image, H x W uint8 mask) of 1-3 shapes on a noisy background."""
    image = np.clip(rng.normal(120, 30, (height, width, 3)), 0, 255)
    mask = np.zeros((height, width), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for label in rng.choice([1, 2, 3], size=int(rng.integers(1, 4)), replace=False):
        size = rng.uniform(0.25, 0.45) * min(height, width)
        cy, cx = rng.uniform(size / 2, height - size / 2), rng.uniform(size / 2, width - size / 2)
        inside = shape_pixels(int(label) - 1, yy, xx, cy, cx, size)
        image[inside] = np.clip(np.asarray(COLOURS[int(label)]) + rng.normal(0, 15, (int(inside.sum()), 3)), 0, 255)
        mask[inside] = label
    return image.astype(np.uint8), mask


def scenes(n: int, seed: int, sizes=((SIDE, SIDE),)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs = [scene(rng, *sizes[i % len(sizes)]) for i in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


EVAL_SIZES = ((56, 56), (40, 64), (72, 72))  # other sizes than the models': masks come back at each image's size


def write_eval_set(folder: Path, n: int = 12, seed: int = 5) -> Path:
    """JSON lines {"image", "mask"} of PNG scenes at EVAL_SIZES (with a strip of ignored (255) label pixels)."""
    from PIL import Image

    images, masks = scenes(n, seed, EVAL_SIZES)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    lines = []
    for i, (image, mask) in enumerate(zip(images, masks)):
        mask = mask.copy()
        mask[:, :2] = 255  # evaluate's ignore index: these pixels count for nothing
        Image.fromarray(image).save(folder / "img" / f"{i}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i}.png")
        lines.append(json.dumps({"image": f"img/{i}.png", "mask": f"masks/{i}.png"}))
    path = folder / "eval.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _processor(arch: str):
    import transformers

    if arch == "segformer":
        return transformers.SegformerImageProcessorPil(size={"height": SIDE, "width": SIDE})
    # MobileViT's: BGR, no mean/std; shortest edge then centre crop
    return transformers.MobileViTImageProcessorPil(
        size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE}
    )


def _model(arch: str):
    import transformers

    labels = dict(id2label=dict(enumerate(SEG_LABELS)), label2id={n: i for i, n in enumerate(SEG_LABELS)})
    if arch == "segformer":
        config = transformers.SegformerConfig(
            num_encoder_blocks=2,
            depths=[1, 1],
            sr_ratios=[2, 1],
            hidden_sizes=[16, 32],
            patch_sizes=[7, 3],
            strides=[4, 2],
            num_attention_heads=[1, 2],
            mlp_ratios=[2, 2],
            decoder_hidden_size=32,
            **labels,
        )
        return transformers.SegformerForSemanticSegmentation(config)
    config = transformers.MobileViTConfig(
        image_size=SIDE,
        hidden_sizes=[16, 24, 32],
        neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
        num_attention_heads=2,
        mlp_ratio=1.0,
        expand_ratio=2.0,
        output_stride=8,  # logits at 1/8 of the input: 6x6
        aspp_out_channels=16,
        atrous_rates=[1, 2, 3],
        classifier_dropout_prob=0.0,
        aspp_dropout_prob=0.0,
        hidden_dropout_prob=0.0,
        **labels,
    )
    return transformers.MobileViTForSemanticSegmentation(config)


STEPS = {"segformer": (60, 16, 5e-3), "mobilevit": (200, 8, 5e-3)}  # steps, batch, learning rate
WEIGHTS = (0.3, 1.0, 1.0, 1.0)  # the background covers most pixels: without this MobileViT learns only it


def build_segmenter(arch: str, folder: Path) -> Path:
    """A trained tiny `segformer` or `mobilevit` semantic segmentation model saved with its image processor."""
    import torch

    torch.manual_seed(0)
    processor, model = _processor(arch), _model(arch)
    images, masks = scenes(96, seed=1)
    pixels = torch.from_numpy(processor(images=images, return_tensors="np")["pixel_values"])
    labels = torch.from_numpy(np.stack(masks).astype(np.int64))
    steps, batch, lr = STEPS[arch]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    weights = torch.tensor(WEIGHTS)
    model.train()
    for step in range(steps):
        rows = torch.from_numpy(np.random.default_rng(step).choice(len(images), batch, replace=False))
        optimizer.zero_grad()
        logits = model(pixel_values=pixels[rows]).logits
        logits = torch.nn.functional.interpolate(logits, size=labels.shape[1:], mode="bilinear")
        torch.nn.functional.cross_entropy(logits, labels[rows], weight=weights).backward()
        optimizer.step()
    model.eval().save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


def build_all(root: Path) -> dict[str, Path]:
    return {arch: build_segmenter(arch, root / arch) for arch in ("segformer", "mobilevit")}
