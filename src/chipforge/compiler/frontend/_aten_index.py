"""Core-ATen op handlers of the PyTorch front end: data-dependent and indexing ops (embedding_bag,
gather/scatter/index, topk/sort/argmax, cumsum, computed masks).

Each handler maps one op onto ``KERNEL_OPS`` (see ``_aten_ops`` for the handler contract).
"""

from __future__ import annotations

from collections.abc import Callable

from chipforge.compiler.frontend._capture import registrar

HANDLERS: dict[str, Callable] = {}
handles = registrar(HANDLERS)
