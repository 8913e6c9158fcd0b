"""TensorRT target: a portable package of TensorRT-ready ONNX plus its build config, and the engine where a GPU is.

Engines are tied to one GPU model and one TensorRT version, so the package carries what any GPU needs to build
one: the ONNX with its precision already in the graph (fp32; fp16 via ModelOpt AutoCast; int8/fp8 as ModelOpt Q/DQ),
checked against the TensorRT ONNX parser's operator table, and the build config (strongly typed, one optimization
profile from the dynamic dims, workspace, sparsity). Where TensorRT and a CUDA GPU are present, the conversion also
builds the engine and a timing cache into `tensorrt/`; elsewhere the runtime builds and caches it on first load.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from bmsdk.converters.sources.loader import Source, example_feeds
from bmsdk.converters.target import BuildResult
from bmsdk.converters.targets.onnx.build import DEFAULT_OPSET, export_onnx
from bmsdk.converters.targets.tensorrt.ops import check_model
from bmsdk.converters.targets.tensorrt.precision import to_fp16, to_qdq
from bmsdk.converters.targets.tensorrt.profiles import make_profiles, parse_shapes
from bmsdk.errors import BackendUnavailableError, ConversionError, UnsupportedError
from bmsdk.manifest import sha256_file
from bmsdk.runtimes.cuda_memory import open_cuda
from bmsdk.runtimes.tensorrt_engine import build_engine, config_hash, engine_key, import_tensorrt, write_atomic
from bmsdk.sections import BuildConfig, Compression, Engine, Gpu, OpCheck, SparsityCheck, TensorRTConfig
from bmsdk.versions import package_version as version

MODEL_FILE = "model.onnx"
SPARSITY = ("2:4",)
UNVERIFIED = {"fp8": "fp8 Q/DQ needs Hopper (sm90) or newer; not verified on a GPU by bmsdk yet"}


def build(source: Source, folder: Path, precision: str, calibration: list[dict] | None, options: dict) -> BuildResult:
    import onnx
    import onnxruntime

    build_config = _build_config(source, precision, options)  # refuse bad options before exporting
    model_path = folder / MODEL_FILE
    with tempfile.TemporaryDirectory(prefix="bmsdk-trt-") as tmp:
        float_path = Path(tmp) / "float.onnx"
        export_onnx(source, float_path, int(options.get("opset") or DEFAULT_OPSET))
        sparsity = _sparsity_report(float_path) if build_config.sparsity else None
        compression = _set_precision(source, float_path, model_path, precision, calibration, options)
    op_check = OpCheck(**check_model(model_path))
    if not op_check.passed:
        raise ConversionError(
            f"TensorRT's ONNX parser cannot take this model: {'; '.join(op_check.problems)}",
            "replace those ops in the source model, or exclude them from quantization with --exclude-ops",
        )
    cfg_hash = _config_hash(model_path, build_config)
    engine, timing, why_not = _try_build_engine(folder, model_path, build_config, cfg_hash)
    target_config = TensorRTConfig(
        package="TensorRT-ready ONNX + build config",
        opset=op_check.opset,
        build=build_config,
        config_hash=cfg_hash,
        op_check=op_check,
        engine=engine,
        timing_cache=timing,
        note=_note(engine, why_not),
        sparsity_check=sparsity,
        unverified=UNVERIFIED.get(precision),
    )
    toolchain = {
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "nvidia-modelopt": version("nvidia-modelopt"),
    }
    if engine:
        toolchain["tensorrt"] = engine.tensorrt
    return BuildResult(model_file=MODEL_FILE, compression=compression, target_config=target_config, toolchain=toolchain)


def _build_config(source: Source, precision: str, options: dict) -> BuildConfig:
    shapes = options.get("shapes")
    shapes = shapes if isinstance(shapes, dict) else parse_shapes(shapes)
    sparsity = options.get("sparsity")
    if sparsity is not None and sparsity not in SPARSITY:
        raise UnsupportedError(
            f"unknown sparsity '{sparsity}'", f"TensorRT's sparse kernels take {', '.join(SPARSITY)}"
        )
    workspace = options.get("workspace")
    if workspace is not None and float(workspace) <= 0:
        raise UnsupportedError(f"--workspace must be a positive number of GB, got {workspace}", "e.g. --workspace 4")
    return BuildConfig(
        precision=precision,
        strongly_typed=True,
        profiles=make_profiles(
            source.inputs,
            source.preprocessing.get("max_length") or source.preprocessing.get("cache_length"),
            shapes,
            generation=source.input_kind == "generation",
        ),
        workspace_bytes=int(float(workspace) * (1 << 30)) if workspace is not None else None,
        sparsity=sparsity,
    )


def _set_precision(source: Source, src: Path, dst: Path, precision: str, calibration, options: dict) -> Compression:
    exclude = options.get("exclude_ops")
    exclude = [s for s in exclude.split(",") if s] if isinstance(exclude, str) else list(exclude or [])
    if precision == "fp32":
        shutil.copyfile(src, dst)
        return Compression()
    if precision == "fp16":
        feeds = calibration[0] if calibration else example_feeds(source.inputs, batch=1, sequence=8)
        return Compression(quantization=to_fp16(src, dst, exclude, feeds))
    keep_float = ffn_matmuls(src) if source.data_kind == "text" else []
    return Compression(
        quantization=to_qdq(src, dst, precision, calibration, options.get("calibration_method"), exclude, keep_float)
    )


def ffn_matmuls(path: Path) -> list[str]:
    """The MatMul/Gemm nodes on either side of a GELU: a transformer's feed-forward up- and down-projections.

    Their activations have heavy-tailed outliers that per-tensor int8 cannot hold. On the MiniLM sentiment model
    (500 test tweets, onnxruntime CPU), quantizing every MatMul flipped 26% of decisions; keeping the down-projection
    in fp16 flipped 10%, keeping both projections 4.4%. So both stay in fp16 (recorded in `kept_in_fp16`).

    A fixed prior, not a search: it is the float set converters/search.py's float-fallback search would start from
    for TensorRT nodes; no TensorRT build searches beyond it yet.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    weights = {i.name for i in graph.initializer}
    gelu, stop = ("Gelu", "Erf"), ("MatMul", "Gemm")  # search a few elementwise steps, never through another MatMul

    def gelu_above(tensor: str, depth: int = 5) -> bool:
        node = producer.get(tensor)
        if node is None or depth == 0 or node.op_type in stop:
            return False
        return node.op_type in gelu or any(gelu_above(i, depth - 1) for i in node.input)

    def gelu_below(tensor: str, depth: int = 5) -> bool:
        return depth > 0 and any(
            c.op_type in gelu or (c.op_type not in stop and any(gelu_below(o, depth - 1) for o in c.output))
            for c in consumers.get(tensor, [])
        )

    return [
        n.name
        for n in graph.node
        if n.op_type in ("MatMul", "Gemm")
        and any(i in weights for i in n.input)
        and (any(gelu_above(i) for i in n.input if i not in weights) or gelu_below(n.output[0]))
    ]


def _config_hash(model_path: Path, build_config: BuildConfig) -> str:
    return config_hash(sha256_file(model_path), build_config)


def _try_build_engine(folder: Path, model_path: Path, build_config: BuildConfig, cfg_hash: str):
    """(engine info, timing cache path, None) where TensorRT and a GPU are present, else (None, None, why not)."""

    try:
        memory = open_cuda()  # the CUDA check comes before any TensorRT import
    except BackendUnavailableError as e:
        return None, None, e.problem
    try:
        try:
            trt = import_tensorrt()
        except BackendUnavailableError as e:
            return None, None, e.problem
        gpu = memory.gpu()
        key = engine_key(gpu, trt.__version__, cfg_hash)
        timing = folder / "tensorrt" / "timing.cache"
        engine_file = folder / "tensorrt" / f"{key}.engine"
        write_atomic(engine_file, build_engine(trt, model_path, build_config, timing))
    finally:
        memory.close()
    return (
        Engine(file=engine_file.relative_to(folder).as_posix(), key=key, gpu=Gpu(**gpu), tensorrt=trt.__version__),
        timing.relative_to(folder).as_posix(),
        None,
    )


def _note(engine: Engine | None, why_not: str | None) -> str:
    if engine:
        return (
            f"built the engine for {engine.gpu.name} with TensorRT {engine.tensorrt}; other GPUs or TensorRT "
            "versions build their own from the packaged ONNX on first load"
        )
    return (
        f"produced the TensorRT-ready ONNX and build config, no engine ({why_not}); on the GPU, bmsdk.load() builds "
        "the engine on first load and caches it"
    )


def _sparsity_report(path: Path) -> SparsityCheck:
    """How many MatMul/Gemm/Conv weights already follow 2:4 (at most 2 non-zeros in each 4 along the input dim).

    TensorRT's SPARSE_WEIGHTS flag only speeds up weights that do; it does not prune.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {i.name: i for i in graph.initializer}
    total, sparse = 0, []
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm", "Conv") or len(node.input) < 2 or node.input[1] not in weights:
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        axis = 1 if node.op_type == "Conv" or (node.op_type == "Gemm" and trans_b) else 0
        total += 1
        if _is_2_4(np.moveaxis(w, axis, -1)):
            sparse.append(node.name)
    return SparsityCheck(
        requested="2:4",
        weights=total,
        weights_2_4=len(sparse),
        note="TensorRT uses sparse kernels only for weights that already follow 2:4; prune and "
        "fine-tune the source model for the others",
    )


def _is_2_4(w: np.ndarray) -> bool:
    if w.shape[-1] % 4:
        return False
    return bool(np.all(np.count_nonzero(w.reshape(-1, 4), axis=1) <= 2))
