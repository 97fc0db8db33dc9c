"""Core-ATen op handlers that the training front end (``_aot_autograd.capture_fx``) adds
to capture()'s or overrides, for the forward and backward graphs of aot_autograd.

Mapping additions (on top of capture()'s; comparisons, masks, where, gathers and scatters
are in ``_aten_index``, shared by both captures):

- ``convolution_backward`` (the forward, with computed weights, is ``_aten_nn``'s): the
  input's patches (im2col: a reshape and permute for non-overlapping patches, else one
  strided slice per kernel offset of the zero-padded channels-last input);
  grad_weight = patches^T @ grad, grad_bias = grad summed, grad_input = grad @ weights^T
  scattered back to the input positions (``scatter_add`` of constant positions), per
  group. Dilated and transposed convolutions are refused.
- ``_native_batch_norm_legit_no_training`` with computed parameters (an eval model called
  with gradients on): (x - mean) * weight * rsqrt(var + eps) + bias per channel.
- ``_native_batch_norm_legit_functional`` (training batch norm, running statistics as
  outputs): normalized with the batch's mean and biased variance over all dims but C;
  also the mean and rstd, and the running statistics (1 - momentum) * running +
  momentum * batch, with the unbiased variance (times n / (n - 1)) as PyTorch's.

``pow`` with an exponent other than 1, 2, 0.5, -0.5, -1 (rsqrt's backward has 3) is the
kernel op ``pow`` in both front ends (see ``_aten_ops``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chipforge.compiler.frontend._aten_layout import _affine, _stats, reduce_over
from chipforge.compiler.frontend._aten_nn import _batch_norm as _known_batch_norm
from chipforge.compiler.frontend._aten_nn import _pairs
from chipforge.compiler.frontend._aten_ops import binary, prod, slice_
from chipforge.compiler.frontend._capture import Capture, Const, Dyn, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)


# ---- convolution with computed weights (the weights are graph inputs in training) ----------


def _conv_geometry(cap: Capture, x_shape, w_shape, stride, padding, dilation, transposed,
                   groups) -> tuple:
    """(kh, kw, (sh, sw), (ph, pw), (ho, wo)) of a 2-D convolution, or a clean error."""
    pairs = _pairs(cap, stride=stride, padding=padding, dilation=dilation)
    if len(x_shape) != 4 or transposed or pairs["dilation"] != (1, 1):
        raise cap.fail("only 2-D, non-transposed, undilated convolution is supported")
    (sh, sw), (ph, pw) = pairs["stride"], pairs["padding"]
    kh, kw = w_shape[2:]
    ho = (x_shape[2] + 2 * ph - kh) // sh + 1
    wo = (x_shape[3] + 2 * pw - kw) // sw + 1
    return kh, kw, (sh, sw), (ph, pw), (ho, wo)


def _im2col(cap: Capture, x, kh: int, kw: int, stride, padding, out_hw, dtype: str) -> Dyn:
    """The patches of x [N, C, H, W] under each output position: [N, Ho, Wo, kh * kw * C],
    ordered (i, j, c). Non-overlapping patches (stride = kernel, no padding: a ViT's patch
    embedding) are one reshape and permute; otherwise x in channels-last layout, zero
    padded, sliced once per kernel offset (i, j) with the stride, the slices concatenated."""
    n, c, h, w = cap.info(x)[0]
    (sh, sw), (ph, pw), (ho, wo) = stride, padding, out_hw
    x = cap.name(x, dtype)
    if (sh, sw) == (kh, kw) and (ph, pw) == (0, 0) and (h, w) == (ho * kh, wo * kw):
        patches = cap.permute(cap.reshape(x, (n, c, ho, kh, wo, kw)), (0, 2, 4, 3, 5, 1))
        return cap.reshape(patches, (n, ho, wo, kh * kw * c))
    xl = cap.permute(x, (0, 2, 3, 1))  # [N, H, W, C]
    for dim, pad in ((1, ph), (2, pw)):
        if pad:
            shape = list(cap.info(xl)[0])
            zeros = Const(torch.zeros(shape[:dim] + [pad] + shape[dim + 1:]), cap.fresh())
            shape[dim] += 2 * pad
            xl = cap.emit("cat", [cap.name(zeros, dtype), xl, cap.name(zeros, dtype)],
                          shape, dtype, dim=dim)
    pieces = []
    for i in range(kh):
        for j in range(kw):
            piece = slice_(cap, xl, 1, i, i + sh * (ho - 1) + 1, sh)
            pieces.append(slice_(cap, piece, 2, j, j + sw * (wo - 1) + 1, sw))
    if len(pieces) == 1:
        return pieces[0]
    return cap.emit("cat", pieces, (n, ho, wo, kh * kw * c), dtype, dim=3)


def _weight_cols(cap: Capture, w, dtype: str) -> Dyn:
    """Weights [O, C, kh, kw] as [kh * kw * C, O], rows ordered (i, j, c) as _im2col's."""
    o, c, kh, kw = cap.info(w)[0]
    return cap.reshape(cap.permute(cap.name(w, dtype), (2, 3, 1, 0)), (kh * kw * c, o))


@handles("convolution_backward")
def _convolution_backward(cap: Capture, grad, x, w, bias_sizes, stride, padding, dilation,
                          transposed, output_padding, groups, output_mask):
    """(grad_input, grad_weight, grad_bias) of a convolution, each where ``output_mask``
    asks for it; with groups, each group's (:func:`_group_grads`) concatenated."""
    dtype = cap.info(grad)[1]
    x_shape, w_shape = cap.info(x)[0], cap.info(w)[0]
    geometry = _conv_geometry(cap, x_shape, w_shape, stride, padding, dilation, transposed,
                              groups)
    grad, x, w = (cap.name(v, dtype) for v in (grad, x, w))
    cg, og = x_shape[1] // groups, w_shape[0] // groups
    parts = [_group_grads(cap, slice_(cap, grad, 1, g * og, (g + 1) * og),
                          slice_(cap, x, 1, g * cg, (g + 1) * cg),
                          slice_(cap, w, 0, g * og, (g + 1) * og), geometry, output_mask,
                          dtype) for g in range(groups)]
    grads = []
    for k, dim in enumerate((1, 0, 0)):  # grad_input by channel, the others by output
        if not output_mask[k]:
            grads.append(None)
            continue
        pieces = [part[k] for part in parts]
        shape = list(cap.info(pieces[0])[0])
        shape[dim] *= groups
        grads.append(pieces[0] if groups == 1 else
                     cap.emit("cat", pieces, tuple(shape), dtype, dim=dim))
    return tuple(grads)


def _group_grads(cap: Capture, grad, x, w, geometry, output_mask, dtype: str) -> list:
    """The gradients of one groups=1 convolution. With G the output gradient
    channels-last [M, O] (M = N * Ho * Wo) and X = _im2col(x) [M, K]: grad_weight = X^T G
    (back to [O, C, kh, kw]), grad_bias = G summed over M, grad_input = G W^T [M, K] added
    back into the (padded) input positions each patch element came from (:func:`_col2im`)."""
    kh, kw, st, pad, hw = geometry
    x_shape, o = cap.info(x)[0], cap.info(w)[0][0]
    m, k = x_shape[0] * hw[0] * hw[1], kh * kw * x_shape[1]
    g = cap.reshape(cap.permute(grad, (0, 2, 3, 1)), (m, o))  # [M, O]
    grads = [None, None, None]
    if output_mask[1]:
        cols = cap.reshape(_im2col(cap, x, kh, kw, st, pad, hw, dtype), (m, k))
        gw = cap.emit("matmul", [cap.permute(cols, (1, 0)), g], (k, o), dtype)
        grads[1] = cap.permute(cap.reshape(gw, (kh, kw, x_shape[1], o)), (3, 2, 0, 1))
    if output_mask[2]:
        grads[2] = cap.reshape(cap.emit("sum", [cap.permute(g, (1, 0))], (o, 1), dtype), (o,))
    if output_mask[0]:
        w_t = cap.permute(_weight_cols(cap, w, dtype), (1, 0))  # [O, K]
        grads[0] = _col2im(cap, cap.emit("matmul", [g, w_t], (m, k), dtype), x_shape, kh, kw,
                           st, pad, hw, dtype)
    return grads


def _col2im(cap: Capture, cols, x_shape, kh: int, kw: int, stride, padding, out_hw,
            dtype: str) -> Dyn:
    """The input gradient [N, C, H, W] from the patch gradients ``cols`` [M, kh * kw * C]:
    each patch element added into the padded input position it was read from."""
    n, c, h, w = x_shape
    (sh, sw), (ph, pw), (ho, wo) = stride, padding, out_hw
    hp, wp = h + 2 * ph, w + 2 * pw
    b, p, q, i, j = torch.meshgrid(torch.arange(n), torch.arange(ho), torch.arange(wo),
                                   torch.arange(kh), torch.arange(kw), indexing="ij")
    # cols' rows are (b, p, q) and its columns (i, j, c): one [C] row per (b, p, q, i, j)
    position = (b * hp + p * sh + i) * wp + q * sw + j
    position = Const(position.reshape(-1).to(torch.int32), cap.fresh())
    rows = cap.reshape(cols, (n * ho * wo * kh * kw, c))
    total = cap.emit("scatter_add", [cap.name(position, "int32"), rows], (n * hp * wp, c),
                     dtype, num_rows=n * hp * wp)
    padded = cap.reshape(total, (n, hp, wp, c))
    inner = slice_(cap, slice_(cap, padded, 1, ph, ph + h), 2, pw, pw + w)
    return cap.permute(inner, (0, 3, 1, 2))


# ---- batch norm in eval mode with computed parameters --------------------------------------


@handles("_native_batch_norm_legit_no_training")
def _batch_norm(cap: Capture, x, weight, bias, mean, var, momentum, eps):
    """Eval-mode batch norm: capture()'s folding when the parameters and statistics are
    constants; computed ones (an eval model called with gradients on) give
    (x - mean) * (weight * rsqrt(var + eps)) + bias per channel, each [C, 1, 1]. Outputs 1
    and 2 are empty, as PyTorch's."""
    if all(isinstance(v, Const | None) for v in (weight, bias, mean, var)):
        return _known_batch_norm(cap, x, weight, bias, mean, var, momentum, eps)
    shape, dtype = cap.out(0)
    per_channel = (shape[1],) + (1,) * (len(shape) - 2)

    def channel(v, fill: float):
        if v is None:
            v = Const(torch.full((shape[1],), fill), cap.fresh())
        return cap.reshape(v, per_channel)

    scale = cap.emit("rsqrt", [binary(cap, "add", channel(var, 1.0), float(eps))], per_channel,
                     dtype)
    scale = binary(cap, "mul", scale, channel(weight, 1.0))
    y = binary(cap, "mul", binary(cap, "sub", x, channel(mean, 0.0)), scale)
    empty = [Const(torch.empty(tuple(v.shape), dtype=v.dtype), cap.fresh())
             if v.numel() == 0 else None for v in cap.node.meta["val"][1:]]
    return (binary(cap, "add", y, channel(bias, 0.0)), *empty)


@handles("_native_batch_norm_legit_functional")
def _batch_norm_functional(cap: Capture, x, weight, bias, running_mean, running_var,
                           training: bool, momentum: float, eps: float):
    """Training batch norm (see the module docstring): (y, mean [C], rstd [C], new running
    mean, new running var)."""
    if not training:
        y = _batch_norm(cap, x, weight, bias, running_mean, running_var, momentum, eps)[0]
        return y, None, None, running_mean, running_var
    shape, dtype = cap.out(0)
    c, dims = shape[1], [0] + list(range(2, len(shape)))
    count = prod(shape[d] for d in dims)
    centered, mean, rstd = _stats(cap, x, dims, eps, dtype)
    y = _affine(cap, binary(cap, "mul", centered, rstd), weight, bias, shape)
    square = cap.emit("square", [centered], cap.info(centered)[0], dtype)
    var = cap.reshape(reduce_over(cap, "sum", square, dims, True, dtype), (c,))
    stats_dtype = cap.out(3)[1]

    def running(old, batch, scale: float):
        old = cap.emit("mul", [cap.name(old, stats_dtype)], (c,), stats_dtype,
                       scalar=1.0 - momentum)
        new = cap.emit("mul", [cap.name(batch, stats_dtype)], (c,), stats_dtype,
                       scalar=momentum * scale)
        return cap.emit("add", [old, new], (c,), stats_dtype)

    mean = cap.reshape(mean, (c,))
    return (y, mean, cap.reshape(rstd, (c,)), running(running_mean, mean, 1.0),
            running(running_var, var, 1.0 / max(count - 1, 1)))
