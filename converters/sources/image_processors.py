"""A checkpoint's image processor (`preprocessor_config.json`) as the manifest's image pre-processing
(bmsdk.image_pipeline), applied the way transformers' image processors do it with their PIL backend.

transformers itself resolves the file (legacy int sizes, feature-extractor names, class defaults for missing
keys); this module maps the resolved processor onto bmsdk's pipeline, per processor class, and refuses any class
or option it cannot reproduce exactly rather than approximate it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from bmsdk.errors import SourceError
from bmsdk.image_pipeline import BILINEAR, DEFAULT_0_1, RESAMPLE, default_resize, pipeline_problem
from bmsdk.manifest import TensorSpec
from bmsdk.tasks.preprocessing import ImagePreprocessor

log = logging.getLogger("bmsdk.converters.sources")

# processors whose PIL backend runs the base pipeline: resize, centre crop, rescale, normalize
PLAIN = (
    "ViTImageProcessor",  # ViT, Swin, Swinv2, DINOv2-style ViTs
    "DeiTImageProcessor",
    "BeitImageProcessor",
    "MobileNetV1ImageProcessor",
    "MobileNetV2ImageProcessor",
    "BitImageProcessor",
    "CLIPImageProcessor",
    "SiglipImageProcessor",
    "PvtImageProcessor",
)
SPECIAL = (
    "ConvNextImageProcessor",
    "EfficientNetImageProcessor",
    "MobileViTImageProcessor",
    "SegformerImageProcessor",
    "PoolFormerImageProcessor",
    "LevitImageProcessor",
)
# object detection: resize (fixed size, see _detection_size), rescale, normalize; padding to the batch's largest
# image is a no-op once every image has one size, and the annotation options touch no pixels
DETECTION = ("DetrImageProcessor", "YolosImageProcessor")
DETECTION_HARMLESS = {"do_pad", "format", "do_convert_annotations"}
SUPPORTED = PLAIN + SPECIAL + DETECTION
# options that never change an RGB image's pixels here: bmsdk always converts to RGB (or L) itself; the label-map
# option only touches segmentation maps; the rest are call-time formatting
HARMLESS = {"do_convert_rgb", "do_reduce_labels", "input_data_format", "device", "return_tensors", "disable_grouping"}
HANDLED = {
    "do_resize",
    "size",
    "default_to_square",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "crop_pct",
    "rescale_offset",
    "include_top",
    "do_flip_channel_order",
}
CHECK_TOLERANCE = 1e-5  # measured 0 (the same Pillow resize and float32 arithmetic); a bug would be far larger
CONVNEXT_WARP = 384  # ConvNextImageProcessor: shortest_edge >= 384 warps to a square instead of resize + crop
MEAN_STD_FIX = (
    "pass --mean and --std (per channel, on 0-1 pixels), e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225"
)


def checkpoint_pipeline(folder: Path, channels: int, unresized: list[int], fixed: list[int] | None = None) -> dict:
    """The image pipeline fields (size, resize, center_crop, scale, offset, mean, std, renormalize_std,
    channel_order, normalization, processor) of the processor saved in `folder`; `unresized` is the model's size
    when the processor neither resizes nor crops (images must then come at that size); `fixed` the size asked for
    with --input-shape (a detection processor's shortest/longest-edge resize becomes an exact resize to it)."""
    proc = _load(folder)
    name = type(proc).__name__.removesuffix("Pil").removesuffix("Fast")
    where = f"{folder / 'preprocessor_config.json'} ({name})"
    if name not in SUPPORTED:
        raise SourceError(
            f"{where}: bmsdk does not implement the pre-processing of {name}",
            f"use a checkpoint whose processor is one of {', '.join(SUPPORTED)}; or export the model to ONNX/.pt2 "
            "and convert that with --mean/--std (bmsdk then resizes images straight to the model's input size)",
        )
    _refuse_unknown_options(proc, where, DETECTION_HARMLESS if name in DETECTION else set())
    attr = _attributes(proc)
    override = None
    if name in DETECTION:
        if getattr(proc, "pad_size", None):
            raise SourceError(
                f"{where} pads every image to pad_size {proc.pad_size}, which bmsdk's image pre-processing does not "
                "apply",
                "remove pad_size from preprocessor_config.json",
            )
        override = _detection_size(attr, fixed, where)
        attr["size"] = override
    resize, crop = _geometry(attr, name, where)
    fields: dict[str, Any] = {"processor": name, "resize": resize}
    if crop is not None:
        fields["center_crop"] = crop
    fields["size"] = crop or (resize["size"] if resize["mode"] == "exact" else [int(v) for v in unresized])
    fields["scale"] = _number(attr.get("rescale_factor"), "rescale_factor", where) if attr.get("do_rescale") else 1.0
    if name == "EfficientNetImageProcessor" and attr.get("do_rescale") and attr.get("rescale_offset"):
        fields["offset"] = -1.0  # transformers: image * scale - 1
    normalizes = bool(attr.get("do_normalize")) and name != "MobileViTImageProcessor"  # MobileViT never normalizes
    if normalizes:
        fields["mean"] = _per_channel(attr.get("image_mean"), channels, "image_mean", where)
        fields["std"] = _per_channel(attr.get("image_std"), channels, "image_std", where)
        fields["normalization"] = "checkpoint"
    else:
        fields["mean"], fields["std"] = [0.0] * channels, [1.0] * channels
        fields["normalization"] = "none"
    if name == "EfficientNetImageProcessor" and attr.get("include_top"):
        fields["renormalize_std"] = _per_channel(attr.get("image_std"), channels, "image_std", where)
    if name == "MobileViTImageProcessor" and attr.get("do_flip_channel_order"):
        if channels != 3:
            raise SourceError(
                f"{where}: do_flip_channel_order needs 3 channels, the model has {channels}",
                "set do_flip_channel_order to false",
            )
        fields["channel_order"] = "BGR"
    problem = pipeline_problem(fields, fields["size"], channels)  # a stranger's file may declare any size
    if problem:
        raise SourceError(f"{where}: {problem}", "fix or re-save the processor config")
    if override is not None and dict(proc.size or {}) != override:
        fields["processor_resize"] = f"{_show_size(proc.size)} replaced by an exact {override['height']}x" + (
            f"{override['width']} resize (the export takes one size; boxes are normalised to the image)"
        )
    if channels == 3:
        fields["processor_check"] = _check_against_transformers(folder, name, proc, fields, where, override)
    return fields


def _show_size(size) -> str:
    return ", ".join(f"{k} {v}" for k, v in dict(size or {}).items() if v is not None)


def _detection_size(attr: dict, fixed: list[int] | None, where: str) -> dict:
    """A DETR/YOLOS processor's resize as one fixed size: its own {height, width}, or --input-shape's height and
    width in place of a shortest_edge/longest_edge resize (which gives every image its own size). DETR's boxes are
    cx, cy, w, h normalised to the image the model saw, so they scale back to the image's own pixels exactly."""
    size = {k: v for k, v in dict(attr.get("size") or {}).items() if v is not None}
    if fixed is not None:
        return {"height": int(fixed[0]), "width": int(fixed[1])}
    if set(size) == {"height", "width"}:
        return {"height": int(size["height"]), "width": int(size["width"])}
    raise SourceError(
        f"{where} resizes images to varying sizes ({_show_size(size)}), and an exported detector takes one size",
        "pass --input-shape pixel_values=1x3xHxW (e.g. 1x3x800x800) to export at that size (images are resized to "
        'it exactly), or set size {"height": H, "width": W} in preprocessor_config.json',
    )


def _check_against_transformers(folder: Path, name: str, proc, fields: dict, where: str, size=None) -> dict:
    """bmsdk's pipeline against transformers' own (PIL backend) on a few random images of other sizes and shapes:
    they must agree to CHECK_TOLERANCE, else the conversion stops (a bmsdk bug, never shipped silently). `size`
    replaces the processor's (a detection processor exported at one size)."""
    import transformers
    from PIL import Image

    pil = getattr(transformers, f"{name}Pil", None)  # transformers 5; in 4.x the class itself is the PIL one
    extra = {"size": size} if size is not None else {}
    reference = pil.from_pretrained(str(folder), local_files_only=True, **extra) if pil is not None else proc
    height, width = fields["size"]
    config = {"kind": "image", "input_name": "pixel_values", "channels": 3, "layout": "NCHW", **fields}
    ours = ImagePreprocessor(config, [TensorSpec("pixel_values", "float32", ["batch", 3, height, width])])
    rng = np.random.default_rng(0)
    shapes = [(height * 4 // 3 + 1, width), (height, width * 2 + 3), (max(height // 3, 1), max(width // 2, 1))]
    if fields["resize"]["mode"] == "none" and "center_crop" not in fields:  # images must come at the model's size
        shapes = [(height, width)]
    worst = 0.0
    for shape in shapes:
        image = Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
        want = reference(images=[image], return_tensors="np")["pixel_values"][0]
        got = ours([image])["pixel_values"][0]
        if got.shape != want.shape:
            worst = float("inf")
            break
        worst = max(worst, float(np.abs(got - want).max()))
    if not worst <= CHECK_TOLERANCE:
        raise SourceError(
            f"{where}: bmsdk's image pre-processing differs from transformers' by {worst:.3g} on a test image",
            "report it as a bmsdk bug; meanwhile export the model to ONNX and pre-process images yourself",
        )
    return {"against": f"transformers {transformers.__version__} {type(reference).__name__}", "max_abs_error": worst}


def option_pipeline(height: int, width: int, channels: int, mean, std, what: str) -> dict:
    """Fields for a source without an image processor: resize to the model's size; mean/std from the options, or
    0/1 (recorded as "default-0-1", with a warning)."""
    fields = {
        "resize": default_resize([height, width]),
        "mean": [float(m) for m in (mean or [0.0] * channels)],
        "std": [float(s) for s in (std or [1.0] * channels)],
        "normalization": "option" if mean or std else DEFAULT_0_1,
    }
    if not (mean or std):
        log.warning(
            "%s has no mean/std (no preprocessor_config.json, no --mean/--std): images go to the model as "
            "pixel/255 with mean 0 and std 1, and bmsdk.json records normalization 'default-0-1'; if the model "
            "was trained on normalised images, %s",
            what,
            MEAN_STD_FIX,
        )
    return fields


def _load(folder: Path):
    import transformers

    try:
        return transformers.AutoImageProcessor.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False
        )
    except Exception as e:  # transformers raises ValueError/OSError/KeyError... for unusable processor configs
        raise SourceError(
            f"transformers cannot read the image processor in {folder / 'preprocessor_config.json'}: "
            f"{str(e).splitlines()[0][:240] if str(e) else type(e).__name__}",
            "re-save it with XImageProcessor(...).save_pretrained(folder) (no remote code)",
        ) from None


def _attributes(proc) -> dict:
    return {k: getattr(proc, k, None) for k in HANDLED}


def _refuse_unknown_options(proc, where: str, harmless: set[str] = frozenset()) -> None:
    """Any option of the processor that bmsdk does not apply must be off; padding and channels-last output too
    (`harmless`: options this processor class may set, e.g. a detection processor's padding to the batch)."""
    valid = getattr(getattr(proc, "valid_kwargs", None), "__annotations__", None) or {}
    skip = HANDLED | HARMLESS | set(harmless) | {"do_pad", "pad_size", "data_format"}
    extra = sorted(k for k in valid if k not in skip)
    if getattr(proc, "do_pad", None) and "do_pad" not in harmless:
        extra.insert(0, "do_pad")
    for key in extra:
        value = getattr(proc, key, None)
        if key == "do_pad" or value not in (None, False):
            raise SourceError(
                f"{where} sets {key}={value!r}, which bmsdk's image pre-processing does not apply",
                f"remove {key} from preprocessor_config.json (or set it to false) if the model does not need it",
            )
    data_format = getattr(proc, "data_format", None)  # ChannelDimension is a str enum
    if data_format not in (None, "channels_first"):
        raise SourceError(f"{where} sets data_format={data_format!r}", "use channels_first, the layout the model takes")


def _geometry(attr: dict, name: str, where: str) -> tuple[dict, list[int] | None]:
    """(resize, center_crop) of the processor, as transformers' `_preprocess` of that class applies them."""
    resample = BILINEAR if attr.get("resample") is None else attr["resample"]
    if isinstance(resample, bool) or not isinstance(resample, int) or int(resample) not in RESAMPLE:
        raise SourceError(f"{where}: resample={attr['resample']!r} is not a PIL filter", "use a PIL filter 0-5")
    resample = int(resample)  # PILImageResampling is an IntEnum
    size = dict(attr.get("size") or {})
    crop = None
    if not attr.get("do_resize"):
        resize: dict = {"mode": "none"}
    elif name == "ConvNextImageProcessor":
        resize, crop = _convnext_resize(size, attr.get("crop_pct"), resample, where)
    elif name == "PoolFormerImageProcessor" and attr.get("crop_pct") is not None:
        resize = _poolformer_resize(size, attr["crop_pct"], resample, where)
    elif name == "LevitImageProcessor" and set(size) == {"shortest_edge"}:
        # LeViT's resize: the shortest edge to int(256 / 224 * shortest_edge), before its centre crop
        resize = {"mode": "shortest_edge", "size": int((256 / 224) * size["shortest_edge"]), "resample": resample}
    elif set(size) == {"height", "width"}:
        resize = {"mode": "exact", "size": [int(size["height"]), int(size["width"])], "resample": resample}
    elif set(size) == {"shortest_edge"}:
        resize = {"mode": "shortest_edge", "size": int(size["shortest_edge"]), "resample": resample}
    else:
        raise SourceError(
            f"{where}: size {size} (keys {', '.join(sorted(size))}) is a resize bmsdk does not implement",
            'use size {"height": H, "width": W} or {"shortest_edge": N} with a crop_size',
        )
    if attr.get("do_center_crop") and name != "SegformerImageProcessor":  # Segformer's _preprocess never crops
        if crop is not None:
            raise SourceError(
                f"{where}: do_center_crop with a crop_pct resize crops twice, which bmsdk does not implement",
                "set do_center_crop to false (crop_pct already crops to shortest_edge)",
            )
        crop_size = dict(attr.get("crop_size") or {})
        if set(crop_size) != {"height", "width"}:
            raise SourceError(
                f"{where}: do_center_crop needs crop_size {{height, width}}, got {crop_size}",
                'set crop_size {"height": H, "width": W}',
            )
        crop = [int(crop_size["height"]), int(crop_size["width"])]
    if crop is None and resize["mode"] == "shortest_edge":
        raise SourceError(
            f"{where} resizes the shortest edge to {resize['size']} without a centre crop, so images come out in "
            "varying sizes and the exported model takes one",
            'set do_center_crop with a crop_size, or size {"height": H, "width": W}',
        )
    return resize, crop


def _convnext_resize(size: dict, crop_pct, resample: int, where: str) -> tuple[dict, list[int] | None]:
    """ConvNextImageProcessor: shortest_edge < 384 resizes the shortest edge to int(shortest_edge / crop_pct) and
    crops shortest_edge x shortest_edge; 384 and more warps to a square."""
    if set(size) != {"shortest_edge"}:
        raise SourceError(
            f"{where}: ConvNeXT's resize needs size {{shortest_edge}}, got {size}", 'set size {"shortest_edge": N}'
        )
    edge = int(size["shortest_edge"])
    if edge >= CONVNEXT_WARP:
        return {"mode": "exact", "size": [edge, edge], "resample": resample}, None
    _check_crop_pct(crop_pct, where)
    return {"mode": "shortest_edge", "size": int(edge / crop_pct), "resample": resample}, [edge, edge]


def _check_crop_pct(crop_pct, where: str) -> None:
    if not isinstance(crop_pct, (int, float)) or isinstance(crop_pct, bool) or not 0 < crop_pct:
        raise SourceError(f"{where}: crop_pct must be a positive number, got {crop_pct!r}", "set crop_pct, e.g. 0.875")


def _poolformer_resize(size: dict, crop_pct, resample: int, where: str) -> dict:
    """PoolFormerImageProcessor: the size scaled by 1 / crop_pct (its centre crop then takes crop_size); a square
    {height, width} resizes the shortest edge, a non-square one both edges."""
    _check_crop_pct(crop_pct, where)
    if set(size) == {"shortest_edge"}:
        return {"mode": "shortest_edge", "size": int(size["shortest_edge"] / crop_pct), "resample": resample}
    if set(size) == {"height", "width"}:
        if size["height"] == size["width"]:
            return {"mode": "shortest_edge", "size": int(size["height"] / crop_pct), "resample": resample}
        scaled = [int(size["height"] / crop_pct), int(size["width"] / crop_pct)]
        return {"mode": "exact", "size": scaled, "resample": resample}
    raise SourceError(
        f"{where}: size {size} is a resize bmsdk does not implement",
        'use size {"shortest_edge": N} or {"height": H, "width": W}',
    )


def _per_channel(values, channels: int, key: str, where: str) -> list[float]:
    if not isinstance(values, (list, tuple)):
        return [_number(values, key, where)] * channels
    if len(values) != channels:
        raise SourceError(
            f"{where}: {key} must give {channels} values (one per channel of the model), got {values!r}",
            f"fix {key} in preprocessor_config.json",
        )
    numbers = [_number(v, key, where) for v in values]
    if key == "image_std" and 0 in numbers:
        raise SourceError(f"{where}: image_std {values!r} holds a 0", "fix image_std in preprocessor_config.json")
    return numbers


def _number(value, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SourceError(
            f"{where}: {key} must be a finite number, got {str(value)[:60]!r}", f"fix {key} in preprocessor_config.json"
        )
    return float(value)
