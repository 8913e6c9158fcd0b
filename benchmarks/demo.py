"""The demo (the README's main job): two real models converted, evaluated on held-out data and timed side by side.

    python -m bmsdk.benchmarks.demo [--out reports/demo] [--rebuild] [--threads 1] [--cluster local:2]

First run builds and caches the models and artifacts (under $BMSDK_CACHE, default ~/.cache/bmsdk); later runs
reuse them. Each model goes through the benchmark harness with the (target, precision) rows below.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bmsdk.benchmarks.cluster import run_on_cluster
from bmsdk.benchmarks.harness import BenchConfig, run_benchmark
from bmsdk.benchmarks.report import rows
from bmsdk.converters import all_targets
from bmsdk.data import load_dataset
from bmsdk.logs import configure_logging, third_party_output
from bmsdk.progress import Progress
from bmsdk.version import __version__

from . import zoo

REFERENCE_EVAL_LIMIT = 500  # CoreML rows run on the numpy MIL reference executor: they score the first 500 examples
SKIPPED_ROWS = {  # rows left out of a model's table, and why (README)
    "minilm-sentiment": {("tflite", "int8")},  # its tolerance search rebuilds the model ~40 times (8 min)
}


def variants(model: str = "") -> list[tuple]:
    """The rows of a model's table, in order: what each target declares as `demo_precisions`, less the model's
    SKIPPED_ROWS; CoreML rows score at most REFERENCE_EVAL_LIMIT examples."""
    rows_ = []
    for t in all_targets():
        for p in t.demo_precisions:
            if (t.name, p) not in SKIPPED_ROWS.get(model, set()):
                rows_.append(
                    (t.name, p, "", {"eval_limit": REFERENCE_EVAL_LIMIT}) if t.name == "coreml" else (t.name, p)
                )
    return rows_


def generation_variants() -> list[tuple[str, str]]:
    """The rows of the text-generation table: each target's `demo_generation_precisions`."""
    return [(t.name, p) for t in all_targets() for p in t.demo_generation_precisions]


RECOVERY = {
    "mnist-cnn": "zoo:mnist-recovery",
    "minilm-sentiment": "zoo:sentiment-recovery",
}  # fine-tuning data after pruning
RECOVER_STEPS = 100
CASES = [  # name, source, eval data, calibration data (zoo names, built on first use)
    ("mnist-cnn", "zoo:mnist-cnn", "zoo:mnist-test", "zoo:mnist-calibration"),
    ("minilm-sentiment", "zoo:minilm-sentiment", "zoo:sentiment-test", "zoo:sentiment-calibration"),
]
GENERATION_CASE = ("tweet-llama", "zoo:tweet-llama", "zoo:tweet-text-test", "zoo:tweet-text-calibration")
GENERATION_EVAL_TEXTS = 300  # held-out tweets scored for perplexity
TASK_CASES = [  # the newer tasks: tiny models trained on labelled sets made in code (zoo.task_case)
    (name, f"zoo:{name}", f"zoo:{name}-test", f"zoo:{name}-calibration" if zoo.TASK_CASES[name][2] else None)
    for name in zoo.TASK_CASES
]
TASK_ROWS = [("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8-dynamic"), ("coreml", "fp16")]


@dataclass
class DemoRun:
    """What every model of one demo run shares."""

    out: Path
    artifacts: Path
    threads: int = 1
    targets: list[str] | None = None  # only these targets' rows
    cluster: str | None = None  # run the cells as Ray tasks there
    progress: Progress = field(default_factory=Progress)


def run(
    out: Path,
    rebuild: bool = False,
    threads: int = 1,
    targets: list[str] | None = None,
    cluster: str | None = None,
    artifacts: Path | None = None,
    models: list[str] | None = None,
) -> list[dict]:
    """The demo's tables; `models` (names of CASES / GENERATION_CASE) and `targets` narrow the matrix."""
    demo = DemoRun(out, artifacts or zoo.cache_dir() / f"artifacts-{__version__}", threads, targets, cluster)
    if rebuild:
        shutil.rmtree(demo.artifacts, ignore_errors=True)
    table = []
    for name, source, eval_data, calibration in CASES:
        if not models or name in models:
            rows_ = variants(name) + pruned_rows(RECOVERY[name])
            table += _bench_case(demo, name, source, eval_data, calibration, rows_)
    generation = []
    if not models or GENERATION_CASE[0] in models:
        generation = _bench_case(demo, *GENERATION_CASE, generation_variants())
    tasks = []
    for name, source, eval_data, calibration in TASK_CASES:
        if not models or name in models:
            tasks += _bench_case(demo, name, source, eval_data, calibration, TASK_ROWS)
    tables = [(table, markdown_table), (generation, generation_table), (tasks, task_table)]
    text = "\n\n".join(make(part) for part, make in tables if part)
    (out / "demo.md").write_text(text + "\n")
    (out / "demo.json").write_text(json.dumps(table + generation + tasks, indent=2) + "\n")
    print(text)
    return table + generation + tasks


def _bench_case(demo: DemoRun, name, source, eval_data, calibration, cells) -> list[dict]:
    """One model's rows through the benchmark harness, serially or as Ray tasks on a cluster; its report.json."""
    demo.progress.info(f"== {name}")
    generation = name == GENERATION_CASE[0]
    small = name in zoo.TASK_CASES  # a tiny model: shorter timing runs suffice
    with demo.progress.step(f"preparing {name} and its data (built once, then cached)"):
        data = zoo.resolve(eval_data)
        cfg = BenchConfig(
            source=zoo.resolve(source),
            targets=[],
            precisions=[],
            cells=[c for c in cells if not demo.targets or c[0] in demo.targets],
            name=name,
            eval_data=load_dataset(data).head(GENERATION_EVAL_TEXTS) if generation else data,
            calibration=zoo.resolve(calibration) if calibration else None,
            threads=demo.threads,
            warmup=2 if generation else 10,  # a warm-up generation is 32 decode steps
            iterations=20 if generation else 100,
            seconds=2.0 if small else 5.0,
            repeats=3,
            artifacts_dir=demo.artifacts,
        )
    if demo.cluster:
        report = run_on_cluster(cfg, demo.out / name, demo.cluster, demo.progress)
    else:
        report = run_benchmark(cfg, demo.out / name, demo.progress)
    (demo.out / name / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    table = rows(report)
    task = next((r["task"] for r in table if r["task"]), "")  # the source's row has none of its own
    return [{"model": name, **row, "task": task} for row in table]


def pruned_rows(recovery_data: str) -> list[tuple]:
    """ONNX fp32 rows of the model pruned 30% and 50% (channels for the CNN, heads+FFN for MiniLM), without and with
    a brief distillation fine-tune on CPU on `recovery_data` (a zoo name)."""
    recovery = zoo.resolve(recovery_data)
    rows_ = []
    for ratio in (0.3, 0.5):
        rows_.append(("onnx", "fp32", f"pruned-{ratio:.0%}", {"prune": ratio}))
        rows_.append(
            (
                "onnx",
                "fp32",
                f"pruned-{ratio:.0%}+recovery",
                {"prune": ratio, "recover": recovery, "recover_steps": RECOVER_STEPS},
            )
        )
    return rows_


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _times(ratio) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def _status(r: dict) -> str:
    status = r["status"] + (" (reference executor: not a device latency)" if r["reference_executor"] else "")
    status += " (slower than its fp32 twin)" if r.get("slower_than_float") else ""
    return status + (f": {r['reason'][:60]}" if r["reason"] else "")


def _table(header: list[str], aligns: str, cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in aligns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def markdown_table(table: list[dict]) -> str:
    header = ["model", "target", "precision", "status", "size (MB)", "accuracy", "Δ accuracy (pt)", "macro-F1"]
    header += ["agreement", "p50 latency (ms)", "speed-up vs torch"]
    cells = [
        [r["model"], r["target"], (r["precision"] + " " + r.get("variant", "")).strip(), _status(r)]
        + [_fmt(r["size_mb"], ".2f"), _fmt(r["accuracy"], ".4f") + _subset(r), _fmt(r["delta_pt"], "+.2f")]
        + [
            _fmt(r["macro_f1"], ".4f"),
            _fmt(r["agreement"], ".4f"),
            _fmt(r["p50"], ".3f"),
            _fmt(r["speedup"], ".2f") + "×",
        ]
        for r in table
    ]
    note = f"\n\n† on the first {REFERENCE_EVAL_LIMIT} examples of the test set (source and artifact alike): the MIL " \
        "reference executor runs CoreML programs in numpy, about 100× slower than a device"  # fmt: skip
    return _table(header, "llllrrrrrrr", cells) + (note if any(r.get("eval_examples") for r in table) else "")


def _subset(r: dict) -> str:
    return "†" if r.get("eval_examples") else ""


def generation_table(table: list[dict]) -> str:
    header = ["model", "target", "precision", "status", "size (MB)", "perplexity", "Δ perplexity"]
    header += ["next-token agreement", "first token (ms)", "decode tokens/s", "decode speed-up vs torch"]
    cells = [
        [r["model"], r["target"], r["precision"], _status(r), _fmt(r["size_mb"], ".2f"), _fmt(r["perplexity"], ".2f")]
        + [_fmt(r["perplexity_change_pct"], "+.2f") + "%", _fmt(r["agreement"], ".4f"), _fmt(r["ttft_ms"], ".2f")]
        + [_fmt(r["decode_tps"], ".0f"), _times(r["decode_speedup"])]
        for r in table
    ]
    return _table(header, "llllrrrrrrr", cells)


def task_table(table: list[dict]) -> str:
    header = ["model", "task", "target", "precision", "status", "size (MB)", "metric", "value", "Δ (pt)"]
    header += ["agreement", "p50 latency (ms)", "speed-up vs torch"]
    cells = [
        [r["model"], r["task"], r["target"], r["precision"], _status(r), _fmt(r["size_mb"], ".2f")]
        + [r["metric_name"] or "–", _fmt(r["accuracy"], ".4f"), _fmt(r["delta_pt"], "+.2f")]
        + [_fmt(r["agreement"], ".4f"), _fmt(r["p50"], ".3f"), _fmt(r["speedup"], ".2f") + "×"]
        for r in table
    ]
    return _table(header, "lllllrlrrrrr", cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bmsdk.benchmarks.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("reports/demo"), help="where demo.md, demo.json and per-model reports go"
    )
    parser.add_argument("--rebuild", action="store_true", help="re-convert even if cached artifacts exist")
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads for every runtime, torch included (default 1)"
    )
    parser.add_argument("--targets", help="only these targets' rows, comma-separated (e.g. onnx for a quick first run)")
    parser.add_argument(
        "--models",
        help="only these models' rows, comma-separated (mnist-cnn, minilm-sentiment, tweet-llama, bert-ner, "
        "bert-qa, wav2vec2-keywords, segformer-shapes, tiny-yolo-shapes)",
    )
    parser.add_argument(
        "--cluster",
        metavar="local[:N]|ADDRESS",
        help="run every cell as a Ray task (pip install 'bmsdk[cluster]'): a local cluster of N workers or the Ray "
        "cluster at ADDRESS; the tables are the serial run's",
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        help="where converted artifacts are cached (default $BMSDK_CACHE/artifacts-VERSION); a fresh folder times a "
        "cold run",
    )
    args = parser.parse_args(argv)

    configure_logging(0)
    third_party_output(0)
    start = time.perf_counter()
    run(
        args.out,
        args.rebuild,
        args.threads,
        args.targets.split(",") if args.targets else None,
        args.cluster,
        args.artifacts,
        args.models.split(",") if args.models else None,
    )
    where = f"Ray cluster {args.cluster}" if args.cluster else "serial"
    print(
        f"\n({where}; batch 1, {args.threads} thread(s), CPU; latency = model call on pre-processed input, "
        "median of 3 runs; "
        "speed-up vs the source model in torch eager fp32 measured in the same run; "
        f"{time.perf_counter() - start:.0f}s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
