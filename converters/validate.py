"""Checking an artifact against its source: sample outputs within per-precision tolerances, and the task metric.

numpy only (with the runtime that runs the artifact), so `bmsdk validate` works wherever a runtime is installed.
"""

from __future__ import annotations

from bmsdk.compare import compare_outputs
from bmsdk.errors import BackendUnavailableError, UnsupportedError
from bmsdk.progress import SILENT
from bmsdk.runtimes import open_backend
from bmsdk.runtimes.model import Model

from .registry import get_target


def validate_artifact(folder, manifest, sample_feeds: dict, sample_reference: dict, eval_data=None, source=None,
                      progress=None, source_outputs: dict | None = None) -> dict:
    """Run the artifact on its own backend: samples against the source's outputs, and the metric on `eval_data`.

    `source` is a Model over the source (during conversion) or None (`bmsdk validate` later, from samples.npz).
    Where the backend cannot run here, the result says `validated: false` and why; it never claims a check that did not run.
    """
    progress = progress or SILENT
    target = get_target(manifest.target)
    try:
        backend, backend_label, stand_in_note = open_backend(folder, manifest), None, None
    except BackendUnavailableError as e:
        stand_in = target.stand_in
        if stand_in is None:
            return {"validated": False, "passed": None, "reason": str(e)}
        # the target's own runtime cannot run here: check the numerics of what it will run on a CPU stand-in
        backend = open_backend(folder, manifest, backend=stand_in[0])
        backend_label = f"{backend.name} ({stand_in[1]})"
        stand_in_note = f"validated on a stand-in: the {manifest.target} runtime itself did not run ({e.problem})"
    with Model(folder, manifest, backend) as artifact:
        with progress.step(f"validating on {backend_label or backend.name} ({len(next(iter(sample_feeds.values())))} samples)"):
            try:
                outputs = artifact.run(sample_feeds)
            except UnsupportedError as e:  # e.g. an op the reference executor does not implement
                return {"validated": False, "passed": None, "reason": f"{backend.name} cannot run this artifact: {e}"}
            stats = compare_outputs(sample_reference, outputs, target.tolerance(manifest.precision))
        result = {"validated": True, "backend": backend_label or backend.name, "device_real": backend.device_real,
                  "samples": {"n": int(len(next(iter(sample_feeds.values())))), **stats}, "passed": stats["passed"]}
        if stand_in_note:
            result.update(stand_in=True, device_real=False, note=stand_in_note)
        profile_problems = target.uncovered_inputs(manifest, sample_feeds)
        if profile_problems:
            result["passed"] = False
            result["reason"] = f"samples fall outside the optimization profile: {'; '.join(profile_problems)}"
        if eval_data is not None:
            with progress.step(f"evaluating the artifact on {len(eval_data)} examples"):
                art_out = artifact.primary_outputs(eval_data)
            report: dict = {"data": eval_data.origin, "n": len(eval_data)}
            task = artifact.task_spec
            if task.classifier:
                report["artifact"] = task.metrics(art_out, eval_data.labels, manifest.labels)
            if source is not None:
                key = f"{eval_data.origin}#{len(eval_data)}"
                src_out = (source_outputs or {}).get(key)
                if src_out is None:
                    with progress.step(f"evaluating the source on {len(eval_data)} examples"):
                        src_out = source.primary_outputs(eval_data)
                    if source_outputs is not None:
                        source_outputs[key] = src_out
                report.update(task.agreement(src_out, art_out))
                floor = target.tolerance(manifest.precision).get("min_top1_agreement")
                if floor is not None and report.get("top1_agreement", 1.0) < floor:
                    result["passed"] = False
                    result["reason"] = f"top-1 agreement {report['top1_agreement']:.4f} < {floor} on {eval_data.origin}"
                if task.classifier:
                    report["source"] = task.metrics(src_out, eval_data.labels, manifest.labels)
                    report["delta"] = {k: report["artifact"][k] - report["source"][k] for k in ("accuracy", "macro_f1")}
            result["eval"] = report
    return result
