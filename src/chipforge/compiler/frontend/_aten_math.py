"""Core-ATen op handlers of the PyTorch front end: elementwise math ops (erf and exact GELU,
rounding, trigonometric, remainder, ...).

Each handler maps one op onto ``KERNEL_OPS`` (see ``_aten_ops`` for the handler contract):
most are one kernel op of the same name, a vector sequence in one kernel
(``lower._math_kernels``, where each approximation and its measured error are stated).
Rounding ops of integer tensors return them unchanged; ``round(decimals=d)`` scales by
10**d around ``round`` exactly as PyTorch's kernel does; ``hardtanh`` is a clamp.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chipforge.compiler.frontend._aten_ops import _pow as number_pow
from chipforge.compiler.frontend._aten_ops import binary, is_number
from chipforge.compiler.frontend._capture import Capture, Const, Deferred, Dyn, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)
_INTS = ("int8", "int32")


def unary(cap: Capture, op: str, x, **attrs):
    """Kernel op ``op`` of x, in the current node's result dtype."""
    shape, dtype = cap.out()
    return cap.emit(op, [cap.name(x, dtype)], shape, dtype, **attrs)


def _op_name(cap: Capture) -> str:
    return cap.node.target.overloadpacket.__name__


@handles("erf", "abs", "sign", "expm1", "log1p", "log2", "log10", "sinh", "cosh", "sin", "cos",
         "tan", "atan", "asin", "acos", "asinh", "acosh", "atanh")
def _same_name(cap: Capture, x):
    return unary(cap, _op_name(cap), x)


@handles("isnan", "isinf")
def _classify(cap: Capture, x):
    """A 1.0 / 0.0 mask; the source's dtype is read as fp32 (integers are never NaN)."""
    return cap.emit(_op_name(cap), [cap.name(x, "fp32")], cap.out()[0], "fp32")


@handles("floor", "ceil", "trunc")
def _rounding(cap: Capture, x):
    if cap.out()[1] in _INTS:
        return x  # integers are their own floor, ceil and trunc
    return unary(cap, _op_name(cap), x)


@handles("round")
def _round(cap: Capture, x, decimals: int = 0):
    """Half to even; with ``decimals`` d, round(x * 10**d) / 10**d (d < 0: round(x /
    10**-d) * 10**-d), PyTorch's own formula, the scale rounded to the dtype as there."""
    if cap.out()[1] in _INTS:
        return x
    if decimals == 0:
        return unary(cap, "round", x)
    scale = float(10.0 ** abs(decimals))
    into, back = ("mul", "div") if decimals > 0 else ("div", "mul")
    return binary(cap, back, unary_of(cap, "round", binary(cap, into, x, scale)), scale)


def unary_of(cap: Capture, op: str, x):
    """Kernel op ``op`` of the computed x, x's shape and dtype."""
    shape, dtype = cap.info(x)
    return cap.emit(op, [x], shape, dtype)


@handles("elu")
def _elu(cap: Capture, x, alpha=1.0, scale=1.0, input_scale=1.0):
    return unary(cap, "elu", x, alpha=float(alpha), scale=float(scale),
                 input_scale=float(input_scale))


@handles("leaky_relu")
def _leaky_relu(cap: Capture, x, negative_slope=0.01):
    return unary(cap, "leaky_relu", x, slope=float(negative_slope))


@handles("hardtanh")
def _hardtanh(cap: Capture, x, min_val=-1.0, max_val=1.0):
    """clamp(x, min_val, max_val): maximum then minimum (NaN stays NaN, as in PyTorch)."""
    return binary(cap, "minimum", binary(cap, "maximum", x, float(min_val)), float(max_val))


def binary_math(cap: Capture, op: str, a, b):
    """Kernel op ``op`` of two operands (numbers, constants or computed), broadcast to the
    result's shape and read in its dtype."""
    shape, dtype = cap.out()
    a, b = (Const(torch.tensor(v), cap.fresh()) if is_number(v) else v for v in (a, b))
    return cap.emit(op, [cap.name(a, dtype, len(shape)), cap.name(b, dtype, len(shape))],
                    shape, dtype)


@handles("atan2")
def _atan2(cap: Capture, y, x):
    return binary_math(cap, "atan2", y, x)


@handles("fmod", "remainder")
def _fmod(cap: Capture, a, b):
    """Integer operands: a divisor known to hold 0 is refused here (PyTorch raises at run
    time; the chip would give 0)."""
    divisor = b.value if isinstance(b, Const) else b
    if cap.out()[1] in _INTS and not isinstance(b, Dyn) and not torch.as_tensor(divisor).all():
        raise cap.fail("integer division by zero (PyTorch raises ZeroDivisionError)")
    return binary_math(cap, _op_name(cap), a, b)


@handles("pow")
def _pow(cap: Capture, x, exponent):
    """A number or one-element constant exponent with a computed base: ``_aten_ops``'
    pow (exact unary ops for 2, 0.5, -0.5, -1; kernel op ``pow``); a tensor exponent, or a
    number base: kernel op ``pow_tensor``."""
    one = isinstance(exponent, Const) and exponent.value.numel() == 1
    if isinstance(x, Dyn) and (is_number(exponent) or one):
        return number_pow(cap, x, exponent)
    return binary_math(cap, "pow_tensor", x, exponent)


def _mask_of(cap: Capture, v, i: int):
    """A 1.0 / 0.0 mask operand: a computed bool tensor (the training capture's masks),
    or a constant one; anything else is refused."""
    if isinstance(v, Deferred):
        raise cap.unsupported(v.node)
    arg = cap.node.args[i]
    dtype = arg.meta["val"].dtype if isinstance(arg, torch.fx.Node) else type(arg)
    if dtype not in (torch.bool, bool):
        raise cap.fail("xor is supported on bool tensors (masks) only, not on integers")
    return v


@handles("logical_xor", "bitwise_xor")
def _xor(cap: Capture, a, b):
    """|a - b| of two masks: 1.0 where exactly one holds."""
    a, b = _mask_of(cap, a, 0), _mask_of(cap, b, 1)
    diff = binary(cap, "sub", a, b)
    return cap.emit("abs", [diff], cap.info(diff)[0], cap.info(diff)[1])
