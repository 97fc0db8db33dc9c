"""Core-ATen op handlers of the PyTorch front end: elementwise math ops (erf and exact GELU,
rounding, trigonometric, remainder, ...).

Each handler maps one op onto ``KERNEL_OPS`` (see ``_aten_ops`` for the handler contract).
"""

from __future__ import annotations

from collections.abc import Callable

from chipforge.compiler.frontend._capture import Capture, registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)


def unary(cap: Capture, op: str, x, **attrs):
    """Kernel op ``op`` of x, in the current node's result dtype."""
    shape, dtype = cap.out()
    return cap.emit(op, [cap.name(x, dtype)], shape, dtype, **attrs)


@handles("erf")
def _erf(cap: Capture, x):
    return unary(cap, "erf", x)
