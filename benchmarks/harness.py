"""The benchmark matrix: every target x precision converted (or taken ready), measured and scored in one run.

A failing cell records its one-line reason and never stops the matrix.
"""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bmsdk.artifact import load_samples, open_artifact
from bmsdk.benchmarks.devices import governor
from bmsdk.benchmarks.measure import batch_feeds, measure_generation, repeated_latency
from bmsdk.benchmarks.runners.local import LocalRunner
from bmsdk.converters import get_target, toolchain_packages
from bmsdk.converters.pipeline import convert
from bmsdk.converters.sources.loader import load_source
from bmsdk.data import Dataset, load_dataset
from bmsdk.errors import BackendUnavailableError, BmsdkError
from bmsdk.host import cpuinfo
from bmsdk.progress import SILENT, Progress
from bmsdk.runtimes.model import Model
from bmsdk.sections import to_plain
from bmsdk.tasks import get_task

REPORT_SCHEMA_VERSION = 1


@dataclass
class BenchConfig:
    source: str
    targets: list[str]
    precisions: list[str]
    eval_data: str | Dataset | None = None
    calibration: str | None = None
    cells: list[tuple] | None = (
        None  # explicit (target, precision) pairs, or (target, precision, variant, convert options)
    )
    batches: list[int] = field(default_factory=lambda: [1])
    threads: int = 1
    warmup: int = 10
    iterations: int = 100
    seconds: float = 10.0
    repeats: int = 3
    max_noise_pct: float | None = None  # add timing runs while the median's 95% interval is wider than this (in %)
    max_repeats: int = 10  # ... up to this many runs
    seq_lengths: list[int] | None = None  # text models: batch-1 latency at each of these lengths too
    name: str | None = None
    artifacts_dir: Path | None = None  # ready artifacts NAME-TARGET-PRECISION.bmsdk are reused from here
    convert_options: dict = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)  # target -> the Ray resource its cells run on (--cluster)

    def matrix(self) -> list[tuple[str, str]]:
        return self.cells or [(t, p) for t in self.targets for p in self.precisions]


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text if isinstance(error, BmsdkError) else f"{type(error).__name__}: {text}"


def environment(threads: int) -> dict:
    """The machine a report was measured on: latency is compared only between reports of the same hardware."""
    cpu, isa = cpuinfo()
    versions = {}
    for lib in ("bmsdk", "numpy", *toolchain_packages()):
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    env = {
        "cpu": cpu,
        "isa": list(isa),
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "libraries": versions,
    }
    if scaling := governor():
        env["governor"] = scaling
    return env


def probe_input(data):
    """A typical single input: the median-length text (or question and context), or the first image."""
    if data.kind == "text":
        return sorted(data.items, key=lambda t: len(t) if isinstance(t, str) else len(t[1]))[len(data.items) // 2]
    return data.items[0]


@dataclass
class CellContext:
    """What the cells of one matrix share within one process: the artifact folder, the eval data, the probe input
    (from the eval data, else the first artifact's samples) and the source model's outputs (computed once)."""

    artifacts: Path
    eval_set: Dataset | None = None
    probe: object = None
    source_outputs: dict = field(default_factory=dict)
    measured: tuple | None = None  # (path, manifest) of the first measured cell: the source is timed against it


def prepare(cfg: BenchConfig, out_dir: Path) -> CellContext:
    out_dir.mkdir(parents=True, exist_ok=True)
    eval_set = (
        cfg.eval_data
        if isinstance(cfg.eval_data, Dataset)
        else (load_dataset(cfg.eval_data) if cfg.eval_data else None)  # a classifier's labels: checked by convert
    )
    probe = probe_input(eval_set) if eval_set is not None else None
    return CellContext(cfg.artifacts_dir or out_dir / "artifacts", eval_set, probe)


def cell_key(cell: dict | tuple) -> tuple[str, str, str]:
    """(target, precision, variant): one cell of the matrix, from its spec or its report entry."""
    if isinstance(cell, dict):
        return cell["target"], cell["precision"], cell.get("variant", "")
    target, precision, *variant = cell
    return target, precision, variant[0] if variant else ""


def run_cell(cfg: BenchConfig, spec: tuple, ctx: CellContext, progress: Progress = SILENT, runner=None) -> dict:
    """Convert, validate and measure one cell of the matrix; never raises (the reason goes into the cell)."""
    target, precision, *variant = spec
    label, options = variant if variant else ("", {})
    options = dict(options or {})
    options.pop("device", None)  # where it runs, not how it converts
    eval_set = ctx.eval_set
    limit = options.pop("eval_limit", None)  # a slow runtime (a reference executor) scores the first N examples
    cell = {"target": target, "precision": precision, **({"variant": label} if label else {})}
    if limit and eval_set is not None and len(eval_set) > limit:
        eval_set = eval_set.head(limit)
    try:
        get_target(target).check_precision(precision)
    except BmsdkError as e:
        return {**cell, "status": "skipped", "reason": one_line(e)}
    try:
        path, manifest = _artifact(
            cfg, ctx.artifacts, target, precision, eval_set, ctx.source_outputs, progress, label, options
        )
    except Exception as e:  # a failing cell never stops the matrix
        cell.update(status="failed", reason=one_line(e))
        progress.info(f"    failed: {cell['reason']}")
        return cell
    cell.update(task=manifest.task, **_scores(manifest, path))
    scored = manifest.validation.eval.n if manifest.validation.eval else None
    if scored is not None and ctx.eval_set is not None and scored < len(ctx.eval_set):
        cell["eval_examples"] = scored  # fewer than the eval set (eval_limit), so say so
    if ctx.probe is None:
        ctx.probe = _sample_probe(path, manifest)
    try:
        with progress.step("measuring"):
            cell.update((runner or LocalRunner()).measure(path, ctx.probe, cfg))
    except BackendUnavailableError as e:  # converted and validated, but its runtime is not on this machine
        cell.update(reason=f"{cell.get('reason', '')} not timed here: {e.problem}".strip())
        return cell
    except Exception as e:
        cell.update(status="failed", reason=f"ran but could not be measured: {one_line(e)}")
        return cell
    if ctx.measured is None:
        ctx.measured = (path, manifest)
    return cell


def source_cell(cfg: BenchConfig, path: Path, manifest, probe, progress: Progress = SILENT) -> dict:
    """The source model timed like the cells (the reference of speedup_vs_source); never raises."""
    try:
        with progress.step("measuring the source (torch eager fp32)"):
            return _measure_source(cfg, path, manifest, probe)
    except Exception as e:  # the reference is one more cell: its failure must not lose the matrix
        return {
            "target": "torch",
            "precision": "fp32",
            "status": "failed",
            "reason": f"the source could not be measured: {one_line(e)}",
            "latency": {},
        }


def run_benchmark(
    cfg: BenchConfig, out_dir: Path, progress: Progress = SILENT, done: dict | None = None, on_cell=None
) -> dict:
    """The matrix in this process, cell after cell. `done` maps cell_key to cells of an interrupted run (kept as
    they are, with its "source_model" under None); `on_cell(cells, source)` sees the matrix after each cell."""
    ctx = prepare(cfg, out_dir)
    done = dict(done or {})
    source = done.pop(None, None)
    matrix = cfg.matrix()
    cells = []
    for index, spec in enumerate(matrix, 1):
        if cell_key(spec) in done:
            cells.append(done[cell_key(spec)])
            continue
        progress.info(f"[{index}/{len(matrix)}] {' '.join(cell_key(spec))}".rstrip())
        cells.append(run_cell(cfg, spec, ctx, progress))
        if source is None and ctx.measured is not None:
            source = source_cell(cfg, *ctx.measured, ctx.probe, progress)
        if on_cell:
            on_cell(cells, source)
    return assemble(cfg, ctx, cells, source)


def assemble(cfg: BenchConfig, ctx: CellContext, cells: list[dict], source: dict | None) -> dict:
    _relative_speed(cells, source)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "name": cfg.name or Path(str(cfg.source)).name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": str(cfg.source),
        "eval_data": ctx.eval_set.origin if ctx.eval_set else None,
        "eval_examples": len(ctx.eval_set) if ctx.eval_set else 0,
        "batches": cfg.batches,
        "settings": {
            "threads": cfg.threads,
            "warmup": cfg.warmup,
            "iterations": cfg.iterations,
            "seconds": cfg.seconds,
            "repeats": cfg.repeats,
            "max_noise_pct": cfg.max_noise_pct,
            "max_repeats": cfg.max_repeats,
            "seq_lengths": cfg.seq_lengths,
        },
        "environment": environment(cfg.threads),
        "source_model": source,
        "cells": cells,
    }


def _artifact(
    cfg: BenchConfig,
    folder: Path,
    target: str,
    precision: str,
    eval_set,
    source_outputs: dict,
    progress: Progress,
    variant: str = "",
    options: dict | None = None,
):

    name = cfg.name or None
    label = name or Path(str(cfg.source).split(":")[-1]).name
    path = folder / f"{label}-{target}-{precision}{'-' + variant if variant else ''}.bmsdk"
    if cfg.artifacts_dir and path.exists():
        return open_artifact(path)
    result = convert(
        cfg.source,
        target=target,
        precision=precision,
        output=path,
        overwrite=True,
        name=name,
        eval_data=eval_set,
        calibration=cfg.calibration,
        progress=progress,
        source_outputs=source_outputs,
        **{**cfg.convert_options, **(options or {})},
    )
    return result.path, result.manifest


def _scores(manifest, path: Path) -> dict:
    v = manifest.validation
    if not v.validated:
        status = "converted"
    else:
        status = "validated" if v.passed else "failed"
    cell = {
        "status": status,
        "validation": {k: getattr(v, k) for k in ("validated", "passed", "reason", "backend")},
        "size_mb": _size(path / manifest.model_file) / 1e6,
        "artifact": str(path),
    }
    if status == "failed":
        cell["reason"] = f"outside tolerance: {(v.samples.reason if v.samples else None) or v.reason or ''}"
    ev = v.eval
    if ev and ev.artifact:
        cell["metric"] = ev.artifact.to_dict()
        if ev.source and ev.delta:
            cell["source_metric"] = ev.source.to_dict()
            cell["accuracy_change_pt"] = 100 * ev.delta.accuracy
    for key in ("top1_agreement", "mean_cosine"):
        if ev and getattr(ev, key) is not None:
            cell[key] = getattr(ev, key)
    if ev and ev.perplexity is not None:
        cell["metric"] = {"perplexity": ev.perplexity, "tokens": ev.tokens}
        if ev.perplexity_change is not None:
            cell["perplexity_change_pct"] = 100 * ev.perplexity_change
    if ev and ev.exact_match is not None:
        cell["metric"] = {"exact_match": ev.exact_match, "answer_f1": ev.answer_f1}
        if ev.source_answer_f1 is not None:
            cell["source_metric"] = {"exact_match": ev.source_exact_match, "answer_f1": ev.source_answer_f1}
            cell["accuracy_change_pt"] = 100 * (ev.answer_f1 - ev.source_answer_f1)  # the task metric: SQuAD F1
    if ev and ev.mean_iou is not None:
        cell["metric"] = {
            "mean_iou": ev.mean_iou,
            "pixel_accuracy": ev.pixel_accuracy,
            "mean_accuracy": ev.mean_accuracy,
        }
        if ev.source_mean_iou is not None:
            cell["source_metric"] = {"mean_iou": ev.source_mean_iou, "pixel_accuracy": ev.source_pixel_accuracy}
            cell["accuracy_change_pt"] = 100 * (ev.mean_iou - ev.source_mean_iou)  # the task metric: mean IoU
    if ev and ev.map_50 is not None:
        cell["metric"] = {"map_50": ev.map_50, "map_50_95": ev.map_50_95}
        if ev.source_map_50 is not None:
            cell["source_metric"] = {"map_50": ev.source_map_50, "map_50_95": ev.source_map_50_95}
            cell["accuracy_change_pt"] = 100 * (ev.map_50_95 - ev.source_map_50_95)  # the task metric: COCO mAP
    if ev and ev.entity_f1 is not None:
        cell["metric"] = entity_metric(ev)
        if ev.source_entity_f1 is not None:
            cell["source_metric"] = {"entity_f1": ev.source_entity_f1}
            cell["accuracy_change_pt"] = 100 * (ev.entity_f1 - ev.source_entity_f1)  # the task metric: entity F1
    if v.greedy:
        cell["greedy"] = v.greedy.to_dict()
    if v.speed and v.speed.measured:
        cell["speed_vs_float"] = v.speed.to_dict()
    pruning = manifest.compression.pruning
    if pruning:  # against the unpruned source, not the pruned model the artifact was validated against
        shown = ("method", "ratio", "params", "macs", "metric", "recovery")
        cell["pruning"] = {k: to_plain(getattr(pruning, k)) for k in shown}
        original = pruning.metric.source if pruning.metric else None
        if original and ev and ev.artifact:
            cell["source_metric"] = original.to_dict()
            cell["accuracy_change_pt"] = 100 * (ev.artifact.accuracy - original.accuracy)
    return cell


def entity_metric(ev) -> dict:
    """A token classifier's metric in a cell: seqeval's entity-level scores."""
    return {
        "entity_f1": ev.entity_f1,
        "entity_precision": ev.entity_precision,
        "entity_recall": ev.entity_recall,
        "entities": ev.entities,
    }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _sample_probe(path: Path, manifest=None):
    inputs, _, raw = load_samples(path)
    if raw is not None:
        return str(raw[0]) if raw.dtype.kind in "US" else raw[0]
    own = get_task(manifest.task).sample_texts if manifest is not None else ()
    if own:  # inputs samples.npz keeps no raw form of (question answering's pairs)
        return tuple(own[0])
    return next(iter(inputs.values()))[:1]


def _measure_source(cfg: BenchConfig, path: Path, manifest, probe) -> dict:
    """The source model in torch eager fp32, same pre-processing, same threads, same batches."""
    import torch

    source = load_source(
        cfg.source,
        **{
            k: v
            for k, v in cfg.convert_options.items()
            if k in ("task", "input_shapes", "max_length", "labels", "mean", "std", "tokenizer", "weights")
        },
    )
    reference = Model(path, manifest, source)
    torch.set_num_threads(cfg.threads or os.cpu_count())
    result = {"target": "torch", "precision": "fp32", "backend": "torch eager", "device_real": True, "latency": {}}
    for batch in cfg.batches:
        feeds = batch_feeds(reference, probe, batch)
        latency = repeated_latency(
            lambda feeds=feeds: source.run(feeds), cfg.warmup, cfg.iterations, cfg.seconds, cfg.repeats
        )
        latency["throughput_per_s"] = batch * 1e3 / latency["p50_ms"]
        result["latency"][str(batch)] = latency
    if manifest.input_kind == "generation":
        result["generation"] = measure_generation(reference, probe, cfg.repeats)
    ev = manifest.validation.eval
    if ev and ev.source:
        result["metric"] = ev.source.to_dict()
    if ev and ev.source_perplexity is not None:
        result["metric"] = {"perplexity": ev.source_perplexity, "tokens": ev.tokens}
    if ev and ev.source_entity_f1 is not None:
        result["metric"] = {"entity_f1": ev.source_entity_f1}
    if ev and ev.source_mean_iou is not None:
        result["metric"] = {"mean_iou": ev.source_mean_iou, "pixel_accuracy": ev.source_pixel_accuracy}
    if ev and ev.source_map_50 is not None:
        result["metric"] = {"map_50": ev.source_map_50, "map_50_95": ev.source_map_50_95}
    if ev and ev.source_answer_f1 is not None:
        result["metric"] = {"exact_match": ev.source_exact_match, "answer_f1": ev.source_answer_f1}
    return result


def _relative_speed(cells: list[dict], source: dict | None) -> None:
    """speedup_vs_source[batch] = source p50 / cell p50, both measured in this run (text generation: also the
    ratio of decode tokens/s)."""
    if not source:
        return
    source_decode = (source.get("generation") or {}).get("decode_tokens_per_s")
    for cell in cells:
        decode = (cell.get("generation") or {}).get("decode_tokens_per_s")
        if decode and source_decode:
            cell["decode_speedup_vs_source"] = decode / source_decode
        if "latency" in cell and source.get("latency"):
            cell["speedup_vs_source"] = {
                b: source["latency"][b]["p50_ms"] / lat["p50_ms"]
                for b, lat in cell["latency"].items()
                if b in source["latency"]
            }
