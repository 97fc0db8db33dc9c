"""Core-ATen op handlers of the PyTorch front end: layout, creation, reduction, padding,
pooling, resampling and normalization ops beyond _aten_nn, and convolution's backward (see
``_aten_ops`` for the handler contract).

Mapping choices, all composed from ``KERNEL_OPS``:

- Data movement (``as_strided``, ``diagonal``, ``flip``, ``repeat``, ``constant_pad_nd``,
  ``upsample_nearest2d``; ``unfold``, which torch.export keeps): the op is run at capture
  time on ``arange(numel)`` shaped like its input, which gives the flat source index of
  every output element (:func:`gather_elements`); the copy is one ``embedding`` gather of
  constant int32 indices from the input viewed as ``[numel / w, w]`` rows, ``w`` the
  widest run the map copies whole. A padding value is one extra row. ``as_strided`` reads
  the input's memory as PyTorch laid it out (its strides and offset), which the chip
  stores row-major; a read outside the input's elements is refused.
- Linear resampling (``upsample_bilinear2d``, ``avg_pool2d/3d`` other than global,
  ``_adaptive_avg_pool2d/3d``, ``avg_pool2d_backward``, ``_adaptive_avg_pool2d_backward``):
  the op is linear in its tensor operand and acts on each (batch, channel) plane alone.
  The 2-D ones are separable (checked at capture time on a random plane): one matmul along
  the rows and one along the columns, with the matrices the op itself gives on lines of
  ones (:func:`resample_planes`). Otherwise (3-D) it is one ``matmul`` of the planes
  ``[N*C, S]`` with the constant ``[S, S']`` matrix the op gives on the one-hot basis;
  such matrices over 2**22 elements are refused. Either way the weights are the op's own.
- Reductions over any dims (``sum``, ``mean``, ``amax``, ``amin``, ``prod``, ``var``,
  ``any``; ``max.dim``/``min.dim`` are ``_aten_index``'s): each run of adjacent dims is
  merged and moved last, then reduced (:func:`reduce_over`). ``min`` is ``-max(-x)``;
  ``prod`` multiplies halves pairwise (ones pad an odd length); ``var`` is
  ``sum((x - mean)**2) / (n - correction)``; ``any`` is the max of ``x != 0``.
- Creation ops with no tensor inputs (``arange``, ``full``, ``empty``, ``empty_strided``,
  ``scalar_tensor``) never reach a handler: they are folded. ``copy(dst, src)`` is ``src``
  broadcast to ``dst``'s shape and dtype.
- Ops PyTorch's Core ATen decompositions rewrite before either capture sees them (the
  reflection and replication pads, ``avg_pool1d``, ``col2im``, ``fill``, ...) have no
  handler here: their decompositions are captured (see ``_coverage``).
- ``native_group_norm`` (inference and forward): ``layernorm`` over each group, then the
  per-channel affine; ``_native_batch_norm_legit`` (training batch norm): the batch
  statistics over (N, H, W), biased variance; both also give mean and rstd.
- ``native_dropout`` with ``p == 0`` or ``train=False`` is the identity (the chip has no RNG
  for any other ``p``).
- ``_cdist_forward`` and ``_pdist_forward``: differences of broadcast (``_pdist``:
  constant-index gathered) rows, their p-norms (:func:`norm_over`, as ``linalg_vector_norm``,
  which is not Core ATen but torch.export keeps it: ``F.normalize``).
- Max pooling (2-D and 3-D, ``ceil_mode``, dilation, the indices): a gather of the windows
  (-inf in the padding) and their max; 2-D pooling whose indices nothing reads, without
  ``ceil_mode`` or dilation, is the kernel op ``max_pool2d``. Its backward is one
  ``scatter_add`` of the output gradients at the indices.
- Convolution with weights computed at run time, or dilated (``_aten_nn`` calls
  :func:`conv2d_matmul`): im2col as one constant-index gather and one matmul per group.
- A result with a zero-size dim is an empty constant; a result that reads only zero-size
  computed tensors is folded on zeros of their shapes (its values cannot depend on them).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable

import numpy as np
import torch

from chipforge.compiler.frontend._aten_ops import _masked_row_guard, binary, prod
from chipforge.compiler.frontend._capture import Capture, Const, Deferred, Dyn, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)
MAX_MATRIX = 2 ** 22  # elements of a capture-time resampling matrix (16 MiB in fp32)


def _val(cap: Capture, index: int | None = None) -> torch.Tensor:
    """The current node's (``index``-th) result as PyTorch traced it (shape, dtype)."""
    val = cap.node.meta["val"]
    return val[index or 0] if isinstance(val, tuple | list) else val


def _empty_aware(fn: Callable) -> Callable:
    """Handle zero-size tensors before ``fn``: an empty result is an empty constant, and an
    op whose computed inputs are all empty is evaluated on zeros of their shapes."""
    @functools.wraps(fn)
    def handler(cap: Capture, *args, **kwargs):
        val = cap.node.meta["val"]
        vals = list(val) if isinstance(val, tuple | list) else [val]
        tensors = [v for v in vals if isinstance(v, torch.Tensor)]
        if tensors and all(v.numel() == 0 for v in tensors):
            consts = [Const(torch.zeros(tuple(v.shape), dtype=v.dtype), cap.fresh())
                      for v in tensors]
            return tuple(consts) if isinstance(val, tuple | list) else consts[0]
        dyns = [a for a in _flat(args, kwargs) if isinstance(a, Dyn)]
        if dyns and all(prod(cap.info(d)[0]) == 0 for d in dyns):
            return _fold_on_zeros(cap, args, kwargs)
        return fn(cap, *args, **kwargs)
    return handler


def _flat(args, kwargs) -> list:
    """The arguments, lists and tuples opened one level (where ATen ops keep tensors)."""
    out = []
    for a in [*args, *kwargs.values()]:
        out.extend(a if isinstance(a, list | tuple) else [a])
    return out


def _fold_on_zeros(cap: Capture, args, kwargs):
    """The current node evaluated with torch, zeros of the right shape and dtype standing in
    for its (zero-size) computed inputs."""
    dtypes = {n.name: getattr(n.meta.get("val"), "dtype", torch.float32)
              for n in cap.node.all_input_nodes}

    def real(v):
        if isinstance(v, Const):
            return v.value
        if isinstance(v, Dyn):
            dtype = dtypes.get(str(v), torch.float32)
            return torch.zeros(cap.info(v)[0], dtype=dtype)
        if isinstance(v, list | tuple):
            return type(v)(real(x) for x in v)
        return v

    with torch.no_grad():
        result = cap.node.target(*[real(a) for a in args],
                                 **{k: real(v) for k, v in kwargs.items()})
    if isinstance(result, torch.Tensor):
        return Const(result, cap.fresh())
    return tuple(Const(r, cap.fresh()) if isinstance(r, torch.Tensor) else r for r in result)


# ---- data movement: gathers of constant indices ---------------------------------------------


def _block(flat: np.ndarray, n: int) -> int:
    """The widest w dividing n and len(flat) such that each w-run of ``flat`` is all -1 or
    copies one aligned w-run of the source (b * w, b * w + 1, ...)."""
    m = len(flat)
    for w in sorted((d for d in range(1, math.gcd(n, m) + 1) if n % d == 0 and m % d == 0),
                    reverse=True):
        runs = flat.reshape(-1, w)
        first = runs[:, :1]
        fill = (runs == -1).all(axis=1)
        copy = ((runs == first + np.arange(w)).all(axis=1) & (first[:, 0] % w == 0))
        if (fill | copy).all():
            return w
    return 1


def gather_elements(cap: Capture, x, index: np.ndarray, fill=None):
    """The tensor of ``index``'s shape whose element i is ``x.flat[index.flat[i]]``
    (row-major), or ``fill`` where the index is -1: one ``embedding`` gather of constant
    indices from x viewed as rows of the widest run the map copies whole."""
    shape, dtype = cap.info(x)
    kind = torch.int64 if dtype in ("int8", "int32") else torch.float32  # x's, in torch
    n, out_shape = prod(shape), tuple(index.shape)
    flat = index.reshape(-1).astype(np.int64)
    if (flat == -1).all():
        return Const(torch.full(out_shape, fill, dtype=kind), cap.fresh())
    if np.array_equal(flat, np.arange(n)):
        return cap.reshape(x, out_shape)
    w = _block(flat, n) if n else 1
    table = cap.reshape(x, (n // w, w))
    rows = flat.reshape(-1, w)[:, 0]
    if (rows == -1).any():
        if not kind.is_floating_point and not math.isfinite(fill):  # -inf of integer pooling
            bounds = torch.iinfo(torch.int32)  # the chip's integer dtype
            fill = bounds.min if fill < 0 else bounds.max
        pad = Const(torch.full((1, w), fill, dtype=kind), cap.fresh())
        table = cap.emit("cat", [table, cap.name(pad, dtype)], (n // w + 1, w), dtype, dim=0)
        rows = np.where(rows == -1, n, rows)
    idx = Const(torch.from_numpy(rows // w), cap.fresh())
    out = cap.emit("embedding", [table, cap.name(idx, "int32")], (len(rows), w), dtype)
    return cap.reshape(out, out_shape)


def _source_index(shape, op: Callable, *args, **kwargs) -> np.ndarray:
    """``op`` run on the flat indices of a tensor of ``shape`` (float64: every movement op
    accepts it, and it is exact below 2**53), as int64."""
    base = torch.arange(prod(shape), dtype=torch.float64).reshape(tuple(shape))
    with torch.no_grad():
        return op(base, *args, **kwargs).round().to(torch.int64).numpy()


@handles("flip", "repeat", "diagonal", "upsample_nearest2d", "unfold")
@_empty_aware
def _movement(cap: Capture, x, *args, **kwargs):
    """A pure data-movement op: the gather its own index map gives."""
    return gather_elements(cap, x, _source_index(cap.info(x)[0], cap.node.target, *args,
                                                 **kwargs))


@handles("constant_pad_nd")
@_empty_aware
def _constant_pad(cap: Capture, x, pad, value=0):
    """Padding (negative pads crop): the map with -1 where the pad value goes."""
    index = _source_index(cap.info(x)[0], cap.node.target, pad, -1.0)
    return gather_elements(cap, x, index, fill=value)


@handles("as_strided")
@_empty_aware
def _as_strided(cap: Capture, x, size, stride, storage_offset=None):
    """A copy of the elements ``as_strided`` reads from the memory PyTorch gave ``x`` (its
    strides and offset), located in the chip's row-major copy of x."""
    val = cap.node.args[0].meta["val"]
    n = val.numel()
    if n == 0:
        raise cap.fail("as_strided of an empty tensor reads no elements")
    extent = val.storage_offset() + sum((s - 1) * abs(t) for s, t in zip(val.shape,
                                                                            val.stride())) + 1
    memory = torch.full((extent,), -1, dtype=torch.int64)
    memory.as_strided(tuple(val.shape), tuple(val.stride()), val.storage_offset()).copy_(
        torch.arange(n).reshape(tuple(val.shape)))
    offset = val.storage_offset() if storage_offset is None else int(storage_offset)
    last = offset + sum((s - 1) * t for s, t in zip(size, stride))
    if offset < 0 or last >= extent or min(stride, default=0) < 0:
        raise cap.fail(f"as_strided(size={list(size)}, stride={list(stride)}, offset={offset}) "
                       f"reads memory outside its input's {n} elements")
    index = memory.as_strided(tuple(size), tuple(stride), offset).numpy()
    if (index == -1).any():
        raise cap.fail("as_strided reads memory between its input's elements (which the chip "
                       "does not store); make the input contiguous first")
    return gather_elements(cap, x, index)


# ---- linear resampling: one matmul with the op's own matrix ------------------------------


def _plane_matrix(cap: Capture, apply: Callable, plane, out_plane) -> Const:
    """The constant [S, S'] matrix of a per-plane linear op: ``apply`` maps a [S, 1, *plane]
    batch of one-hot planes to [S, 1, *out_plane]."""
    s, s_out = prod(plane), prod(out_plane)
    if s * s_out > MAX_MATRIX:
        raise cap.fail(f"its resampling matrix would have {s} x {s_out} elements (the limit is "
                       f"{MAX_MATRIX}); use smaller planes")
    rows = []
    with torch.no_grad():
        for start in range(0, s, 256):  # one-hot planes in chunks: never an [S, S] basis
            count = min(256, s - start)
            basis = torch.zeros((count, s), dtype=torch.float64)
            basis[torch.arange(count), torch.arange(start, start + count)] = 1.0
            rows.append(apply(basis.reshape((count, 1, *plane))).reshape(count, s_out))
    return Const(torch.cat(rows).to(torch.float32), cap.fresh())


def linear_planes(cap: Capture, x, lead: int, apply: Callable):
    """The result of a linear op acting on each plane (the dims after the first ``lead``) of
    ``x`` alone: ``[prod(lead dims), S] @ M``, reshaped to the result's shape."""
    shape, dtype = cap.info(x)
    out_shape = cap.out()[0]
    rows = prod(shape[:lead])
    matrix = _plane_matrix(cap, apply, shape[lead:], out_shape[lead:])
    flat = cap.reshape(x, (rows, prod(shape[lead:])))
    y = cap.emit("matmul", [flat, cap.name(matrix, dtype)], (rows, prod(out_shape[lead:])),
                 dtype)
    return cap.reshape(y, out_shape)


def _apply_with(cap: Capture, position: int, args, kwargs) -> Callable:
    """``basis -> op(..., basis at args[position], ...)`` for this node's op."""
    def apply(basis):
        call = list(args)
        call[position] = basis
        return cap.node.target(*call, **kwargs)
    return apply


def _rows_times(cap: Capture, y, matrix: torch.Tensor, dtype: str) -> Dyn:
    """``y`` [R, K] @ the constant ``matrix`` [K, M]."""
    rows = cap.info(y)[0][0]
    return cap.emit("matmul", [cap.name(y, dtype), cap.name(Const(matrix.float(), cap.fresh()),
                                                          dtype)],
                    (rows, matrix.shape[1]), dtype)


def _one_hot_planes(apply: Callable, plane, axis: int) -> torch.Tensor:
    """``apply`` on the planes that are 1 on one line across ``axis`` (a column for axis 1, a
    row for axis 0) and 0 elsewhere, one plane per line, in chunks: [lines, *out_plane]."""
    lines, outs = plane[axis], []
    for start in range(0, lines, 64):
        count = min(64, lines - start)
        basis = torch.zeros((count, 1, *plane), dtype=torch.float64)
        for k in range(count):
            basis[(k, 0) + ((slice(None), start + k) if axis else (start + k,))] = 1.0
        outs.append(apply(basis)[:, 0])
    return torch.cat(outs)


def _axis_matrices(apply: Callable, plane, out_plane):
    """(A_h [H, Ho], A_w [W, Wo]) with ``apply(x) = A_h^T x A_w`` for every [H, W] plane x, or
    None if the op is not so separable (checked on a random plane). From the op on lines of
    ones: column l gives r_i A_w[l, j], row k gives A_h[k, i] c_j, with r x c the op's
    result on a plane of ones T; so A_h from one output column j0 scaled by 1 / T[i0, j0]
    and A_w from one output row i0 (T[i0, j0] its largest entry)."""
    with torch.no_grad():
        total = apply(torch.ones((1, 1, *plane), dtype=torch.float64))[0, 0]
        i0, j0 = divmod(int(total.abs().argmax()), out_plane[1])
        if total[i0, j0] == 0:
            return None
        along_w = _one_hot_planes(apply, plane, 1)[:, i0, :]
        along_h = _one_hot_planes(apply, plane, 0)[:, :, j0] / total[i0, j0]
        probe = torch.rand((1, 1, *plane), dtype=torch.float64,
                           generator=torch.Generator().manual_seed(0))
        if not torch.allclose(along_h.T @ probe[0, 0] @ along_w, apply(probe)[0, 0],
                              rtol=1e-9, atol=1e-12):
            return None
    return along_h, along_w


def _rows_times(cap: Capture, y, matrix: torch.Tensor, dtype: str) -> Dyn:
    """``y`` [R, K] @ the constant ``matrix`` [K, M]."""
    rows = cap.info(y)[0][0]
    return cap.emit("matmul", [cap.name(y, dtype), cap.name(Const(matrix.float(), cap.fresh()),
                                                          dtype)],
                    (rows, matrix.shape[1]), dtype)


def resample_planes(cap: Capture, x, apply: Callable):
    """A linear op on each [H, W] plane of ``x`` (the last two dims) alone, as ``apply`` gives
    it: separable ones as two matmuls (along the rows, then the columns), others as one
    matmul with the dense matrix (:func:`linear_planes`)."""
    shape, dtype = cap.info(x)
    out_shape = cap.out()[0]
    (h, w), (ho, wo) = shape[-2:], out_shape[-2:]
    matrices = _axis_matrices(apply, (h, w), (ho, wo))
    if matrices is None:
        return linear_planes(cap, x, len(shape) - 2, apply)
    along_h, along_w = matrices
    planes = prod(shape[:-2])
    y = _rows_times(cap, cap.reshape(x, (planes * h, w)), along_w, dtype)  # [P*H, Wo]
    y = cap.permute(cap.reshape(y, (planes, h, wo)), (0, 2, 1))
    y = _rows_times(cap, cap.reshape(y, (planes * wo, h)), along_h, dtype)  # [P*Wo, Ho]
    y = cap.permute(cap.reshape(y, (planes, wo, ho)), (0, 2, 1))
    return cap.reshape(y, out_shape)


@handles("upsample_bilinear2d")
@_empty_aware
def _bilinear(cap: Capture, x, *args, **kwargs):
    """Bilinear upsampling: separable (:func:`resample_planes`)."""
    return resample_planes(cap, x, _apply_with(cap, 0, (x, *args), kwargs))


@handles("avg_pool3d", "_adaptive_avg_pool3d")
@_empty_aware
def _resample(cap: Capture, x, *args, **kwargs):
    """3-D average pooling: the matmul of its planes."""
    return linear_planes(cap, x, len(cap.info(x)[0]) - _plane_rank(cap), _apply_with(
        cap, 0, (x, *args), kwargs))


def _plane_rank(cap: Capture) -> int:
    """2 or 3: the spatial rank of the current pooling op."""
    return 3 if "3d" in cap.node.target.overloadpacket.__name__ else 2


@handles("avg_pool2d", "_adaptive_avg_pool2d")
@_empty_aware
def _avg_pool2d(cap: Capture, x, *args, **kwargs):
    """Global pooling (an adaptive 1x1, or a window of the whole unpadded image) is the kernel
    op ``global_avg_pool2d``; any other pooling :func:`resample_planes` (separable)."""
    shape, dtype = cap.out()
    in_shape = cap.info(x)[0]
    window = list(args[0]) if args else []
    if cap.node.target.overloadpacket.__name__ == "avg_pool2d":
        padding = args[2] if len(args) > 2 else 0
        divisor = args[5] if len(args) > 5 else kwargs.get("divisor_override")
        window = window * 2 if len(window) == 1 else window
        whole = (tuple(window) == in_shape[-2:] and not any(np.atleast_1d(padding))
                 and shape[-2:] == (1, 1) and divisor is None)
    else:
        whole = shape[-2:] == (1, 1)
    if len(in_shape) == 4 and whole:
        return cap.emit("global_avg_pool2d", [x], shape, dtype)
    return resample_planes(cap, x, _apply_with(cap, 0, (x, *args), kwargs))


@handles("avg_pool2d_backward", "_adaptive_avg_pool2d_backward")
@_empty_aware
def _avg_pool_backward(cap: Capture, grad, x, *args):
    """The pooling's transpose, linear in the gradient (``x`` only gives the shape)."""
    plane = tuple(cap.out()[0][-2:])

    def apply(basis):
        zeros = torch.zeros((basis.shape[0], 1, *plane), dtype=basis.dtype)
        return cap.node.target(basis, zeros, *args)

    return resample_planes(cap, grad, apply)


# ---- reductions --------------------------------------------------------------------------


def _reduce_last(cap: Capture, op: str, x, dtype: str) -> Dyn:
    """``op`` (sum mean max min prod) over the last dim of ``x``, kept as size 1."""
    shape = cap.info(x)[0]
    out = tuple(shape[:-1]) + (1,)
    if op in ("sum", "mean", "max"):
        return cap.emit(op, [cap.name(x, dtype)], out, dtype)
    if op == "min":
        neg = cap.emit("neg", [cap.name(x, dtype)], shape, dtype)
        return cap.emit("neg", [cap.emit("max", [neg], out, dtype)], out, dtype)
    x = cap.name(x, dtype)
    while cap.info(x)[0][-1] > 1:  # prod: multiply the halves, ones padding an odd length
        n = cap.info(x)[0][-1]
        if n % 2:
            ones = Const(torch.ones(tuple(shape[:-1]) + (1,)), cap.fresh())
            x = cap.emit("cat", [x, cap.name(ones, dtype)], tuple(shape[:-1]) + (n + 1,),
                         dtype, dim=len(shape) - 1)
            n += 1
        half = tuple(shape[:-1]) + (n // 2,)
        lo = cap.emit("slice", [x], half, dtype, dim=len(shape) - 1, start=0, end=n // 2, step=1)
        hi = cap.emit("slice", [x], half, dtype, dim=len(shape) - 1, start=n // 2, end=n,
                      step=1)
        x = cap.emit("mul", [lo, hi], half, dtype)
    return Dyn(x)


def reduce_over(cap: Capture, op: str, x, dims, keepdim: bool, dtype: str | None = None):
    """``op`` (sum mean max min prod) of ``x`` over ``dims`` (all if None or empty; negative
    dims count from the end), one run of adjacent dims at a time (the last run first): the
    run merged into one dim, moved last, reduced, kept as 1s; the reduced dims dropped
    unless ``keepdim``. Each permute so moves the last dim at most to second-to-last."""
    shape = cap.info(x)[0]
    dtype = dtype or cap.info(x)[1]
    rank = len(shape)
    dims = sorted({d % rank for d in dims} if dims else range(rank)) if rank else []
    if op == "mean" and rank == 4 and dims == [2, 3]:
        pooled = cap.emit("global_avg_pool2d", [cap.name(x, dtype)], shape[:2] + (1, 1), dtype)
        return cap.reshape(pooled, shape[:2] + ((1, 1) if keepdim else ()))
    runs: list[list[int]] = []
    for d in dims:
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    if not runs:  # a 0-d tensor: reducing it is the identity
        return cap.name(x, dtype) if not isinstance(x, Const) else x
    for run in reversed(runs):
        shape = cap.info(x)[0]
        lo, hi = run[0], run[-1] + 1
        merged = shape[:lo] + (prod(shape[lo:hi]),) + shape[hi:]
        order = [d for d in range(len(merged)) if d != lo] + [lo]
        moved = cap.permute(cap.reshape(x, merged), order)
        x = cap.reshape(_reduce_last(cap, op, moved, dtype),
                        shape[:lo] + (1,) * (hi - lo) + shape[hi:])
    final = cap.info(x)[0]
    return cap.reshape(x, final if keepdim else [s for d, s in enumerate(final)
                                                    if d not in dims])


_REDUCTIONS = {"sum": "sum", "mean": "mean", "amax": "max", "amin": "min", "prod": "prod"}


@handles("sum", "mean", "amax", "amin", "prod")
@_empty_aware
def _reduction(cap: Capture, x, dims=None, keepdim=False, **kwargs):
    """sum/mean/amax/amin over ``dims``; prod over one dim (``prod.dim_int``) or all."""
    if isinstance(dims, int):
        dims = [dims]
    op = _REDUCTIONS[cap.node.target.overloadpacket.__name__]
    return cap.reshape(reduce_over(cap, op, x, dims, keepdim, cap.out()[1]), cap.out()[0])


@handles("var")
@_empty_aware
def _var(cap: Capture, x, dims=None, *, correction=None, keepdim=False, unbiased=None):
    """sum((x - mean)**2) / (n - correction) over ``dims``; correction 1 unless given."""
    shape, dtype = cap.out()
    if isinstance(dims, int):
        dims = [dims]
    in_shape = cap.info(x)[0]
    reduced = sorted({d % len(in_shape) for d in dims} if dims else range(len(in_shape)))
    n = prod(in_shape[d] for d in reduced)
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    centered = binary(cap, "sub", x, reduce_over(cap, "mean", x, reduced, True, dtype))
    sq = cap.emit("square", [centered], cap.info(centered)[0], dtype)
    total = reduce_over(cap, "sum", sq, reduced, keepdim, dtype)
    return cap.reshape(binary(cap, "div", total, float(n - correction)), shape)


@handles("any")
@_empty_aware
def _any(cap: Capture, x, dims=None, keepdim=False):
    """1.0 where some element over ``dims`` is non-zero: the max of ``x != 0``. In SDPA's
    guard for fully masked rows it stays a deferred test, which ``where`` drops."""
    if _in_row_guard(cap.node):
        return Deferred(cap.node)
    if isinstance(dims, int):
        dims = [dims]
    shape, dtype = cap.info(x)
    zero = cap.emit("eq", [x], shape, "fp32", scalar=0 if dtype in ("int8", "int32") else 0.0)
    nonzero = cap.emit("eq", [zero], shape, "fp32", scalar=0.0)
    return cap.reshape(reduce_over(cap, "max", nonzero, dims, keepdim, "fp32"), cap.out()[0])


def _in_row_guard(node: torch.fx.Node) -> bool:
    """Whether every use of ``node`` is ``logical_not`` feeding SDPA's row guard."""
    nots = list(node.users)
    return bool(nots) and all(
        n.target is torch.ops.aten.logical_not.default and n.users
        and all(w.target is torch.ops.aten.where.self and _masked_row_guard(w)
                for w in n.users) for n in nots)


# ---- creation, copies ----------------------------------------------------------------------


@handles("copy")
@_empty_aware
def _copy(cap: Capture, dst, src, non_blocking=False):
    """``src`` broadcast to ``dst``'s shape, in ``dst``'s dtype (dst's values are not read)."""
    shape, dtype = cap.out()
    val = _val(cap)
    if isinstance(src, Const):
        return Const(src.value.to(val.dtype).expand(tuple(val.shape)).clone(), cap.fresh())
    src = cap.name(src, dtype)
    if cap.info(src)[0] != shape:
        src = cap.reshape(src, (1,) * (len(shape) - len(cap.info(src)[0])) + cap.info(src)[0])
        src = cap.emit("expand", [src], shape, dtype, shape=shape)
    return src


@handles("native_dropout")
def _dropout(cap: Capture, x, p: float, train=None):
    """Dropout that drops nothing (``p == 0`` or not training): x and an all-true mask."""
    if p != 0 and train is not False:
        raise cap.fail(f"dropout with p={p} while training needs random numbers, and the chip "
                       f"has no RNG; call model.eval() or set p=0")
    mask = _val(cap, 1)
    return x, Const(torch.ones(tuple(mask.shape), dtype=mask.dtype), cap.fresh())


# ---- normalization ---------------------------------------------------------------------------


def _stats(cap: Capture, x, dims, eps: float, dtype: str):
    """(x - mean, mean, rstd) over ``dims`` (kept), the biased variance."""
    mean = reduce_over(cap, "mean", x, dims, True, dtype)
    centered = binary(cap, "sub", x, mean)
    sq = cap.emit("square", [centered], cap.info(centered)[0], dtype)
    var = reduce_over(cap, "mean", sq, dims, True, dtype)
    rstd = cap.emit("rsqrt", [binary(cap, "add", var, float(eps))], cap.info(var)[0], dtype)
    return centered, mean, rstd


def _affine(cap: Capture, y, weight, bias, shape):
    """y * weight + bias with [C] parameters broadcast over the dims after C (dim 1)."""
    per_channel = (shape[1],) + (1,) * (len(shape) - 2)
    for op, value in (("mul", weight), ("add", bias)):
        if value is not None:
            y = binary(cap, op, y, cap.reshape(value, per_channel))
    return y


@handles("native_group_norm")
@_empty_aware
def _group_norm(cap: Capture, x, weight, bias, n: int, c: int, hw: int, group: int, eps):
    """Each of the ``group`` groups of channels normalized over its channels and positions,
    then the per-channel affine; also the mean and rstd ([N, group])."""
    shape, dtype = cap.out(0)
    grouped = cap.reshape(x, (n, group, (c // group) * hw))
    ones = Const(torch.ones((c // group) * hw), cap.fresh())
    zeros = Const(torch.zeros((c // group) * hw), cap.fresh())
    y = cap.emit("layernorm", [grouped, cap.name(ones, dtype), cap.name(zeros, dtype)],
                 cap.info(grouped)[0], dtype, eps=float(eps))
    y = _affine(cap, cap.reshape(y, shape), weight, bias, shape)
    _, mean, rstd = _stats(cap, grouped, [2], eps, dtype)
    return y, cap.reshape(mean, (n, group)), cap.reshape(rstd, (n, group))


@handles("_native_batch_norm_legit")
@_empty_aware
def _batch_norm_train(cap: Capture, x, weight, bias, *args):
    """Batch norm with the batch's statistics (``training=True``): over all dims but C, the
    biased variance; also the mean and rstd ([C]). Running statistics are updated by the
    graph's own ops, not here. ``training=False`` uses the running statistics."""
    if len(args) == 5:  # default overload: running_mean, running_var, training, momentum, eps
        running_mean, running_var, training, _, eps = args
    else:  # no_stats: training, momentum, eps
        running_mean = running_var = None
        training, _, eps = args
    shape, dtype = cap.out(0)
    if not training:
        if not isinstance(running_mean, Const) or not isinstance(running_var, Const):
            raise cap.fail("batch norm in eval mode needs running statistics known at capture "
                           "time")
        mean, var = running_mean.value.double(), running_var.value.double()
        per = (shape[1],) + (1,) * (len(shape) - 2)
        rstd = Const((var + eps).rsqrt().float().reshape(per), cap.fresh())
        centered = binary(cap, "sub", x, Const(mean.float().reshape(per), cap.fresh()))
        y = _affine(cap, binary(cap, "mul", centered, rstd), weight, bias, shape)
        empty = Const(torch.zeros(0), cap.fresh())
        return y, empty, empty
    dims = [0] + list(range(2, len(shape)))
    centered, mean, rstd = _stats(cap, x, dims, eps, dtype)
    y = _affine(cap, binary(cap, "mul", centered, rstd), weight, bias, shape)
    return y, cap.reshape(mean, (shape[1],)), cap.reshape(rstd, (shape[1],))


# ---- distances -------------------------------------------------------------------------------


def norm_over(cap: Capture, x, p: float, dims, keepdim: bool, dtype: str):
    """The p-norm of ``x`` over ``dims`` (all if None or empty): p = 2 is
    sqrt(sum(x**2)), 1 sum(|x|), inf max(|x|), -inf min(|x|), 0 the count of non-zeros,
    any other p sum(|x|**p) ** (1 / p)."""
    shape = cap.info(x)[0]
    x = cap.name(x, dtype)
    if p == 2:
        total = reduce_over(cap, "sum", cap.emit("square", [x], shape, dtype), dims, keepdim,
                            dtype)
        return cap.emit("sqrt", [total], cap.info(total)[0], dtype)
    if p == 0:
        zero = cap.emit("eq", [x], shape, dtype, scalar=0.0)
        nonzero = cap.emit("eq", [zero], shape, dtype, scalar=0.0)
        return reduce_over(cap, "sum", nonzero, dims, keepdim, dtype)
    absolute = cap.emit("abs", [x], shape, dtype)
    if p in (1, math.inf, -math.inf):
        op = {1: "sum", math.inf: "max", -math.inf: "min"}[p]
        return reduce_over(cap, op, absolute, dims, keepdim, dtype)
    powered = cap.emit("pow", [absolute], shape, dtype, exponent=float(p))
    total = reduce_over(cap, "sum", powered, dims, keepdim, dtype)
    return cap.emit("pow", [total], cap.info(total)[0], dtype, exponent=1.0 / float(p))


@handles("linalg_vector_norm")
@_empty_aware
def _vector_norm(cap: Capture, x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """``torch.linalg.vector_norm`` (``F.normalize``'s norm; not Core ATen, but torch.export
    keeps it): :func:`norm_over`."""
    dims = [dim] if isinstance(dim, int) else dim
    shape, out_dtype = cap.out()
    return cap.reshape(norm_over(cap, x, float(ord), dims, keepdim, out_dtype), shape)


@handles("_cdist_forward")
@_empty_aware
def _cdist(cap: Capture, x1, x2, p: float, compute_mode=None):
    """||x1[..., i, :] - x2[..., j, :]||_p for every (i, j): broadcast rows, their norms."""
    shape, dtype = cap.out()
    s1, s2 = cap.info(x1)[0], cap.info(x2)[0]
    a = cap.reshape(x1, s1[:-1] + (1, s1[-1]))
    b = cap.reshape(x2, s2[:-2] + (1,) + s2[-2:])
    diff = binary(cap, "sub", a, b)
    return cap.reshape(norm_over(cap, diff, float(p), [-1], False, dtype), shape)


@handles("_pdist_forward")
@_empty_aware
def _pdist(cap: Capture, x, p: float = 2.0):
    """||x[i] - x[j]||_p for i < j in row-major order: constant-index row gathers."""
    shape, dtype = cap.out()
    rows = cap.info(x)[0][0]
    i, j = np.triu_indices(rows, k=1)
    parts = [cap.emit("embedding", [x, cap.name(Const(torch.from_numpy(k), cap.fresh()),
                                                 "int32")], (len(k), cap.info(x)[0][1]), dtype)
             for k in (i, j)]
    diff = cap.emit("sub", parts, cap.info(parts[0])[0], dtype)
    return cap.reshape(norm_over(cap, diff, float(p), [-1], False, dtype), shape)


# ---- convolution as im2col gathers and a matmul ------------------------------------------


def _im2col_index(x_shape, kernel, stride, padding, dilation) -> np.ndarray:
    """[N, L, C*kh*kw]: the flat index in x of each patch element (-1 in the padding)."""
    base = torch.arange(1, prod(x_shape) + 1, dtype=torch.float64).reshape(tuple(x_shape))
    cols = torch.nn.functional.unfold(base, kernel, dilation=dilation, padding=padding,
                                      stride=stride)
    return (cols.round().to(torch.int64) - 1).transpose(1, 2).numpy()


def conv2d_matmul(cap: Capture, x, w, stride, padding, dilation, groups: int = 1) -> Dyn:
    """A 2-D convolution as im2col and one (batched) matmul: the input's patches
    [N, L, C*kh*kw] (one constant-index gather, zeros in the padding) moved to
    [G, N*L, C/G*kh*kw] times each group's weights [O/G, C/G*kh*kw] transposed, the result
    [G, N, L, O/G] moved to [N, O, Ho, Wo]. For weights computed at run time (the training
    path's parameters), which the ``conv2d`` kernel op cannot take, and for dilation."""
    x_shape, dtype = cap.info(x)
    w_shape = cap.info(w)[0]
    o, k = w_shape[0], prod(w_shape[1:])  # k: one group's patch length
    index = _im2col_index(x_shape, tuple(w_shape[2:]), tuple(stride), tuple(padding),
                          tuple(dilation))
    n, positions = index.shape[:2]
    cols = cap.reshape(gather_elements(cap, x, index, fill=0.0), (n, positions, groups, k))
    cols = cap.reshape(cap.permute(cols, (2, 0, 1, 3)), (groups, n * positions, k))
    weights = cap.permute(cap.reshape(cap.name(w, dtype), (groups, o // groups, k)), (0, 2, 1))
    y = cap.emit("matmul", [cap.name(cols, dtype), weights], (groups, n * positions, o // groups),
                 dtype)  # the same batch dims (G) on both sides, as the matrix unit needs
    y = cap.reshape(y, (groups, n, positions, o // groups))
    return cap.reshape(cap.permute(y, (1, 0, 3, 2)), cap.out()[0])


# ---- max pooling: window gathers ----------------------------------------------------------


def _window_index(cap: Capture, x_shape, kernel, stride, padding, dilation) -> np.ndarray:
    """[N, C, *out, K]: the flat index in x of each window element (-1 in the padding), the
    windows of the current node's result (its ceil_mode windows padded on the right)."""
    rank = len(kernel)
    out = cap.out(0)[0][-rank:]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    base = torch.arange(1, prod(x_shape) + 1, dtype=torch.float64).reshape(tuple(x_shape))
    pads = []
    for i in reversed(range(rank)):
        extra = (out[i] - 1) * stride[i] + spans[i] - (x_shape[2 + i] + 2 * padding[i])
        pads += [padding[i], padding[i] + max(0, extra)]
    windows = torch.nn.functional.pad(base, pads)
    for i in range(rank):
        windows = windows.unfold(2 + i, spans[i], stride[i]).narrow(2 + i, 0, out[i])
    # the window dims follow the positions, in order; dilation keeps every d-th tap
    taps = windows[(...,) + tuple(slice(None, None, d) for d in dilation)]
    return (taps.reshape(tuple(x_shape[:2]) + tuple(out) + (-1,)).round().to(torch.int64)
            - 1).numpy()


def _tuple(v, rank: int, default) -> tuple[int, ...]:
    v = default if v is None or (isinstance(v, list | tuple) and not v) else v
    v = [int(v)] if isinstance(v, int | float) else [int(i) for i in v]
    return tuple(v * rank if len(v) == 1 else v)


@handles("max_pool2d_with_indices", "max_pool3d_with_indices")
@_empty_aware
def _max_pool(cap: Capture, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """Max pooling and the plane index of each window's first max. 2-D pooling whose indices
    nothing reads, without dilation or ceil_mode, is the kernel op ``max_pool2d``; any other
    is a gather of the windows (-inf in the padding) and their max; the index is the min over
    the window of ``plane index + P * (value != max)`` (P the plane size; exact below 2**23)."""
    shape, dtype = cap.out(0)
    rank = _plane_rank(cap)
    kernel = _tuple(kernel_size, rank, 1)
    stride, padding = _tuple(stride, rank, kernel), _tuple(padding, rank, 0)
    dilation = _tuple(dilation, rank, 1)
    used = any(u.target is not operator.getitem or (u.args[1] == 1 and u.users)
               for u in cap.node.users)  # whether the indices are read
    if rank == 2 == len(shape) - 2 and not used and not ceil_mode and dilation == (1, 1):
        y = cap.emit("max_pool2d", [x], shape, dtype, kernel=kernel, stride=stride,
                     padding=padding)
        return y, None
    x_shape = cap.info(x)[0]
    if len(x_shape) != rank + 2:
        raise cap.fail(f"max pooling of a {len(x_shape)}-D input: give it a batch dim")
    index = _window_index(cap, x_shape, kernel, stride, padding, dilation)
    windows = gather_elements(cap, x, index, fill=float("-inf"))
    values = _reduce_last(cap, "max", windows, dtype)
    plane = prod(x_shape[2:])
    if not used:
        return cap.reshape(values, shape), None
    hit = cap.emit("eq", [cap.name(windows, dtype),
                          cap.emit("expand", [values], index.shape, dtype, shape=index.shape)],
                   index.shape, "fp32")
    ranks = np.where(index < 0, plane, index % plane) + plane
    ranked = binary_as(cap, "add", binary_as(cap, "mul", hit, -float(plane), "fp32"),
                       Const(torch.from_numpy(ranks.astype(np.float32)), cap.fresh()), "fp32")
    first = _reduce_last(cap, "min", ranked, "fp32")
    return cap.reshape(values, shape), cap.reshape(cap.cast(first, cap.out(1)[1]), shape)


def binary_as(cap: Capture, op: str, a, b, dtype: str) -> Dyn:
    """``a op b`` (a computed, b a number or a constant) in ``dtype``, whatever the current
    node's result dtype (``binary`` uses that one)."""
    shape = cap.info(a)[0]
    if not isinstance(b, Const):
        scalar = int(b) if dtype in ("int8", "int32") else float(b)
        return cap.emit(op, [cap.name(a, dtype)], shape, dtype, scalar=scalar)
    out = tuple(np.broadcast_shapes(shape, tuple(b.value.shape)))
    return cap.emit(op, [cap.name(a, dtype, len(out)), cap.name(b, dtype, len(out))], out, dtype)


@handles("max_pool2d_with_indices_backward")
@_empty_aware
def _max_pool_backward(cap: Capture, grad, x, kernel_size, stride, padding, dilation,
                       ceil_mode, indices):
    """Each output gradient added into the input position its window's max came from
    (``indices``, plane indices): one ``scatter_add`` over the flattened planes."""
    x_shape, dtype = cap.info(x)
    g_shape = cap.info(grad)[0]
    planes, plane = prod(x_shape[:2]), prod(x_shape[2:])
    offsets = Const((torch.arange(planes, dtype=torch.int64) * plane).reshape(
        tuple(x_shape[:2]) + (1,) * (len(x_shape) - 2)), cap.fresh())
    where = binary_as(cap, "add", cap.name(indices, "int32"), offsets, "int32")
    count = prod(g_shape)
    rows = cap.reshape(cap.name(grad, dtype), (count, 1))
    summed = cap.emit("scatter_add", [cap.reshape(where, (count,)), rows],
                      (planes * plane, 1), dtype, num_rows=planes * plane)
    return cap.reshape(summed, x_shape)
