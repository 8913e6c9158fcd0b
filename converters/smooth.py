"""SmoothQuant-style scale migration before int8 export (`convert --smooth-quant ALPHA`).

A transformer's activations have a few channels far larger than the rest (MiniLM's FFN output projections see
inputs whose largest channel is 10-15x the median), so one int8 range per tensor rounds the other channels away.
For each linear layer, input channel j is divided by s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha) (from calibration)
and the weight's column j multiplied by it: the float model computes the same function, the activation's range
is flatter, and the weight (quantized per output channel) takes the difference. Post-LN BERT reuses each
LayerNorm output as a residual, so the division cannot be folded into the LayerNorm; it is a Mul before the layer,
which the quantizers leave float (dynamic int8 quantizes only the matmul's input).

The same `Mul` zeroes a text batch's padded positions (attention_mask 0): their hidden states carry outliers that
real tokens never show, and would set a dynamic per-tensor range for the whole batch. Attention never reads a padded
position, so real tokens' outputs are unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect

import numpy as np

from bmsdk.errors import UnsupportedError
from bmsdk.sections import Smoothing

SCALE_LIMITS = (1e-4, 1e4)  # a dead channel (max 0) must not scale its weights by 0 or infinity
FLOOR = 1e-5
INT8_PRECISIONS = ("int8", "int8-dynamic")  # tflite names its dynamic-range int8 apart


def check_alpha(alpha, precision: str) -> float | None:
    if alpha is None:
        return None
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise UnsupportedError(f"cannot read --smooth-quant '{alpha}'", "pass a strength in (0, 1], e.g. 0.5") from None
    if not 0 < alpha <= 1:
        raise UnsupportedError(f"--smooth-quant {alpha} is not in (0, 1]", "pass a strength in (0, 1], e.g. 0.5")
    if precision not in INT8_PRECISIONS:
        raise UnsupportedError(
            f"--smooth-quant prepares a model for int8; this build is {precision}",
            "add --precision int8 (tflite: or int8-dynamic), or leave --smooth-quant out",
        )
    return alpha


def check_source(source) -> None:
    if source.module is None:
        raise UnsupportedError(
            "--smooth-quant rescales the layers of a PyTorch model; this source is an exported graph",
            "convert the checkpoint, .pt2 or factory the file came from, or leave --smooth-quant out",
        )


def smooth_source(source, feeds: list[dict[str, np.ndarray]], alpha: float):
    """A copy of `source` whose linear layers take their inputs divided by s and hold W * s; and the report."""
    import torch

    module = copy.deepcopy(source.module).eval()
    peaks = _input_peaks(module, feeds)
    layers = []
    with torch.no_grad():
        for name, peak in peaks.items():
            layer = module.get_submodule(name)
            weight_peak = layer.weight.abs().amax(dim=0).clamp(min=FLOOR)
            scale = (peak.clamp(min=FLOOR) ** alpha / weight_peak ** (1 - alpha)).clamp(*SCALE_LIMITS)
            layer.weight.mul_(scale)
            layer.__class__ = smoothed_linear()
            layer.register_buffer("smooth_inverse", (1 / scale).to(layer.weight.dtype), persistent=False)
            layer.smooth_mask = None
            layers.append(layer)
    _share_attention_mask(module, layers)
    examples = int(sum(len(next(iter(f.values()))) for f in feeds))
    report = Smoothing(alpha=alpha, layers=len(layers), examples=examples)
    return dataclasses.replace(source, module=module), report


def _input_peaks(module, feeds: list[dict[str, np.ndarray]]) -> dict[str, object]:
    """name -> max |input| per input channel, for every nn.Linear the feeds reach with a float input.

    Padded positions of a text batch (attention_mask 0) are left out: their hidden states carry outliers that real
    tokens never show (on MiniLM, counting them cost all of smoothing's gain: 72.8% against 74.6%)."""
    import torch

    peaks: dict[str, torch.Tensor] = {}
    mask = None  # the current feed's attention mask, [batch, sequence]

    def record(name):
        def hook(layer, args):
            x = args[0] if args else None
            if not torch.is_tensor(x) or not x.is_floating_point() or x.shape[-1] != layer.in_features:
                return
            x = x.detach()
            if mask is not None and x.ndim == 3 and tuple(x.shape[:2]) == tuple(mask.shape):
                x = x[mask]
            peak = x.abs().reshape(-1, x.shape[-1]).amax(dim=0).float()
            peaks[name] = torch.maximum(peaks[name], peak) if name in peaks else peak

        return hook

    hooks = [
        m.register_forward_pre_hook(record(n))
        for n, m in module.named_modules()
        if type(m) is torch.nn.Linear  # a subclass may compute something else from its input
    ]
    try:
        with torch.no_grad():
            for feed in feeds:
                given = feed.get("attention_mask")
                mask = torch.from_numpy(np.asarray(given) > 0) if given is not None and given.ndim == 2 else None
                module(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feed.items()})
    finally:
        for h in hooks:
            h.remove()
    return peaks


def _share_attention_mask(module, layers: list) -> None:
    """Hand each call's attention mask to the smoothed layers (hooks on the top module, so that the traced
    and exported graphs take it from the model's input)."""
    params = list(inspect.signature(module.forward).parameters)
    if "attention_mask" not in params:
        return
    position = params.index("attention_mask")

    def give(_, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None and position < len(args):
            mask = args[position]
        for layer in layers:
            layer.smooth_mask = mask if mask is not None and mask.dim() == 2 else None

    def take_back(*_):
        for layer in layers:
            layer.smooth_mask = None

    module.register_forward_pre_hook(give, with_kwargs=True)
    module.register_forward_hook(take_back)


@functools.cache
def smoothed_linear() -> type:
    """nn.Linear whose input is first multiplied by `smooth_inverse` (1/s per input channel); a class made on
    first use, so that importing this module does not import torch."""
    import torch

    class SmoothedLinear(torch.nn.Linear):
        def forward(self, x):
            x = x * self.smooth_inverse
            mask = self.smooth_mask
            if mask is not None and x.dim() == 3 and x.shape[:2] == mask.shape:
                x = x * mask.unsqueeze(-1).to(x.dtype)
            return torch.nn.functional.linear(x, self.weight, self.bias)

    return SmoothedLinear
