"""Core ATen, op by op: every op chipforge lists as supported (``op_coverage``, read live from
the handler registry) is captured on sample inputs and evaluated with ``reference()``,
against PyTorch on the same inputs; a bounded subset also runs on the simulator.

Samples cover random inputs with broadcasting, non-contiguous strides (transposed and
sliced inputs), negative dims, int64 indices and zero-size dims (a zero-size sample must
match PyTorch or fail with a clean CompileError, never crash). An op listed as supported
without a sample fails ``test_every_supported_op_has_a_sample``.

Tolerance: reference() runs in float64 and PyTorch here in float32, so the gap is float32
rounding (about 1e-7 of the magnitudes involved); constants the capture computes (resampling
matrices, index maps) are float32 or exact. The error is measured against the largest
output magnitude: max|ref - torch| <= 1e-5 * max|torch| (integer and mask outputs: exact).
The simulator runs fp32 kernels with the vector unit's own exp/rsqrt (1e-4 there), and
bf16 where the graph needs the matrix unit, which has no fp32 mode (the project's bf16
target, 2e-2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chipforge.compiler import (  # noqa: E402
    CompileError,
    capture,
    capture_function,
    compile_graph,
    feed,
    op_coverage,
    reference,
)
from chipforge.sim import simulate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
aten = torch.ops.aten
TOL, SIM_TOL, BF16_TOL = 1e-5, 1e-4, 2e-2


@dataclasses.dataclass(frozen=True)
class Sample:
    fn: Callable
    args: tuple
    # a zero-size dim, or a form of the op the capture may refuse (a rounding mode, a
    # computed exponent): it matches torch or raises a CompileError, never anything else
    may_refuse: bool = False


SAMPLES: dict[str, list[Sample]] = {}


def add(op: str, fn: Callable, *args, may_refuse: bool = False) -> None:
    SAMPLES.setdefault(op, []).append(Sample(fn, args, may_refuse))


def r(*shape, seed: int = 0, lo: float | None = None, hi: float | None = None):
    """Seeded float32: standard normal, or uniform in [lo, hi)."""
    g = torch.Generator().manual_seed(seed)
    if lo is None:
        return torch.randn(*shape, generator=g)
    return torch.rand(*shape, generator=g) * (hi - lo) + lo


def ri(high: int, *shape, seed: int = 0):
    """Seeded int64 in [0, high)."""
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


X = r(2, 3, 4)
XT = r(4, 3, seed=1).t()  # non-contiguous: a transposed input
IMG = r(2, 3, 6, 5, seed=2)
EMPTY = r(2, 0, 3, seed=3)
C3, C4, C6 = (r(n, seed=10 + n) for n in (3, 4, 6))  # per-channel parameters
B3, B4, B6 = (r(n, seed=20 + n) for n in (3, 4, 6))
VAR3 = r(3, seed=9, lo=0.5, hi=2)
CONV_W = r(4, 3, 3, 3, seed=11)

# ---- elementwise ---------------------------------------------------------------------------

_UNARY = {"abs": (None, None), "acos": (-0.9, 0.9), "acosh": (1.1, 3.0), "asin": (-0.9, 0.9),
          "asinh": (None, None), "atan": (None, None), "atanh": (-0.9, 0.9), "ceil": (-3, 3),
          "cos": (None, None), "cosh": (-2, 2), "erf": (None, None), "exp": (None, None),
          "expm1": (None, None), "floor": (-3, 3), "log": (0.1, 3), "log10": (0.1, 3),
          "log1p": (-0.5, 3), "log2": (0.1, 3), "neg": (None, None), "reciprocal": (0.5, 2),
          "relu": (None, None), "round": (-3, 3), "rsqrt": (0.1, 3), "sigmoid": (None, None),
          "sign": (None, None), "sin": (None, None), "sinh": (-2, 2), "sqrt": (0.1, 3),
          "tan": (-1, 1), "tanh": (None, None), "trunc": (-3, 3)}
for _op, (_lo, _hi) in _UNARY.items():
    _f = getattr(aten, _op).default
    add(_op, _f, r(3, 5, lo=_lo, hi=_hi))
    add(_op, lambda a, f=_f: f(a.t()), r(5, 3, seed=1, lo=_lo, hi=_hi))
    add(_op, _f, r(2, 0, lo=_lo, hi=_hi), may_refuse=True)
add("isinf", lambda a: aten.isinf.default(aten.reciprocal.default(a)), r(3, 4))
add("isnan", lambda a: aten.isnan.default(aten.sqrt.default(a)), r(3, 4))
add("gelu", lambda a: aten.gelu.default(a, approximate="tanh"), X)
add("gelu", aten.gelu.default, X)
add("elu", aten.elu.default, X)
add("hardtanh", lambda a: aten.hardtanh.default(a, -0.5, 0.7), X)
add("leaky_relu", lambda a: aten.leaky_relu.default(a, 0.1), X)
add("clamp", lambda a: aten.clamp.default(a, -0.5, 0.5), X)
add("clamp", lambda a, lo: aten.clamp.Tensor(a, lo), X, r(4, seed=5))

_BINARY = ("add", "sub", "mul", "div", "fmod", "remainder")
for _op in _BINARY:
    _p = getattr(aten, _op)
    add(_op, _p.Tensor, r(3, 1, lo=0.5, hi=2), r(4, seed=1, lo=-2, hi=-0.5))  # broadcast
    add(_op, lambda a, b, p=_p: p.Tensor(a.t(), b[:, ::2]), r(5, 3, lo=0.5, hi=2),
        r(3, 10, seed=1, lo=0.5, hi=2))  # transposed and sliced
    if "Scalar" in _p.overloads():
        add(_op, lambda a, p=_p: p.Scalar(a, 1.5), r(3, 4, lo=0.5, hi=2))
add("atan2", aten.atan2.default, r(3, 1), r(4, seed=1))
add("atan2", lambda a, b: aten.atan2.default(a.t(), b), r(4, 3), r(3, 4, seed=1))
add("div", lambda a, b: aten.div.Tensor_mode(a, b, rounding_mode="trunc"), r(3, 4) * 4,
    r(3, 4, seed=1, lo=0.5, hi=2), may_refuse=True)
add("div", lambda a, b: aten.div.Tensor_mode(a, b, rounding_mode="floor"), r(3, 4) * 4,
    r(3, 4, seed=1, lo=0.5, hi=2), may_refuse=True)
add("maximum", aten.maximum.default, r(3, 1), r(4, seed=1))
add("minimum", aten.minimum.default, r(3, 1), r(4, seed=1))
add("pow", lambda a: aten.pow.Tensor_Scalar(a, 3), X)
add("pow", lambda a: aten.pow.Tensor_Scalar(a, 2), X)
add("pow", lambda a, b: aten.pow.Tensor_Tensor(a, b), r(3, 4, lo=0.5, hi=2), r(3, 4, seed=1),
    may_refuse=True)
add("pow", lambda a: aten.pow.Scalar(2.0, a), X, may_refuse=True)
for _op in ("eq", "ne", "gt", "ge", "lt", "le"):
    _p = getattr(aten, _op)
    add(_op, _p.Tensor, r(3, 1).round(), r(4, seed=1).round())
    add(_op, lambda a, p=_p: p.Scalar(a, 0.0), X.round())
    add(_op, lambda a, p=_p: p.Scalar(a, 2), ri(4, 3, 4))  # int64
for _op in ("logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
            "bitwise_xor"):
    _p = getattr(aten, _op)
    _f = _p.default if "default" in _p.overloads() else _p.Tensor
    add(_op, lambda a, b, f=_f: f(a > 0, b > 0), r(3, 1), r(4, seed=1))
add("logical_not", lambda a: aten.logical_not.default(a > 0), X)
add("bitwise_not", lambda a: aten.bitwise_not.default(a > 0), X)
add("where", lambda a, b, c: aten.where.self(a > 0, b, c), r(3, 1), r(4, seed=1),
    r(3, 4, seed=2))
add("where", lambda b: aten.where.self(torch.arange(4) % 2 == 0, b, torch.tensor(0.5)),
    r(3, 4))

# ---- layout, views, copies ---------------------------------------------------------------------

add("alias", lambda a: aten.alias.default(a) * 2, X)
add("clone", lambda a: aten.clone.default(a) * 2, X)
add("view", lambda a: aten.view.default(a, [4, 6]), X)
add("permute", lambda a: aten.permute.default(a, [-1, 0, 1]), X)
add("expand", lambda a: aten.expand.default(a, [2, 3, 4]), r(3, 1))
add("squeeze", lambda a: aten.squeeze.dims(a, [-2]), r(3, 1, 4))
add("unsqueeze", lambda a: aten.unsqueeze.default(a, -1), X)
add("select", lambda a: aten.select.int(a, -1, -2), X)
add("slice", lambda a: aten.slice.Tensor(a, -1, 1, None, 2), X)
add("slice", lambda a: aten.slice.Tensor(a, 1, -2), X)
add("split_with_sizes", lambda a: aten.split_with_sizes.default(a, [1, 3], -1)[1], X)
add("cat", lambda a, b: aten.cat.default([a, b], -1), X, r(2, 3, 2, seed=1))
add("cat", lambda a, b: aten.cat.default([a, b], 1), X, r(2, 0, 4), may_refuse=True)
add("_to_copy", lambda a: aten._to_copy.default(a, dtype=torch.float32) * 2, ri(5, 3, 4))
add("full_like", lambda a: a + aten.full_like.default(a, 2.5), X)
add("copy", lambda a, b: aten.copy.default(a, b), X, r(4, seed=1))
add("copy", lambda a: aten.copy.default(a, torch.ones(4)), X)
add("fill", lambda a: aten.fill.Scalar(a, 2.0) * a, X)
add("as_strided", lambda a: aten.as_strided.default(a, [3, 4], [5, 2], 3), X)
add("as_strided", lambda a: aten.as_strided.default(a, [2, 2], [1, 4]), XT)  # strided input
add("diagonal", lambda a: aten.diagonal.default(a, 1, -1, -2), X)
add("flip", lambda a: aten.flip.default(a, [0, -1]), X)
add("flip", lambda a: aten.flip.default(a, [1]), EMPTY, may_refuse=True)
add("repeat", lambda a: aten.repeat.default(a, [2, 1, 1, 3]), X)
add("constant_pad_nd", lambda a: aten.constant_pad_nd.default(a, [1, 2, -1, 1], 3.5), X)
add("constant_pad_nd", lambda a: aten.constant_pad_nd.default(a, [1, 1]), EMPTY, may_refuse=True)
add("reflection_pad1d", lambda a: aten.reflection_pad1d.default(a, [2, 1]), X)
add("reflection_pad2d", lambda a: aten.reflection_pad2d.default(a, [2, 1, 1, 2]), IMG)
add("reflection_pad3d", lambda a: aten.reflection_pad3d.default(a, [1, 0, 1, 1, 0, 1]), IMG)
add("replication_pad2d", lambda a: aten.replication_pad2d.default(a, [2, 1, 1, 2]), IMG)
add("replication_pad3d", lambda a: aten.replication_pad3d.default(a, [1, 0, 1, 1, 0, 1]), IMG)
add("upsample_nearest2d", lambda a: aten.upsample_nearest2d.vec(a, [9, 7], None), IMG)
add("upsample_nearest2d", lambda a: aten.upsample_nearest2d.vec(a, None, [2.0, 1.5]), IMG)
add("upsample_bilinear2d", lambda a: aten.upsample_bilinear2d.vec(a, [9, 7], False, None), IMG)
add("upsample_bilinear2d", lambda a: aten.upsample_bilinear2d.vec(a, None, True, [2.0, 1.5]),
    IMG)

# ---- creation (folded) ----------------------------------------------------------------------

add("arange", lambda a: a + aten.arange.start_step(0, 8, 2), X)
add("full", lambda a: a * aten.full.default([4], 3.0), X)
add("empty", lambda a: a + aten.fill.Scalar(aten.empty.memory_format([4]), 1.0), X)
add("empty_strided", lambda a: a + aten.fill.Scalar(aten.empty_strided.default([4], [1]), 1.0),
    X)
add("scalar_tensor", lambda a: a * aten.scalar_tensor.default(3.0), X)

# ---- reductions ------------------------------------------------------------------------------

add("sum", lambda a: aten.sum.dim_IntList(a, [0, -1], True), X)
add("sum", lambda a: aten.sum.dim_IntList(a, [1]), EMPTY, may_refuse=True)
add("sum", lambda a: aten.sum.dim_IntList(a.transpose(0, 2), [1]), X)
add("mean", lambda a: aten.mean.dim(a, [-1, 0]), X)
add("mean", aten.mean.default, X)
add("mean", lambda a: aten.mean.dim(a, [2, 3], True), IMG)
add("amax", lambda a: aten.amax.default(a, [0, 2]), X)
add("amin", lambda a: aten.amin.default(a, [-1], True), X)
add("prod", lambda a: aten.prod.dim_int(a, 1), r(2, 5, 3, lo=0.5, hi=1.5))
add("prod", aten.prod.default, r(2, 3, lo=0.5, hi=1.5))
add("var", lambda a: aten.var.correction(a, [0, 2], correction=0, keepdim=True), X)
add("var", lambda a: aten.var.correction(a, [-1]), X)
add("any", lambda a: aten.any.dim(a > 1, -1), X)
add("any", lambda a: aten.any.dims(a > 1, [0, 2], True), X)
add("any", lambda a: aten.any.default(a), X.round())
add("max", lambda a: aten.max.dim(a, -2), X)
add("max", lambda a: aten.max.dim(a, 0, True), (r(5, 3) * 2).round())  # ties: the first index
add("min", lambda a: aten.min.dim(a, 1), X)
add("argmax", lambda a: aten.argmax.default(a, -1), X)
add("argmin", lambda a: aten.argmin.default(a, 1, True), X)
add("cumsum", lambda a: aten.cumsum.default(a, -1), X)
add("cumsum", lambda a: aten.cumsum.default(a, 0), ri(5, 4, 3))
add("topk", lambda a: aten.topk.default(a, 2, -1), r(3, 6))
add("sort", lambda a: aten.sort.default(a, -1, True), r(3, 6))
add("_softmax", lambda a: aten._softmax.default(a, 1, False), X)
add("_log_softmax", lambda a: aten._log_softmax.default(a, -1, False), X)

# ---- matmul, convolution, pooling, normalization -------------------------------------------

add("mm", aten.mm.default, r(3, 4), XT.t().contiguous())
add("mm", aten.mm.default, r(4, 3).t(), r(4, 5, seed=1))
add("bmm", aten.bmm.default, r(2, 3, 4), r(2, 4, 5, seed=1))
add("addmm", aten.addmm.default, r(5), r(3, 4, seed=1), r(4, 5, seed=2))
add("convolution", lambda a: aten.convolution.default(a, CONV_W, B4, [1, 1], [1, 1],
                                                       [1, 1], False, [0, 0], 1), IMG)
add("convolution", lambda a, w: aten.convolution.default(a, w, None, [2, 1], [1, 0], [1, 1],
                                                          False, [0, 0], 1), IMG, CONV_W)
add("convolution", lambda a: aten.convolution.default(a, CONV_W, B4, [1, 1], [2, 1], [2, 1],
                                                       False, [0, 0], 1), IMG)  # dilated
add("convolution", lambda a, w: aten.convolution.default(a, w, None, [1, 1], [3, 3], [1, 1],
                                                          False, [0, 0], 3),
    IMG, r(6, 1, 7, 7, seed=12))  # depthwise (ConvNeXt) with weights as inputs
add("max_pool2d_with_indices",
    lambda a: aten.max_pool2d_with_indices.default(a, [2, 2], [2, 2])[0], IMG)
add("max_pool2d_with_indices",
    lambda a: aten.max_pool2d_with_indices.default(a, [3, 2], [2, 2], [1, 1], [1, 2], True), IMG)
add("max_pool2d_with_indices",
    lambda a: aten.max_pool2d_with_indices.default(a, [2, 2], [1, 1], [0, 0], [1, 1], False),
    (IMG * 2).round())  # ties: the first index
add("max_pool2d_with_indices",  # integers: the padding is int32's minimum, not -inf
    lambda a: aten.max_pool2d_with_indices.default(a, [2, 2], [2, 2], [1, 1]), ri(9, 1, 2, 5, 5))
add("max_pool3d_with_indices",
    lambda a: aten.max_pool3d_with_indices.default(a[None], [2, 3, 2], [1, 2, 2], [0, 1, 1]),
    IMG)
add("max_pool2d_with_indices_backward",
    lambda g, a: aten.max_pool2d_with_indices_backward.default(
        g, a, [2, 2], [2, 1], [1, 0], [1, 1], False,
        aten.max_pool2d_with_indices.default(a, [2, 2], [2, 1], [1, 0])[1]),
    r(2, 3, 4, 4, seed=1), IMG)
add("avg_pool1d", lambda a: aten.avg_pool1d.default(a, [2], [1], [1]), X)
add("avg_pool2d", lambda a: aten.avg_pool2d.default(a, [3, 2], [2, 1], [1, 0], True, False),
    IMG)
add("avg_pool2d", lambda a: aten.avg_pool2d.default(a, [6, 5]), IMG)
add("avg_pool2d", lambda a: aten.avg_pool2d.default(a, [6, 5], [6, 5], [0, 0], False, True, 7),
    IMG)  # a whole-image window with a divisor of its own
add("avg_pool3d", lambda a: aten.avg_pool3d.default(a, [2, 2, 2], [1, 2, 2]), IMG)
add("adaptive_avg_pool1d", lambda a: aten.adaptive_avg_pool1d.default(a, [3]), X)
add("_adaptive_avg_pool2d", lambda a: aten._adaptive_avg_pool2d.default(a, [4, 3]), IMG)
add("_adaptive_avg_pool2d", lambda a: aten._adaptive_avg_pool2d.default(a, [1, 1]), IMG)
add("_adaptive_avg_pool3d", lambda a: aten._adaptive_avg_pool3d.default(a, [2, 4, 3]), IMG)
add("col2im", lambda a: aten.col2im.default(a, [3, 4], [2, 2], [1, 1], [0, 0], [1, 1]),
    r(2, 8, 6))
add("native_layer_norm",
    lambda a: aten.native_layer_norm.default(a, [4], C4, B4, 1e-5), X)
add("native_group_norm",
    lambda a: aten.native_group_norm.default(a, C6, B6, 2, 6, 4, 3, 1e-5),
    r(2, 6, 2, 2))
add("_native_batch_norm_legit_no_training",
    lambda a: aten._native_batch_norm_legit_no_training.default(
        a, C3, B3, B3 * 0.5, VAR3, 0.1, 1e-5)[0],
    IMG)
add("_native_batch_norm_legit_no_training",  # parameters as inputs (the training path)
    lambda a, w, b, m, v: aten._native_batch_norm_legit_no_training.default(
        a, w, b, m, v, 0.1, 1e-5)[0], IMG, C3, B3, B3 * 0.5, VAR3)
add("_native_batch_norm_legit",
    lambda a: aten._native_batch_norm_legit.no_stats(a, C3, B3, True, 0.1,
                                                     1e-5), IMG)
add("_native_batch_norm_legit",
    lambda a: aten._native_batch_norm_legit.default(a, None, None, torch.zeros(3),
                                                    torch.ones(3), True, 0.1, 1e-5), IMG)
add("native_dropout", lambda a: aten.native_dropout.default(a, 0.0, True)[0], X)
add("_cdist_forward", lambda a, b: aten._cdist_forward.default(a, b, 2.0, None), X,
    r(2, 5, 4, seed=1))
add("_cdist_forward", lambda a, b: aten._cdist_forward.default(a, b, 1.0, None), X,
    r(2, 5, 4, seed=1))
add("_cdist_forward", lambda a, b: aten._cdist_forward.default(a, b, 3.0, None), X,
    r(2, 5, 4, seed=1))
add("_pdist_forward", lambda a: aten._pdist_forward.default(a, 2.0), r(5, 3))
add("_pdist_forward", lambda a: aten._pdist_forward.default(a, float("inf")), r(4, 3))
add("avg_pool2d_backward",
    lambda g: aten.avg_pool2d_backward.default(g, torch.zeros(2, 3, 6, 5), [2, 2], [2, 1],
                                               [0, 0], False, True, None), r(2, 3, 3, 4))
add("convolution_backward",
    lambda g, a, w: aten.convolution_backward.default(g, a, w, [4], [2, 1], [1, 1], [1, 1],
                                                      False, [0, 0], 1, [True, True, True]),
    r(2, 4, 3, 5, seed=1), IMG, CONV_W)
add("convolution_backward",  # a patch embedding: stride = kernel, no input gradient
    lambda g, a, w: aten.convolution_backward.default(g, a, w, [4], [2, 2], [0, 0], [1, 1],
                                                      False, [0, 0], 1, [False, True, True])[1:],
    r(2, 4, 3, 2, seed=1), IMG, r(4, 3, 2, 2, seed=3))
add("native_layer_norm_backward",
    lambda g, a, m, s: aten.native_layer_norm_backward.default(g, a, [4], m, s, C4, B4,
                                                              [True, True, True]),
    r(2, 3, 4, seed=1), X, X.mean(-1, keepdim=True),
    (X.var(-1, unbiased=False, keepdim=True) + 1e-5).rsqrt())
_G = r(2, 6, 2, 2, seed=5)
_GM = _G.reshape(2, 3, -1).mean(-1)
_GR = (_G.reshape(2, 3, -1).var(-1, unbiased=False) + 1e-5).rsqrt()
add("native_group_norm_backward",
    lambda g, a, m, s: aten.native_group_norm_backward.default(g, a, m, s, C6, 2, 6, 4, 3,
                                                              [True, True, True]),
    r(2, 6, 2, 2, seed=6), _G, _GM, _GR)
add("_adaptive_avg_pool2d_backward",
    lambda g: aten._adaptive_avg_pool2d_backward.default(g, torch.zeros(2, 3, 6, 5)),
    r(2, 3, 4, 3))

# ---- embedding and indexing (int64 indices) ------------------------------------------------

TABLE = r(7, 4, seed=4)
add("embedding", lambda i: aten.embedding.default(TABLE, i), ri(7, 2, 3))
add("embedding", aten.embedding.default, TABLE, ri(7, 5))
add("index", lambda a, i: aten.index.Tensor(a, [None, i]), X, ri(3, 5))
add("index", lambda a: aten.index.Tensor(a, [torch.tensor([1, -1]), None, torch.tensor([0, 3])]),
    X)
add("index_select", lambda a, i: aten.index_select.default(a, -1, i), X, ri(4, 5))
add("gather", lambda a, i: aten.gather.default(a, -1, i), X, ri(4, 2, 3, 2))
add("scatter", lambda a, i: aten.scatter.value(a, 1, i, 1.5), X, ri(3, 2, 1, 4))
add("scatter", lambda a, i, s: aten.scatter.src(a, 1, i, s), X,
    torch.tensor([[[0, 1, 2, 0]], [[2, 0, 1, 1]]]), r(2, 1, 4, seed=1))
add("scatter_add", lambda a, i, s: aten.scatter_add.default(a, 1, i, s), X, ri(3, 2, 2, 4),
    r(2, 2, 4, seed=1))
add("scatter_reduce", lambda a, i, s: aten.scatter_reduce.two(a, 1, i, s, "sum"), X,
    ri(3, 2, 2, 4), r(2, 2, 4, seed=1))
add("index_put", lambda a, i, v: aten.index_put.default(a, [i], v, True), r(5, 3), ri(5, 4),
    r(4, 3, seed=1))
add("index_put", lambda a, i, v: aten.index_put.default(a, [i], v), r(5, 3),
    torch.tensor([4, 0, 2]), r(3, 3, seed=1))
add("select_scatter", lambda a, s: aten.select_scatter.default(a, s, -1, 1), X, r(2, 3, seed=1))
add("slice_scatter", lambda a, s: aten.slice_scatter.default(a, s, 1, 1, 3), X,
    r(2, 2, 4, seed=1))
add("_embedding_bag",
    lambda i, o: aten._embedding_bag.default(TABLE, i, o, False, 0)[0], ri(7, 6),
    torch.tensor([0, 2, 5]))
add("_embedding_bag",
    lambda i, o, w: aten._embedding_bag.default(TABLE, i, o, False, 0, False, w)[0],
    ri(7, 6), torch.tensor([0, 4]), r(6, seed=2))
add("_embedding_bag",
    lambda i, o: aten._embedding_bag.default(TABLE, i, o, False, 1)[0], ri(7, 6),
    torch.tensor([0, 2, 5]))
add("embedding_dense_backward",
    lambda g, i: aten.embedding_dense_backward.default(g, i, 7, -1, False), r(5, 4), ri(7, 5))
add("nonzero", lambda a: aten.nonzero.default(a > 0), X, may_refuse=True)  # data-dependent
add("grid_sampler_2d",
    lambda a, g: aten.grid_sampler_2d.default(a, g, 0, 0, False), IMG, r(2, 3, 3, 2, lo=-1, hi=1))
add("masked_scatter", lambda a, s: aten.masked_scatter.default(a, torch.arange(4) % 2 == 0, s),
    X, r(2, 3, 4, seed=1))

# ---- the ops that run on the simulator (fp32 kernels), a bounded subset -------------------------

SIMULATED = ("flip", "constant_pad_nd", "diagonal", "upsample_bilinear2d", "avg_pool2d",
             "sum", "amin", "prod", "var", "max", "native_group_norm", "index", "as_strided",
             "repeat", "_cdist_forward", "convolution_backward", "max_pool3d_with_indices",
             "max_pool2d_with_indices_backward", "any", "_native_batch_norm_legit",
             "reflection_pad2d", "upsample_nearest2d", "col2im")


def _modes(op: str) -> list[bool]:
    """The captures (False: inference, True: training) that list ``op`` as covered."""
    row = COVERAGE[op]
    return [t for t, status in ((False, row.inference), (True, row.training))
            if status != "unsupported"]


COVERAGE = {row.op: row for row in op_coverage()}
COVERED = sorted(op for op in COVERAGE if _modes(op))


def _expected(sample: Sample) -> list[torch.Tensor]:
    with torch.no_grad():
        out = sample.fn(*sample.args)
    return list(out) if isinstance(out, tuple | list) else [out]


def _check(got: np.ndarray, want: torch.Tensor, tol: float, what: str) -> None:
    want = want.detach()
    assert got.shape == tuple(want.shape), what
    if want.dtype == torch.bool:
        want = want.to(torch.float32)
    if not want.is_floating_point():
        assert np.array_equal(got, want.numpy()), what
        return
    w = want.double().numpy()
    assert np.array_equal(np.isnan(got), np.isnan(w)), what
    finite = ~np.isnan(w)
    if finite.any():
        err = np.max(np.abs(got[finite] - w[finite]))
        assert err <= tol * np.max(np.abs(w[finite])) + 1e-12, f"{what}: error {err}"


def _captured(sample: Sample, training: bool):
    """The sample's graph, or None where a may-refuse sample is refused cleanly."""
    try:
        return capture_function(sample.fn, sample.args, training=training)
    except CompileError:
        if sample.may_refuse:
            return None
        raise


def test_every_supported_op_has_a_sample():
    assert [op for op in COVERED if op not in SAMPLES] == []


def test_the_table_covers_the_core_opset_with_reasons():
    rows = op_coverage()
    assert len(rows) == len({r.op for r in rows}) >= 160
    assert {"add", "convolution", "native_layer_norm", "rand"} <= {r.op for r in rows}
    for row in rows:
        assert {row.inference, row.training} <= {"supported", "folded", "decomposed",
                                                 "unsupported"}
        assert bool(row.reason) == ("unsupported" in (row.inference, row.training)), row


@pytest.mark.parametrize("op", COVERED)
def test_op_matches_pytorch(op):
    """Every sample of ``op`` through each capture that lists it, evaluated by reference()."""
    for i, sample in enumerate(SAMPLES.get(op, [])):
        want = _expected(sample)
        for training in _modes(op):
            graph = _captured(sample, training)
            if graph is None:
                continue
            out = reference(graph, feed(graph, sample.args))
            assert len(graph.outputs) == len(want)
            for name, w in zip(graph.outputs, want):
                _check(out[name], w, TOL, f"{op} sample {i} training={training}")


@pytest.mark.parametrize("op", SIMULATED)
def test_op_runs_on_the_simulator(op):
    sample = SAMPLES[op][0]
    graph = capture_function(sample.fn, sample.args, training=_modes(op)[0])
    matrix = any(node.op == "matmul" for node in graph.nodes)
    program = compile_graph(graph, "forge-i1", dtype="bf16" if matrix else "fp32")
    result = simulate(program, "forge-i1", feed(graph, sample.args))
    for name, w in zip(graph.outputs, _expected(sample)):
        got = np.asarray(result.outputs[name], np.float64).reshape(graph.tensors[name].shape)
        _check(got, w, BF16_TOL if matrix else SIM_TOL, f"{op} on forge-i1")


@pytest.mark.parametrize("which", [1, 3])  # plain and depthwise
def test_convolution_with_computed_weights_runs_on_the_simulator(which):
    """The training path's convolution (weights are graph inputs) through im2col."""
    sample = SAMPLES["convolution"][which]
    graph = capture_function(sample.fn, sample.args)
    assert "conv2d" not in {node.op for node in graph.nodes}
    program = compile_graph(graph, "forge-i1", dtype="bf16")
    result = simulate(program, "forge-i1", feed(graph, sample.args))
    got = np.asarray(result.outputs[graph.outputs[0]], np.float64)
    _check(got.reshape(graph.tensors[graph.outputs[0]].shape), _expected(sample)[0], BF16_TOL,
           "convolution with input weights on forge-i1")


def test_zero_size_result_is_refused_cleanly_by_the_compiler():
    graph = capture_function(lambda a: aten.flip.default(a, [1]), (EMPTY,))
    with pytest.raises(CompileError, match="zero-size"):
        compile_graph(graph, "forge-i1", dtype="fp32")


def test_as_strided_outside_its_input_is_a_clean_error():
    with pytest.raises(CompileError, match="as_strided"):
        capture_function(lambda a: aten.as_strided.default(a[:, :2], [2, 2], [1, 6]), (XT,))


def test_dropout_while_training_names_the_missing_rng():
    with pytest.raises(CompileError, match="no RNG"):
        capture_function(lambda a: aten.native_dropout.default(a, 0.5, True)[0], (X,))


class _Noise(torch.nn.Module):
    def forward(self, x):
        return x + torch.randn(x.shape)


def test_random_ops_are_refused_not_frozen():
    with pytest.raises(CompileError, match="no random number generator"):
        capture(_Noise(), (r(3),))


class _SmallCnn(torch.nn.Module):
    """Patch embedding, batch norm (eval: running statistics), 3x3 conv, group norm,
    ceil-mode max pooling, bilinear upsampling."""

    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 8, 4, stride=4, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.norm = torch.nn.GroupNorm(2, 8)
        self.head = torch.nn.Linear(8, 5)

    def forward(self, x):
        h = torch.relu(self.conv(self.bn(self.patch(x))))
        h = torch.nn.functional.max_pool2d(self.norm(h), 2, ceil_mode=True)
        h = torch.nn.functional.interpolate(h, scale_factor=2, mode="bilinear")
        return self.head(h.mean((2, 3))).square().sum()


def test_a_small_cnn_trains_through_capture_fx():
    """aot_autograd's forward and backward graphs (convolution_backward, the max-pooling and
    group-norm backwards, batch norm with its parameters and running statistics as graph
    inputs) captured and evaluated by reference() give PyTorch's gradients."""
    from functorch.compile import aot_function, make_boxed_func
    from torch._decomp import core_aten_decompositions

    from chipforge.compiler import arrange_outputs, capture_fx

    torch.manual_seed(0)
    net = _SmallCnn().eval()
    net.bn.running_mean.uniform_(-1, 1)
    net.bn.running_var.uniform_(0.5, 2)
    names = [n for n, _ in net.named_parameters()] + [n for n, _ in net.named_buffers()]
    buffers = list(net.buffers())

    def compiler(gm, example_inputs):
        graph, slots = capture_fx(gm, example_inputs)

        def run(*args):
            out = reference(graph, feed(graph, args))
            values = [torch.from_numpy(np.asarray(out[n], np.float32)) for n in graph.outputs]
            return arrange_outputs(slots, values)
        return make_boxed_func(run)

    def loss_fn(x, *params):
        return torch.func.functional_call(net, dict(zip(names, params)), (x,))

    x = r(2, 3, 16, 16)
    compiled = aot_function(loss_fn, fw_compiler=compiler, bw_compiler=compiler,
                            decompositions=core_aten_decompositions())
    ours = [p.detach().clone().requires_grad_() for p in net.parameters()]
    theirs = [p.detach().clone().requires_grad_() for p in net.parameters()]
    compiled(x, *ours, *buffers).backward()
    loss_fn(x, *theirs, *buffers).backward()
    for name, a, b in zip(names, ours, theirs):
        _check(a.grad.double().numpy(), b.grad, TOL, name)


class _Call(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


F = torch.nn.functional
# user-level code as models write it, through torch.export (capture()) rather than make_fx
EXPORTED = {
    "reflect_pad": lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"),
    "replicate_pad": lambda a: F.pad(a, (1, 2, 2, 1), mode="replicate"),
    "constant_pad": lambda a: F.pad(a, (1, 1, 0, 2), value=-1.0),
    "bilinear": lambda a: F.interpolate(a, scale_factor=2, mode="bilinear"),
    "nearest": lambda a: F.interpolate(a, size=(9, 7), mode="nearest"),
    "avg_pool": lambda a: F.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "adaptive": lambda a: F.adaptive_avg_pool2d(a, (3, 2)),
    "max_pool": lambda a: F.max_pool2d(a, 3, 2, 1, dilation=1, ceil_mode=True),
    "group_norm": lambda a: F.group_norm(a, 3, C3 * 0 + 1.5, B3),
    "reductions": lambda a: (a.var((0, 2), keepdim=True), a.amin(-1), a.prod(1),
                             a.flip(0, 3), a.repeat(1, 1, 2, 1), a.diagonal(0, 2, 3)),
    "unfold": lambda a: F.unfold(a, 2, stride=2),
    "tensor_unfold": lambda a: a.unfold(-1, 2, 2),
    "norms": lambda a: (F.normalize(a, dim=1), torch.linalg.vector_norm(a, 1, dim=(0, 2)),
                        torch.linalg.vector_norm(a, float("inf"), dim=-1, keepdim=True),
                        torch.linalg.vector_norm(a, 3), torch.cdist(a[0], a[1], p=0.5)),
}


@pytest.mark.parametrize("name", list(EXPORTED))
def test_exported_models_match_pytorch(name):
    model = _Call(EXPORTED[name])
    graph = capture(model, (IMG,))
    want = model(IMG)
    want = list(want) if isinstance(want, tuple) else [want]
    out = reference(graph, feed(graph, (IMG,)))
    for n, w in zip(graph.outputs, want):
        _check(out[n], w, TOL, name)
