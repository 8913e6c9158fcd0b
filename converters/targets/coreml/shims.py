"""The torch ops that coremltools 9 cannot convert from current torch and transformers 5, registered in one place.

- `alias` (torch.export graphs of current torch): an identity.
- `new_ones` (transformers 5 attention masks): a fill of ones, like coremltools' own `new_zeros`.
- `__and__` / `bitwise_and` on integer tensors (transformers 5 masks combine 0/1 int tensors with `&`):
  coremltools only accepts booleans. MIL has no bitwise op, so integers go through `logical_and` and back,
  exact for the 0/1 masks transformers builds (and refused nowhere else: a wider int mask would be wrong).

`register()` is idempotent and runs before every conversion.
"""

from __future__ import annotations

import numpy as np

_REGISTERED = False


def register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs, logical_and, noop
    from coremltools.converters.mil.frontend.torch.torch_op_registry import _TORCH_OPS_REGISTRY, register_torch_op
    from coremltools.converters.mil.frontend.torch.utils import NUM_TO_NUMPY_DTYPE
    from coremltools.converters.mil.mil import types

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

    _REGISTERED = True
