"""The image pre-processing a manifest describes (its `preprocessing` section, kind "image"), and its checks.

The pipeline is transformers' image processors' (PIL backend), in their order:

1. decode, convert to RGB (or L for a one-channel model);
2. `resize` on the uint8 image with a Pillow filter: `{"mode": "exact", "size": [h, w], "resample": 2}` warps to
   h x w, `{"mode": "shortest_edge", "size": n, "resample": 3}` scales the shorter side to n keeping the aspect
   ratio (the longer side truncated, as `get_resize_output_image_size` does), `{"mode": "none"}` keeps the image,
   `{"mode": "letterbox", "size": [h, w], "resample": 2, "pad_value": 114}` is ultralytics' LetterBox (scaled by
   the smaller of h/height and w/width, rounded, centred on a pad_value canvas of h x w; object detection);
3. `center_crop` [h, w]: transformers' `center_crop`, zero-padded where the image is smaller;
4. in float32: `pixel * scale + offset` (the scale product in float64, as transformers' `rescale`), then
   `(x - mean) / std`, then `x / renormalize_std` where present (EfficientNet's `include_top`);
5. `channel_order` "BGR" reverses the channels (MobileViT's `do_flip_channel_order`); `layout` NCHW or NHWC.

`size` is always the model's input size (what step 3, or step 2 without a crop, gives). A manifest without
`resize` (bmsdk 0.1 wrote none) resizes straight to `size` with BILINEAR, as bmsdk always did.
`normalization` says where mean/std came from: "checkpoint" (its preprocessor_config.json), "option"
(--mean/--std or the factory's bmsdk_spec), "none" (the checkpoint's processor does not normalize) or
"default-0-1" (nobody gave them: left at mean 0, std 1). `processor` names the checkpoint's image processor class
and `processor_check` what the conversion measured against it (transformers' version and class, max abs error).
"""

from __future__ import annotations

import math
from typing import Any

from .sections import show as _show

BILINEAR = 2  # PIL.Image.Resampling.BILINEAR
RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}  # PIL's numbering
RESIZE_MODES = ("exact", "shortest_edge", "none", "letterbox")
CHANNEL_ORDERS = ("RGB", "BGR")
NORMALIZATIONS = ("checkpoint", "option", "none", "default-0-1")
DEFAULT_0_1 = "default-0-1"
MAX_SIDE = 16384


def default_resize(size: list[int]) -> dict:
    """What a manifest without `resize` does: warp to the model's size with BILINEAR."""
    return {"mode": "exact", "size": [int(size[0]), int(size[1])], "resample": BILINEAR}


def pipeline_problem(pre: dict, size: list[int], channels: int) -> str | None:
    """What is wrong with the optional pipeline fields of an image `preprocessing` section, or None."""
    resize = pre.get("resize", default_resize(size))
    problem = _resize_problem(resize)
    if problem:
        return problem
    crop = pre.get("center_crop")
    if crop is not None and not _is_side_pair(crop):
        return f"'center_crop' must be [height, width] of ints from 1 to {MAX_SIDE}, got {_show(crop)}"
    if crop is not None and crop != size:
        return f"'center_crop' {_show(crop)} must equal 'size' {_show(size)} (the model's input)"
    if crop is None and resize["mode"] == "shortest_edge":
        return "a 'shortest_edge' resize without 'center_crop' gives images of varying size; add a 'center_crop'"
    if resize["mode"] == "letterbox" and (crop is not None or resize["size"] != size):
        return f"a 'letterbox' resize must give 'size' {_show(size)} itself, without a 'center_crop'"
    if crop is None and resize["mode"] == "exact" and resize["size"] != size:
        return f"'resize' size {_show(resize['size'])} must equal 'size' {_show(size)} when there is no crop"
    if "offset" in pre and not _is_number(pre["offset"]):
        return f"'offset' must be a finite number, got {_show(pre['offset'])}"
    again = pre.get("renormalize_std")
    if again is not None and not (
        isinstance(again, list) and len(again) == channels and all(_is_number(v) and v != 0 for v in again)
    ):
        return f"'renormalize_std' must be {channels} finite non-zero numbers, got {_show(again)}"
    order = pre.get("channel_order", "RGB")
    if order not in CHANNEL_ORDERS or (order == "BGR" and channels != 3):
        return f"'channel_order' must be RGB, or BGR for 3 channels, got {_show(order)}"
    if pre.get("normalization", "option") not in NORMALIZATIONS:
        return f"'normalization' must be one of {', '.join(NORMALIZATIONS)}, got {_show(pre.get('normalization'))}"
    if not isinstance(pre.get("processor", ""), str):
        return f"'processor' must be a string, got {_show(pre.get('processor'))}"
    return None


def _resize_problem(resize: Any) -> str | None:
    if not isinstance(resize, dict) or resize.get("mode") not in RESIZE_MODES:
        return f"'resize' must be an object whose 'mode' is one of {', '.join(RESIZE_MODES)}, got {_show(resize)}"
    mode = resize["mode"]
    if mode == "none":
        return None
    if mode == "letterbox" and not (_is_side_pair(resize.get("size")) and _is_byte(resize.get("pad_value", 114))):
        return f"a 'letterbox' resize needs 'size' [height, width] and a 'pad_value' 0-255, got {_show(resize)}"
    if mode == "exact" and not _is_side_pair(resize.get("size")):
        return f"an exact 'resize' needs 'size' [height, width] of ints from 1 to {MAX_SIDE}, got {_show(resize)}"
    if mode == "shortest_edge" and not _is_side(resize.get("size")):
        return f"a shortest_edge 'resize' needs 'size', an int from 1 to {MAX_SIDE}, got {_show(resize)}"
    if resize.get("resample", BILINEAR) not in RESAMPLE or isinstance(resize.get("resample"), bool):
        return f"'resize' resample must be a PIL filter number 0-5, got {_show(resize.get('resample'))}"
    return None


def _is_side(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE


def _is_byte(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255


def _is_side_pair(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_is_side(x) for x in v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
