"""MIL graph passes bmsdk adds to coremltools' pipeline.

`bmsdk::finite_fp16_constants`: coremltools casts fp32 constants beyond the fp16 range (a `finfo(float32).min`
attention mask, a fill of -3.4e38) to fp16 ±inf on purpose. On the device that gives NaN where the mask is
multiplied by 0 or masks a whole row (softmax over -inf only); the reference executor saturates instead. This pass
makes them ±65504: a masked score still gets no weight, nothing becomes NaN, and device and executor agree.
"""

from __future__ import annotations

import numpy as np

FINITE_FP16 = "bmsdk::finite_fp16_constants"
FP16_MAX = 65504.0
_REGISTERED = False


def register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil.passes.graph_pass import AbstractGraphPass
    from coremltools.converters.mil.mil.passes.helper import block_context_manager
    from coremltools.converters.mil.mil.passes.pass_registry import register_pass

    @register_pass(namespace="bmsdk", name="finite_fp16_constants")
    class FiniteFp16Constants(AbstractGraphPass):
        def apply(self, prog):
            for function in prog.functions.values():
                self._block(function)

        @block_context_manager
        def _block(self, block):
            for op in list(block.operations):
                for inner in op.blocks:
                    self._block(inner)
                if op.op_type == "const" and _infinite_fp16(op.outputs[0]):
                    _replace(mb, block, op)

    _REGISTERED = True


def _infinite_fp16(var) -> bool:
    value = var.val
    return var.is_tensor_or_scalar_of(dtype="fp16") and value is not None and bool(np.isinf(value).any())


def _replace(mb, block, op) -> None:
    old = op.outputs[0]
    finite = np.clip(np.asarray(old.val, np.float32), -FP16_MAX, FP16_MAX).astype(np.float16)
    new = mb.const(val=finite if np.ndim(finite) else np.float16(finite), name=f"{op.name}_finite", before_op=op)
    block.replace_uses_of_var_after_op(anchor_op=op, old_var=old, new_var=new)
    block.remove_ops([op])
