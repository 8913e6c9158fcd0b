"""CoreML target: an `mlprogram` (`model.mlpackage/`) from a PyTorch source, with flexible batch and sequence,
fp32 / fp16 compute, and weight compression through `coremltools.optimize.coreml`.

Two front ends: `torch.jit.trace` (default, every PyTorch source) and `torch.export` (`coreml_frontend="export"`, or a
`.pt2` source). Precisions other than fp32/fp16 compress the weights of an fp16 program (weights only: the
activations stay fp16, as on the Neural Engine): int8 / int4 linear, 4/6/8-bit palettization, 50% magnitude pruning.
"""

from __future__ import annotations

import functools
import logging
import shutil
from contextlib import nullcontext
from pathlib import Path

from bmsdk.converters.sources import causal_lm
from bmsdk.converters.sources.loader import Source, example_feeds
from bmsdk.converters.target import BuildResult
from bmsdk.converters.targets.coreml import passes as coreml_passes
from bmsdk.converters.targets.coreml import shims as coreml_shims
from bmsdk.converters.targets.coreml import stateful
from bmsdk.errors import ConversionError, UnsupportedError
from bmsdk.manifest import dim_size
from bmsdk.sections import Compression, CoreMLConfig, Quantization, WeightCompression

# precision -> weight compression (None: none); the compute precision is fp16 unless precision is fp32
COMPRESSION = {
    "fp32": None,
    "fp16": None,
    "int8": {"kind": "linear", "dtype": "int8", "granularity": "per_channel"},
    "int4": {"kind": "linear", "dtype": "int4", "granularity": "per_block", "block_size": 32},
    "palettize4": {"kind": "palettize", "nbits": 4},
    "palettize6": {"kind": "palettize", "nbits": 6},
    "palettize8": {"kind": "palettize", "nbits": 8},
    "sparse50": {"kind": "prune", "target_sparsity": 0.5},
}
MODEL_FILE = "model.mlpackage"
DEPLOYMENT_TARGETS = ("iOS16", "iOS17", "iOS18", "macOS13", "macOS14", "macOS15")
DEFAULT_DEPLOYMENT_TARGET = "iOS17"
FRONTENDS = ("trace", "export")
log = logging.getLogger("bmsdk.coreml")
MAX_BATCH = 1024  # upper bound of the flexible batch dim (a bounded range lets CoreML plan memory)
WEIGHT_THRESHOLD = 2048  # weights with fewer elements stay float (coremltools' default)
INT16_MAX = 32767


def build(source: Source, folder: Path, precision: str, calibration, options: dict) -> BuildResult:
    import coremltools as ct

    if source.module is None and source.exported_program is None:
        raise UnsupportedError(
            "the coreml target needs a PyTorch source (coremltools 9 has no ONNX front end)",
            "convert the original PyTorch model (checkpoint folder, .pt2, TorchScript or factory)",
        )
    compression = COMPRESSION[precision]
    with_state = bool(options.get("coreml_state"))
    deployment = _deployment_target(options.get("minimum_deployment_target"), compression, options, with_state)
    # a .pt2 goes through coremltools' export front end, unless it was exported from channels-last examples: their
    # dim order stays in the program and coremltools refuses it ("non-contiguous dim order"); trace its module then
    exported = source.format == "torch.export" and _contiguous_inputs(source.exported_program)
    frontend = options.get("coreml_frontend") or ("export" if exported else "trace")
    if frontend not in FRONTENDS:
        raise UnsupportedError(f"unknown CoreML front end '{frontend}'", f"use one of: {', '.join(FRONTENDS)}")
    if with_state:
        stateful.check(source, frontend, deployment)
    coreml_shims.register()
    coreml_passes.register()
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    convert = functools.partial(_convert, ct, source, frontend, compute, getattr(ct.target, deployment), with_state)
    fixed_batch = False
    try:
        mlmodel = _converted(source, frontend, convert)
    except ConversionError:
        # some graphs trace only at a fixed batch (Swin's window partition: "Cannot add const [batch, 32, 16]"):
        # the program then takes one row and the backends run a batch row by row (flexible_shapes batch [1, 1])
        if frontend != "trace" or with_state or "batch" not in _flexible_dims(source):
            raise
        mlmodel, fixed_batch = _converted(source, frontend, functools.partial(convert, fixed_batch=True)), True
        log.info("coremltools converted the model at a fixed batch of 1 only: batches run row by row")
    quantization = Quantization(scheme=precision, compute_precision="float32" if precision == "fp32" else "float16")
    if compression:
        mlmodel, quantization.weights = _compress(mlmodel, compression, options)
    path = folder / MODEL_FILE
    shutil.rmtree(path, ignore_errors=True)
    mlmodel.save(str(path))
    target_config = CoreMLConfig(
        minimum_deployment_target=deployment,
        frontend=frontend,
        model_type="mlprogram",
        flexible_shapes=_flexible_dims(source, fixed_batch) if not with_state else stateful.flexible_dims(source),
        io_dtypes=_io_dtypes(source) if not with_state else stateful.IO_DTYPES,
        states=stateful.states(source) if with_state else None,
    )
    return BuildResult(
        model_file=MODEL_FILE,
        compression=Compression(quantization=quantization),
        target_config=target_config,
        toolchain={"coremltools": ct.__version__},
    )


def _converted(source: Source, frontend: str, convert):
    """convert() with the source's transformers attention settings; its failure a ConversionError."""
    try:
        with causal_lm.transformers_attention(source.module) if source.module is not None else nullcontext():
            return convert()
    except Exception as e:
        _reset_coremltools()
        if isinstance(e, (UnsupportedError, ConversionError)):
            raise
        raise ConversionError(
            f"coremltools conversion ({frontend}) failed: {_first_line(e)}",
            "run with --debug for the converter's report; try --coreml-frontend export or trace",
        ) from e


def _reset_coremltools() -> None:
    """coremltools keeps the symbols of flexible dims ("batch") in a module-level registry that only a successful
    conversion clears: after a failed one, every later conversion in the process would fail ("Symbol `batch` is
    used already"). Its own reset, a private function, is the only way to clear it."""
    from coremltools.converters.mil import converter

    reset = getattr(converter, "_reset_conversion_state", None)
    if reset is not None:
        reset()


def _deployment_target(requested: str | None, compression: dict | None, options: dict, with_state: bool) -> str:
    needs_ios18 = bool(compression) and (
        compression.get("dtype") == "int4"
        or (options.get("granularity") or compression.get("granularity")) == "per_block"
    )
    # states need iOS18 too (stateful.check refuses an older target that is asked for)
    target = requested or ("iOS18" if needs_ios18 or with_state else DEFAULT_DEPLOYMENT_TARGET)
    if target not in DEPLOYMENT_TARGETS:
        raise UnsupportedError(
            f"unknown minimum deployment target '{target}'", f"use one of: {', '.join(DEPLOYMENT_TARGETS)}"
        )
    if needs_ios18 and target in ("iOS16", "iOS17", "macOS13", "macOS14"):
        raise UnsupportedError(
            f"int4 and per-block weights need iOS18 / macOS15, not {target}",
            "pass --minimum-deployment-target iOS18, or use int8 per-channel",
        )
    return target


def _flexible_dims(source: Source, fixed_batch: bool = False) -> dict:
    """dim name -> [lowest, highest]. A derived dim ("sequence+128": the attention mask of a step graph over a KV
    cache of 128 slots) is its base dim's range shifted; a step graph's sequence is at most its cache window.
    `fixed_batch`: a program converted at batch 1 ([1, 1])."""
    pre = source.preprocessing
    longest = int(pre.get("cache_length") or 0) if pre.get("kind") == "generation" else 0
    sequence = [1, longest or int(pre.get("max_length") or 512)]
    bounds = {"batch": [1, 1 if fixed_batch else MAX_BATCH], "sequence": sequence}
    names = {d for s in source.inputs for d in s.shape if isinstance(d, str)}
    dims = {}
    for name in sorted(names):
        base, offset = _derived(name)
        low, high = bounds.get(base, [1, MAX_BATCH])
        dims[name] = [low + offset, high + offset]
    return dims


def _derived(name: str) -> tuple[str, int]:
    """("sequence", 128) for "sequence+128"; (name, 0) for a plain dim."""
    base, plus, offset = name.partition("+")
    return (base.strip(), int(offset)) if plus and offset.strip().isdigit() else (name, 0)


def _default_size(name: str) -> int:
    """The size CoreML plans for, that of the traced example (batch 2, sequence 8; derived dims follow)."""
    return dim_size(name, {"batch": 2}, 8)


def _pass_pipeline(ct, source: Source):
    """coremltools' default passes, without the int16 casts of gather indices where the ids do not fit in int16
    (a vocabulary over 32767 tokens, positions of a long context): int16 ids would wrap around; then fp16 ±inf
    constants made finite (passes.py: an fp16 attention mask must not give NaN)."""
    pipeline = ct.PassPipeline.DEFAULT
    pipeline.append_pass(coreml_passes.FINITE_FP16)
    wide = source.task == "text-generation" or any(
        s.value_range is not None and max(abs(v) for v in s.value_range) > INT16_MAX for s in source.inputs
    )
    if wide:
        pipeline.remove_passes(["common::add_int16_cast"])
    return pipeline


def _io_dtypes(source: Source) -> dict:
    """CoreML takes int32, not int64: the backends cast at the boundary."""
    return {s.name: ("int32" if s.dtype.startswith("int") else "float32") for s in source.inputs}


def _convert(ct, source: Source, frontend: str, compute, deployment, with_state: bool, fixed_batch: bool = False):
    import numpy as np

    out_types = [ct.TensorType(name=s.name) for s in source.outputs]
    common = dict(
        convert_to="mlprogram",
        compute_precision=compute,
        minimum_deployment_target=deployment,
        outputs=out_types,
        pass_pipeline=_pass_pipeline(ct, source),
    )
    if with_state:
        return stateful.convert(ct, source, common)
    if frontend == "export":
        return ct.convert(_exported(source), **common)
    import torch

    dims = {
        name: 1 if high == 1 else ct.RangeDim(low, high, default=_default_size(name), symbol=name)
        for name, (low, high) in _flexible_dims(source, fixed_batch).items()
    }
    dtypes = _io_dtypes(source)
    inputs = [
        ct.TensorType(
            name=s.name,
            shape=tuple(dims[d] if isinstance(d, str) else d for d in s.shape),
            dtype=np.int32 if dtypes[s.name] == "int32" else np.float32,
        )
        for s in source.inputs
    ]
    feeds = example_feeds(source.inputs, batch=1 if fixed_batch else 2, sequence=8)
    module = source.script_module if source.script_module is not None else source.module
    with torch.inference_mode(False), torch.no_grad():
        args = tuple(torch.from_numpy(feeds[s.name]) for s in source.inputs)
        traced = (
            module
            if isinstance(module, torch.jit.ScriptModule)
            else torch.jit.trace(_Positional.wrap(module, source), args, strict=False)
        )
    return ct.convert(traced, inputs=inputs, **common)


def _exported(source: Source):
    """A torch.export program with the source's dynamic dims, decomposed to the core ATen set coremltools reads."""
    import torch

    if source.exported_program is not None:
        return source.exported_program.run_decompositions({})
    feeds = {k: torch.from_numpy(v) for k, v in example_feeds(source.inputs, batch=2, sequence=8).items()}
    dims: dict = {}
    bounds = _flexible_dims(source)
    dynamic_shapes = {
        s.name: {
            i: dims.setdefault(d, torch.export.Dim(d, min=1 if d != "batch" else 1, max=bounds[d][1]))
            for i, d in enumerate(s.shape)
            if isinstance(d, str)
        }
        for s in source.inputs
    }
    program = torch.export.export(source.module, (), kwargs=feeds, dynamic_shapes=dynamic_shapes)
    return program.run_decompositions({})


def _contiguous_inputs(program) -> bool:
    import torch

    values = [n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"]
    return all(v.is_contiguous() for v in values if isinstance(v, torch.Tensor))


class _Positional:
    """torch.jit.trace passes inputs positionally; the sources take them by name."""

    @staticmethod
    def wrap(module, source: Source):
        import torch

        names = [s.name for s in source.inputs]

        class Positional(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = module

            def forward(self, *args):
                return self.inner(**dict(zip(names, args)))

        return Positional().eval()


def _compress(mlmodel, spec: dict, options: dict):
    """Weight compression of a converted model; returns the new model and what was done, for the manifest."""
    import coremltools.optimize.coreml as cto

    threshold = int(options.get("weight_threshold") or WEIGHT_THRESHOLD)
    kind = spec["kind"]
    if kind == "linear":
        granularity = options.get("granularity") or spec["granularity"]
        block = int(options.get("block_size") or spec.get("block_size") or 32)
        config = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric",
            dtype=spec["dtype"],
            granularity=granularity,
            block_size=block if granularity == "per_block" else None,
            weight_threshold=threshold,
        )
        model = cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=config))
        details = dict(
            method="linear_symmetric",
            dtype=spec["dtype"],
            granularity=granularity,
            block_size=block if granularity == "per_block" else None,
        )
    elif kind == "palettize":
        config = cto.OpPalettizerConfig(
            mode="kmeans", nbits=spec["nbits"], granularity="per_tensor", weight_threshold=threshold
        )
        model = cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=config))
        details = dict(method="kmeans palettization", nbits=spec["nbits"], granularity="per_tensor")
    elif kind == "prune":
        config = cto.OpMagnitudePrunerConfig(target_sparsity=spec["target_sparsity"], weight_threshold=threshold)
        model = cto.prune_weights(mlmodel, cto.OptimizationConfig(global_config=config))
        details = dict(method="magnitude pruning (sparse storage)", target_sparsity=spec["target_sparsity"])
    else:  # pragma: no cover - COMPRESSION only holds the kinds above
        raise UnsupportedError(f"unknown compression '{kind}'", "use a precision the coreml target lists")
    return model, WeightCompression(**details, weight_threshold=threshold, compressed_weights=_count_constexpr(model))


def _count_constexpr(mlmodel) -> int:
    """How many weights are stored compressed (constexpr ops) in the program."""
    program = mlmodel.get_spec().mlProgram
    return sum(
        1
        for f in program.functions.values()
        for block in f.block_specializations.values()
        for op in block.operations
        if op.type.startswith("constexpr_")
    )


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:400]
