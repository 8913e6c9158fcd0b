"""What the end-to-end tests of the tasks share: one conversion per (architecture, target, precision), the
eval report of a conversion that must pass, a short `bmsdk bench` run."""

from __future__ import annotations

from pathlib import Path


def conversions(root: Path, sources: dict, eval_data: Path, calibrate: bool = False):
    """`get(arch, target, precision="fp32")`: the ConversionResult of sources[arch] (a path, or a factory spec and
    its weights), converted once with eval_data (and, with `calibrate`, the same data as int8 calibration)."""
    import bmsdk

    cache: dict = {}

    def get(arch: str, target: str, precision: str = "fp32"):
        if (arch, target, precision) not in cache:
            source, weights = sources[arch] if isinstance(sources[arch], tuple) else (str(sources[arch]), None)
            cache[arch, target, precision] = bmsdk.convert(
                source,
                target=target,
                precision=precision,
                eval_data=eval_data,
                calibration=str(eval_data) if calibrate and precision == "int8" else None,
                weights=weights,
                output=root / f"{arch}-{target}-{precision}.bmsdk",
            )
        return cache[arch, target, precision]

    return get


def build_all(build, root: Path) -> dict[str, Path]:
    """{arch: folder} of one tiny model per architecture (a BERT and a RoBERTa) made by `build(arch, folder)`."""
    return {arch: build(arch, root / arch) for arch in ("bert", "roberta")}


def checked_eval(result, precision: str):
    """The eval report of a conversion that must have validated and passed (fp32: logits within 1e-4)."""
    v = result.manifest.validation
    assert v.validated and v.passed, v.reason
    assert precision != "fp32" or v.samples.max_abs_error < 1e-4
    return v.eval


def quick_bench(source: Path, eval_data: Path, out: Path) -> tuple[dict, dict]:
    """(the ONNX fp32 cell, the source model's row) of a short `bmsdk bench` run with eval data."""
    import bmsdk

    options = dict(targets=["onnx"], precisions=["fp32"], batches=[1], repeats=1, iterations=3, warmup=1, seconds=0.5)
    report = bmsdk.benchmark(str(source), out, eval_data=str(eval_data), **options).report
    assert report["cells"][0]["status"] == "validated", report["cells"][0].get("reason")
    return report["cells"][0], report["source_model"]
