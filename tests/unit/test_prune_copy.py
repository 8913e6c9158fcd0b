"""Pruning returns a new model: the caller's source module keeps every parameter (a tiny torch CNN, no conversion)."""

from __future__ import annotations

import types

import pytest

from bmsdk.converters.compression import CompressionRequest, prune_stage
from bmsdk.converters.prune import prune
from bmsdk.converters.sources.loader import Source
from bmsdk.manifest import TensorSpec
from bmsdk.progress import SILENT

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.mid = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, pixel_values):
        x = torch.relu(self.mid(torch.relu(self.conv(pixel_values))))
        return self.fc(x.mean(dim=(2, 3)))


def tiny_source() -> Source:
    torch.manual_seed(0)
    return Source(
        format="factory",
        path="tests:tiny_cnn",
        task="image-classification",
        inputs=[TensorSpec("pixel_values", "float32", ["batch", 3, 8, 8])],
        outputs=[TensorSpec("logits", "float32", ["batch", 4])],
        module=TinyCNN().eval(),
        info={"format": "factory"},
    )


def snapshot(module) -> dict:
    return {name: p.detach().clone() for name, p in module.state_dict().items()}


def assert_unchanged(module, before: dict) -> None:
    after = module.state_dict()
    assert set(after) == set(before)
    for name, value in before.items():
        assert after[name].shape == value.shape and torch.equal(after[name], value), name


@pytest.mark.parametrize("method", ["channels", "magnitude", "2:4"])
def test_prune_leaves_the_source_module_unchanged(method):
    source = tiny_source()
    module, before = source.module, snapshot(source.module)
    pruned, report = prune(source, 0.5, method, "magnitude", None)
    assert source.module is module and pruned.module is not module
    assert_unchanged(module, before)
    assert report.nonzero_params.after < report.nonzero_params.before
    assert pruned.inputs == source.inputs and pruned.task == source.task


def test_prune_stage_returns_a_new_source_and_leaves_the_callers_alone():
    source = tiny_source()
    before = snapshot(source.module)
    request = CompressionRequest(prune=0.5, method="channels")
    reference = types.SimpleNamespace(runner=source)  # stands in for the Model over the source: no eval data to score
    pruned, report, outputs = prune_stage(request, source, reference, None, None, None, None, SILENT)
    assert_unchanged(source.module, before)
    assert source.info == {"format": "factory"}  # the pruning is recorded on the new source only
    assert pruned.info["pruning"] == {"method": "channels", "ratio": 0.5, "importance": "magnitude"}
    assert report.params.after < report.params.before and outputs is None
    assert pruned.module.conv.out_channels < source.module.conv.out_channels
