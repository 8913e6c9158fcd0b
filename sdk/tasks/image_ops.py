"""The geometric steps of image pre-processing (resize, centre crop) on uint8 pixels, exactly as transformers'
image processors do them with their PIL backend (`image_transforms.resize`, `get_resize_output_image_size`,
`center_crop`). numpy and Pillow only."""

from __future__ import annotations

from math import ceil

import numpy as np

from bmsdk.errors import InputError
from bmsdk.image_pipeline import BILINEAR

MAX_PIXELS = 1 << 26  # after the resize: 8192 x 8192


def resized_size(height: int, width: int, resize: dict) -> tuple[int, int]:
    """(height, width) an image of height x width has after `resize` (see bmsdk.image_pipeline)."""
    mode = resize["mode"]
    if mode == "none":
        return height, width
    if mode in ("exact", "letterbox"):
        return int(resize["size"][0]), int(resize["size"][1])
    # transformers' get_resize_output_image_size(default_to_square=False): the short side becomes `size`, the long
    # one int(size * long / short), truncated
    size = int(resize["size"])
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (new_long, size) if width <= height else (size, new_long)


def resize_image(image, resize: dict):
    """A PIL image resized as `resize` says (Pillow's own filter, on its uint8 pixels, as transformers does)."""
    height, width = resized_size(image.height, image.width, resize)
    if height * width > MAX_PIXELS:  # an extreme aspect ratio under a shortest-edge resize
        raise InputError(
            f"an image of {image.height}x{image.width} would be resized to {height}x{width}, over "
            f"{MAX_PIXELS:,} pixels",
            "crop the image to a less extreme aspect ratio first",
        )
    if resize["mode"] == "letterbox":
        return letterbox(
            image, (height, width), int(resize.get("resample", BILINEAR)), int(resize.get("pad_value", 114))
        )
    if (width, height) == image.size:
        return image
    return image.resize((width, height), resample=int(resize.get("resample", BILINEAR)))


def letterbox(image, size: tuple[int, int], resample: int = BILINEAR, pad_value: int = 114):
    """ultralytics' LetterBox(auto=False, scaleup=True, center=True) with a Pillow filter: the image scaled by
    r = min(h / height, w / width) to (round(width * r), round(height * r)), pasted on an h x w canvas of pad_value
    at (round(dw - 0.1), round(dh - 0.1)), dw and dh half the padding (ultralytics resizes with cv2's INTER_LINEAR,
    which differs from Pillow's filter when shrinking)."""
    from PIL import Image

    height, width = size
    gain = min(height / image.height, width / image.width)
    new_w, new_h = int(round(image.width * gain)), int(round(image.height * gain))
    top, left = int(round((height - new_h) / 2 - 0.1)), int(round((width - new_w) / 2 - 0.1))
    if (new_w, new_h) != image.size:
        image = image.resize((new_w, new_h), resample=resample)
    fill = pad_value if image.mode == "L" else (pad_value,) * len(image.getbands())
    canvas = Image.new(image.mode, (width, height), fill)
    canvas.paste(image, (left, top))
    return canvas


def center_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """transformers' `center_crop` on HxW(xC) pixels: the centre height x width, zero-padded where smaller."""
    orig_height, orig_width = pixels.shape[:2]
    top = (orig_height - height) // 2
    bottom = top + height
    left = (orig_width - width) // 2
    right = left + width
    if top >= 0 and bottom <= orig_height and left >= 0 and right <= orig_width:
        return pixels[top:bottom, left:right]
    new_height, new_width = max(height, orig_height), max(width, orig_width)
    canvas = np.zeros((new_height, new_width, *pixels.shape[2:]), dtype=pixels.dtype)
    top_pad = ceil((new_height - orig_height) / 2)
    left_pad = ceil((new_width - orig_width) / 2)
    canvas[top_pad : top_pad + orig_height, left_pad : left_pad + orig_width] = pixels
    top, bottom, left, right = top + top_pad, bottom + top_pad, left + left_pad, right + left_pad
    return canvas[max(0, top) : min(new_height, bottom), max(0, left) : min(new_width, right)]
