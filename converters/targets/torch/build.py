"""The `torch` target: a `torch.export` program (`model.pt2`), the reference artifact run by the torch backend."""

from __future__ import annotations

from pathlib import Path

from bmsdk.converters.sources.loader import Source, example_feeds
from bmsdk.converters.target import BuildResult
from bmsdk.errors import ConversionError

MODEL_FILE = "model.pt2"


def build(source: Source, folder: Path, precision: str, calibration, options: dict) -> BuildResult:
    import torch

    if source.module is None:
        raise ConversionError("the torch target needs a PyTorch source", "convert ONNX sources to --target onnx")
    feeds = {k: torch.from_numpy(v) for k, v in example_feeds(source.inputs, batch=2, sequence=8).items()}
    # Dim.DYNAMIC lets export infer each range (e.g. sequence <= max_position_embeddings) instead of failing on it
    dynamic_shapes = {
        s.name: {i: torch.export.Dim.DYNAMIC for i, d in enumerate(s.shape) if isinstance(d, str)}
        for s in source.inputs
    }
    try:
        program = torch.export.export(source.module, (), kwargs=feeds, dynamic_shapes=dynamic_shapes)
    except Exception as e:
        raise ConversionError(
            f"torch.export failed: {str(e).strip().splitlines()[0][:400]}", "run with --debug for details"
        ) from e
    torch.export.save(program, str(folder / MODEL_FILE))
    return BuildResult(model_file=MODEL_FILE, toolchain={"torch": torch.__version__})
