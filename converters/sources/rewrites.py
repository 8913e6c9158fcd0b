"""Rewrites of a torch source module before export, each exact on the source's own input shapes.

`whole_input_pools`: an `AvgPool2d` whose window covers its whole input (transformers' EfficientNet pools with
`AvgPool2d(hidden_dim, ceil_mode=True)`, a 1280-wide window over a 7x7 map) is a global average in torch, whose
ceil mode clips the window to the input. Exporters copy the huge window literally: onnxruntime's int8
`QLinearAveragePool` then divides by the full window (constant logits) and CoreML's pool pads to the window's size.
`AdaptiveAvgPool2d(1)` says what torch computes, and every target lowers it to its global pool.
"""

from __future__ import annotations

from collections.abc import Callable


def whole_input_pools(module, run: Callable[[], object]) -> list[str]:
    """Replace every AvgPool2d of `module` that averages its whole input (while `run()` runs the module on the
    source's input shapes) by AdaptiveAvgPool2d(1), when both give the same values there; returns the names of the
    replaced pools."""
    import torch

    found: dict[str, torch.nn.AvgPool2d] = {}

    def watch(name):
        def hook(pool, args, output):
            x = args[0]
            kernel = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size,) * 2
            covers = kernel[0] >= x.shape[-2] and kernel[1] >= x.shape[-1]
            if covers and output.shape[-2:] == (1, 1) and torch.allclose(output, x.mean((-2, -1), keepdim=True)):
                found[name] = pool

        return hook

    pools = [(n, m) for n, m in module.named_modules() if type(m) is torch.nn.AvgPool2d]
    handles = [m.register_forward_hook(watch(n)) for n, m in pools]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    for name in found:
        parent, _, leaf = name.rpartition(".")
        setattr(module.get_submodule(parent) if parent else module, leaf, torch.nn.AdaptiveAvgPool2d(1))
    return sorted(found)
