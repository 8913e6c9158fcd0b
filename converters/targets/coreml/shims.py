"""The torch ops that coremltools 9 cannot convert from current torch and transformers 5, registered in one place.

- `alias` (torch.export graphs of current torch): an identity.
- `new_ones` (transformers 5 attention masks): a fill of ones, like coremltools' own `new_zeros`.
- `__and__` / `bitwise_and` on integer tensors (transformers 5 masks combine 0/1 int tensors with `&`):
  coremltools only accepts booleans. MIL has no bitwise op, so integers go through `logical_and` and back,
  exact for the 0/1 masks transformers builds (and refused nowhere else: a wider int mask would be wrong).

- `group_norm` with a dynamic batch (wav2vec2's conv feature encoder): coremltools reshapes to a list holding the
  symbolic batch and fails ("Cannot add const [batch, 8, 1, 1599]"); the batch becomes -1 here.
- `index_put` with one boolean mask as large as the tensor (`hidden[~mask] = 0` in wav2vec2/HuBERT encoders):
  coremltools compares the symbolic shapes of two traced tensors and refuses; it is a `select` (others as before).
- torch's NumPy-style aliases (`torch.multiply`, `subtract`, `divide`, `greater`, ..., in ConvBERT): coremltools
  registers only the short names; each alias gets the short name's converter.
- `upsample_bicubic2d` of a constant (YOLOS resizes its position embeddings to the image's patch grid): MIL has no
  bicubic resize, but at a fixed image size the result is a constant, computed here by torch itself.

`register()` is idempotent and runs before every conversion.
"""

from __future__ import annotations

import numpy as np

_REGISTERED = False
ALIASES = {  # torch's alias -> the op coremltools converts
    "multiply": "mul",
    "subtract": "sub",
    "divide": "div",
    "greater": "gt",
    "greater_equal": "ge",
    "less": "lt",
    "less_equal": "le",
    "not_equal": "ne",
    "absolute": "abs",
    "negative": "neg",
    "concatenate": "cat",
    "swapaxes": "transpose",
}


def register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs, logical_and, noop
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op
    from coremltools.converters.mil.frontend.torch.utils import NUM_TO_NUMPY_DTYPE
    from coremltools.converters.mil.mil import types
    from coremltools.converters.mil.mil.types.symbolic import any_symbolic

    @register_torch_op(torch_alias=["alias.default"], override=True)
    def alias(context, node):
        noop(context, node)

    @register_torch_op(override=True)
    def new_ones(context, node):
        inputs = _get_inputs(context, node)
        shape, dtype = inputs[1], inputs[2] if len(inputs) > 2 else None
        numpy_dtype = NUM_TO_NUMPY_DTYPE[dtype.val] if dtype is not None and dtype.val is not None else np.float32
        if not isinstance(shape, list) and shape.val is not None:  # a static size, e.g. () for a scalar
            context.add(mb.const(val=np.ones(tuple(int(d) for d in shape.val), dtype=numpy_dtype), name=node.name))
            return
        if isinstance(shape, list):  # a dynamic size is a list of scalars
            shape = mb.concat(values=shape, axis=0)
        ones = mb.fill(shape=shape, value=1.0)
        context.add(
            mb.cast(
                x=ones, dtype=types.builtin_to_string(types.numpy_type_to_builtin_type(numpy_dtype)), name=node.name
            )
        )

    @register_torch_op(torch_alias=["and"], override=True)
    def bitwise_and(context, node):
        x, y = _get_inputs(context, node, expected=2)
        if types.is_bool(x.dtype) and types.is_bool(y.dtype):
            return logical_and(context, node)
        both = mb.logical_and(x=mb.cast(x=x, dtype="bool"), y=mb.cast(x=y, dtype="bool"))
        dtype = types.builtin_to_string(x.dtype if not types.is_bool(x.dtype) else y.dtype)
        context.add(mb.cast(x=both, dtype=dtype, name=node.name))

    # torch.export graphs name the operator "__and__"; the registry refuses names ending in "_", so set it directly
    _TORCH_OPS_REGISTRY.set_func_by_name(bitwise_and, "__and__")
    for alias_name, name in ALIASES.items():
        if alias_name not in _TORCH_OPS_REGISTRY and name in _TORCH_OPS_REGISTRY:
            _TORCH_OPS_REGISTRY.set_func_by_name(_TORCH_OPS_REGISTRY[name], alias_name)

    original_group_norm = _TORCH_OPS_REGISTRY["group_norm"]

    @register_torch_op(override=True)
    def group_norm(context, node):
        inputs = _get_inputs(context, node)
        x = inputs[0]
        if not (any_symbolic(x.shape[:1]) and not any_symbolic(x.shape[1:]) and len(inputs) >= 5):
            return original_group_norm(context, node)
        groups, weight, bias, eps = int(inputs[1].val), inputs[2], inputs[3], float(inputs[4].val)
        c, rest = int(x.shape[1]), [int(d) for d in x.shape[2:]]
        grouped = mb.reshape(x=x, shape=[-1, groups, c // groups, *rest])
        axes = list(range(2, 3 + len(rest)))
        mean = mb.reduce_mean(x=grouped, axes=axes, keep_dims=True)
        centred = mb.sub(x=grouped, y=mean)
        var = mb.reduce_mean(x=mb.mul(x=centred, y=centred), axes=axes, keep_dims=True)
        y = mb.reshape(x=mb.real_div(x=centred, y=mb.sqrt(x=mb.add(x=var, y=eps))), shape=[-1, c, *rest])
        if weight is not None:
            y = mb.mul(x=y, y=mb.reshape(x=weight, shape=[1, c] + [1] * len(rest)))
        if bias is not None:
            y = mb.add(x=y, y=mb.reshape(x=bias, shape=[1, c] + [1] * len(rest)))
        context.add(mb.identity(x=y, name=node.name))

    original_index_put = _TORCH_OPS_REGISTRY["index_put"]

    @register_torch_op(override=True)
    def index_put(context, node):
        inputs = _get_inputs(context, node)
        x, indices, values = inputs[0], inputs[1], inputs[2]
        accumulate = len(inputs) > 3 and inputs[3] is not None and bool(getattr(inputs[3], "val", False))
        whole_mask = (
            isinstance(indices, list)
            and len(indices) == 1
            and indices[0] is not None
            and types.is_bool(indices[0].dtype)
            and indices[0].rank == x.rank
            and values.rank == 0
            and not accumulate
        )
        if not whole_mask:
            return original_index_put(context, node)
        fill = mb.cast(x=values, dtype=types.builtin_to_string(x.dtype)) if values.dtype != x.dtype else values
        context.add(mb.select(cond=indices[0], a=fill, b=x, name=node.name))

    @register_torch_op(torch_alias=["upsample_bicubic2d.vec"], override=True)
    def upsample_bicubic2d(context, node):
        import torch

        inputs = _get_inputs(context, node)
        x = inputs[0]
        if x.val is None:
            raise NotImplementedError("upsample_bicubic2d of a tensor computed from the inputs (MIL has no bicubic)")
        size = inputs[1]
        size = None if size is None else [int(v.val) if hasattr(v, "val") else int(v) for v in _values(size)]
        align = bool(inputs[2].val) if len(inputs) > 2 and inputs[2] is not None else False
        scales = None
        if size is None and len(inputs) > 3 and inputs[3] is not None:
            scales = [float(v) for v in _values(inputs[3])]
        out = torch.nn.functional.interpolate(
            torch.from_numpy(np.asarray(x.val, dtype=np.float32)),
            size=size,
            scale_factor=scales,
            mode="bicubic",
            align_corners=align,
        )
        context.add(mb.const(val=out.numpy(), name=node.name))

    _REGISTERED = True


def _values(v) -> list:
    """The items of a MIL list argument: a Python list of scalars, or a constant's values."""
    if isinstance(v, (list, tuple)):
        return list(v)
    return list(np.asarray(v.val).reshape(-1))
