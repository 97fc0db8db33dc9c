"""The chipforge compiler: kernel graphs (from PyTorch, the op IR or by hand) to core
programs, run on the simulator.

The pipeline, one subpackage per stage:

- ``frontend``: where kernel graphs come from. PyTorch models through ``torch.export``
  (:func:`capture`) or aot_autograd's forward and backward graphs (:func:`capture_fx`),
  the op IR (:func:`kernel_graph_from_ops`) and hand-built examples (:func:`example_graph`).
- ``lower``: the kernel graph (:class:`KernelGraph`, its ops ``KERNEL_OPS`` and their
  float64 :func:`reference`), post-training quantization (:func:`quantize_graph`) and the
  lowering to a :class:`chipforge.isa.Program`, one kernel per node (:func:`compile_graph`).
- ``runtime``: compiled graphs run on the simulator behind ``torch.compile``
  (:func:`torch_backend`, whose ``summary()`` says what ran where, and which warns with
  :class:`ChipFallbackWarning` at every graph break, or fails with ``strict=True``;
  :class:`ChipRunner`, :func:`feed`) and an AdamW optimizer whose
  update runs on the chip (:func:`make_chip_adamw`); a program's reference outputs
  (:func:`record_reference`) and ``chipforge run --check`` (:func:`check_outputs`).

:func:`agreement` checks the emitted kernels against the performance engine's model.

Importing this package does not import torch: the names that need it (:func:`capture`,
:func:`capture_fx`, :func:`arrange_outputs`, :func:`supported_ops`, the Core ATen coverage
:func:`op_coverage` and :func:`coverage_totals`, :func:`capture_function`) import their module
on first use.
"""

from importlib import import_module

from chipforge.compiler._agreement import Agreement, agreement
from chipforge.compiler.frontend._examples import EXAMPLES, example_graph
from chipforge.compiler.frontend._from_ops import kernel_graph_from_ops
from chipforge.compiler.lower._compile import compile_graph
from chipforge.compiler.lower._kernel_graph import (
    KERNEL_OPS,
    CompileError,
    KernelGraph,
    KernelNode,
    TensorInfo,
)
from chipforge.compiler.lower._quant import quantize_graph
from chipforge.compiler.lower._reference import reference
from chipforge.compiler.runtime._backend import (
    BackendSummary,
    ChipFallbackWarning,
    GraphBreak,
    torch_backend,
)
from chipforge.compiler.runtime._check import OutputCheck, check_outputs, record_reference
from chipforge.compiler.runtime._runner import ChipRunner, feed
from chipforge.compiler.runtime._train import make_chip_adamw

_NEED_TORCH = {"capture": "chipforge.compiler.frontend._torch_export",
               "capture_fx": "chipforge.compiler.frontend._aot_autograd",
               "arrange_outputs": "chipforge.compiler.frontend._aot_autograd",
               "supported_ops": "chipforge.compiler.frontend._handlers",
               "op_coverage": "chipforge.compiler.frontend._coverage",
               "coverage_totals": "chipforge.compiler.frontend._coverage",
               "capture_function": "chipforge.compiler.frontend._coverage"}


def __getattr__(name: str):
    if name in _NEED_TORCH:
        return getattr(import_module(_NEED_TORCH[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EXAMPLES", "KERNEL_OPS", "Agreement", "BackendSummary", "ChipFallbackWarning",
           "ChipRunner", "CompileError", "GraphBreak", "KernelGraph", "OutputCheck",
           "check_outputs", "record_reference",
           "KernelNode", "TensorInfo", "agreement", "arrange_outputs", "capture", "capture_fx",
           "capture_function", "coverage_totals", "op_coverage",
           "compile_graph", "example_graph", "feed", "kernel_graph_from_ops", "make_chip_adamw",
           "quantize_graph", "reference", "supported_ops", "torch_backend"]
