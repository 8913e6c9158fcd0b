"""`bmsdk.benchmark(...)` and `bmsdk bench`: run the matrix, write the reports, apply the baseline gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bmsdk.benchmarks.cases import load_case
from bmsdk.benchmarks.cluster import import_ray, run_on_cluster
from bmsdk.benchmarks.gate import check, hardware_change, load_report
from bmsdk.benchmarks.harness import BenchConfig, run_benchmark
from bmsdk.benchmarks.report import write_reports
from bmsdk.benchmarks.resume import finished_cells, write_partial
from bmsdk.benchmarks.shards import score_cells, shard_files
from bmsdk.checks import check_bench_settings, check_count, check_noise_settings
from bmsdk.progress import SILENT, Progress


@dataclass
class BenchResult:
    report: dict
    paths: dict[str, Path]
    regressions: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.regressions


def benchmark(
    source: str | Path | None = None,
    out_dir: str | Path = "reports/bench",
    case: str | Path | None = None,
    targets: list[str] | None = None,
    precisions: list[str] | None = None,
    eval_data=None,
    calibration=None,
    batches: list[int] | None = None,
    threads: int | None = None,
    warmup: int | None = None,
    iterations: int | None = None,
    seconds: float | None = None,
    repeats: int | None = None,
    max_noise_pct: float | None = None,
    max_repeats: int | None = None,
    seq_lengths: list[int] | None = None,
    baseline: str | Path | None = None,
    max_accuracy_drop: float | None = None,
    max_latency_regression: float | None = None,
    artifacts_dir: str | Path | None = None,
    progress: Progress = SILENT,
    cluster: str | None = None,
    artifact_store: str | Path | None = None,
    devices: dict[str, str] | None = None,
    resume: str | Path | None = None,
    eval_shards: str | Path | None = None,
    **convert_options,
) -> BenchResult:
    """Benchmark `source` (or a case file) over targets x precisions; see `bmsdk bench --help`.

    cluster: "local[:N]" or a Ray address: every cell a Ray task (`bmsdk[cluster]`); devices: target -> the Ray
    resource its cells must run on; resume: the report.json of an interrupted run, whose finished cells are kept;
    eval_shards: a folder of data files scored shard by shard (one Ray task each on a cluster), merged exactly."""
    check_bench_settings(batches, threads, warmup, iterations, seconds, repeats)
    check_noise_settings(max_noise_pct, max_repeats)
    for length in seq_lengths or []:
        check_count("--seq-lengths", length, 1)
    if eval_shards:
        shard_files(eval_shards)  # a folder without data files fails now, not after the matrix
    done = finished_cells(resume) if resume else None
    if cluster:
        import_ray()  # without Ray: say how to install it now, not after loading the data
    old = load_report(baseline) if baseline else None  # a bad baseline fails now, not after the whole run
    overrides = dict(
        targets=targets,
        precisions=precisions,
        eval_data=eval_data,
        calibration=calibration,
        batches=batches,
        threads=threads,
        warmup=warmup,
        iterations=iterations,
        seconds=seconds,
        repeats=repeats,
        max_noise_pct=max_noise_pct,
        max_repeats=max_repeats,
        seq_lengths=seq_lengths,
        artifacts_dir=Path(artifacts_dir) if artifacts_dir else None,
    )
    if case is not None:
        cfg = load_case(case, **overrides)
        check_bench_settings(
            cfg.batches,
            cfg.threads,
            cfg.warmup,
            cfg.iterations,
            cfg.seconds,
            cfg.repeats,
            flag=f"benchmark case {case}: ",
        )
    else:
        cfg = BenchConfig(source=str(source), targets=targets or ["onnx"], precisions=precisions or ["fp32"])
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
    cfg.convert_options = {k: v for k, v in convert_options.items() if v is not None}
    cfg.devices = {**cfg.devices, **(devices or {})}
    out_dir = Path(out_dir)

    def on_cell(cells, source):  # an interrupted run leaves report.json with what finished: --resume takes it
        write_partial(out_dir, cfg, cells, source)

    if cluster:
        report = run_on_cluster(cfg, out_dir, cluster, progress, done, on_cell, artifact_store)
    else:
        report = run_benchmark(cfg, out_dir, progress, done, on_cell)
    if cluster:
        report["cluster"] = cluster
    if eval_shards:
        with progress.step(f"scoring every classifier cell on each shard of {eval_shards}"):
            count = score_cells(report["cells"], eval_shards, cluster)
        report["eval_shards"] = {"data": str(eval_shards), "shards": count}
    regressions = check(report, old, max_accuracy_drop, max_latency_regression) if old else []
    report["gate"] = {
        "baseline": str(baseline) if baseline else None,
        "max_accuracy_drop_pt": max_accuracy_drop,
        "max_latency_regression_pct": max_latency_regression,
        "regressions": regressions,
        "latency_not_compared": hardware_change(report, old) if old and max_latency_regression is not None else None,
    }
    return BenchResult(report, write_reports(report, out_dir), regressions)
