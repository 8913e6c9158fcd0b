"""Crafting hostile torch.export archives: each one runs `touch MARKER` if torch loads it the unsafe way."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile
from pathlib import Path


class Touch:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plain_archive(path: Path) -> Path:
    """A tiny image classifier (1x4x4 -> 2 classes, dynamic batch) that loads as a source with no options."""
    import torch

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.fc = torch.nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    program = torch.export.export(
        Small(), (torch.randn(3, 1, 4, 4),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
    )
    torch.export.save(program, path)
    return path


def rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a .pt2 with `edit(files)` applied to its entries (paths relative to the archive root)."""
    with zipfile.ZipFile(src) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    root = next(iter(entries)).split("/")[0]
    files = {n[len(root) + 1 :]: v for n, v in entries.items()}
    edit(files)
    with zipfile.ZipFile(dst, "w") as archive:
        for rel, data in files.items():
            archive.writestr(f"{root}/{rel}", data)
    return dst


def _torch_pickle(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _edit_json(files: dict, rel: str, change) -> None:
    data = json.loads(files[rel])
    change(data)
    files[rel] = json.dumps(data).encode()


def sample_inputs(marker):
    return lambda files: files.__setitem__("data/sample_inputs/model.pt", _torch_pickle(Touch(marker)))


def pickled_weight(marker):
    def edit(files):
        config = json.loads(files["data/weights/model_weights_config.json"])
        entry = next(iter(config["config"].values()))
        entry["use_pickle"] = True
        files["data/weights/" + entry["path_name"]] = _torch_pickle(Touch(marker))
        files["data/weights/model_weights_config.json"] = json.dumps(config).encode()

    return edit


def opaque_constant(marker):
    def edit(files):
        meta = {
            "dtype": 1,
            "sizes": [{"as_int": 1}],
            "requires_grad": False,
            "device": {"type": "cpu", "index": None},
            "strides": [{"as_int": 1}],
            "storage_offset": {"as_int": 0},
            "layout": 7,
        }
        _edit_json(
            files,
            "data/constants/model_constants_config.json",
            lambda c: c["config"].__setitem__(
                "evil", {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": False, "tensor_meta": meta}
            ),
        )
        files["data/constants/opaque_obj_0"] = pickle.dumps(Touch(marker))

    return edit


def guard_code(marker):
    code = f"__import__('os').system('touch {marker}') == 0"
    return lambda files: _edit_json(files, "models/model.json", lambda p: p.__setitem__("guards_code", [code]))


def shape_expression(marker):
    def edit(files):
        text = files["models/model.json"].decode()
        symbol = re.search(r"Symbol\\?\('s\d+', positive=True, integer=True\)", text).group(0)
        files["models/model.json"] = text.replace(
            symbol, f"{symbol} + 0*__import__('os').system('touch {marker}')", 1
        ).encode()

    return edit


def graph_target(marker):
    def change(program):
        program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    return lambda files: _edit_json(files, "models/model.json", change)


NEUTRALIZED = {"guards-code": guard_code}


def native_library(marker):
    return lambda files: files.__setitem__("data/aotinductor/model/model.so", b"\x7fELF not really")


def legacy_weights(marker):
    def edit(files):
        del files["data/weights/model_weights_config.json"]
        files["data/weights/model.pt"] = _torch_pickle(Touch(marker))

    return edit


def huge_zero_weight(marker):
    def edit(files):
        config = json.loads(files["data/weights/model_weights_config.json"])
        entry = next(iter(config["config"].values()))
        entry["tensor_meta"]["sizes"] = [{"as_int": 100_000}, {"as_int": 100_000}]
        entry["tensor_meta"]["strides"] = [{"as_int": 100_000}, {"as_int": 1}]
        files["data/weights/" + entry["path_name"]] = b""
        files["data/weights/model_weights_config.json"] = json.dumps(config).encode()

    return edit


def escaping_entry(marker):
    return lambda files: files.__setitem__("../../escape.txt", b"x")


# name -> (edit factory, whether plain torch.export.load(...).module() runs the code: proven in the tests).
# Guard code is not refused but dropped: bmsdk's loader never executes it (tested).
ATTACKS = {
    "sample-inputs-pickle": (sample_inputs, True),
    "weight-use-pickle": (pickled_weight, True),
    "opaque-constant": (opaque_constant, True),
    "shape-expression-eval": (shape_expression, True),
    "graph-target-outside-torch-ops": (graph_target, False),
    "aotinductor-native-code": (native_library, False),
    "legacy-pickled-weights": (legacy_weights, False),
    "zero-filled-10-gigaelement-weight": (huge_zero_weight, False),
    "entry-outside-root": (escaping_entry, False),
}
