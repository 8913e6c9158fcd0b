"""Quantization under an accuracy budget, checked on the deployed artifact, and the latency objective.

`deliver` drives repeated builds of any target through `attempt(folder, precision, float_layers) -> Manifest`
(build, validate on the artifact's own runtime, write the manifest). While the accuracy drop is over budget, the
most sensitive layers (ranked on calibration data) go back to float, one group at a time (search.py). With the latency
objective, the quantized artifact is timed against its float twin on the same runtime and the faster one that
meets the budget ships.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bmsdk.artifact import load_samples
from bmsdk.converters.layers import display
from bmsdk.converters.search import SearchResult, Trial, fallback_search
from bmsdk.converters.sensitivity import rank_layers
from bmsdk.errors import BackendUnavailableError
from bmsdk.runtimes.model import load
from bmsdk.sections import Budget, BudgetRound, LayerError, Objective
from bmsdk.timing import repeated_latency

LATENCY_RUNS = {"warmup": 10, "iterations": 50, "seconds": 3.0, "repeats": 3}
MAX_ROUNDS = 8  # rebuilds at most: the ranked layers go back to float in this many groups
EPSILON_PT = 1e-9  # accuracy differences of whole examples carry float round-off: 0.5000000000004 fits 0.5


def fits(drop: float | None, max_drop: float) -> bool:
    return drop is not None and drop <= max_drop + EPSILON_PT


def accuracy_drop_pt(manifest, baseline: float | None) -> float | None:
    """Points of accuracy the artifact lost against `baseline` (the unpruned source), measured on the eval data."""
    ev = manifest.validation.eval
    if ev is None or ev.artifact is None:
        return None
    base = baseline if baseline is not None else ev.source.accuracy if ev.source else None
    return None if base is None else 100 * (base - ev.artifact.accuracy)


def deliver(
    attempt: Callable,
    folder: Path,
    precision: str,
    request,
    spec,
    module,
    ranking_feeds,
    baseline: float | None,
    progress,
) -> object:
    """The manifest of the artifact left in `folder`, its `compression` saying what the budget and objective decided."""
    manifest = attempt(folder, precision, [])
    quantized = precision != "fp32"
    budget = None
    if request.max_accuracy_drop is not None and accuracy_drop_pt(manifest, baseline) is None:
        budget = Budget(
            max_drop_pt=request.max_accuracy_drop,
            drop_pt=None,
            met=False,
            float_layers=[],
            reason="accuracy budget not checked: the artifact's accuracy could not be measured here "
            f"({manifest.validation.reason or 'no evaluation result'})",
        )
    elif request.max_accuracy_drop is not None:
        max_drop = request.max_accuracy_drop
        budget, manifest = (
            _fit_budget(attempt, folder, precision, max_drop, spec, module, ranking_feeds, baseline, manifest, progress)
            if quantized
            else _float_budget(manifest, max_drop, baseline)
        )
    if request.objective == "latency" and quantized:
        manifest = _faster(attempt, folder, manifest, budget, request.max_accuracy_drop, baseline, progress)
    if budget is not None:
        manifest.compression.budget = budget
        if not budget.met:
            manifest.validation.passed = False
            manifest.validation.reason = budget.reason
    manifest.write(folder)
    return manifest


def _float_budget(manifest, max_drop: float, baseline) -> tuple[Budget, object]:
    drop = accuracy_drop_pt(manifest, baseline)
    met = fits(drop, max_drop)
    reason = None if met else f"accuracy budget not met: drop {drop:.2f} pt > {max_drop} pt (no quantization to undo)"
    return Budget(max_drop_pt=max_drop, drop_pt=drop, met=met, float_layers=[], reason=reason), manifest


def _fit_budget(
    attempt, folder, precision, max_drop, spec, module, ranking_feeds, baseline, manifest, progress
) -> tuple[Budget, object]:
    """The budget's outcome, and the manifest of the last build (left in `folder`): the float-fallback search over
    source layers, ranked by int8 sensitivity, each trial a build validated on the artifact's runtime."""
    drop = accuracy_drop_pt(manifest, baseline)
    progress.info(f"    accuracy drop {drop:+.2f} pt (budget {max_drop} pt)")
    budget = Budget(max_drop_pt=max_drop, baseline_accuracy=baseline, drop_pt=drop, met=False, float_layers=[])
    first = Trial([], fits(drop, max_drop), drop, manifest)
    result = SearchResult(first=first, final=first)
    if not first.ok and not spec.capabilities.float_fallback:
        budget.reason = (
            f"accuracy budget not met: drop {drop:.2f} pt > {max_drop} pt, and target '{spec.name}' "
            "cannot keep layers in float"
        )
    elif not first.ok:
        with progress.step("ranking layers by int8 sensitivity on calibration data"):
            ranking = rank_layers(module, ranking_feeds)
        budget.ranking = [LayerError(layer=display(r["layer"]), error=r["error"]) for r in ranking[:10]]
        names = [r["layer"] for r in ranking]
        rebuild = LayerRebuild(attempt, folder, precision, max_drop, baseline, progress, len(names))
        result = fallback_search(names, names, rebuild, direction="add", max_rounds=MAX_ROUNDS, first=first)
        if not result.met:
            budget.reason = (
                f"accuracy budget not met: drop {result.final.score:.2f} pt > {max_drop} pt even with all "
                f"{len(result.float_units)} quantizable layers in float"
            )
    budget.drop_pt, budget.met = result.final.score, result.met
    budget.float_layers = [display(n) for n in result.float_units]
    budget.rounds = [BudgetRound(float_layers=len(t.float_units), drop_pt=t.score) for t in result.rounds]
    return budget, result.final.outcome


@dataclass
class LayerRebuild:
    """The budget search's `evaluate`: rebuild with `float_layers` in float, and measure the accuracy drop."""

    attempt: Callable
    folder: Path
    precision: str
    max_drop: float
    baseline: float | None
    progress: object
    layers: int

    def __call__(self, float_layers: list[str]) -> tuple[bool, float | None, object]:
        with self.progress.step(f"rebuilding with {len(float_layers)} of {self.layers} layers in float"):
            manifest = self.attempt(self.folder, self.precision, float_layers)
        drop = accuracy_drop_pt(manifest, self.baseline)
        self.progress.info(f"    accuracy drop {drop:+.2f} pt")
        return fits(drop, self.max_drop), drop, manifest


def _latency_ms(folder: Path, feeds: dict) -> float:
    with load(folder, threads=1) as model:
        if not model.runner.device_real:
            raise BackendUnavailableError(
                f"only a reference executor ({model.backend}) runs {model.manifest.target} here, "
                "and its latency is not the device's",
                "decide on the device itself",
            )
        return repeated_latency(
            lambda: model.run(feeds),
            LATENCY_RUNS["warmup"],
            LATENCY_RUNS["iterations"],
            LATENCY_RUNS["seconds"],
            LATENCY_RUNS["repeats"],
        )["p50_ms"]


def _latency_decision(
    precision: str, quant_ms: float, float_ms: float, quant_fits: bool, float_fits: bool, timing: str
) -> Objective:
    """Ship fp32 when it fits the budget and is faster (or the quantized one misses the budget); the reason why."""
    ship_float = float_fits and (float_ms <= quant_ms or not quant_fits)
    faster = "fp32" if float_ms <= quant_ms else precision
    if ship_float:
        reason = (
            f"fp32 is faster ({timing})"
            if faster == "fp32"
            else f"{precision} misses the accuracy budget and fp32 fits it ({timing})"
        )
    else:
        reason = (
            f"{faster} is faster ({timing})"
            if faster != "fp32"
            else f"fp32 is faster but misses the accuracy budget ({timing})"
        )
    return Objective(
        objective="latency",
        shipped="fp32" if ship_float else precision,
        reason=reason,
        p50_ms={precision: quant_ms, "fp32": float_ms},
    )


def _replace_contents(folder: Path, other: Path) -> None:
    """`folder` gets `other`'s files in place of its own (the float twin ships in the staged output)."""
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for child in other.iterdir():
        shutil.move(str(child), folder / child.name)


def _faster(attempt, folder: Path, manifest, budget: Budget | None, max_drop, baseline, progress):
    """Build the float twin next to `folder`, time both (batch 1, one thread), and leave the faster one that fits."""

    twin = folder.with_name(folder.name + ".float")
    shutil.rmtree(twin, ignore_errors=True)
    try:
        with progress.step("building the float twin"):
            float_manifest = attempt(twin, "fp32", [])
        inputs, _, _ = load_samples(folder)
        feeds = {k: v[:1] for k, v in inputs.items()}
        backend = manifest.validation.backend or "its runtime"
        try:
            with progress.step(f"timing {manifest.precision} against fp32 on {backend}"):
                quant_ms, float_ms = _latency_ms(folder, feeds), _latency_ms(twin, feeds)
        except BackendUnavailableError as e:  # no honest latency here: keep the requested precision and say so
            manifest.compression.objective = Objective(
                objective="latency", shipped=manifest.precision, reason=f"latency not measured: {e.problem}"
            )
            progress.info(f"    latency objective not applied: {e.problem}")
            return manifest
        float_drop = accuracy_drop_pt(float_manifest, baseline)
        quant_drop = budget.drop_pt if budget else accuracy_drop_pt(manifest, baseline)
        float_fits = max_drop is None or fits(float_drop, max_drop)
        timing = f"{manifest.precision} {quant_ms:.3f} ms vs fp32 {float_ms:.3f} ms p50 on {backend}, batch 1, 1 thread"
        decision = _latency_decision(
            manifest.precision, quant_ms, float_ms, budget is None or budget.met, float_fits, timing
        )
        decision.drop_pt = {manifest.precision: quant_drop, "fp32": float_drop}
        progress.info(f"    shipping {decision.shipped}: {decision.reason}")
        if decision.shipped == "fp32":
            _replace_contents(folder, twin)
            manifest = float_manifest
            if budget is not None:
                budget.drop_pt, budget.met, budget.shipped_precision, budget.reason = float_drop, True, "fp32", None
        manifest.compression.objective = decision
        return manifest
    finally:
        shutil.rmtree(twin, ignore_errors=True)
