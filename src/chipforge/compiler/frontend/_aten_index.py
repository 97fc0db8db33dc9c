"""Core-ATen op handlers of the PyTorch front end: data-dependent and indexing ops (embedding_bag,
gather/scatter/index, topk/sort/argmax, cumsum, computed masks), for both captures.

Each handler maps one op onto ``KERNEL_OPS`` (see ``_aten_ops`` for the handler contract).

- comparisons ``eq gt ge lt le`` are the kernel ops of the same name, giving a 1.0 / 0.0
  mask ("fp32"; every bool tensor is carried so); ``ne`` is ``eq(eq(a, b), 0)``;
  ``logical_not`` (and ``bitwise_not`` of a mask) is ``eq(m, 0)``; ``and`` of masks is
  ``mul``, ``or`` is ``maximum``.
- ``where(c, a, b)`` with a computed mask c is ``c * a + eq(c, 0) * b``, a zero branch left
  out: exact when a and b are finite (an inf or NaN in the branch not taken gives NaN).
- ``index_put(base, [idx], values, accumulate=True)`` and ``embedding_dense_backward``:
  ``scatter_add`` of the flattened indices and rows [N, D], reshaped, plus ``base`` unless
  it is known to be zeros; padding_idx >= 0 zeroes the rows of that index first.
- ``slice_scatter(base, src, dim, start, end)`` (step 1): ``cat`` of base's parts before
  and after the slice with src.
- ``gather(x, dim, idx)`` with computed integer indices (cross-entropy's pick of the target
  class): x viewed as [P, C, Q] (the dims before and after ``dim`` flattened) and C moved
  last, the one-hot mask ``eq(idx[P, Q, K, 1], arange(C))`` times ``x[P, Q, 1, C]``, summed
  over C; exact for finite x (one term is non-zero).
- ``scatter(base, dim, idx, value)`` with a number ``value`` (its backward, a one-hot of
  the targets): ``base * (1 - hit) + value * hit``, hit the one-hot mask summed over K
  (clipped to 1 where an index repeats).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chipforge.compiler.frontend._aten_ops import _where as _known_where
from chipforge.compiler.frontend._aten_ops import binary, is_number, prod, slice_
from chipforge.compiler.frontend._capture import Capture, Const, Dyn, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)
MASK = "fp32"  # the dtype of a 1.0 / 0.0 mask
_INTS = ("int8", "int32")
_FLIPPED = {"eq": "eq", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}


# ---- masks: comparisons, logic, where ---------------------------------------------------


def compare(cap: Capture, op: str, a, b) -> Dyn:
    """The mask ``a op b`` (op one of eq gt ge lt le; one operand computed); a number or a
    one-element constant becomes attr ``scalar``. Operands of different dtypes are compared
    as "fp32"."""
    if not isinstance(a, Dyn):
        a, b, op = b, a, _FLIPPED[op]
    shape, dtype = cap.info(a)
    if isinstance(b, Const) and b.value.numel() == 1 and b.value.ndim <= len(shape):
        b = b.value.item()
    if is_number(b):
        integral = dtype in _INTS and float(b).is_integer()
        return cap.emit(op, [a], shape, MASK, scalar=int(b) if integral else float(b))
    dtypes = {dtype, cap.info(b)[1]}
    dtype = dtypes.pop() if len(dtypes) == 1 else "fp32"
    out = tuple(torch.broadcast_shapes(shape, cap.info(b)[0]))
    return cap.emit(op, [cap.name(a, dtype, len(out)), cap.name(b, dtype, len(out))], out, MASK)


def logical_not(cap: Capture, mask) -> Dyn:
    """1.0 where ``mask`` is 0, else 0.0 (``1 - mask`` for a mask, in one node)."""
    return compare(cap, "eq", mask, 0)


def _is_zero(value) -> bool:
    if isinstance(value, Const):
        return not value.value.any()
    return is_number(value) and value == 0


def _mask_operands(cap: Capture) -> None:
    """Fail unless the current node's tensor operands are all bool (masks)."""
    for arg in cap.node.args:
        val = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
        if isinstance(val, torch.Tensor) and val.dtype != torch.bool:
            raise cap.fail(f"bitwise/logical ops are supported on bool tensors only, not "
                           f"{val.dtype}")


@handles("eq", "gt", "ge", "lt", "le")
def _compare(cap: Capture, a, b):
    return compare(cap, cap.node.target.overloadpacket.__name__, a, b)


@handles("ne")
def _ne(cap: Capture, a, b):
    return logical_not(cap, compare(cap, "eq", a, b))


@handles("logical_not", "bitwise_not")
def _not(cap: Capture, x):
    if cap.node.target.overloadpacket.__name__ == "bitwise_not":
        _mask_operands(cap)
    return logical_not(cap, x)  # logical_not(x) is x == 0 for any dtype


@handles("logical_and", "bitwise_and")
def _and(cap: Capture, a, b):
    _mask_operands(cap)
    return binary(cap, "mul", a, b)


@handles("logical_or", "bitwise_or")
def _or(cap: Capture, a, b):
    _mask_operands(cap)
    return binary(cap, "maximum", a, b)


@handles("where")
def _where(cap: Capture, cond, x, y):
    """where(c, x, y) = c * x + eq(c, 0) * y for a computed mask c (a known one: capture()'s
    mapping); a zero branch is left out."""
    if not isinstance(cond, Dyn):
        return _known_where(cap, cond, x, y)
    shape, dtype = cap.out()
    terms = []
    if not _is_zero(x):
        terms.append(binary(cap, "mul", cond, x))
    if not _is_zero(y):
        terms.append(binary(cap, "mul", logical_not(cap, cond), y))
    if not terms:
        terms.append(binary(cap, "mul", cond, 0.0))
    result = terms[0] if len(terms) == 1 else binary(cap, "add", *terms)
    if cap.info(result)[0] != shape:
        result = cap.emit("expand", [result], shape, dtype, shape=shape)
    return result


# ---- scatters --------------------------------------------------------------------------------


def scatter_rows(cap: Capture, base, idx, values):
    """``base`` (the current node's shape [V, ...]) with values[i] added into row idx[i]
    for every position i of idx (values: idx's shape + base's row shape, or broadcast to
    it)."""
    shape, dtype = cap.out()
    if isinstance(idx, Const):
        if idx.value.dtype == torch.bool:
            raise cap.fail("boolean-mask indices are not supported")
        idx = Const(idx.value.long() % shape[0], cap.fresh())
    elif cap.info(idx)[1] not in _INTS:
        raise cap.fail("indices must be an integer tensor")
    idx_shape = cap.info(idx)[0]
    n, d = prod(idx_shape), prod(shape[1:])
    full = tuple(idx_shape) + tuple(shape[1:])
    if is_number(values):
        values = Const(torch.full(full, float(values)), cap.fresh())
    elif cap.info(values)[0] != full:
        values = (Const(values.value.expand(full), cap.fresh()) if isinstance(values, Const)
                  else cap.emit("expand", [values], full, cap.info(values)[1], shape=full))
    rows = cap.name(cap.reshape(values, (n, d)), dtype)
    flat = cap.name(cap.reshape(idx, (n,)), "int32")
    out = cap.emit("scatter_add", [flat, rows], (shape[0], d), dtype, num_rows=shape[0])
    out = cap.reshape(out, shape)
    return out if _is_zero(base) else binary(cap, "add", out, base)


@handles("index_put")
def _index_put(cap: Capture, base, indices, values, accumulate: bool = False):
    if not accumulate:
        raise cap.fail("index_put is supported only with accumulate=True (as autograd makes "
                       "it)")
    if len(indices) != 1 or indices[0] is None:
        raise cap.fail("index_put is supported with one index tensor, on the first dim")
    return scatter_rows(cap, base, indices[0], values)


@handles("embedding_dense_backward")
def _embedding_backward(cap: Capture, grad, indices, num_weights: int, padding_idx: int,
                        scale_grad_by_freq: bool):
    if scale_grad_by_freq:
        raise cap.fail("embedding with scale_grad_by_freq=True is not supported")
    if padding_idx >= 0:
        keep = logical_not(cap, compare(cap, "eq", indices, padding_idx))
        grad = binary(cap, "mul", grad, cap.reshape(keep, cap.info(keep)[0] + (1,)))
    return scatter_rows(cap, 0, indices, grad)


@handles("slice_scatter")
def _slice_scatter(cap: Capture, base, src, dim: int = 0, start=None, end=None, step: int = 1):
    shape, dtype = cap.out()
    dim %= len(shape)
    start, end, step = slice(start, end, step).indices(shape[dim])
    if step != 1:
        raise cap.fail("slice_scatter is supported with step 1 only")

    def part(lo: int, hi: int):
        if isinstance(base, Const):
            return Const(base.value.narrow(dim, lo, hi - lo), cap.fresh())
        return slice_(cap, base, dim, lo, hi)

    pieces = ([part(0, start)] if start > 0 else []) + [src] + (
        [part(end, shape[dim])] if end < shape[dim] else [])
    if len(pieces) == 1:
        return cap.name(src, dtype) if isinstance(src, Dyn) else src
    return cap.emit("cat", [cap.name(p, dtype, len(shape)) for p in pieces], shape, dtype,
                    dim=dim)


# ---- gather / scatter by computed indices (cross-entropy with integer targets) -----------


def _swap(cap: Capture, v, shape3) -> Dyn:
    """``v`` viewed as [P, A, B] (``shape3``), returned as [P, B, A]: a reshape when A or B is
    1 (the same element order), else a permute of the last two dims."""
    p, a, b = shape3
    if a == 1 or b == 1:
        return cap.reshape(v, (p, b, a))
    return cap.permute(cap.reshape(v, shape3), (0, 2, 1))


def _split(shape, dim: int) -> tuple[int, int, int]:
    """(P, size, Q): the dims before ``dim``, ``dim``'s size and the dims after, as products."""
    return prod(shape[:dim]), shape[dim], prod(shape[dim + 1:])


def one_hot(cap: Capture, x_shape, dim: int, idx) -> Dyn:
    """The 1.0 / 0.0 mask [P, Q, K, C] of ``idx`` (shape x_shape but K on ``dim``) against the
    C classes of x's ``dim``, P and Q the products of the dims before and after ``dim``."""
    if cap.info(idx)[1] not in _INTS:
        raise cap.fail("indices must be an integer tensor")
    rank = len(x_shape)
    dim %= rank
    idx_shape = cap.info(idx)[0]
    if len(idx_shape) != rank or any(a != b for i, (a, b) in enumerate(zip(idx_shape, x_shape))
                                     if i != dim):
        raise cap.fail(f"index shape {tuple(idx_shape)} must equal the input's "
                       f"{tuple(x_shape)} except on dim {dim}")
    p, k, q = _split(idx_shape, dim)
    last = _swap(cap, cap.name(idx), (p, k, q))  # [P, Q, K]
    classes = x_shape[dim]
    iota = Const(torch.arange(classes, dtype=torch.int32).reshape(1, 1, 1, classes),
                 cap.fresh())
    return compare(cap, "eq", cap.reshape(last, (p, q, k, 1)), iota)


@handles("gather")
def _gather(cap: Capture, x, dim: int, idx, sparse_grad: bool = False):
    shape, dtype = cap.out()
    if dtype in _INTS or not isinstance(x, Dyn | Const):
        raise cap.fail("gather is supported on float tensors only")
    x = Dyn(cap.name(x, dtype))  # a constant (cross-entropy's class weights) is materialized
    x_shape = cap.info(x)[0]
    dim %= len(x_shape)
    p, c, q = _split(x_shape, dim)
    k = shape[dim]
    hot = one_hot(cap, x_shape, dim, idx)  # [P, Q, K, C]
    xl = cap.reshape(_swap(cap, cap.name(x, dtype), (p, c, q)), (p, q, 1, c))
    picked = binary(cap, "mul", hot, xl)  # one non-zero term per row: exact
    total = cap.emit("sum", [picked], (p, q, k, 1), dtype)
    return cap.reshape(_swap(cap, total, (p, q, k)), shape)


@handles("scatter")
def _scatter(cap: Capture, base, dim: int, idx, value, reduce=None):
    shape, dtype = cap.out()
    if reduce is not None or not is_number(value):
        raise cap.fail("scatter is supported with a number value and no reduce (the "
                       "one-hot of cross-entropy's backward)")
    if not isinstance(idx, Dyn):
        raise cap.fail("scatter needs computed indices here")
    dim %= len(shape)
    p, c, q = _split(shape, dim)
    k = cap.info(idx)[0][dim]
    hot = one_hot(cap, shape, dim, idx)  # [P, Q, K, C]
    if k > 1:  # an index repeated along K still marks its class once
        hot = cap.emit("max", [cap.permute(hot, (0, 1, 3, 2))], (p, q, c, 1), MASK)
    hit = cap.reshape(_swap(cap, hot, (p, q, c)), shape)  # back in x's layout
    terms = [binary(cap, "mul", hit, float(value))] if value != 0 else []
    if not _is_zero(base):
        terms.append(binary(cap, "mul", base, logical_not(cap, hit)))
    if not terms:
        terms.append(binary(cap, "mul", hit, 0.0))
    return terms[0] if len(terms) == 1 else binary(cap, "add", *terms)
