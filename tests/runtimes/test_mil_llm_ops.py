"""The MIL ops of language-model programs (iOS18 attention, in-place slice updates, states), each checked against
torch or coremltools' own definition, with broadcasting; and a stateful program run call after call."""

from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")

from bmsdk.runtimes.mil_ops import OPS, StateBuffer  # noqa: E402


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize(
    "q_shape,kv_shape,mask_shape",
    [
        ((2, 4, 5, 8), (2, 4, 7, 8), None),
        ((2, 4, 5, 8), (2, 4, 7, 8), (5, 7)),  # a mask broadcast over batch and heads
        ((2, 4, 5, 8), (2, 4, 7, 8), (2, 1, 5, 7)),  # over heads
        ((3, 1, 8), (3, 6, 8), (3, 1, 6)),  # rank 3, one query (a decode step)
    ],
)
@pytest.mark.parametrize("mask_kind", ["bool", "float"])
def test_sdpa_matches_torch(q_shape, kv_shape, mask_shape, mask_kind):
    rng = _rng(1)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in (q_shape, kv_shape, kv_shape))
    args = {"query": q, "key": k, "value": v}
    mask = None
    if mask_shape is not None:
        keep = rng.random(mask_shape) > 0.3
        keep[..., 0] = True  # every query sees a key (a row with none is NaN in both)
        mask = keep if mask_kind == "bool" else np.where(keep, 0.0, -1e4).astype(np.float32)
        args["attn_mask"] = mask
    got = OPS["scaled_dot_product_attention"](args)
    want = torch.nn.functional.scaled_dot_product_attention(
        *(torch.from_numpy(t) for t in (q, k, v)), attn_mask=None if mask is None else torch.from_numpy(mask)
    )
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


def test_sdpa_row_with_no_key_is_nan_as_in_torch():
    q, k = np.ones((1, 2, 4), np.float32), np.ones((1, 3, 4), np.float32)
    mask = np.array([[True, True, False], [False, False, False]])
    got = OPS["scaled_dot_product_attention"]({"query": q, "key": k, "value": k, "attn_mask": mask})
    assert np.isfinite(got[0, 0]).all() and np.isnan(got[0, 1]).all()


def _slice_args(rng, shape):
    begin = [int(rng.integers(-s, s)) for s in shape]
    end = [int(rng.integers(-s, s + 1)) for s in shape]
    stride = [int(rng.choice([1, 1, 2, -1])) for _ in shape]
    masks = {m: [bool(rng.random() < 0.3) for _ in shape] for m in ("begin_mask", "end_mask", "squeeze_mask")}
    masks["squeeze_mask"] = [sq and not bm for sq, bm in zip(masks["squeeze_mask"], masks["begin_mask"])]
    return dict(begin=np.array(begin, np.int32), end=np.array(end, np.int32), stride=np.array(stride), **masks)


def test_slice_by_index_and_slice_update_match_coremltools():
    """Random begin/end/stride/masks: the same slice as coremltools' own solver, and the update written there."""
    from coremltools.converters.mil.mil.ops.defs._utils import solve_slice_by_index_slice

    rng = _rng(2)
    for _ in range(200):
        shape = tuple(int(d) for d in rng.integers(1, 6, int(rng.integers(1, 5))))
        x = rng.standard_normal(shape).astype(np.float32)
        args = _slice_args(rng, shape)
        names = ("begin", "end", "stride", "begin_mask", "end_mask", "squeeze_mask")
        index = solve_slice_by_index_slice(shape, *(args[n] for n in names))
        want = x[index]
        squeeze = tuple(i for i, s in enumerate(args["squeeze_mask"]) if s)
        got = OPS["slice_by_index"]({"x": x, **args})
        np.testing.assert_array_equal(got, np.squeeze(want, axis=squeeze) if squeeze else want)
        update = rng.standard_normal(got.shape).astype(np.float32)
        expected = x.copy()
        expected[index] = update.reshape(expected[index].shape)
        np.testing.assert_array_equal(OPS["slice_update"]({"x": x, "update": update, **args}), expected)


def test_slice_update_writes_a_cache_window_like_torch():
    """The KV cache write of a stateful step graph: cache[layer, :, :, n:n+T] = new, the layer axis squeezed."""
    cache = np.zeros((2, 1, 3, 8, 4), np.float32)
    new = _rng(3).standard_normal((1, 3, 2, 4)).astype(np.float32)
    args = dict(
        begin=np.array([1, 0, 0, 5, 0]),
        end=np.array([2, 1, 3, 7, 4]),
        begin_mask=[False, True, True, False, True],
        end_mask=[False, True, True, False, True],
        squeeze_mask=[True, False, False, False, False],
    )
    got = OPS["slice_update"]({"x": cache, "update": new, **args})
    want = torch.zeros(2, 1, 3, 8, 4)
    want[1, :, :, 5:7] = torch.from_numpy(new)
    np.testing.assert_array_equal(got, want.numpy())
    assert not cache.any()  # the input is not written


@pytest.mark.parametrize("lower,upper", [(-1, 0), (0, -1), (1, 2), (0, 0), (-1, -1)])
def test_band_part_matches_torch(lower, upper):
    x = _rng(4).standard_normal((2, 5, 7)).astype(np.float32)
    t = torch.from_numpy(x)
    want = t
    if lower >= 0:
        want = want.triu(-lower)
    if upper >= 0:
        want = want.tril(upper)
    np.testing.assert_array_equal(OPS["band_part"]({"x": x, "lower": lower, "upper": upper}), want.numpy())


def test_concat_interleave():
    a, b = np.arange(6).reshape(3, 2), np.arange(6, 12).reshape(3, 2)
    got = OPS["concat"]({"values": [a, b], "axis": 0, "interleave": True})
    np.testing.assert_array_equal(got, [[0, 1], [6, 7], [2, 3], [8, 9], [4, 5], [10, 11]])
    got = OPS["concat"]({"values": [a, b], "axis": -1, "interleave": True})
    np.testing.assert_array_equal(got, torch.stack([torch.from_numpy(a), torch.from_numpy(b)], -1).reshape(3, 4))
    np.testing.assert_array_equal(OPS["concat"]({"values": [a, b], "axis": 1}), np.concatenate([a, b], 1))


def test_state_ops_read_and_write_the_buffer():
    state = StateBuffer("cache", np.zeros((2, 3), np.float32))
    value = OPS["read_state"]({"input": state})
    value[0, 0] = 5.0  # a read is a copy
    assert state.value[0, 0] == 0
    new = np.ones((2, 3), np.float32)
    assert OPS["coreml_update_state"]({"state": state, "value": new}) is new
    new[0, 0] = 7.0  # the state keeps its own copy
    np.testing.assert_array_equal(state.value, np.ones((2, 3)))
    OPS["write_state"]({"state": state, "value": np.full((2, 3), 2.0, np.float32)})
    assert (state.value == 2).all()


class _Accumulator(torch.nn.Module):
    """y = x + everything seen so far; the running sum is a state written in place (slice by slice)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("total", torch.zeros(2, 4))

    def forward(self, x):
        self.total[0:1, :] += x
        self.total[1:2, :] = x
        return self.total[0:1] * 1.0 + 0.0 * self.total[1:2]


def _stateful(tmp_path, precision):
    traced = torch.jit.trace(_Accumulator().eval(), torch.ones(1, 4), check_trace=False)
    model = ct.convert(
        traced,
        inputs=[ct.TensorType(name="x", shape=(1, 4))],
        outputs=[ct.TensorType(name="y")],
        states=[ct.StateType(wrapped_type=ct.TensorType(shape=(2, 4), dtype=np.float16), name="total")],
        minimum_deployment_target=ct.target.iOS18,
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
    )
    path = tmp_path / f"acc-{precision}.mlpackage"
    model.save(str(path))
    return path


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_stateful_program_keeps_its_state_between_runs(tmp_path, precision):
    from bmsdk.errors import UnsupportedError
    from bmsdk.runtimes.mil_executor import MilProgram

    program = MilProgram(_stateful(tmp_path, precision))
    assert set(program.states) == {"total"} and "total" not in program.inputs
    assert {"read_state", "coreml_update_state"} <= {s.op_type for s in program.steps}
    state = program.make_state()
    xs = [np.array([[1.0, 2.0, 3.0, 4.0]], np.float32) * (i + 1) for i in range(3)]
    for i, x in enumerate(xs):
        y = program.run({"x": x}, state)["y"]
        np.testing.assert_allclose(y, sum(xs[: i + 1]), rtol=1e-3)
    np.testing.assert_allclose(state["total"].value, np.concatenate([sum(xs), xs[-1]]), rtol=1e-3)
    np.testing.assert_allclose(program.run({"x": xs[0]})["y"], xs[0], rtol=1e-3)  # no state: a fresh one
    with pytest.raises(UnsupportedError, match="total"):
        program.run({"x": xs[0]}, {"total": StateBuffer("total", np.zeros((3, 3), np.float32))})
