"""Core-ATen op handlers of the PyTorch front end: layout, creation, reduction, padding, pooling
and normalization ops beyond _aten_nn.

Each handler maps one op onto ``KERNEL_OPS`` (see ``_aten_ops`` for the handler contract).
"""

from __future__ import annotations

from collections.abc import Callable

from chipforge.compiler.frontend._capture import registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)
