"""Core-ATen op handlers that the training front end (``_aot_autograd.capture_fx``) adds
to capture()'s or overrides, for the forward and backward graphs of aot_autograd.

Mapping additions (on top of capture()'s; comparisons, masks, where, gathers and scatters
are in ``_aten_index``, shared by both captures):

- ``_to_copy`` to bool is ``x != 0``.
- ``_log_softmax`` over the last dim (another dim is moved there and back): with
  s = x - max(x), the result is s - log(sum(exp(s))).
- ``convolution`` with computed weights (the weights are graph inputs in training): the
  input's patches (im2col: a reshape and permute for non-overlapping patches, else one
  strided slice per kernel offset of the zero-padded channels-last input) times the
  weights as one matmul per group; depthwise: an elementwise product summed per patch.
  ``convolution_backward``: grad_weight = patches^T @ grad, grad_bias = grad summed,
  grad_input = grad @ weights^T scattered back to the input positions (``scatter_add`` of
  constant positions), per group. Dilated and transposed convolutions are refused.
- ``_native_batch_norm_legit_no_training`` with computed parameters (an eval model called
  with gradients on): (x - mean) * weight * rsqrt(var + eps) + bias per channel.
- ``_native_batch_norm_legit_functional`` (training batch norm, running statistics as
  outputs): normalized with the batch's mean and biased variance over all dims but C;
  also the mean and rstd, and the running statistics (1 - momentum) * running +
  momentum * batch, with the unbiased variance (times n / (n - 1)) as PyTorch's.
- ``_embedding_bag``: outputs 1-3 as PyTorch's CPU kernel gives them (saved for the
  backward); ``_embedding_bag_backward`` (mode sum and mean): each index's bag recomputed
  from the offsets, the output gradient's row of that bag (times the per-sample weight,
  over the bag's count for mean, 0 at padding_idx) added into the table row of the index.

``pow`` with an exponent other than 1, 2, 0.5, -0.5, -1 (rsqrt's backward has 3) is the
kernel op ``pow`` in both front ends (see ``_aten_ops``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chipforge.compiler.frontend._aten_index import logical_not
from chipforge.compiler.frontend._aten_layout import _affine, _stats, reduce_over
from chipforge.compiler.frontend._aten_nn import _batch_norm as _known_batch_norm
from chipforge.compiler.frontend._aten_nn import _convolution as _known_convolution
from chipforge.compiler.frontend._aten_nn import _pairs
from chipforge.compiler.frontend._aten_ops import _to_copy as _plain_to_copy
from chipforge.compiler.frontend._aten_ops import binary, prod, slice_
from chipforge.compiler.frontend._capture import Capture, Const, Dyn, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)


@handles("_to_copy")
def _to_copy(cap: Capture, x, **kwargs):
    """A conversion; to bool, ``x != 0`` (a mask stays as it is)."""
    arg = cap.node.args[0]
    if cap.node.meta["val"].dtype != torch.bool or not isinstance(x, Dyn):
        return _plain_to_copy(cap, x, **kwargs)
    if arg.meta["val"].dtype == torch.bool:
        return x
    return logical_not(cap, logical_not(cap, x))


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


@handles("convolution")
def _convolution(cap: Capture, x, w, bias, stride, padding, dilation, transposed,
                 output_padding, groups):
    """A convolution with constant weights is capture()'s (kernel op conv2d); with computed
    ones (training), ``_im2col(x) @ weights`` as [N * Ho * Wo, kh * kw * C] x
    [kh * kw * C, O] per group, plus the bias, moved back to [N, O, Ho, Wo]. A depthwise
    convolution (one input and one output channel per group) multiplies the patches by
    the weights elementwise and sums each patch instead."""
    if isinstance(w, Const):
        return _known_convolution(cap, x, w, bias, stride, padding, dilation, transposed,
                                  output_padding, groups)
    shape, dtype = cap.out()
    x_shape, w_shape = cap.info(x)[0], cap.info(w)[0]
    kh, kw, st, pad, hw = _conv_geometry(cap, x_shape, w_shape, stride, padding, dilation,
                                         transposed, groups)
    n, o, c = shape[0], shape[1], x_shape[1]
    m = n * hw[0] * hw[1]
    if groups == c == o and w_shape[1] == 1:
        y = _depthwise(cap, _im2col(cap, x, kh, kw, st, pad, hw, dtype), w, m, dtype)
    else:
        cg, og = c // groups, o // groups
        parts = []
        for g in range(groups):
            xg = slice_(cap, cap.name(x, dtype), 1, g * cg, (g + 1) * cg)
            wg = slice_(cap, cap.name(w, dtype), 0, g * og, (g + 1) * og)
            cols = _im2col(cap, xg, kh, kw, st, pad, hw, dtype)
            parts.append(cap.emit("matmul", [cap.reshape(cols, (m, kh * kw * cg)),
                                             _weight_cols(cap, wg, dtype)], (m, og), dtype))
        y = parts[0] if groups == 1 else cap.emit("cat", parts, (m, o), dtype, dim=1)
    if bias is not None:
        y = binary(cap, "add", y, cap.reshape(bias, (1, o)))
    return cap.permute(cap.reshape(y, (n, *hw, o)), (0, 3, 1, 2))


def _depthwise(cap: Capture, cols, w, m: int, dtype: str) -> Dyn:
    """Per channel c: the patches ``cols`` [.., kh * kw * C] (ordered (i, j, c)) times the
    weights [C, 1, kh, kw], summed over the patch: [M, C]."""
    c, _, kh, kw = cap.info(w)[0]
    k = kh * kw
    taps = cap.reshape(cap.permute(cap.reshape(cap.name(w, dtype), (c, k)), (1, 0)), (1, k, c))
    product = cap.emit("mul", [cap.reshape(cols, (m, k, c)), taps], (m, k, c), dtype)
    total = cap.emit("sum", [cap.permute(product, (0, 2, 1))], (m, c, 1), dtype)
    return cap.reshape(total, (m, c))


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
