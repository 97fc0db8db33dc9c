"""Core-ATen op handlers that the training front end (``_aot_autograd.capture_fx``) adds
to capture()'s or overrides, for the forward and backward graphs of aot_autograd.

Mapping additions (on top of capture()'s; comparisons, masks, where, gathers and scatters
are in ``_aten_index``, shared by both captures):

- ``_to_copy`` to bool is ``x != 0``.
- ``_log_softmax`` over the last dim (another dim is moved there and back): with
  s = x - max(x), the result is s - log(sum(exp(s))).

``pow`` with an exponent other than 1, 2, 0.5, -0.5, -1 (rsqrt's backward has 3) is the
kernel op ``pow`` in both front ends (see ``_aten_ops``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from chipforge.compiler.frontend._aten_index import logical_not
from chipforge.compiler.frontend._aten_nn import _on_last
from chipforge.compiler.frontend._aten_ops import _to_copy as _plain_to_copy
from chipforge.compiler.frontend._capture import Capture, Dyn, registrar

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


# ---- log_softmax ---------------------------------------------------------------------------


@handles("_log_softmax")
def _log_softmax(cap: Capture, x, dim: int, half_to_float: bool = False):
    dtype = cap.out()[1]

    def on_last(v):
        shape = cap.info(v)[0]
        kept = shape[:-1] + (1,)
        shifted = cap.emit("sub", [v, cap.emit("max", [v], kept, dtype)], shape, dtype)
        total = cap.emit("sum", [cap.emit("exp", [shifted], shape, dtype)], kept, dtype)
        return cap.emit("sub", [shifted, cap.emit("log", [total], kept, dtype)], shape, dtype)

    return _on_last(cap, cap.name(x, dtype), dim, on_last)
