"""ExecuTorch target: torch.export -> (PT2E int8, XNNPACKQuantizer) -> to_edge_transform_and_lower(XNNPACK) -> .pte.

Every named dynamic dim of the source ("batch", "sequence", ...) becomes one `torch.export.Dim`, shared across the
inputs, with a bounded range: ExecuTorch plans every activation for the *largest* shape and allocates it when the
method loads, so the bounds are kept modest (batch: `--max-batch`, default 64, what `predict()` sends per call; the
runtime splits bigger batches; sequence: the tokenizer's max length). The bounds are readable from the program
itself (`MethodMeta`), which the backend checks inputs against.

A derived dim ("sequence+128": a text-generation step graph's attention mask over 128 cache slots and the new
tokens) gets its base's bound plus the offset. Where torch cannot prove its own guards for named Dims (that step
graph), export lets torch relate the dims (`Dim.AUTO`, same bounds). A step graph plans for a batch of 4 (generate()
sends one sequence; its activations grow with batch x sequence x window) and a sequence of at most the cache length.

int8 is PT2E with XNNPACK's quantizer, symmetric per-channel int8 weights: `dynamic` (activations quantized at run
time, no calibration) or `static` (calibrated). Dynamic mode only covers bare linear / conv patterns, so a conv
followed by ReLU or batch norm stays float; the manifest lists every weight op left float.

Verified against executorch 1.5.1, torch 2.13.0 (CPU) and torchao 0.18.0. torch, executorch and torchao are
imported inside the functions that need them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bmsdk.converters.layers import display
from bmsdk.converters.sources.loader import Source, example_feeds
from bmsdk.converters.target import BuildResult
from bmsdk.errors import ConversionError, DataError, UnsupportedError
from bmsdk.manifest import split_dim
from bmsdk.sections import Calibration, Compression, Quantization
from bmsdk.versions import package_version

MODEL_FILE = "model.pte"
QUANT_SCHEMES = ("dynamic", "static")
DEFAULT_MAX_BATCH = 64  # = Model.batch_size, what predict() sends per runtime call
# generate() sends one sequence; a step graph's activations grow with batch x sequence x (cache + sequence) and its
# logits with batch x sequence x vocabulary, so text generation plans for small batches (bigger ones run in parts)
DEFAULT_GENERATION_MAX_BATCH = 4
DEFAULT_MAX_DIM = 1024  # any other named dim without a declared bound
WEIGHT_OPS = ("linear", "conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d")
FIX = "run with --debug for the full report"


# --- requests ---------------------------------------------------------------------------------------------------


def int8_scheme(source: Source, requested: str | None, has_calibration: bool) -> str:
    """As asked; else dynamic for text and text-generation models (as the onnx target does) and, for others, static
    when calibration data is given and dynamic otherwise."""
    if requested is not None and requested not in QUANT_SCHEMES:
        raise UnsupportedError(f"unknown quantization scheme '{requested}'", f"use one of: {', '.join(QUANT_SCHEMES)}")
    if requested:
        return requested
    if source.data_kind in ("text", "audio"):
        return "dynamic"
    return "static" if has_calibration else "dynamic"


def check_request(source: Source, precision: str, has_calibration: bool, options: dict) -> None:
    """Refuse, before any export work, what build() would refuse later."""
    if source.module is None:
        raise UnsupportedError(
            "the executorch target converts PyTorch models only (torch.export)",
            "convert the checkpoint folder, .pt2 or factory the ONNX file came from",
        )
    if source.info.get("scripted") or source.script_module is not None:
        raise UnsupportedError(
            "the executorch target cannot convert TorchScript (torch.export does not trace a ScriptModule)",
            "convert the checkpoint folder, .pt2 or factory the TorchScript file came from",
        )
    scheme = options.get("quant_scheme")
    if precision != "int8" and scheme:
        raise UnsupportedError(f"--quant-scheme applies to int8 only, not {precision}", "leave it out, or use int8")
    if precision == "int8" and int8_scheme(source, scheme, has_calibration) == "static" and not has_calibration:
        raise DataError(
            "executorch static int8 needs calibration data",
            "pass --calibration DATA (a few hundred representative inputs), or use --quant-scheme dynamic",
        )
    max_batch = options.get("max_batch")
    if max_batch is not None and not (isinstance(max_batch, int) and 2 <= max_batch <= 1 << 16):
        raise UnsupportedError(f"--max-batch must be an integer from 2 to 65536, got {max_batch!r}", "pass e.g. 64")


def dim_bounds(source: Source, max_batch: int | None) -> dict[str, int]:
    """The largest size the program plans memory for, per named dim; a derived dim ("sequence+128") is its base's
    bound plus the offset."""
    bounds: dict[str, int] = {}
    kind = source.preprocessing.get("kind")
    max_length = source.preprocessing.get("max_length") if kind == "text" else None
    default_batch = DEFAULT_GENERATION_MAX_BATCH if kind == "generation" else DEFAULT_MAX_BATCH
    derived = []
    for spec in source.inputs:
        for dim in spec.shape:
            if not isinstance(dim, str) or dim in bounds:
                continue
            if split_dim(dim)[1]:
                derived.append(dim)
            elif dim == "batch":
                bounds[dim] = int(max_batch or default_batch)
            elif dim == "sequence" and max_length:
                bounds[dim] = int(max_length)
            else:
                bounds[dim] = int((spec.max_dims or {}).get(dim) or DEFAULT_MAX_DIM)
    for dim in derived:
        base, offset = split_dim(dim)
        bounds[dim] = bounds.get(base, DEFAULT_MAX_DIM) + offset
    return bounds


# --- export -----------------------------------------------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:400]


def _dynamic_shapes(source: Source, bounds: dict[str, int], auto: bool = False) -> dict[str, Any]:
    """One torch.export.Dim per dim name, shared across inputs (so inputs that share "batch" must agree); a derived
    dim gets its own Dim from offset + 1 to its bound. `auto`: Dim.AUTO within the same bounds instead, for export to
    relate the dims itself."""
    import torch

    dims: dict[str, Any] = {}
    for name, hi in bounds.items():
        lo = split_dim(name)[1] + 1
        ident = "".join(c if c.isalnum() else "_" for c in name) or "dim"
        ident = ident if not ident[0].isdigit() else f"d_{ident}"
        dims[name] = torch.export.Dim.AUTO(min=lo, max=hi) if auto else torch.export.Dim(ident, min=lo, max=hi)
    return {s.name: {i: dims[d] for i, d in enumerate(s.shape) if isinstance(d, str)} or None for s in source.inputs}


def _export(module, kwargs: dict, source: Source, bounds: dict[str, int], what: str = "torch.export"):
    """torch.export with bounded named Dims. Where the model bounds a dim itself (BERT: sequence <= its position
    table), torch suggests a tighter range: apply it and retry. Where torch cannot prove a guard of its own for the
    whole range and suggests nothing (a step graph with a KV cache: `min(16*(s+128), 32*(s+128)) == 16*(s+128)`),
    export again with Dim.AUTO in the same bounds. A dim the model fixes to a constant is an error."""
    import torch
    from torch.export.dynamic_shapes import refine_dynamic_shapes_from_suggested_fixes

    shapes = _dynamic_shapes(source, bounds)
    for attempt in range(4):
        try:
            return _torch_export(module, kwargs, shapes)
        except torch._dynamo.exc.UserError as e:
            message = getattr(e, "msg", str(e))
            if "Suggested fixes" not in message and "Constraints violated" in message:
                return _export_auto(module, kwargs, source, bounds, what)
            if "Suggested fixes" not in message or attempt == 3:
                raise ConversionError(f"{what} failed: {_first_line(e)}", FIX) from e
            refined = refine_dynamic_shapes_from_suggested_fixes(message, shapes)
            for name, axes in (refined or {}).items():
                for axis, dim in (axes or {}).items():
                    if isinstance(dim, int):
                        raise _fixed_axis(what, name, axis, dim) from e
            shapes = refined
        except Exception as e:
            raise ConversionError(f"{what} failed: {_first_line(e)}", FIX) from e
    raise AssertionError("unreachable")


def _torch_export(module, kwargs: dict, shapes: dict):
    """torch.export, with SDPA decomposed into its math form right away.

    On CPU, the fake tensor of a kept SDPA op has the fused kernel's memory layout, which lowering's own
    decomposition does not reproduce: export drops a `.contiguous()` after it as a no-op and a later `view`
    (GPT-2's Conv1D) fails in lowering ("Cannot view a tensor with shape ... and strides ..."). XNNPACK decomposes
    SDPA anyway, so nothing is lost."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.MATH]):
        program = torch.export.export(module, (), kwargs=kwargs, dynamic_shapes=shapes, strict=False)
        sdpa = torch.ops.aten.scaled_dot_product_attention.default
        if any(n.target is sdpa for n in program.graph.nodes):
            program = program.run_decompositions({sdpa: _sdpa_math})
    return program


def _sdpa_math(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None, enable_gqa=False):
    import torch

    if attn_mask is not None and attn_mask.dtype == torch.bool:  # as SDPA itself does before its math kernel
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(attn_mask.logical_not(), float("-inf"))
    return torch.ops.aten._scaled_dot_product_attention_math.default(
        query, key, value, attn_mask, dropout_p, is_causal, None, scale=scale, enable_gqa=enable_gqa
    )[0]


def _export_auto(module, kwargs: dict, source: Source, bounds: dict[str, int], what: str):
    """Export with Dim.AUTO: torch relates the dims itself; one it fixes to a constant is still an error."""
    try:
        program = _torch_export(module, kwargs, _dynamic_shapes(source, bounds, auto=True))
    except Exception as e:
        raise ConversionError(f"{what} failed: {_first_line(e)}", FIX) from e
    names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for spec, name in zip(source.inputs, names):
        shape = nodes[name].meta["val"].shape
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, str) and isinstance(shape[axis], int):
                raise _fixed_axis(what, spec.name, axis, shape[axis])
    return program


def _fixed_axis(what: str, name: str, axis: int, size: int) -> ConversionError:
    return ConversionError(
        f"{what} fixed the dynamic axis {axis} of input '{name}' to {size}: the model does not support that dim "
        "being dynamic",
        "export the model with that size fixed (e.g. --input-shape), or use another target",
    )


def _weight_ops(graph) -> list:
    return [
        n
        for n in graph.nodes
        if n.op == "call_function" and getattr(n.target, "__name__", str(n.target)).split(".")[0] in WEIGHT_OPS
    ]


def _layer_name(node) -> str:
    """`op:module.path` of a weight op (the source module it came from), else `op:node_name`."""
    op = getattr(node.target, "__name__", str(node.target)).split(".")[0]
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1][0].replace("L['self'].", "").replace("L['self']", "")
        return f"{op}:{display(path) if path else node.name}"
    return f"{op}:{node.name}"


def _quantized_weight(node) -> bool:
    weight = node.args[1] if len(node.args) > 1 else None
    return getattr(weight, "op", None) == "call_function" and "dequantize" in str(weight.target)


def _fix_float_index_constants(gm) -> int:
    """PT2E turns the integer scalar of transformers 5's mask code (`arange(n) + 0`) into a float32 tensor constant,
    and calibration then fails ("tensors used as indices must be long"). Cast every float constant that feeds an
    elementwise op whose other operand is integer back to that integer type. Returns how many were cast."""
    import torch

    fixed = 0
    for node in list(gm.graph.nodes):
        name = getattr(node.target, "__name__", str(node.target)).split(".")[0]
        if node.op != "call_function" or name not in ("add", "sub", "mul", "rsub", "floor_divide", "remainder"):
            continue
        for i, arg in enumerate(node.args):
            if not (isinstance(arg, torch.fx.Node) and arg.op == "get_attr"):
                continue
            const = getattr(gm, arg.target, None)
            if not isinstance(const, torch.Tensor) or not const.is_floating_point():
                continue
            others = [o for j, o in enumerate(node.args) if j != i and isinstance(o, torch.fx.Node)]
            vals = [o.meta.get("val") for o in others]
            dtype = next(
                (
                    v.dtype
                    for v in vals
                    if isinstance(v, torch.Tensor) and not v.is_floating_point() and v.dtype != torch.bool
                ),
                None,
            )
            if dtype is not None:
                setattr(gm, arg.target, const.to(dtype))
                fixed += 1
    if fixed:
        gm.recompile()
    return fixed


def _quantize(source: Source, kwargs: dict, bounds: dict, scheme: str, calibration: list[dict] | None):
    """The PT2E-quantized module (to be exported again) and what was done."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    dynamic = scheme == "dynamic"
    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    )
    graph_module = _export(source.module, kwargs, source, bounds).module()
    weight_ops = [_layer_name(n) for n in _weight_ops(graph_module.graph)]
    try:
        prepared = prepare_pt2e(graph_module, quantizer)
        fixed = _fix_float_index_constants(prepared)
        with torch.no_grad():
            for batch in calibration if not dynamic else [kwargs]:
                prepared(**{k: torch.from_numpy(v) if not isinstance(v, torch.Tensor) else v for k, v in batch.items()})
        converted = convert_pt2e(prepared)
    except Exception as e:
        raise ConversionError(f"executorch int8 quantization (PT2E) failed: {_first_line(e)}", FIX) from e
    ops = _weight_ops(converted.graph)
    floating = [_layer_name(n) for n in ops if not _quantized_weight(n)]
    done = len(ops) - len(floating)
    details = Quantization(
        scheme=scheme,
        tool="executorch PT2E XNNPACKQuantizer (torchao prepare_pt2e/convert_pt2e)",
        weights=f"int8 symmetric per-channel: {done} of {len(weight_ops)} linear/conv ops",
        activations="int8 per-tensor, computed at run time" if dynamic else "int8 per-tensor, calibrated",
        io_types="float32 inputs and outputs",
        float_nodes=floating,
    )
    if dynamic and floating:
        details.other_ops = (
            "dynamic int8 quantizes bare linear/conv ops only: a conv followed by ReLU or batch norm stays float "
            "(use --quant-scheme static with --calibration DATA)"
        )
    if not dynamic:
        examples = int(sum(next(iter(b.values())).shape[0] for b in calibration))
        details.calibration = Calibration(method="minmax", batches=len(calibration), examples=examples)
    return converted, details, fixed


def _delegation(edge) -> tuple[int, int]:
    """(XNNPACK delegate calls, other ops left on ExecuTorch's portable CPU kernels) in the lowered program."""
    try:
        graph = edge.exported_program().graph_module.graph
    except Exception:  # noqa: BLE001 - informational only
        return -1, -1
    names = [str(n.target) for n in graph.nodes if n.op == "call_function"]
    delegated = sum("executorch_call_delegate" in n for n in names)
    return delegated, sum("executorch_call_delegate" not in n and "getitem" not in n for n in names)


def _partitioners(quantization: Quantization | None) -> list:
    """XNNPACK's partitioner; for dynamic int8 its dynamically-quantized partitioner first, as ExecuTorch's own LLM
    export does: alone, the XNNPACK partitioner merged a step graph's shared dynamic-quant chains (q/k/v projections
    of one activation) into a partition with a dependency cycle."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )

    configs = _partitioner_configs()
    if quantization is not None and quantization.scheme == "dynamic":
        return [XnnpackDynamicallyQuantizedPartitioner(configs=configs), XnnpackPartitioner(configs=configs)]
    return [XnnpackPartitioner(configs=configs)]


def _partitioner_configs() -> list:
    """XNNPACK's op configs, refusing what its lowering cannot reshape: XNNPACK's reshape takes one dynamic dim, and
    its partitioner checks neither an unsqueeze with more (a [batch, sequence] mask unsqueezed: RoFormer) nor a
    conv1d (lowered as a conv2d between an unsqueeze and a squeeze) on [batch, channels, sequence] (SqueezeBERT,
    ConvBERT), so lowering failed ("XNNPACK reshape only supports 1 dynamic dimension"). Those ops then run on
    ExecuTorch's portable kernels."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.gemm_configs import ConvolutionConfig
    from executorch.backends.xnnpack.partition.config.generic_node_configs import UnsqueezeCopyConfig
    from torch.fx.experimental.symbolic_shapes import free_symbols

    def dynamic_dims(node) -> int:
        val = getattr(node, "meta", {}).get("val")
        return sum(bool(free_symbols(d)) for d in val.shape) if val is not None else 0

    class OneDynamicDimUnsqueeze(UnsqueezeCopyConfig):
        def check_constraints(self, node, ep) -> bool:
            return dynamic_dims(node) <= 1 and super().check_constraints(node, ep)

    class OneDynamicDimConv1d(ConvolutionConfig):
        def check_constraints(self, node, ep) -> bool:
            conv1d = len(node.args[1].meta["val"].shape) == 3
            return not (conv1d and dynamic_dims(node.args[0]) > 1) and super().check_constraints(node, ep)

    replace = {UnsqueezeCopyConfig: OneDynamicDimUnsqueeze, ConvolutionConfig: OneDynamicDimConv1d}
    return [replace.get(c, c) for c in ALL_PARTITIONER_CONFIGS]


def build(source: Source, folder: Path, precision: str, calibration: list[dict] | None, options: dict) -> BuildResult:
    import torch
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    if options.get("float_layers"):
        raise UnsupportedError("the executorch target cannot keep named layers in float", "leave out float layers")
    check_request(source, precision, bool(calibration), options)
    bounds = dim_bounds(source, options.get("max_batch"))
    kwargs = {
        k: torch.from_numpy(v)
        for k, v in example_feeds(source.inputs, batch=2, sequence=min(8, bounds.get("sequence", 8))).items()
    }
    compression, fixed = Compression(), 0
    with torch.no_grad():
        module = source.module.eval()
        if precision == "int8":
            scheme = int8_scheme(source, options.get("quant_scheme"), bool(calibration))
            module, compression.quantization, fixed = _quantize(source, kwargs, bounds, scheme, calibration)
        program = _export(module, kwargs, source, bounds)
        ranges, exported = _ranges(program, source), _planned(program, source)
        try:
            # no edge IR dtype check, as ExecuTorch's own LLM export: its fake run of `split_with_sizes_copy` (GPT-2's
            # q/k/v split) turned the batch into the constant of the example; the samples check the program instead
            edge = to_edge_transform_and_lower(
                program,
                partitioner=_partitioners(compression.quantization),
                compile_config=EdgeCompileConfig(_check_ir_validity=False),
            )
            _restore_ranges(edge, source, ranges)
            planned = _planned(edge.exported_program(), source)
        except Exception as e:
            raise ConversionError(f"executorch lowering (XNNPACK) failed: {_first_line(e)}", FIX) from e
        _check_planned(planned, exported)
        try:
            pte = edge.to_executorch().buffer
        except Exception as e:
            raise ConversionError(f"executorch to_executorch failed: {_first_line(e)}", FIX) from e
    (folder / MODEL_FILE).write_bytes(pte)
    delegated, portable = _delegation(edge)
    toolchain = {p: package_version(p) or "unknown" for p in ("executorch", "torch", "torchao")}
    toolchain["executorch-delegate"] = f"xnnpack: {delegated} delegate calls, {portable} ops on portable kernels"
    toolchain["executorch-memory-plan"] = ", ".join(f"{k}<={v}" for k, v in planned.items())
    if fixed:
        toolchain["executorch-pt2e-fix"] = f"{fixed} float index constants cast back to integer (transformers masks)"
    return BuildResult(model_file=MODEL_FILE, compression=compression, toolchain=toolchain)


def _input_sizes(program, source: Source) -> list[tuple]:
    """(dim name, the SymInt of that input axis) for every named dim of the program's user inputs."""
    names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    found = []
    for spec, name in zip(source.inputs, names):
        shape = nodes[name].meta["val"].shape
        found += [(dim, shape[axis]) for axis, dim in enumerate(spec.shape) if isinstance(dim, str)]
    return found


def _ranges(program, source: Source) -> dict:
    """{symbol: its value range} of the input dims, as export bounded them."""
    ranges = {}
    for _, size in _input_sizes(program, source):
        node = getattr(size, "node", None)
        if node is not None and node.expr in node.shape_env.var_to_range:
            ranges[node.expr] = node.shape_env.var_to_range[node.expr]
    return ranges


def _restore_ranges(edge, source: Source, ranges: dict) -> None:
    """Give the input dims back the ranges export gave them before lowering.

    Lowering re-traces the graph with fake tensors, and torch's fake convolution picks a kernel with
    `guard_or_false(batch >= 16)`: that records the guard `batch <= 15` in the shape environment, and ExecuTorch then
    plans memory (and caps the input) for a batch of 15, whatever range was exported. The guard only chose an eager
    CPU kernel, not what the program computes, so the exported range is put back before memory planning.
    """
    program = edge.exported_program()
    for _, size in _input_sizes(program, source):
        node = getattr(size, "node", None)
        if node is not None and node.expr in ranges:
            node.shape_env.var_to_range[node.expr] = ranges[node.expr]
    for sym in list(program.range_constraints):
        if sym in ranges:
            program.range_constraints[sym] = ranges[sym]


def _check_planned(planned: dict[str, int], exported: dict[str, int]) -> None:
    """Lowering may not shrink a dim below the range export gave it (a guard that fixed it to the example's size)."""
    for dim, size in planned.items():
        if size < exported.get(dim, size):
            raise ConversionError(
                f"executorch lowering fixed the dim '{dim}' to at most {size} (exported for up to {exported[dim]})", FIX
            )


def _planned(program, source: Source) -> dict[str, int]:
    """The largest size per named dim that ExecuTorch will plan memory for (of an ExportedProgram)."""
    from executorch.exir.sym_util import eval_upper_bound

    planned: dict[str, int] = {}
    for dim, size in _input_sizes(program, source):
        planned.setdefault(dim, int(eval_upper_bound(size)))
    return planned
