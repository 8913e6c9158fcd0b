"""ONNX target: export with dynamic batch/sequence (torch.export; the TorchScript exporter for Hugging Face text
encoders), onnxslim, and fp16 / int8 (dynamic or static QDQ)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bmsdk.converters.layers import onnx_nodes
from bmsdk.converters.sources.attention import attention_implementation, hf_models, uses_sdpa
from bmsdk.converters.sources.loader import Source, example_feeds
from bmsdk.converters.speed import FloatTwin
from bmsdk.converters.target import BuildResult
from bmsdk.errors import ConversionError, DataError, UnsupportedError
from bmsdk.host import int8_products_saturate
from bmsdk.sections import Calibration, Compression, OnnxConfig, Quantization

log = logging.getLogger("bmsdk.onnx")
MODEL_FILE = "model.onnx"
DEFAULT_OPSET = 18
QUANT_SCHEMES = ("dynamic", "static")
COMPUTE_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
# static int8 scope for text models, as on TFLite: the matmuls' inputs are quantized with calibrated ranges, the
# rest (LayerNorm, Softmax, GELU, SmoothQuant's Mul before each layer) stays float
TEXT_STATIC_OPS = ("MatMul", "Gemm")


def export_onnx(source: Source, path: Path, opset: int = DEFAULT_OPSET) -> None:
    """Write the source as a single-file ONNX model with its named dims dynamic, then simplify it."""
    if source.onnx_path is not None:
        import onnx

        onnx.save(onnx.load(str(source.onnx_path)), str(path))
    else:
        _torch_export(source, path, opset)
    simplify(path)


def _export_dim(name: str):
    """A named dynamic dim; a derived one ("sequence+256") is left for torch.export to relate (Dim arithmetic in
    dynamic_shapes fails in the ONNX exporter)."""
    import torch

    if not name.replace("-", "_").isidentifier():
        return torch.export.Dim.DYNAMIC
    return torch.export.Dim(name.replace("-", "_"), min=1)


def _torch_export(source: Source, path: Path, opset: int) -> None:
    import torch

    feeds = {k: torch.from_numpy(v) for k, v in example_feeds(source.inputs, batch=2, sequence=8).items()}
    names = [s.name for s in source.inputs]
    out_names = [s.name for s in source.outputs]
    try:
        if source.info.get("scripted", False):
            # the loaded ScriptModule itself: the exporter cannot trace one wrapped in an nn.Module
            _torchscript_export(source.script_module, source, feeds, path, opset)
        elif _text_encoder(source):
            _text_encoder_export(source, feeds, path, opset)
        else:
            _dynamo_export(source, feeds, names, out_names, path, opset)
    except Exception as e:
        raise ConversionError(
            f"ONNX export failed: {str(e).strip().splitlines()[0][:400]}",
            "run with --debug for the exporter's full report",
        ) from e


def _text_encoder(source: Source) -> bool:
    """A Hugging Face text encoder (classifier, tagger, reader, embedder; not a generator with a KV cache)."""
    text = source.format == "huggingface" and source.preprocessing.get("kind") == "text"
    return text and source.module is not None and bool(hf_models(source.module))


def _text_encoder_export(source: Source, feeds: dict, path: Path, opset: int) -> None:
    """A text encoder through the TorchScript exporter on eager attention: onnxruntime runs that graph faster than
    torch.export's (all-MiniLM-L6-v2, batch 1, one thread, sequences of 24 and 64, side by side: 5-17% in fp32,
    16-22% in dynamic int8); torch.export where the TorchScript exporter fails or drops an input."""
    try:
        with attention_implementation(source.module, "eager"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on indexing and tracing, not the user's concern
            _torchscript_export(source.module, source, feeds, path, opset)
        _check_inputs_kept(path, [s.name for s in source.inputs])
        return
    except Exception as e:  # noqa: BLE001 - any exporter failure: the other exporter is tried
        log.info("the TorchScript exporter failed (%s); exporting with torch.export", str(e).splitlines()[0][:200])
    _dynamo_export(source, feeds, [s.name for s in source.inputs], [s.name for s in source.outputs], path, opset)


def _check_inputs_kept(path: Path, names: list[str]) -> None:
    """The TorchScript exporter drops inputs the graph does not use (DeBERTa-v2's token_type_ids without token
    types); the artifact must take every input the manifest declares."""
    import onnx

    kept = [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
    if sorted(kept) != sorted(names):
        raise ValueError(f"the exported graph takes {kept}, not {names}")


def _torchscript_export(module, source: Source, feeds: dict, path: Path, opset: int) -> None:
    """torch.onnx's TorchScript exporter, the source's named dims as dynamic axes."""
    import torch

    names = [s.name for s in source.inputs]
    dynamic_axes = {
        s.name: {i: d for i, d in enumerate(s.shape) if isinstance(d, str)} for s in source.inputs + source.outputs
    }
    torch.onnx.export(
        module,
        tuple(feeds[n] for n in names),
        str(path),
        dynamo=False,
        input_names=names,
        output_names=[s.name for s in source.outputs],
        dynamic_axes=dynamic_axes,
        opset_version=opset,
    )


def _dynamo_export(source: Source, feeds: dict, names: list, out_names: list, path: Path, opset: int) -> None:
    """torch.export to ONNX; a transformers model whose sdpa attention the exporter cannot decompose (Swin's
    windowed attention: "Cannot view a tensor ... as ...") is exported again on its eager attention, which
    computes the same softmax(QK^T)V."""
    import torch

    dims = {}
    dynamic_shapes = {
        s.name: {i: dims.setdefault(d, _export_dim(d)) for i, d in enumerate(s.shape) if isinstance(d, str)}
        for s in source.inputs
    }

    def export():
        return torch.onnx.export(
            source.module,
            (),
            kwargs=feeds,
            dynamo=True,
            input_names=names,
            output_names=out_names,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            verbose=False,
        )

    try:
        program = export()
    except Exception:
        if not uses_sdpa(source.module):
            raise
        log.info("ONNX export on sdpa attention failed; exporting again on eager attention")
        with attention_implementation(source.module, "eager"):
            program = export()
    program.save(str(path), external_data=False)


def simplify(path: Path) -> None:
    import onnx
    import onnxslim

    model = onnxslim.slim(onnx.load(str(path)))
    onnx.save(model, str(path))


def build(source: Source, folder: Path, precision: str, calibration: list[dict] | None, options: dict) -> BuildResult:
    import onnx
    import onnxruntime
    import onnxslim

    model_path = folder / MODEL_FILE
    twin = None
    with tempfile.TemporaryDirectory(prefix="bmsdk-onnx-") as tmp:
        float_path = Path(tmp) / "float.onnx"
        export_onnx(source, float_path, int(options.get("opset") or DEFAULT_OPSET))
        quantization = None
        if precision != "fp32":  # what --precision fp32 would ship, to time the quantized model against
            twin = FloatTwin.new()
            shutil.copyfile(float_path, twin.folder / MODEL_FILE)
        if precision == "fp32":
            shutil.copyfile(float_path, model_path)
        elif precision == "fp16":
            quantization = to_fp16(float_path, model_path)
        elif precision == "int4":
            quantization = to_int4(float_path, model_path, options)
        else:
            quantization = to_int8(
                source,
                float_path,
                model_path,
                calibration,
                options.get("quant_scheme"),
                Path(tmp),
                options.get("float_layers"),
            )
    opset = next(
        o.version
        for o in onnx.load(str(model_path), load_external_data=False).opset_import
        if o.domain in ("", "ai.onnx")
    )
    if twin:
        twin.target_config = OnnxConfig(opset=opset)
    return BuildResult(
        model_file=MODEL_FILE,
        float_twin=twin,
        compression=Compression(quantization=quantization),
        target_config=OnnxConfig(opset=opset),
        toolchain={"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "onnxslim": onnxslim.__version__},
    )


def to_fp16(src: Path, dst: Path) -> Quantization:
    """Weights and activations in fp16; inputs and outputs stay fp32 so callers see no difference."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return Quantization(scheme="fp16", io_types="float32")


INT4_METHODS = ("hqq", "rtn")


def to_int4(src: Path, dst: Path, options: dict) -> Quantization:
    """4-bit weights per group of `int4_block_size` input channels (onnxruntime MatMulNBits): HQQ (half-quadratic
    fitting of scale and zero point, no calibration data) or plain round-to-nearest; activations stay float."""
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    block = int(options.get("int4_block_size") or 32)
    method = options.get("int4_method") or "hqq"
    if method == "hqq":
        config = nbits.HQQWeightOnlyQuantConfig(block_size=block, bits=4)
    else:
        config = nbits.DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True)
    quantizer = nbits.MatMulNBitsQuantizer(onnx.load(str(src)), bits=4, block_size=block, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), False)
    return Quantization(
        scheme="weight-only",
        tool="onnxruntime MatMulNBits",
        weights=f"int4 per-group (group {block}), {method.upper()}",
        activations="float32",
    )


def int8_scheme(source: Source, scheme: str | None) -> str:
    """The int8 scheme: as asked, else dynamic for transformers (text, audio) and static QDQ for CNNs."""
    scheme = scheme or ("dynamic" if source.data_kind in ("text", "audio") else "static")
    if scheme not in QUANT_SCHEMES:
        raise UnsupportedError(f"unknown quantization scheme '{scheme}'", f"use one of: {', '.join(QUANT_SCHEMES)}")
    return scheme


def check_request(source: Source, precision: str, has_calibration: bool, options: dict) -> None:
    """Refuse, before any export work, what build() would refuse later."""
    block = options.get("int4_block_size")
    if block is not None and (precision != "int4" or block not in (16, 32, 64, 128, 256)):
        raise UnsupportedError(
            f"--int4-block-size {block} is not valid here", "use 16, 32, 64, 128 or 256, with --precision int4"
        )
    if precision == "int8" and int8_scheme(source, options.get("quant_scheme")) == "static" and not has_calibration:
        raise DataError(
            "static int8 needs calibration data", "pass --calibration DATA (a few hundred representative inputs)"
        )


def to_int8(
    source: Source,
    src: Path,
    dst: Path,
    calibration: list[dict] | None,
    scheme: str | None,
    tmp: Path,
    float_layers: list[str] | None = None,
) -> Quantization:
    """Dynamic int8 for transformers (no calibration); static QDQ per-channel for CNNs, calibrated.

    `float_layers`: source layers (torch module names) whose compute nodes stay float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    scheme = int8_scheme(source, scheme)
    # without VNNI, onnxruntime's x86 uint8 x int8 kernels sum pairs of products in int16, which saturates: 7-bit
    # weights keep them in range (a tiny Llama's int8 perplexity +2.0% on an AVX2 EPYC, +0.05% with them)
    reduce_range = int8_products_saturate()
    weights = "int8 per-channel" + (" (7-bit range: this CPU has no VNNI)" if reduce_range else "")
    if scheme == "dynamic":
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            nodes_to_exclude=_excluded_nodes(source, src, float_layers),
        )
        details = Quantization(scheme="dynamic", weights=weights, activations="uint8 per-tensor, computed at run time")
    else:
        if not calibration:
            raise DataError(
                "static int8 needs calibration data", "pass --calibration DATA (a few hundred representative inputs)"
            )
        pre = tmp / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        text = source.data_kind == "text"
        quantize_static(
            str(pre),
            str(dst),
            _Reader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            nodes_to_exclude=_excluded_nodes(source, pre, float_layers),
            op_types_to_quantize=list(TEXT_STATIC_OPS) if text else _static_op_types(),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # text: a matmul's output stays float (onnxruntime runs MatMulIntegerToFloat); rounding the FFN
            # outputs' outliers to uint8 cost MiniLM about 10 points
            extra_options={"OpTypesToExcludeOutputQuantization": list(TEXT_STATIC_OPS)} if text else {},
        )
        if text:
            float_consumers_read_float(dst, TEXT_STATIC_OPS)
        examples = int(sum(next(iter(b.values())).shape[0] for b in calibration))
        details = Quantization(
            scheme="static-qdq",
            weights=weights,
            activations="uint8 per-tensor",
            ops=list(TEXT_STATIC_OPS) if text else "all supported",
            calibration=Calibration(method="minmax", batches=len(calibration), examples=examples),
        )
    details.float_nodes = float_compute_nodes(dst)
    details.float_layers = list(float_layers) if float_layers else None
    return details


def float_consumers_read_float(path: Path, quantized_ops: tuple[str, ...]) -> None:
    """Rewire the float ops that read a dequantized activation to the activation itself. onnxruntime's QDQ
    quantizer dequantizes a tensor for all of its consumers, so a LayerNorm output that feeds the query, key and
    value matmuls carried int8 rounding into the residual Add beside them."""
    import onnx

    model = onnx.load(str(path))
    nodes = model.graph.node
    # a quantized op's own output keeps its Q/DQ: onnxruntime fuses DQ -> MatMul -> Q into one int8 kernel only when
    # the Q is the MatMul's sole consumer
    made_by_quantized_op = {o for n in nodes if n.op_type in quantized_ops for o in n.output}
    quantize_inputs = {
        n.output[0]: n.input[0]
        for n in nodes
        if n.op_type == "QuantizeLinear" and n.input[0] not in made_by_quantized_op
    }
    original = {  # a dequantized activation -> the float tensor it was quantized from (weights have no Q)
        n.output[0]: quantize_inputs[n.input[0]]
        for n in nodes
        if n.op_type == "DequantizeLinear" and n.input[0] in quantize_inputs
    }
    for node in nodes:
        if node.op_type not in quantized_ops and node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            for i, name in enumerate(node.input):
                if name in original:
                    node.input[i] = original[name]
    onnx.save(model, str(path))


def _static_op_types() -> list[str]:
    """onnxruntime's default op types for static QDQ but InstanceNormalization (a GroupNorm, as torch exports it):
    quantizing the scale and bias that every GroupNorm of a model shares, onnxruntime 1.32 wired one node's output
    in as another's bias, and the model no longer loaded (PoolFormer)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted((set(QLinearOpsRegistry) | set(QDQRegistry)) - {"InstanceNormalization"})


def _excluded_nodes(source: Source, path: Path, float_layers: list[str] | None) -> list[str]:
    """The ONNX nodes of the source layers asked to stay float (matched by their weights)."""
    if not float_layers:
        return []

    if source.module is None:
        raise UnsupportedError(
            "keeping layers in float needs a PyTorch source (layers are named as its modules)",
            "convert the checkpoint, .pt2, TorchScript or factory the ONNX file came from",
        )
    found = onnx_nodes(path, source.module, list(float_layers))
    missing = [n for n in float_layers if n not in found]
    if missing:
        raise ConversionError(f"no ONNX node carries the weights of {missing[:3]}", "report this as a bmsdk bug")
    return list(found.values())


def float_compute_nodes(path: Path) -> list[str]:
    """Compute nodes (MatMul/Gemm/Conv) that still run in float after quantization."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [
        f"{n.op_type}:{n.name}"
        for n in graph.node
        if n.op_type in COMPUTE_OPS and not any(i in dq_outputs for i in n.input)
    ]


class _Reader:
    """onnxruntime CalibrationDataReader over a list of feed dicts."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._it = iter(batches)

    def get_next(self):
        return next(self._it, None)
