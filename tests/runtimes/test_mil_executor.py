"""The numpy MIL reference executor: ops checked against torch on a converted model that uses them, compressed
weights decompressed exactly as coremltools defines them, fp16 saturation, and a clear error for unknown ops."""

from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")


def _convert(module, example, tmp_path, name="m", precision="fp32"):
    import torch

    traced = torch.jit.trace(module.eval(), example, check_trace=False)
    model = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=example.shape)],
        outputs=[ct.TensorType(name="y")],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS17,
        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
    )
    path = tmp_path / f"{name}.mlpackage"
    model.save(str(path))
    return path


def test_cnn_ops_match_torch(tmp_path):
    """Grouped/strided/dilated/padded convs, pools, batch norm and activations, each run by the executor."""
    import torch
    from torch import nn

    from bmsdk.runtimes.mil_executor import MilProgram

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4),
        nn.SiLU(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(8, 16, 1),
        nn.Sigmoid(),
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
        nn.Hardtanh(-0.5, 0.5),
        nn.Conv2d(16, 4, (2, 3), padding="same"),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 17, 15)
    program = MilProgram(_convert(net, x, tmp_path))
    ops = {s.op_type for s in program.steps}
    assert {"conv", "max_pool", "avg_pool", "sigmoid", "clip"} <= ops, ops
    got = program.run({"x": x.numpy()})["y"]
    want = net.eval()(x).detach().numpy()
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5


def test_transformer_ops_match_torch(tmp_path):
    import torch
    from torch import nn

    from bmsdk.runtimes.mil_executor import MilProgram

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
            self.norm = nn.LayerNorm(16)
            self.ff = nn.Linear(16, 16)

        def forward(self, x):
            h = self.norm(x + self.attn(x, x, x, need_weights=False)[0])
            h = torch.nn.functional.gelu(self.ff(h), approximate="tanh") + torch.nn.functional.gelu(h)
            return torch.cat([h[:, :2], h[:, -1:]], dim=1).softmax(-1).split(8, dim=-1)[1].sum(-1)

    torch.manual_seed(0)
    block, x = Block().eval(), torch.randn(2, 5, 16)
    program = MilProgram(_convert(block, x, tmp_path))
    assert {"layer_norm", "softmax", "matmul", "gelu", "split", "concat"} <= {s.op_type for s in program.steps}
    got = program.run({"x": x.numpy()})["y"]
    want = block(x).detach().numpy()
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5


def test_fp16_results_saturate_instead_of_overflowing():
    from bmsdk.runtimes.mil_executor import store

    out = store(np.array([-3.4e38, 1e5, 1.0001, np.nan], np.float32), np.dtype(np.float16))
    assert out[0] == -65504 and out[1] == 65504  # ±inf on overflow would make 0 * mask = NaN
    assert out[2] == np.float32(np.float16(1.0001)) and np.isnan(out[3])
    assert out.dtype == np.float32


def test_unknown_op_is_named(tmp_path):
    import torch

    from bmsdk.errors import UnsupportedError
    from bmsdk.runtimes.mil_executor import MilProgram

    class Shuffled(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.pixel_shuffle(x, 2)

    path = _convert(Shuffled(), torch.randn(2, 4, 2, 2), tmp_path)
    with pytest.raises(UnsupportedError, match="pixel_shuffle"):
        MilProgram(path)


@pytest.mark.parametrize("exclusive, reverse", [(False, False), (True, False), (False, True), (True, True)])
def test_cumsum_exclusive_and_reverse(exclusive, reverse):
    from bmsdk.runtimes.mil_ops import OPS

    x = np.arange(1, 13, dtype=np.int32).reshape(3, 4)
    got = OPS["cumsum"]({"x": x, "axis": 1, "exclusive": exclusive, "reverse": reverse})
    flipped = x[:, ::-1] if reverse else x
    want = np.cumsum(flipped, axis=1) - (flipped if exclusive else 0)
    np.testing.assert_array_equal(got, want[:, ::-1] if reverse else want)
    assert got.dtype == np.int32


# --- compressed weights, against coremltools' own definitions -------------------------------------------


def _iOS16():
    from coremltools.converters.mil.mil.ops.defs.iOS16 import constexpr_ops

    return constexpr_ops


def _iOS18():
    from coremltools.converters.mil.mil.ops.defs.iOS18 import compression

    return compression


def test_affine_dequantize_matches_coremltools():
    from bmsdk.runtimes.mil_ops import OPS

    rng = np.random.default_rng(0)
    data = rng.integers(-128, 128, (6, 5)).astype(np.int8)
    zero, scale = rng.integers(-3, 3, 6).astype(np.int8), rng.random(6).astype(np.float16)
    want = _iOS16().constexpr_affine_dequantize.decompress(data, zero, scale, 0)
    got = OPS["constexpr_affine_dequantize"]({"quantized_data": data, "zero_point": zero, "scale": scale, "axis": 0})
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-3)


@pytest.mark.parametrize("nbits", [2, 4, 6, 8])
def test_lut_iOS16_matches_coremltools(nbits):
    from coremltools.optimize._utils import pack_elements_into_bits

    from bmsdk.runtimes.mil_ops import OPS

    rng = np.random.default_rng(nbits)
    indices = rng.integers(0, 2**nbits, 7 * 9).astype(np.uint8)
    lut = rng.standard_normal(2**nbits).astype(np.float32)
    packed = pack_elements_into_bits(indices, nbits)
    shape = np.array([7, 9], np.uint32)
    want = _iOS16().constexpr_lut_to_dense.decompress(lut, packed, shape)
    got = OPS["constexpr_lut_to_dense"]({"lut": lut, "indices": packed, "shape": shape})
    np.testing.assert_array_equal(got, want)


def test_sparse_iOS16_matches_coremltools():
    from bmsdk.runtimes.mil_ops import OPS

    rng = np.random.default_rng(1)
    dense = rng.standard_normal((5, 7)).astype(np.float32) * (rng.random((5, 7)) > 0.5)
    mask = np.packbits((dense != 0).reshape(-1), bitorder="little")
    values = dense[dense != 0]
    want = _iOS16().constexpr_sparse_to_dense.decompress(values, mask, np.array([5, 7], np.uint32))
    got = OPS["constexpr_sparse_to_dense"]({"nonzero_data": values, "mask": mask, "shape": np.array([5, 7], np.uint32)})
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, dense)


def test_iOS18_blockwise_lut_and_sparse_match_coremltools():
    from bmsdk.runtimes.mil_ops import OPS

    rng = np.random.default_rng(2)
    data = rng.integers(-8, 8, (4, 64)).astype(np.int8)
    scale, offset = rng.random((4, 2)).astype(np.float16), rng.integers(-2, 2, (4, 2)).astype(np.int8)
    want = _iOS18().constexpr_blockwise_shift_scale.decompress(data, scale, offset)
    got = OPS["constexpr_blockwise_shift_scale"]({"data": data, "scale": scale, "offset": offset})
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-3)

    indices = rng.integers(0, 16, (4, 6)).astype(np.uint8)
    lut = rng.standard_normal((2, 1, 16, 1)).astype(np.float16)  # one LUT per 2 rows
    want = _iOS18().constexpr_lut_to_dense.decompress(indices, lut, None)
    np.testing.assert_array_equal(OPS["constexpr_lut_to_dense"]({"indices": indices, "lut": lut}), want)

    mask = (rng.random((3, 4)) > 0.5).astype(np.uint8)
    values = rng.standard_normal(int(mask.sum())).astype(np.float32)
    want = _iOS18().constexpr_sparse_to_dense.decompress(values, mask)
    np.testing.assert_array_equal(OPS["constexpr_sparse_to_dense"]({"nonzero_data": values, "mask": mask}), want)


@pytest.mark.parametrize("scale", [2, 3, 0.5])
def test_upsample_nearest_neighbor_matches_torch(scale):
    import torch

    from bmsdk.runtimes.mil_ops import OPS

    x = np.random.default_rng(0).normal(size=(2, 3, 6, 4)).astype(np.float32)
    got = OPS["upsample_nearest_neighbor"]({"x": x, "scale_factor_height": scale, "scale_factor_width": scale})
    want = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=scale, mode="nearest").numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("scale", [2, 3])
def test_upsample_bilinear_matches_torch(align_corners, scale):
    import torch

    from bmsdk.runtimes.mil_ops import OPS

    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    got = OPS["upsample_bilinear"](
        {"x": x, "scale_factor_height": scale, "scale_factor_width": scale, "align_corners": align_corners}
    )
    want = torch.nn.functional.interpolate(
        torch.from_numpy(x), scale_factor=scale, mode="bilinear", align_corners=align_corners
    ).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_norm_and_log_sum_reductions_match_torch(tmp_path):
    """ConvNeXt V2's global response norm and Swin V2's cosine attention convert to reduce_l2_norm; the executor
    runs it and the other norm / log-sum reductions coremltools emits."""
    import torch

    from bmsdk.runtimes.mil_executor import MilProgram

    class Norms(torch.nn.Module):
        def forward(self, x):
            l2 = torch.norm(x, p=2, dim=(2, 3), keepdim=True)
            l1 = torch.norm(x, p=1, dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)
            lse = torch.logsumexp(x, dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)
            return x / (l2 + 1e-6) + l1 + lse

    x = torch.randn(2, 4, 5, 6)
    program = MilProgram(_convert(Norms(), x, tmp_path))
    ops = {s.op_type for s in program.steps}
    assert {"reduce_l2_norm", "reduce_log_sum_exp"} <= ops, ops
    got = program.run({"x": x.numpy()})["y"]
    np.testing.assert_allclose(got, Norms()(x).numpy(), rtol=1e-4, atol=1e-4)
