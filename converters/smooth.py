"""SmoothQuant-style scale migration before int8 export (`convert --smooth-quant ALPHA`).

A transformer's activations have a few channels far larger than the rest (MiniLM's FFN output projections see
inputs whose largest channel is 10-15x the median), so one int8 range per tensor rounds the other channels away.
For each linear layer, input channel j is divided by s_j = max|x_j|^alpha / max|W_:,j|^(1 - alpha) (from calibration)
and the weight's column j multiplied by it: the float model computes the same function, the activation's range
is flatter, and the weight (quantized per output channel) takes the difference.

Where the division goes, fewest float ops first:
- layers that read one tensor (attention's query, key and value) share one s and one division;
- a layer whose input is linear per channel in an earlier layer's output (attention's output projection reads
  softmax(QK^T) V) takes its 1/s in that layer's weights, no op at all; each such fold is kept only when the
  model's outputs on a calibration batch are unchanged by it;
- the rest is a `Mul` before the layer, which the quantizers leave float (dynamic int8 quantizes only the
  matmul's input): post-LN BERT reuses each LayerNorm output as a residual, so it cannot go into the LayerNorm.

The same `Mul` zeroes a text batch's padded positions (attention_mask 0): their hidden states carry outliers that
real tokens never show, and would set a dynamic per-tensor range for the whole batch. Attention never reads a padded
position, so real tokens' outputs are unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import weakref

import numpy as np

from bmsdk.errors import UnsupportedError
from bmsdk.sections import Smoothing

SCALE_LIMITS = (1e-4, 1e4)  # a dead channel (max 0) must not scale its weights by 0 or infinity
FLOOR = 1e-5
INT8_PRECISIONS = ("int8", "int8-dynamic")  # tflite names its dynamic-range int8 apart
FOLD_CHECK_ROWS = 8  # calibration rows a fold is checked on
FOLD_TOLERANCE = 1e-5  # largest output change a fold may make, relative to the largest output (fp32 rounding)


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


@dataclasses.dataclass
class _Calibration:
    peaks: dict[str, object]  # layer name -> max |input| per input channel
    groups: dict[str, list[str]]  # first reader -> the layers that read its input tensor, in call order
    producers: dict[str, str]  # a group's first layer -> the last layer before it whose output width is its input's


def smooth_source(source, feeds: list[dict[str, np.ndarray]], alpha: float):
    """A copy of `source` whose linear layers take their inputs divided by s and hold W * s; and the report."""
    import torch

    module = copy.deepcopy(source.module).eval()
    calibration = _calibrate(module, feeds)
    state: dict = {}  # one call's attention mask and smoothed inputs, shared by the smoothed layers
    smoothed = []
    with torch.no_grad():
        for names in calibration.groups.values():
            layers = [module.get_submodule(n) for n in names]
            weight_peak = torch.stack([m.weight.abs().amax(dim=0) for m in layers]).amax(dim=0).clamp(min=FLOOR)
            peak = torch.stack([calibration.peaks[n] for n in names]).amax(dim=0).clamp(min=FLOOR)
            scale = (peak**alpha / weight_peak ** (1 - alpha)).clamp(*SCALE_LIMITS)
            inverse = (1 / scale).to(layers[0].weight.dtype)
            for m in layers:
                m.weight.mul_(scale)
                m.__class__ = smoothed_linear()
                m.register_buffer("smooth_inverse", inverse, persistent=False)
                m.smooth_group, m.smooth_state, m.smooth_folded = names[0], state, False
            smoothed.extend(layers)
    module.smooth_state = state
    _share_attention_mask(module)
    folded = _fold_into_producers(module, calibration, _first_rows(feeds[0], FOLD_CHECK_ROWS))
    examples = int(sum(len(next(iter(f.values()))) for f in feeds))
    report = Smoothing(
        alpha=alpha, layers=len(smoothed), examples=examples, scales=len(calibration.groups), folded=folded
    )
    return dataclasses.replace(source, module=module), report


def _calibrate(module, feeds: list[dict[str, np.ndarray]]) -> _Calibration:
    """Every nn.Linear the feeds reach with a float input: its input's peak per channel, which layers read the
    same tensor, and which layer ran last before it with an output as wide as its input.

    Padded positions of a text batch (attention_mask 0) are left out of the peaks: their hidden states carry
    outliers that real tokens never show (on MiniLM, counting them cost all of smoothing's gain: 72.8% against
    74.6%)."""
    import torch

    peaks: dict[str, torch.Tensor] = {}
    # the first feed's calls, in order: (layer, its input's width, the first earlier layer that read the same
    # tensor); inputs are held by weak reference, so that a large model's activations are not all kept
    calls: list[tuple[str, int, str | None]] = []
    inputs: list[tuple[str, weakref.ref]] = []
    mask = None  # the current feed's attention mask, [batch, sequence]
    widths = {n: m.out_features for n, m in module.named_modules() if type(m) is torch.nn.Linear}

    def record(name):
        def hook(layer, args):
            x = args[0] if args else None
            if not torch.is_tensor(x) or not x.is_floating_point() or x.shape[-1] != layer.in_features:
                return
            if first:
                shared = next((n for n, ref in inputs if ref() is x), None)
                calls.append((name, x.shape[-1], shared))
                inputs.append((name, weakref.ref(x)))
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
            for index, feed in enumerate(feeds):
                first = index == 0
                given = feed.get("attention_mask")
                mask = torch.from_numpy(np.asarray(given) > 0) if given is not None and given.ndim == 2 else None
                module(**_tensors(feed))
    finally:
        for h in hooks:
            h.remove()
    groups: dict[str, list[str]] = {}
    producers: dict[str, str] = {}
    grouped: set[str] = set()
    for position, (name, width, shared) in enumerate(calls):
        if name in grouped:
            continue  # a layer run again (shared weights) keeps the group of its first call
        grouped.add(name)
        if shared in groups:
            groups[shared].append(name)
            continue
        groups[name] = [name]
        before = [n for n, w, _ in calls[:position] if widths[n] == width]
        if before:
            producers[name] = before[-1]
    # a layer the first feed did not reach: a scale of its own
    groups.update({n: [n] for n in peaks if n not in grouped})
    return _Calibration(peaks=peaks, groups=groups, producers=producers)


def _fold_into_producers(module, calibration: _Calibration, feed: dict[str, np.ndarray]) -> int:
    """Move each group's 1/s into its producer's output rows where that leaves the model's outputs unchanged
    (attention's output projection: its input is softmax(QK^T) V, linear per channel in V); returns how many."""
    import torch

    with torch.no_grad():
        reference = _leaves(module(**_tensors(feed)))
        folded = 0
        for first, producer_name in calibration.producers.items():
            producer = module.get_submodule(producer_name)
            group = [module.get_submodule(n) for n in calibration.groups[first]]
            inverse = group[0].smooth_inverse
            saved = (producer.weight.clone(), None if producer.bias is None else producer.bias.clone())
            producer.weight.mul_(inverse[:, None])
            if producer.bias is not None:
                producer.bias.mul_(inverse)
            for m in group:
                m.smooth_folded = True
            if _same(_leaves(module(**_tensors(feed))), reference):
                folded += 1
                continue
            producer.weight.copy_(saved[0])
            if saved[1] is not None:
                producer.bias.copy_(saved[1])
            for m in group:
                m.smooth_folded = False
    return folded


def _share_attention_mask(module) -> None:
    """Hand each call's attention mask to the smoothed layers (hooks on the top module, so that the traced
    and exported graphs take it from the model's input); their state is emptied after the call. The hooks reach
    the state through the module they run on, so that a deep copy of the model keeps its own."""
    params = list(inspect.signature(module.forward).parameters)
    position = params.index("attention_mask") if "attention_mask" in params else None

    def give(top, args, kwargs):
        state = top.smooth_state
        state.clear()
        if position is None:
            return
        mask = kwargs.get("attention_mask")
        if mask is None and position < len(args):
            mask = args[position]
        if mask is not None and mask.dim() == 2:
            state["mask"] = mask

    module.register_forward_pre_hook(give, with_kwargs=True)
    module.register_forward_hook(lambda top, *_: top.smooth_state.clear())


@functools.cache
def smoothed_linear() -> type:
    """nn.Linear whose input is first multiplied by `smooth_inverse` (1/s per input channel), once for the layers
    that read the same tensor, or not at all where an earlier layer took the 1/s (`smooth_folded`); a class made
    on first use, so that importing this module does not import torch."""
    import torch

    class SmoothedLinear(torch.nn.Linear):
        def forward(self, x):
            return torch.nn.functional.linear(self.smoothed_input(x), self.weight, self.bias)

        def smoothed_input(self, x):
            if self.smooth_folded:
                return x
            state = self.smooth_state
            done = state.get(self.smooth_group)
            if done is not None and done[0] is x:
                return done[1]
            y = x * self.smooth_inverse
            mask = state.get("mask")
            if mask is not None and x.dim() == 3 and x.shape[:2] == mask.shape:
                y = y * mask.unsqueeze(-1).to(y.dtype)
            state[self.smooth_group] = (x, y)
            return y

    return SmoothedLinear


def _tensors(feed: dict[str, np.ndarray]) -> dict:
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feed.items()}


def _first_rows(feed: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    return {k: v[:rows] for k, v in feed.items()}


def _leaves(output) -> list:
    """The tensors of a model's output (a tensor, or tuples, lists and dicts of them, as ModelOutput is)."""
    import torch

    if torch.is_tensor(output):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _leaves(item)]
    return []


def _same(got: list, want: list) -> bool:
    return len(got) == len(want) and all(
        g.shape == w.shape
        and float((g.float() - w.float()).abs().max()) <= FOLD_TOLERANCE * max(float(w.float().abs().max()), 1e-6)
        for g, w in zip(got, want)
        if w.numel() and w.is_floating_point()
    )
