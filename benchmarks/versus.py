"""bmsdk's shipped artifact against what a user builds by hand with the same libraries, timed side by side in one
process (batch 1, one thread, interleaved rounds over real inputs of the eval data), with each variant's accuracy.

    python -m bmsdk.benchmarks.versus CASE.json [--shipped ARTIFACT] [--onnx NAME=FILE.onnx] [--rounds 9]

Without `--shipped` it runs `bmsdk optimize` on the case (targets onnx and tflite, `--max-accuracy-drop`). The
by-hand variants start from bmsdk's own fp32 exports (the ONNX graph torch.onnx writes and the `.tflite` litert-torch
writes; what differs by hand is what is done after export) and call the runtimes directly, converting inputs only as
the runtime requires (a LiteRT signature: padded to its bucket, ids cast to int32, an int8 input quantized):

- torch eager: the source module itself (the reference of the speed-ups);
- onnxruntime fp32, dynamic int8 (`quantize_dynamic`, per-tensor and per-channel), and for image models static
  int8 (`quantize_static`, QDQ and QOperator, per-channel, MinMax on the calibration data);
- LiteRT fp32 and int8-dynamic (ai-edge-quantizer's `dynamic_wi8_afp32`), for image models static int8
  (`static_wi8_ai8`, with the int8 inputs and outputs the recipe makes);
- `--onnx NAME=FILE`: any other ONNX file (Olive's output, say), run as a plain onnxruntime session.

Writes versus.md and versus.json to `--out`; the ratio column is each variant's time over the shipped artifact's
(median of per-round ratios: above 1 means bmsdk is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bmsdk.benchmarks.cases import load_case
from bmsdk.benchmarks.optimize import optimize
from bmsdk.converters.pipeline import convert
from bmsdk.converters.sources.loader import load_source
from bmsdk.converters.speed import per_call_ms
from bmsdk.data import Dataset, load_dataset
from bmsdk.runtimes.litert_io import (
    from_signature,
    pad_feeds,
    pick_bucket,
    sequence_length,
    signature_for,
    tensor_record,
    to_signature,
)
from bmsdk.runtimes.model import load

PROBES = 16  # real inputs the timed calls cycle through (texts of their own lengths)


@dataclass
class Variant:
    name: str
    predict: object  # feeds -> logits (numpy), for accuracy
    timed: object  # zero-argument call over every probe input


def onnx_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_variant(name: str, path: Path, probes: list[dict], threads: int) -> Variant:
    session = onnx_session(path, threads)
    inputs = [i.name for i in session.get_inputs()]
    ready = [{k: f[k] for k in inputs} for f in probes]

    def predict(feeds):
        return session.run(None, {k: feeds[k] for k in inputs})[0]

    return Variant(name, predict, lambda: [session.run(None, f) for f in ready])


def litert_variant(name: str, model: bytes, template, probes: list[dict], threads: int) -> Variant:
    """A `.tflite` (bytes) run through a signature runner per bucket; each call pads to the bucket and casts (ids to
    int32, an int8 input quantized), as a user's code must; dtypes and int8 scales are read from the interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=threads)
    backend = template.runner
    runners = {s: interpreter.get_signature_runner(s) for s in interpreter.get_signature_list()}
    records = {
        s: (
            {k: tensor_record(d, k) for k, d in r.get_input_details().items()},
            {k: tensor_record(d, k) for k, d in r.get_output_details().items()},
        )
        for s, r in runners.items()
    }

    def convert_feeds(feeds):
        bucket = pick_bucket(sequence_length(feeds), backend.buckets) if backend.buckets else None
        signature = signature_for(bucket)
        if bucket is not None:
            feeds = pad_feeds(feeds, bucket, backend.pad_values, backend.inputs)
        names = backend.signatures[signature].inputs
        ins, _ = records[signature]
        return signature, {names[k].tensor: to_signature(v, ins[names[k].tensor]) for k, v in feeds.items()}

    def predict(feeds):
        signature, converted = convert_feeds(feeds)
        out = runners[signature](**converted)
        tensor = backend.signatures[signature].outputs[backend.outputs[0].name].tensor
        return from_signature(out[tensor], records[signature][1][tensor], "float32")

    def call(feeds):  # what a user writes: convert to the signature, then call it
        signature, converted = convert_feeds(feeds)
        return runners[signature](**converted)

    return Variant(name, predict, lambda: [call(f) for f in probes])


def by_hand_onnx(fp32: Path, work: Path, image: bool, calibration: list[dict]) -> dict[str, Path]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    made = {"onnxruntime fp32": fp32}
    for per_channel in (False, True):
        path = work / f"dynamic-{per_channel}.onnx"
        quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=per_channel)
        made[f"onnxruntime int8 dynamic{' per-channel' if per_channel else ''}"] = path
    if image and calibration:

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.rows = iter(calibration)

            def get_next(self):
                return next(self.rows, None)

        pre = work / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        for fmt in (QuantFormat.QDQ, QuantFormat.QOperator):
            path = work / f"static-{fmt.name}.onnx"
            quantize_static(str(pre), str(path), Reader(), quant_format=fmt, per_channel=True)
            made[f"onnxruntime int8 static {fmt.name}"] = path
    return made


def by_hand_litert(fp32: bytes, template, image: bool, calibration: list[dict]) -> dict[str, bytes]:
    from ai_edge_quantizer import quantizer, recipe

    def quantize(scheme, qsv=None):
        q = quantizer.Quantizer(bytearray(fp32))
        q.load_quantization_recipe(scheme)
        if qsv is not None:
            qsv = q.calibrate(qsv)
        return bytes(q.quantize(qsv).quantized_model)

    made = {"LiteRT fp32": fp32, "LiteRT int8-dynamic": quantize(recipe.dynamic_wi8_afp32())}
    if image and calibration:
        signature = template.runner.signatures["serving_default"].inputs
        rows = [{signature[k].tensor: v for k, v in row.items()} for row in calibration]
        made["LiteRT int8 static"] = quantize(recipe.static_wi8_ai8(), {"serving_default": rows})
    return made


def rows_of(model, data: Dataset, n: int) -> list[dict]:
    """Feeds of the first n items, one item each, at their own length."""
    return [model.preprocess(data.items[i : i + 1]) for i in range(min(n, len(data)))]


def accuracy(predict, feeds: list[dict], labels: list[int]) -> float:
    return 100 * float(np.mean([int(np.argmax(predict(f)[0])) == y for f, y in zip(feeds, labels)]))


def label_indices(data: Dataset, names: list[str] | None) -> list[int]:
    return [names.index(y) if isinstance(y, str) and names else int(y) for y in data.labels]


def time_side_by_side(variants: list[Variant], rounds: int, seconds: float = 0.3) -> dict[str, list[float]]:
    """µs per probe input of each variant, per round, in an order that rotates every round."""
    calls = {}
    for v in variants:
        v.timed()
        once = per_call_ms(v.timed, 1) / 1e3
        calls[v.name] = max(1, int(seconds / max(once, 1e-6)))
    times = {v.name: [] for v in variants}
    for r in range(rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            times[v.name].append(1e3 * per_call_ms(v.timed, calls[v.name]) / PROBES)
    return times


def versus(
    case: str,
    shipped: str | None,
    extra: dict[str, str],
    out: Path,
    rounds: int,
    eval_limit: int,
    drop: float = 0.5,
    precisions: list[str] | None = None,
) -> dict:
    cfg = load_case(case)
    data = load_dataset(cfg.eval_data) if isinstance(cfg.eval_data, (str, Path)) else cfg.eval_data
    data = data.head(eval_limit)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "by-hand"
    work.mkdir(exist_ok=True)
    exports = {}
    for target in ("onnx", "tflite"):
        path = work / f"{target}-fp32.bmsdk"
        if not path.exists():
            convert(cfg.source, target=target, precision="fp32", output=path)
        exports[target] = load(path, threads=cfg.threads)
    if shipped is None:
        result = optimize(
            cfg.source,
            ["onnx", "tflite"],
            data,
            output=out / "shipped.bmsdk",
            out_dir=out / "optimize",
            calibration=cfg.calibration,
            threads=cfg.threads,
            max_accuracy_drop=drop,
            precisions=precisions,
            overwrite=True,
        )
        shipped = str(result.path)
    model = load(shipped, threads=cfg.threads)
    reference = exports["onnx"]
    image = reference.manifest.data_kind == "image"
    eval_feeds = rows_of(reference, data, len(data))
    labels = label_indices(data, reference.labels)
    probes = eval_feeds[:PROBES]
    calibration = []
    if cfg.calibration:
        calibration = rows_of(reference, load_dataset(cfg.calibration), 128)
    source = load_source(cfg.source)
    first = reference.manifest.outputs[0].name

    shipped_feeds = rows_of(model, data, len(data))
    variants = [
        Variant(f"bmsdk {model.manifest.target} {model.manifest.precision} (Model.run)",
                lambda f: model.run(f)[first], lambda: [model.run(f) for f in shipped_feeds[:PROBES]]),
        Variant("torch eager", lambda f: source.run(f)[first], lambda: [source.run(f) for f in probes]),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        fp32 = reference.folder / reference.manifest.model_file
        for name, path in by_hand_onnx(fp32, Path(tmp), image, calibration).items():
            variants.append(onnx_variant(name, path, probes, cfg.threads))
        tflite = (exports["tflite"].folder / exports["tflite"].manifest.model_file).read_bytes()
        for name, blob in by_hand_litert(tflite, exports["tflite"], image, calibration).items():
            variants.append(litert_variant(name, blob, exports["tflite"], probes, cfg.threads))
        for name, path in extra.items():
            variants.append(onnx_variant(name, Path(path), probes, cfg.threads))
        scores = {
            v.name: accuracy(v.predict, shipped_feeds if i == 0 else eval_feeds, labels) for i, v in enumerate(variants)
        }
        times = time_side_by_side(variants, rounds)
    ours = times[variants[0].name]
    torch_us = statistics.median(times["torch eager"])
    rows = [
        {
            "variant": v.name,
            "us": statistics.median(times[v.name]),
            "vs_torch": torch_us / statistics.median(times[v.name]),
            "ratio_to_bmsdk": statistics.median(t / o for t, o in zip(times[v.name], ours)),
            "accuracy": scores[v.name],
        }
        for v in variants
    ]
    report = {"case": cfg.name, "shipped": shipped, "eval_items": len(data), "probes": PROBES, "rounds": rounds,
              "rows": rows}  # fmt: skip
    write_report(report, out)
    return report


def write_report(report: dict, out: Path) -> None:
    lines = [
        f"# {report['case']}: bmsdk's shipped artifact against by-hand variants",
        "",
        f"Batch 1, one thread, {report['rounds']} interleaved rounds over {report['probes']} real inputs; accuracy on "
        f"{report['eval_items']} eval items. Ratio: the variant's time over bmsdk's (above 1: bmsdk is faster).",
        "",
        "| variant | µs per input | speed-up vs torch | ratio to bmsdk | accuracy % |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        cells = [r["variant"], f"{r['us']:.1f}", f"{r['vs_torch']:.2f}x", f"{r['ratio_to_bmsdk']:.2f}"]
        lines.append("| " + " | ".join([*cells, f"{r['accuracy']:.2f}"]) + " |")
    (out / "versus.md").write_text("\n".join(lines) + "\n")
    (out / "versus.json").write_text(json.dumps(report, indent=2))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bmsdk.benchmarks.versus", description=__doc__.split("\n\n")[0])
    parser.add_argument("case", help="a benchmark case file (benchmarks/cases/*.json)")
    parser.add_argument("--shipped", help="bmsdk's artifact to compare (default: run `bmsdk optimize` on the case)")
    parser.add_argument("--onnx", action="append", default=[], metavar="NAME=FILE", help="another ONNX file to time")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--max-accuracy-drop", type=float, default=0.5, help="optimize's budget, in points")
    parser.add_argument("--precisions", help="the precisions optimize tries (default: every one of each target)")
    parser.add_argument("--eval-limit", type=int, default=1000, help="eval items scored per variant")
    parser.add_argument("--out", default=None, help="report folder (default reports/versus/CASE)")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.onnx)
    out = Path(args.out or f"reports/versus/{Path(args.case).stem}")
    versus(args.case, args.shipped, extra, out, args.rounds, args.eval_limit, args.max_accuracy_drop,
           args.precisions.split(",") if args.precisions else None)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
