"""The ATen handler registry: ATen op name (overload packet) -> handler, assembled here
from the tables of the handler modules (``_aten_ops``: layout and elementwise,
``_aten_nn``: network ops, ``_aten_math``: elementwise math, ``_aten_index``: indexing and
data-dependent ops, ``_aten_layout``: layout, creation, reductions, padding and pooling,
``_aten_training``: the training capture's additions and overrides). A
:class:`~._capture.Capture` is given one of the two tables.
"""

from __future__ import annotations

from collections.abc import Callable

from chipforge.compiler.frontend import (
    _aten_index,
    _aten_layout,
    _aten_math,
    _aten_nn,
    _aten_ops,
    _aten_training,
)
from chipforge.compiler.frontend._capture import op_names

INFERENCE: dict[str, Callable] = {**_aten_ops.HANDLERS, **_aten_nn.HANDLERS,
                                  **_aten_math.HANDLERS, **_aten_index.HANDLERS,
                                  **_aten_layout.HANDLERS}
TRAINING: dict[str, Callable] = {**INFERENCE, **_aten_training.HANDLERS}


def handlers(training: bool = False) -> dict[str, Callable]:
    """The handlers of capture() (``training``: of capture_fx(), which adds or overrides
    some)."""
    return TRAINING if training else INFERENCE


def supported_ops(training: bool = False) -> list[str]:
    """The sorted ATen op names capture() (``training``: capture_fx()) maps, besides folding
    ops on constants."""
    return op_names(handlers(training))
