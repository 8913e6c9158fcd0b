"""numpy implementations of the MIL ops that CoreML programs of CNNs and transformers use: an op registry, one
small function per op. Each takes the op's inputs by MIL parameter name (arrays, or Python values for strings
and scalars) and returns an array, or a tuple for ops with several outputs.

Arithmetic runs in float32 (float64 for reductions where that is cheaper than being careful); the executor
rounds each result to the dtype the program declares (fp16 included), so fp16 programs keep fp16 storage
semantics with float32 accumulation, as CoreML's GPU and Neural Engine do.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

OPS: dict[str, Callable] = {}


def op(*names: str):
    def register(fn):
        for name in names or (fn.__name__,):
            OPS[name] = fn
        return fn

    return register


def _arg(a: dict, name: str, default=None):
    value = a.get(name)
    return default if value is None else value


def _axes(value, rank: int) -> tuple[int, ...]:
    return tuple(int(v) % rank for v in np.atleast_1d(value))


# --- elementwise -------------------------------------------------------------------------------


def _binary(fn):
    return lambda a: fn(a["x"], a["y"])


for _name, _fn in {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "pow": np.power,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
    "floor_div": np.floor_divide,
    "mod": np.mod,
}.items():
    OPS[_name] = _binary(_fn)


@op()
def real_div(a):
    return np.true_divide(a["x"], a["y"])


def _unary(fn):
    return lambda a: fn(a["x"])


for _name, _fn in {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "neg": np.negative,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "sign": np.sign,
    "sin": np.sin,
    "cos": np.cos,
    "square": np.square,
    "logical_not": np.logical_not,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "relu6": lambda x: np.clip(x, 0, 6),
    "identity": lambda x: x,
}.items():
    OPS[_name] = _unary(_fn)


@op()
def rsqrt(a):
    return 1 / np.sqrt(a["x"] + _arg(a, "epsilon", 1e-12))


@op()
def inverse(a):
    return 1 / (a["x"] + _arg(a, "epsilon", 1e-4))


@op()
def clip(a):
    return np.clip(a["x"], a["alpha"], a["beta"])


def _bilinear_grid(size_in: int, size_out: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (or columns) below and above each output one and the weight of the upper, as MIL defines them."""
    i = np.arange(size_out, dtype=np.float64)
    if align_corners:
        grid = i * ((size_in - 1) / (size_out - 1)) if size_out > 1 else np.zeros(1)
    else:
        spacing = size_in / size_out
        grid = i * spacing + 0.5 * spacing - 0.5
    grid = np.clip(grid, 0, size_in - 1)
    low = np.floor(grid).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, grid - low


@op()
def upsample_bilinear(a):
    """The last two dims scaled by `scale_factor_height/width` (output size floored), bilinear on MIL's grid."""
    x = a["x"]
    height, width = x.shape[-2:]
    out_h = int(np.floor(height * float(_arg(a, "scale_factor_height", 1))))
    out_w = int(np.floor(width * float(_arg(a, "scale_factor_width", 1))))
    corners = bool(_arg(a, "align_corners", False))
    top, bottom, wy = _bilinear_grid(height, out_h, corners)
    left, right, wx = _bilinear_grid(width, out_w, corners)
    xf = x.astype(np.float64)
    rows = xf[..., top, :] * (1 - wy)[:, None] + xf[..., bottom, :] * wy[:, None]
    out = rows[..., left] * (1 - wx) + rows[..., right] * wx
    return out.astype(x.dtype)


@op()
def upsample_nearest_neighbor(a):
    """The last two dims scaled by `scale_factor_height/width` (output size floored): output pixel i takes input
    pixel floor(i / scale), as torch's "nearest" does with a scale factor."""
    x = a["x"]
    height, width = x.shape[-2:]
    scale_h, scale_w = float(_arg(a, "scale_factor_height", 1)), float(_arg(a, "scale_factor_width", 1))
    rows = np.minimum(np.floor(np.arange(int(np.floor(height * scale_h))) / scale_h).astype(np.int64), height - 1)
    cols = np.minimum(np.floor(np.arange(int(np.floor(width * scale_w))) / scale_w).astype(np.int64), width - 1)
    return x[..., rows, :][..., cols]


@op()
def sigmoid_hard(a):
    """min(max(alpha * x + beta, 0), 1); coremltools lowers hardsigmoid and hardswish to it."""
    return np.clip(_arg(a, "alpha", 0.2) * a["x"] + _arg(a, "beta", 0.5), 0, 1).astype(a["x"].dtype, copy=False)


@op()
def thresholded_relu(a):
    """x where x > alpha, else 0."""
    x = a["x"]
    return np.where(x > _arg(a, "alpha", 1.0), x, np.zeros_like(x))


@op()
def leaky_relu(a):
    x = a["x"]
    return np.where(x >= 0, x, x * _arg(a, "alpha", 0.01))


@op()
def erf(a):
    return _erf(a["x"])


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to about 2e-7 absolute (Abramowitz & Stegun 7.1.26), numpy only, in float32."""
    s = np.sign(x)
    z = np.abs(x).astype(np.float32)
    t = 1 / (1 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (s * (1 - poly * np.exp(-z * z))).astype(np.float32)


@op()
def gelu(a):
    x, mode = a["x"], _arg(a, "mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    raise ValueError(f"gelu mode {mode}")


@op()
def select(a):
    return np.where(a["cond"], a["a"], a["b"])


@op()
def cast(a):
    return a["x"]  # the executor casts every result to the dtype the program declares for it


# --- normalisation, softmax, reductions ---------------------------------------------------------


@op()
def softmax(a):
    x, axis = a["x"], int(_arg(a, "axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@op()
def layer_norm(a):
    x = a["x"]
    axes = _axes(_arg(a, "axes", -1), x.ndim)
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    out = centered / np.sqrt(var + _arg(a, "epsilon", 1e-5))
    if a.get("gamma") is not None:
        out = out * a["gamma"]
    if a.get("beta") is not None:
        out = out + a["beta"]
    return out


@op()
def batch_norm(a):
    x = a["x"]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = (x - a["mean"].reshape(shape)) / np.sqrt(a["variance"].reshape(shape) + _arg(a, "epsilon", 1e-5))
    if a.get("gamma") is not None:
        out = out * a["gamma"].reshape(shape)
    if a.get("beta") is not None:
        out = out + a["beta"].reshape(shape)
    return out


def _reduction(fn):
    def run(a):
        x = a["x"]
        axes = None if a.get("axes") is None else _axes(a["axes"], x.ndim)
        return fn(x, axis=axes, keepdims=bool(_arg(a, "keep_dims", False)))

    return run


def _log_sum_exp(x, axis, keepdims):
    peak = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


for _name, _fn in {
    "reduce_mean": np.mean,
    "reduce_sum": np.sum,
    "reduce_max": np.max,
    "reduce_min": np.min,
    "reduce_prod": np.prod,
    # norms and log-sums (ConvNeXt V2's global response norm, Swin V2's cosine attention: reduce_l2_norm)
    "reduce_l2_norm": lambda x, axis, keepdims: np.sqrt(np.sum(np.square(x), axis=axis, keepdims=keepdims)),
    "reduce_l1_norm": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduce_sum_square": lambda x, axis, keepdims: np.sum(np.square(x), axis=axis, keepdims=keepdims),
    "reduce_log_sum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "reduce_log_sum_exp": _log_sum_exp,
}.items():
    OPS[_name] = _reduction(_fn)


@op()
def reduce_argmax(a):
    out = np.argmax(a["x"], axis=int(_arg(a, "axis", -1)))
    return np.expand_dims(out, int(_arg(a, "axis", -1))) if _arg(a, "keep_dims", False) else out


@op()
def cumsum(a):
    """Running sum along `axis` (RoBERTa-family position ids); `exclusive` leaves each element out of its own sum."""
    axis = int(_arg(a, "axis", 0)) % a["x"].ndim
    x = np.flip(a["x"], axis) if _arg(a, "reverse", False) else a["x"]
    out = np.cumsum(x, axis=axis, dtype=x.dtype)
    if _arg(a, "exclusive", False):
        out = np.concatenate([np.zeros_like(np.take(out, [0], axis=axis)), np.delete(out, -1, axis=axis)], axis=axis)
    return np.flip(out, axis) if _arg(a, "reverse", False) else out


# --- linear algebra ------------------------------------------------------------------------------


@op()
def linear(a):
    out = np.matmul(a["x"], a["weight"].T)
    return out + a["bias"] if a.get("bias") is not None else out


@op()
def matmul(a):
    x, y = a["x"], a["y"]
    if _arg(a, "transpose_x", False):
        x = np.swapaxes(x, -1, -2)
    if _arg(a, "transpose_y", False):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


@op()
def einsum(a):
    return np.einsum(a["equation"], *a["values"])


@op()
def scaled_dot_product_attention(a):
    """iOS18: softmax(Q K^T / sqrt(E) + mask) V, as torch defines it. A bool mask says which keys take part (a
    query with none gets NaN, as in torch); a float mask is added to the scores."""
    q, k, v = (np.asarray(a[n], np.float32) for n in ("query", "key", "value"))
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) / np.float32(math.sqrt(q.shape[-1]))
    mask = a.get("attn_mask")
    if mask is not None:
        mask = np.asarray(mask)
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    with np.errstate(invalid="ignore"):  # rows with every key masked: NaN, as in torch
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = e / e.sum(axis=-1, keepdims=True)
    return np.matmul(weights, v)


# --- convolution and pooling ----------------------------------------------------------------------


def _pads(a, x_spatial, kernel, strides, dilations) -> list[tuple[int, int]]:
    pad_type = _arg(a, "pad_type", "valid")
    n = len(kernel)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        pad = [int(p) for p in _arg(a, "pad", [0] * 2 * n)]
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        pads = []
        for size, k, s, d in zip(x_spatial, kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if pad_type == "same" else (big, small))
        return pads
    raise ValueError(f"pad_type {pad_type}")


def _windows(x: np.ndarray, kernel, strides, dilations, pads, value=0.0) -> np.ndarray:
    """(N, C, *out_spatial, *kernel) strided view over the padded input."""
    x = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=value)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    n = len(kernel)
    view = np.lib.stride_tricks.sliding_window_view(x, spans, axis=tuple(range(2, 2 + n)))
    view = view[
        (slice(None), slice(None))
        + tuple(slice(None, None, s) for s in strides)
        + tuple(slice(None, None, d) for d in dilations)
    ]
    return view


@op()
def conv(a):
    x, w = a["x"], a["weight"]
    n = x.ndim - 2
    kernel = w.shape[2:]
    strides = [int(s) for s in _arg(a, "strides", [1] * n)]
    dilations = [int(d) for d in _arg(a, "dilations", [1] * n)]
    groups = int(_arg(a, "groups", 1))
    view = _windows(x, kernel, strides, dilations, _pads(a, x.shape[2:], kernel, strides, dilations))
    batch, channels = x.shape[:2]
    out_spatial = view.shape[2 : 2 + n]
    cg, og = channels // groups, w.shape[0] // groups
    outs = []
    for g in range(groups):
        patches = view[:, g * cg : (g + 1) * cg]  # (N, cg, *out, *k)
        patches = np.moveaxis(patches, 1, 1 + n).reshape(batch * int(np.prod(out_spatial)), -1)  # (N*out, cg*k)
        weights = w[g * og : (g + 1) * og].reshape(og, -1)
        outs.append((patches @ weights.T).reshape(batch, *out_spatial, og))
    out = np.moveaxis(np.concatenate(outs, axis=-1), -1, 1)
    if a.get("bias") is not None:
        out = out + a["bias"].reshape((1, -1) + (1,) * n)
    return out


def _pool(a, reduce, pad_value):
    x = a["x"]
    kernel = [int(k) for k in a["kernel_sizes"]]
    n = len(kernel)
    strides = [int(s) for s in _arg(a, "strides", [1] * n)]
    pads = _pads(a, x.shape[2:], kernel, strides, [1] * n)
    if _arg(a, "ceil_mode", False):
        pads = [
            (lo, hi + (s - (size + lo + hi - k) % s) % s)  # room for a last, partial window
            for (lo, hi), size, k, s in zip(pads, x.shape[2:], kernel, strides)
        ]
    view = _windows(x, kernel, strides, [1] * n, pads, pad_value)
    axes = tuple(range(-n, 0))
    if reduce == "max":
        return view.max(axis=axes)
    total = view.sum(axis=axes)
    if _arg(a, "exclude_padding_from_average", False):
        ones = _windows(np.ones((1, 1, *x.shape[2:]), x.dtype), kernel, strides, [1] * n, pads)
        return total / ones.sum(axis=axes)
    return total / float(np.prod(kernel))


@op()
def max_pool(a):
    return _pool(a, "max", -np.inf)


@op()
def avg_pool(a):
    return _pool(a, "avg", 0.0)


# --- shapes and indexing ----------------------------------------------------------------------------


@op()
def shape(a):
    return np.asarray(a["x"].shape, dtype=np.int32)


@op()
def reshape(a):
    x, shape = a["x"], [int(d) for d in np.atleast_1d(a["shape"])]
    if len(shape) == x.ndim:
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


@op()
def transpose(a):
    return np.transpose(a["x"], [int(p) for p in a["perm"]])


@op()
def expand_dims(a):
    x = a["x"]
    axes = [int(v) for v in np.atleast_1d(a["axes"])]
    rank = x.ndim + len(axes)
    return np.expand_dims(x, tuple(v % rank for v in axes))


@op()
def squeeze(a):
    x = a["x"]
    if a.get("axes") is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=_axes(a["axes"], x.ndim))


@op()
def concat(a):
    values, axis = [np.atleast_1d(v) for v in a["values"]], int(a["axis"])
    if not _arg(a, "interleave", False):
        return np.concatenate(values, axis=axis)
    # interleave: output[i::n] = values[i] along the axis (all inputs have the same shape)
    stacked = np.stack(values, axis=(axis % values[0].ndim) + 1)
    shape = list(values[0].shape)
    shape[axis] *= len(values)
    return stacked.reshape(shape)


@op()
def stack(a):
    return np.stack(a["values"], axis=int(a["axis"]))


@op()
def split(a):
    x, axis = a["x"], int(a["axis"])
    if a.get("split_sizes") is not None:
        return tuple(np.split(x, np.cumsum([int(s) for s in a["split_sizes"]])[:-1], axis=axis))
    return tuple(np.split(x, int(a["num_splits"]), axis=axis))


@op()
def tile(a):
    return np.tile(a["x"], [int(r) for r in np.atleast_1d(a["reps"])])


@op()
def range_1d(a):
    return np.arange(a["start"], a["end"], a["step"])


@op()
def fill(a):
    return np.full([int(d) for d in np.atleast_1d(a["shape"])], _arg(a, "value", 0.0))


@op()
def fill_like(a):
    return np.full(a["ref_tensor"].shape, _arg(a, "value", 0.0))


@op()
def band_part(a):
    """Keep the band lower below / upper above the diagonal of the last two axes (negative: all of that side)."""
    x = a["x"]
    lower, upper = int(_arg(a, "lower", -1)), int(_arg(a, "upper", -1))
    m = np.arange(x.shape[-2])[:, None]
    n = np.arange(x.shape[-1])[None, :]
    keep = ((lower < 0) | (m - n <= lower)) & ((upper < 0) | (n - m <= upper))
    return np.where(keep, x, np.zeros((), x.dtype))


@op()
def pad(a):
    x, pads = a["x"], [int(p) for p in a["pad"]]
    widths = [(0, 0)] * (x.ndim - len(pads) // 2) + [(pads[i], pads[i + 1]) for i in range(0, len(pads), 2)]
    mode = _arg(a, "mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, constant_values=_arg(a, "constant_val", 0.0))
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[mode])


def _slice_index(a, rank: int) -> tuple[tuple, tuple[int, ...]]:
    """The numpy index of a slice_by_index / slice_update (with its masks) and the axes its squeeze_mask drops."""
    begin = [int(v) for v in np.atleast_1d(_arg(a, "begin", [0] * rank))]
    end = [int(v) for v in np.atleast_1d(_arg(a, "end", [0] * rank))]
    stride = [int(v) for v in np.atleast_1d(_arg(a, "stride", [1] * rank))]
    begin_mask = list(np.atleast_1d(_arg(a, "begin_mask", [False] * rank)))
    end_mask = list(np.atleast_1d(_arg(a, "end_mask", [False] * rank)))
    squeeze_mask = list(np.atleast_1d(_arg(a, "squeeze_mask", [False] * rank)))
    index, squeeze_axes = [], []
    for i in range(rank):
        if squeeze_mask[i]:
            index.append(slice(begin[i], begin[i] + 1 if begin[i] != -1 else None))
            squeeze_axes.append(i)
        else:
            index.append(slice(None if begin_mask[i] else begin[i], None if end_mask[i] else end[i], stride[i]))
    return tuple(index), tuple(squeeze_axes)


@op()
def slice_by_index(a):
    x = a["x"]
    index, squeeze_axes = _slice_index(a, x.ndim)
    out = x[index]
    return np.squeeze(out, axis=squeeze_axes) if squeeze_axes else out


@op()
def slice_update(a):
    """iOS18: x with x[slice] = update (the slice as slice_by_index reads it; squeezed axes are size 1)."""
    x = a["x"]
    index, _ = _slice_index(a, x.ndim)
    out = np.array(x, copy=True)
    target = out[index]
    out[index] = np.asarray(a["update"]).reshape(target.shape)
    return out


@op()
def slice_by_size(a):
    x = a["x"]
    begin = [int(v) for v in a["begin"]]
    size = [int(v) for v in a["size"]]
    return x[tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))]


@op()
def gather(a):
    x, indices, axis = a["x"], a["indices"], int(_arg(a, "axis", 0))
    batch_dims = int(_arg(a, "batch_dims", 0))
    if batch_dims == 0:
        return np.take(x, indices.astype(np.int64), axis=axis)
    lead = x.shape[:batch_dims]
    xs = x.reshape(-1, *x.shape[batch_dims:])
    ids = indices.reshape(-1, *indices.shape[batch_dims:])
    out = np.stack([np.take(xi, ii.astype(np.int64), axis=axis - batch_dims) for xi, ii in zip(xs, ids)])
    return out.reshape(*lead, *out.shape[1:])


@op()
def gather_along_axis(a):
    return np.take_along_axis(a["x"], a["indices"].astype(np.int64), axis=int(_arg(a, "axis", 0)))


@op()
def gather_nd(a):
    x, indices = a["x"], a["indices"].astype(np.int64)
    if int(_arg(a, "batch_dims", 0)) != 0:
        raise NotImplementedError("gather_nd with batch_dims > 0")
    return x[tuple(np.moveaxis(indices, -1, 0))]


@op()
def topk(a):
    x, k, axis = a["x"], int(_arg(a, "k", 1)), int(_arg(a, "axis", -1))
    order = np.argsort(-x if _arg(a, "ascending", False) is False else x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int32)


# --- states (iOS18): a state argument is a StateBuffer the executor keeps between runs -----------------------------


class StateBuffer:
    """One named state of a stateful program: its value (in the state's dtype, float32 storage for fp16)."""

    def __init__(self, name: str, value: np.ndarray):
        self.name, self.value = name, value


@op()
def read_state(a):
    return np.array(a["input"].value, copy=True)


@op("coreml_update_state")
def update_state(a):
    """Write the value into the state; return it (coremltools' dialect for write_state + read_state)."""
    a["state"].value = np.array(a["value"], copy=True)
    return a["value"]


@op()
def write_state(a):
    a["state"].value = np.array(a["value"], copy=True)
    return ()


# --- compressed weights (constexpr_*), decompressed once at load time -----------------------------------


def _unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """Integers packed least significant bit first (coremltools' layout) -> uint8 array of `count` values."""
    bits = np.unpackbits(packed.astype(np.uint8), bitorder="little")[: count * nbits].reshape(count, nbits)
    return (bits.astype(np.uint16) << np.arange(nbits, dtype=np.uint16)).sum(axis=1).astype(np.uint8)


def _blocks(param: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat a per-block parameter along each axis so it matches `shape`."""
    for axis, (size, psize) in enumerate(zip(shape, param.shape)):
        if psize != size:
            param = np.repeat(param, size // psize, axis=axis)
    return param


@op()
def constexpr_affine_dequantize(a):
    """iOS16: scale * (quantized - zero_point), scale and zero point along `axis`."""
    data = a["quantized_data"].astype(np.float32)
    axis = int(a["axis"]) % data.ndim
    shape = [1] * data.ndim
    shape[axis] = -1
    zero = np.asarray(a["zero_point"], np.float32)
    scale = np.asarray(a["scale"])
    zero = zero.reshape(shape) if zero.ndim else zero
    return (data - zero) * (scale.astype(np.float32).reshape(shape) if scale.ndim else scale.astype(np.float32))


@op()
def constexpr_blockwise_shift_scale(a):
    """iOS18: scale * (data - offset), with scale and offset per block (broadcast by repetition)."""
    data = a["data"].astype(np.float32)
    scale = _blocks(np.asarray(a["scale"], np.float32), data.shape)
    if a.get("offset") is not None:
        data = data - _blocks(np.asarray(a["offset"], np.float32), data.shape)
    return data * scale


@op()
def constexpr_lut_to_dense(a):
    lut, indices = np.asarray(a["lut"]), a["indices"]
    if a.get("shape") is not None:  # iOS16: one LUT, indices packed into a flat uint8 array
        shape = [int(d) for d in a["shape"]]
        nbits = int(round(math.log2(lut.size)))
        return lut[_unpack_bits(indices, nbits, int(np.prod(shape)))].reshape(shape)
    # iOS18: indices have the output shape; lut is [*blocks, palette, vector_size] with one LUT per block
    if lut.shape[-1] != 1:
        raise NotImplementedError("constexpr_lut_to_dense with vector palettization")
    tables = lut[..., 0]  # (*blocks, palette)
    block_of = np.ix_(*[np.arange(size) // (size // b) for size, b in zip(indices.shape, tables.shape[:-1])])
    return tables[(*block_of, indices.astype(np.int64))]


@op()
def constexpr_sparse_to_dense(a):
    values, mask = np.asarray(a["nonzero_data"]), a["mask"]
    if a.get("shape") is not None:  # iOS16: the mask is bits packed into a flat uint8 array
        shape = [int(d) for d in a["shape"]]
        flags = np.unpackbits(mask.astype(np.uint8), bitorder="little")[: int(np.prod(shape))].astype(bool)
    else:  # iOS18: the mask has the output shape
        shape, flags = list(mask.shape), mask.reshape(-1).astype(bool)
    dense = np.zeros(int(np.prod(shape)), dtype=values.dtype)
    dense[flags] = values
    return dense.reshape(shape)


@op()
def constexpr_cast(a):
    return a["source_val"]


# --- audio models (wav2vec2 / HuBERT feature masks: lengths scattered, flipped, summed) -----------------------------


@op()
def reverse(a):
    x = a["x"]
    axes = _arg(a, "axes")
    return np.flip(x, axis=None if axes is None else _axes(axes, x.ndim)).copy()


SCATTER_MODES = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
}


@op()
def scatter_nd(a):
    """MIL scatter_nd: indices [..., K] name positions of data's first K dims; updates [..., *data.shape[K:]]."""
    data, indices, updates = a["data"], a["indices"].astype(np.int64), np.asarray(a["updates"])
    mode = str(_arg(a, "mode", "add"))
    k = indices.shape[-1]
    flat = indices.reshape(-1, k)
    rows = updates.reshape(len(flat), *data.shape[k:]).astype(data.dtype, copy=False)
    where = tuple(flat.T)
    out = data.copy()
    if mode == "update":
        out[where] = rows  # repeated positions: the last update wins, as CoreML's sequential semantics
    elif mode in SCATTER_MODES:
        SCATTER_MODES[mode].at(out, where, rows)
    else:
        raise NotImplementedError(f"scatter_nd mode {mode!r}")
    return out
