"""Core-ATen op handlers of the PyTorch front end (layout and elementwise ops; the
network ops are in ``_aten_nn``): each maps one op onto ``KERNEL_OPS``.

A handler gets the :class:`Capture` and the op's arguments, tensors already resolved to
:class:`Dyn` (computed) or :class:`Const` (known) values, and returns the result's value
(a tuple for multi-output ops). It reads the result's shape and dtype with ``cap.out()``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import reduce

import numpy as np
import torch

from chipforge.compiler.frontend._capture import Capture, Const, Deferred, Dyn, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)


def prod(values) -> int:
    return reduce(operator.mul, values, 1)


def is_number(v) -> bool:
    return isinstance(v, int | float | bool)


# ---- no-ops and layout -------------------------------------------------------------------


@handles("alias", "detach", "lift_fresh_copy", "clone")
def _identity(cap: Capture, x, *args, **kwargs):
    return x


@handles("_local_scalar_dense")
def _item(cap: Capture, x):
    """``.item()``, ``int(t)``, ``float(t)`` of a computed tensor: refused by name (a static
    program has no data-dependent host values), in both front ends."""
    raise cap.fail("a host scalar read from a computed tensor (.item(), int(t), float(t), "
                   "bool(t)) is data-dependent and cannot run in a static chip program; keep "
                   "it a tensor, or read it after the compiled call")


@handles("_assert_tensor_metadata", "_assert_scalar", "_assert_async")
def _check(cap: Capture, *args, **kwargs):
    return None


@handles("view", "_unsafe_view", "unsqueeze", "squeeze")
def _reshape(cap: Capture, x, *args, **kwargs):
    return cap.reshape(x, cap.out()[0])


@handles("expand")
def _expand(cap: Capture, x, *args, **kwargs):
    shape, dtype = cap.out()
    return x if cap.info(x)[0] == shape else cap.emit("expand", [x], shape, dtype, shape=shape)


@handles("permute")
def _permute(cap: Capture, x, dims):
    return cap.permute(x, [d % len(dims) for d in dims])


@handles("transpose", "t")
def _transpose(cap: Capture, x, dim0: int = 0, dim1: int = 1):
    dims = list(range(len(cap.info(x)[0])))
    if len(dims) >= 2:
        d0, d1 = dim0 % len(dims), dim1 % len(dims)
        dims[d0], dims[d1] = dims[d1], dims[d0]
    return cap.permute(x, dims)


def slice_(cap: Capture, x, dim: int, start, end, step: int = 1):
    shape, dtype = cap.info(x)
    dim %= len(shape)
    start, end, step = slice(start, end, step).indices(shape[dim])
    if (start, end, step) == (0, shape[dim], 1):
        return x
    out = list(shape)
    out[dim] = len(range(start, end, step))
    if step != 1 and prod(shape[dim + 1:]) == 1 and out[dim] > 0:
        return _strided_last(cap, x, shape[dim], range(start, end, step), out)
    return cap.emit("slice", [x], out, dtype, dim=dim, start=start, end=end, step=step)


def _strided_last(cap: Capture, x, n: int, picked: range, out: list[int]) -> Dyn:
    """A strided slice of the last non-unit dim (``x[..., ::2]``), which the slice kernel's
    row copies cannot stride: one ``embedding`` gather of x's elements as rows of one, at the
    constant flat positions row * n + i for i in ``picked``."""
    rows = prod(cap.info(x)[0]) // n
    flat = (np.arange(rows)[:, None] * n + np.asarray(picked)[None, :]).reshape(-1)
    table = cap.reshape(x, (rows * n, 1))
    index = cap.name(Const(torch.from_numpy(flat.astype(np.int64)), cap.fresh()), "int32")
    picked_rows = cap.emit("embedding", [table, index], (flat.size, 1), cap.info(x)[1])
    return cap.reshape(picked_rows, out)


@handles("slice")
def _slice_op(cap: Capture, x, dim: int = 0, start=None, end=None, step: int = 1):
    return slice_(cap, x, dim, start, end, step)


@handles("select")
def _select(cap: Capture, x, dim: int, index: int):
    size = cap.info(x)[0][dim]
    index %= size
    return cap.reshape(slice_(cap, x, dim, index, index + 1), cap.out()[0])


@handles("split_with_sizes")
def _split(cap: Capture, x, sizes, dim: int = 0):
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [slice_(cap, x, dim, s, s + n) for s, n in zip(starts, sizes)]


@handles("cat")
def _cat(cap: Capture, tensors, dim: int = 0):
    shape, dtype = cap.out()
    parts = [cap.name(t, dtype) for t in tensors if prod(cap.info(t)[0]) > 0]
    if len(parts) == 1:
        return Dyn(parts[0])
    return cap.emit("cat", parts, shape, dtype, dim=dim % len(shape))


# ---- elementwise ----------------------------------------------------------------------------

_COMMUTATIVE = ("add", "mul", "maximum", "minimum")


def binary(cap: Capture, op: str, a, b, dtype: str | None = None):
    """``a op b`` for values or Python numbers (one of them computed), in ``dtype`` (default:
    the result dtype of the current node); a one-element constant becomes attr ``scalar``."""
    dtype = dtype or cap.out()[1]
    if op in _COMMUTATIVE and not isinstance(a, Dyn):
        a, b = b, a
    if isinstance(b, Const) and b.value.numel() == 1 and isinstance(a, Dyn) \
            and b.value.ndim <= len(cap.info(a)[0]):
        b = b.value.item()
    if is_number(b) and isinstance(a, Dyn):
        scalar = int(b) if dtype in ("int8", "int32") else float(b)
        return cap.emit(op, [cap.name(a, dtype)], cap.info(a)[0], dtype, scalar=scalar)
    a, b = (Const(torch.tensor(v), cap.fresh()) if is_number(v) else v for v in (a, b))
    shape = tuple(np.broadcast_shapes(cap.info(a)[0], cap.info(b)[0]))
    return cap.emit(op, [cap.name(a, dtype, len(shape)), cap.name(b, dtype, len(shape))],
                    shape, dtype)


def scaled(cap: Capture, v, alpha):
    """alpha * v for a computed value, a constant or a number."""
    if alpha == 1:
        return v
    if isinstance(v, Dyn):
        return binary(cap, "mul", v, alpha)
    return Const(v.value * alpha, cap.fresh()) if isinstance(v, Const) else v * alpha


@handles("add")
def _add(cap: Capture, a, b, alpha=1):
    return binary(cap, "add", a, scaled(cap, b, alpha))


@handles("sub")
def _sub(cap: Capture, a, b, alpha=1):
    return binary(cap, "sub", a, scaled(cap, b, alpha))


def _is_call(value, target) -> bool:
    return isinstance(value, torch.fx.Node) and value.target == target


def _produced_by(fx_arg, target, operand) -> bool:
    return _is_call(fx_arg, target) and fx_arg.args[0] is operand


def _rmsnorm(node: torch.fx.Node):
    """(x, weight, eps) FX args if ``node`` is ``x * rsqrt(mean(x**2, -1, keepdim) + eps) *
    weight`` (any operand order), else None."""
    aten = torch.ops.aten
    for normed, weight in (node.args, node.args[::-1]):
        if not _is_call(normed, aten.mul.Tensor):
            continue
        for x, r in (normed.args, normed.args[::-1]):
            plus = r.args[0] if _is_call(r, aten.rsqrt.default) else None
            if not (_is_call(plus, aten.add.Tensor) and is_number(plus.args[1])):
                continue
            mean, rank = plus.args[0], len(node.meta["val"].shape)
            if (_is_call(mean, aten.mean.dim) and mean.args[2:3] == (True,)
                    and [d % rank for d in mean.args[1]] == [rank - 1]
                    and _produced_by(mean.args[0], aten.pow.Tensor_Scalar, x)
                    and mean.args[0].args[1] == 2):
                return x, weight, float(plus.args[1])
    return None


@handles("mul")
def _mul(cap: Capture, a, b):
    shape, dtype = cap.out()
    x, y = cap.node.args[:2]  # x * sigmoid(x) is silu (core ATen decomposes silu so)
    sigmoid = torch.ops.aten.sigmoid.default
    if _produced_by(y, sigmoid, x) or _produced_by(x, sigmoid, y):
        return cap.emit("silu", [a if _produced_by(y, sigmoid, x) else b], shape, dtype)
    if match := _rmsnorm(cap.node):
        x, weight = (cap.env[v] for v in match[:2])
        if isinstance(x, Dyn) and cap.info(x)[0] == shape and cap.info(weight)[0] == shape[-1:]:
            return cap.emit("rmsnorm", [x, cap.name(weight, dtype)], shape, dtype, eps=match[2])
    return binary(cap, "mul", a, b)


@handles("div")
def _div(cap: Capture, a, b, rounding_mode=None):
    """True division, or with ``rounding_mode`` 'trunc' / 'floor' the fp32 quotient rounded
    by the kernel op of that name. For integers below 2**24 in magnitude this is exact: the
    rounded quotient of a / b cannot reach the next integer (|a| < 2**24 keeps it at least
    1 / |b| away, more than half its spacing)."""
    if rounding_mode is None:
        return binary(cap, "div", a, b)
    if rounding_mode not in ("trunc", "floor"):
        raise cap.fail(f"rounding_mode={rounding_mode!r}; expected None, 'trunc' or 'floor'")
    shape, dtype = cap.out()
    quotient = binary(cap, "div", a, b, "fp32")
    rounded = cap.emit(rounding_mode, [quotient], shape, "fp32")
    return rounded if dtype == "fp32" else cap.cast(rounded, dtype)


@handles("maximum", "minimum")
def _minmax(cap: Capture, a, b):
    return binary(cap, cap.node.target.overloadpacket.__name__, a, b)


@handles("clamp")
def _clamp(cap: Capture, x, lo=None, hi=None):
    if lo is not None:
        x = binary(cap, "maximum", x, lo)
    return x if hi is None else binary(cap, "minimum", x, hi)


@handles("neg", "exp", "log", "sqrt", "rsqrt", "reciprocal", "relu", "silu", "sigmoid", "tanh")
def _unary(cap: Capture, x):
    shape, dtype = cap.out()
    return cap.emit(cap.node.target.overloadpacket.__name__, [cap.name(x, dtype)], shape, dtype)


@handles("gelu")
def _gelu(cap: Capture, x, approximate: str = "none"):
    """approximate='tanh': kernel op ``gelu``; 'none' (exact, erf): kernel op
    ``gelu_erf``, one fused vector sequence (one DRAM round trip instead of five kernels)."""
    if approximate not in ("none", "tanh"):
        raise cap.fail(f"gelu approximate={approximate!r}; expected 'none' or 'tanh'")
    shape, dtype = cap.out()
    op = "gelu" if approximate == "tanh" else "gelu_erf"
    return cap.emit(op, [cap.name(x, dtype)], shape, dtype)


_POWERS = {2: "square", 0.5: "sqrt", -0.5: "rsqrt", -1: "reciprocal"}


@handles("pow")
def _pow(cap: Capture, x, exponent):
    """x ** e for a computed x and a number e: 1 is x itself; 2, 0.5, -0.5, -1 their unary
    ops; any other e kernel op ``pow``."""
    if isinstance(exponent, Const) and exponent.value.numel() == 1:
        exponent = exponent.value.item()
    if not isinstance(x, Dyn) or not is_number(exponent):
        raise cap.fail("pow is supported only for a computed base and a constant exponent")
    if exponent == 1:
        return x
    shape, dtype = cap.out()
    if exponent in _POWERS:
        return cap.emit(_POWERS[exponent], [cap.name(x, dtype)], shape, dtype)
    return cap.emit("pow", [cap.name(x, dtype)], shape, dtype, exponent=float(exponent))


@handles("_to_copy")
def _to_copy(cap: Capture, x, **kwargs):
    if cap.node.meta["val"].dtype == torch.bool and isinstance(x, Dyn):
        raise cap.fail("conversion of a computed tensor to bool is not supported")
    dtype = cap.out()[1]
    return cap.name(x, dtype) if isinstance(x, Dyn) else x


@handles("convert_element_type")
def _convert_element_type(cap: Capture, x, dtype):
    """prims.convert_element_type: a ``_to_copy``. dynamo with ``capture_scalar_outputs``
    keeps ``t / s.item()`` on tensors as ``div(t, f32(f64(s)))``; the float64 round trip of
    a float32 value is exact, so it is dropped (float64 itself is not a chip dtype)."""
    if dtype != torch.float64:
        return _to_copy(cap, x)
    users = list(cap.node.users)
    back = (torch.float32, torch.bfloat16, torch.float16)
    if users and all(u.target is torch.ops.prims.convert_element_type.default
                     and u.args[1] in back for u in users):
        return x
    raise cap.fail("float64 values are not supported on the chip (only a float32 -> float64 "
                   "-> float32 round trip, as .item() leaves, is)")


@handles("full_like", "zeros_like", "ones_like")
def _full_like(cap: Capture, x, *args, **kwargs):
    """A constant of x's shape (its values are not read)."""
    fill = {"zeros_like": 0.0, "ones_like": 1.0}.get(cap.node.target.overloadpacket.__name__)
    shape = cap.node.meta["val"].shape
    return Const(torch.full(tuple(shape), args[0] if fill is None else fill,
                            dtype=cap.node.meta["val"].dtype), cap.node.name)


def _masked_row_guard(node: torch.fx.Node) -> bool:
    """Whether ``node`` is SDPA's ``where(rows of s all -inf, 0, softmax(s))``."""
    aten = torch.ops.aten
    cond, _, soft = node.args
    chain = (aten.logical_not.default, aten.any.dim, aten.logical_not.default, aten.eq.Scalar)
    for target in chain:
        if not _is_call(cond, target):
            return False
        test, cond = cond, cond.args[0]
    return (test.args[1] == float("-inf") and _is_call(soft, aten._softmax.default)
            and soft.args[0] is cond)


@handles("where")
def _where(cap: Capture, cond, x, y):
    """where(mask, x, y) = x * mask + y * (1 - mask) for a known mask; exact for finite
    values. A known branch becomes one additive constant. SDPA's guard that zeroes fully
    masked rows of its softmax is dropped (such rows give NaN)."""
    if isinstance(cond, Deferred):
        if isinstance(x, Const) and not x.value.any() and _masked_row_guard(cap.node):
            return y
        raise cap.unsupported(cond.node)
    if not isinstance(cond, Const):
        raise cap.fail("where() needs a condition known at capture time (a constant mask)")
    shape, dtype = cap.out()
    mask = cond.value.to(torch.bool)
    terms = []
    for value, keep in ((x, mask), (y, ~mask)):
        if isinstance(value, Dyn):
            terms.append(binary(cap, "mul", value, Const(keep.to(torch.float32), cap.fresh())))
        else:
            value = value.value if isinstance(value, Const) else torch.tensor(value)
            fill = torch.where(keep, value.to(torch.float32), torch.zeros(()))
            if fill.any():
                terms.append(Const(fill, cap.fresh()))
    result = terms[0]
    for term in terms[1:]:
        result = binary(cap, "add", result, term)
    return cap.emit("expand", [result], shape, dtype, shape=shape) \
        if cap.info(result)[0] != shape else result
