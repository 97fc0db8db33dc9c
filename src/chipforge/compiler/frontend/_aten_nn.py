"""Core-ATen op handlers of the PyTorch front end: matmul, softmax, normalization,
convolution and embedding (see ``_aten_ops`` for the conventions; reductions, pooling and
convolution's backward are in ``_aten_layout``, indexing in ``_aten_index``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from chipforge.compiler.frontend._aten_layout import conv2d_matmul
from chipforge.compiler.frontend._aten_ops import binary, is_number, prod, scaled
from chipforge.compiler.frontend._capture import Capture, Const, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)

# ---- matmul, reductions, normalization ---------------------------------------------------


def matmul(cap: Capture, a, b):
    """a @ b, undoing the flattening of torch's matmul decomposition: an mm of [M, k]
    reshaped from [..., m, k'] with M = ... * m becomes a batched matmul of [..., m, k]; a
    bmm of [B, m, k] and [B, k, n], one of them reshaped from [..., m, k] or [..., k, n], a
    matmul with those batch dims. The caller reshapes the result to the flat form; that
    reshape disappears when the next node reshapes back."""
    dtype = cap.out()[1]
    a_shape, b_shape = cap.info(a)[0], cap.info(b)[0]
    if min(len(a_shape), len(b_shape)) < 2:
        raise cap.fail("matmul operands must have rank 2 or more")
    ua, ub = cap.unreshaped(a), cap.unreshaped(b)
    ua_shape, ub_shape = cap.info(ua)[0], cap.info(ub)[0]
    if len(a_shape) == len(b_shape) == 2:
        rows = [i for i in range(2, len(ua_shape)) if prod(ua_shape[:i]) == a_shape[0]]
        if rows:  # [M, k] is [..., m, k] flattened
            a = cap.reshape(ua, ua_shape[:rows[-1]] + a_shape[1:])
    elif len(a_shape) == len(b_shape) == 3:
        batches = [s[:-2] for s, flat in ((ua_shape, a_shape), (ub_shape, b_shape))
                   if len(s) > 3 and s[-2:] == flat[-2:]]
        if batches:
            a = cap.reshape(ua, batches[0] + a_shape[-2:])
            b = cap.reshape(ub, batches[0] + b_shape[-2:])
    a_shape, b_shape = cap.info(a)[0], cap.info(b)[0]
    batch = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    return cap.emit("matmul", [cap.name(a, dtype), cap.name(b, dtype)],
                    batch + (a_shape[-2], b_shape[-1]), dtype)


@handles("mm", "bmm")
def _matmul(cap: Capture, a, b):
    return cap.reshape(matmul(cap, a, b), cap.out()[0])


@handles("addmm")
def _addmm(cap: Capture, bias, a, b, beta=1, alpha=1):
    product = scaled(cap, matmul(cap, a, b), alpha)
    return cap.reshape(binary(cap, "add", product, scaled(cap, bias, beta)), cap.out()[0])


def _on_last(cap: Capture, x, dim: int, fn):
    """Apply ``fn`` with ``dim`` swapped to the last place (and back)."""
    rank = len(cap.info(x)[0])
    dims = list(range(rank))
    dims[dim % rank], dims[-1] = dims[-1], dims[dim % rank]
    return cap.permute(fn(cap.permute(x, dims)), dims)


@handles("_softmax")
def _softmax(cap: Capture, x, dim: int, *args):
    dtype = cap.out()[1]
    return _on_last(cap, x, dim, lambda v: cap.emit("softmax", [v], cap.info(v)[0], dtype))


@handles("_log_softmax")
def _log_softmax(cap: Capture, x, dim: int, half_to_float: bool = False):
    """log_softmax over ``dim``: x - max - log(sum(exp(x - max))), the max subtracted for
    range (exact in real arithmetic)."""
    dtype = cap.out()[1]

    def on_last(v):
        shape = cap.info(v)[0]
        kept = shape[:-1] + (1,)
        shifted = cap.emit("sub", [v, cap.emit("max", [v], kept, dtype)], shape, dtype)
        total = cap.emit("sum", [cap.emit("exp", [shifted], shape, dtype)], kept, dtype)
        return cap.emit("sub", [shifted, cap.emit("log", [total], kept, dtype)], shape, dtype)

    return _on_last(cap, cap.name(x, dtype), dim, on_last)


@handles("native_layer_norm")
def _layer_norm(cap: Capture, x, normalized_shape, weight, bias, eps):
    shape, dtype = cap.out(0)
    k = len(normalized_shape)
    flat = shape[:-k] + (prod(normalized_shape),)
    params = []
    for value, fill in ((weight, 1.0), (bias, 0.0)):
        if value is None:
            value = Const(torch.full(tuple(normalized_shape), fill), cap.fresh())
        params.append(cap.reshape(value, flat[-1:]))
    y = cap.emit("layernorm", [cap.reshape(x, flat), *params], flat, dtype, eps=float(eps))
    return (cap.reshape(y, shape),) + _layer_norm_stats(cap, cap.reshape(x, flat), eps)


def _layer_norm_stats(cap: Capture, x, eps: float) -> tuple:
    """native_layer_norm's saved statistics of ``x`` (flattened to [..., N]), shaped as its
    outputs 1 and 2: mean = mean(x), rstd = rsqrt(mean((x - mean)^2) + eps) (the biased
    variance). A training forward returns them for the backward; where nothing reads them
    the capture's pruning drops these nodes."""
    shape, dtype = cap.out(1)
    kept = cap.info(x)[0][:-1] + (1,)
    mean = cap.emit("mean", [cap.name(x, dtype)], kept, dtype)
    centered = cap.emit("sub", [cap.name(x, dtype), mean], cap.info(x)[0], dtype)
    var = cap.emit("mean", [cap.emit("square", [centered], cap.info(x)[0], dtype)], kept, dtype)
    rstd = cap.emit("rsqrt", [cap.emit("add", [var], kept, dtype, scalar=float(eps))], kept,
                    dtype)
    return cap.reshape(mean, shape), cap.reshape(rstd, shape)


@handles("_native_batch_norm_legit_no_training")
def _batch_norm(cap: Capture, x, weight, bias, mean, var, momentum, eps):
    """Inference batch norm: x * scale + shift with scale = w / sqrt(var + eps) and shift =
    b - mean * scale, shaped [C, 1, 1]: folded into constants when the parameters are known,
    else computed (the training path takes them as inputs). Outputs 1 and 2 are empty, as
    in PyTorch."""
    shape = cap.out(0)[0]
    empties = tuple(Const(torch.zeros(tuple(cap.node.meta["val"][i].shape)), cap.fresh())
                    for i in (1, 2))
    per_channel = (shape[1],) + (1,) * (len(shape) - 2)
    if all(isinstance(v, Const | None) for v in (weight, bias, mean, var)):
        scale, shift = _folded_scale_shift(shape[1], weight, bias, mean, var, eps)
        scale = Const(scale.float().reshape(per_channel), f"{cap.node.name}_scale")
        shift = Const(shift.float().reshape(per_channel), f"{cap.node.name}_shift")
        return (binary(cap, "add", binary(cap, "mul", x, scale), shift),) + empties
    scale = cap.emit("rsqrt", [binary(cap, "add", cap.reshape(var, per_channel), float(eps))],
                     per_channel, cap.out(0)[1])
    if weight is not None:
        scale = binary(cap, "mul", scale, cap.reshape(weight, per_channel))
    y = binary(cap, "mul", binary(cap, "sub", x, cap.reshape(mean, per_channel)), scale)
    if bias is not None:
        y = binary(cap, "add", y, cap.reshape(bias, per_channel))
    return (y,) + empties


def _folded_scale_shift(c: int, weight, bias, mean, var, eps):
    """float64 (scale, shift) [C] of a batch norm with known parameters."""
    w = weight.value.double() if weight is not None else torch.ones(c, dtype=torch.float64)
    b = bias.value.double() if bias is not None else torch.zeros(c, dtype=torch.float64)
    scale = w / torch.sqrt(var.value.double() + eps)
    return scale, b - mean.value.double() * scale


# ---- convolution, pooling, embedding ------------------------------------------------------


def _pairs(cap: Capture, **values) -> dict[str, tuple[int, int]]:
    out = {}
    for key, v in values.items():
        v = [int(v)] * 2 if is_number(v) else [int(i) for i in v]
        if len(v) == 1:
            v = v * 2
        if len(v) != 2:
            raise cap.fail(f"{key}={v}: only 2-D convolution and pooling are supported")
        out[key] = tuple(v)
    return out


@handles("convolution")
def _convolution(cap: Capture, x, w, bias, stride, padding, dilation, transposed,
                 output_padding, groups):
    """2-D convolution: the ``conv2d`` kernel op for constant weights without dilation or
    groups; weights computed at run time (the training path's parameters), dilation or
    groups (ConvNeXt's depthwise convolutions) through im2col and a matmul
    (``_aten_layout.conv2d_matmul``)."""
    shape, dtype = cap.out()
    p = _pairs(cap, stride=stride, padding=padding, dilation=dilation)
    if len(shape) != 4 or transposed:
        raise cap.fail("only 2-D, non-transposed convolution is supported")
    if isinstance(w, Const) and p["dilation"] == (1, 1) and int(groups) == 1:
        y = cap.emit("conv2d", [x, cap.name(w, dtype)], shape, dtype, stride=p["stride"],
                     padding=p["padding"], groups=int(groups))
    else:
        y = conv2d_matmul(cap, x, w, p["stride"], p["padding"], p["dilation"], int(groups))
    return y if bias is None else binary(cap, "add", y, cap.reshape(bias, (shape[1], 1, 1)))


@handles("embedding")
def _embedding(cap: Capture, table, indices, *args, **kwargs):
    shape, dtype = cap.out()
    return cap.emit("embedding", [cap.name(table, dtype), cap.name(indices, "int32")], shape,
                    dtype)
