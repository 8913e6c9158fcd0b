"""Which layers suffer most from int8: each conv/linear layer quantized alone (simulated in torch) on calibration data.

Weights int8 symmetric per output channel and the layer's input uint8 per tensor (the schemes the targets use);
the score is the relative squared error of the model's output against float, so it ranks layers for any target.
"""

from __future__ import annotations

import numpy as np

from bmsdk.converters.layers import source_layers

MAX_EXAMPLES = 64


def fake_quant_weight(w):
    import torch

    dims = tuple(range(1, w.ndim))
    scale = w.abs().amax(dim=dims, keepdim=True).clamp(min=1e-12) / 127.0
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def fake_quant_input(x):
    import torch

    lo, hi = float(x.min().clamp(max=0)), float(x.max().clamp(min=0))
    scale = max(hi - lo, 1e-12) / 255.0
    zero = round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale


def rank_layers(module, calibration: list[dict[str, np.ndarray]], limit: int = MAX_EXAMPLES) -> list[dict]:
    """Layers from most to least sensitive: [{"layer", "error"}]; error = |y_q - y|^2 / |y|^2 over the examples."""
    import torch

    batches, n = [], 0
    for batch in calibration:
        if n >= limit:
            break
        batches.append({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()})
        n += len(next(iter(batch.values())))

    def outputs():
        with torch.no_grad():
            result = [module(**b) for b in batches]
        return [r[0] if isinstance(r, (tuple, list)) else r for r in result]

    reference = outputs()
    scale = sum(float((r.float() ** 2).sum()) for r in reference)
    scores = []
    for name, layer in source_layers(module).items():
        original = layer.weight.data.clone()
        layer.weight.data = fake_quant_weight(original)
        hook = layer.register_forward_pre_hook(lambda _m, args: (fake_quant_input(args[0]), *args[1:]))
        try:
            quantized = outputs()
        finally:
            hook.remove()
            layer.weight.data = original
        error = sum(float(((q.float() - r.float()) ** 2).sum()) for q, r in zip(quantized, reference)) / max(
            scale, 1e-12
        )
        scores.append({"layer": name, "error": error})
    return sorted(scores, key=lambda s: -s["error"])
