"""Compiling a KernelGraph: one kernel per node, from the op -> kernel table below.

Each kernel (``_matmul_kernel``, ``_row_kernels``, ``_layout_kernels``, ``_conv_kernels``)
emits its instructions through the shared :class:`~._lowering.Lowering` context; a kernel
that emits anything ends with a barrier across the cores (an alias, e.g. a reshape, needs
none).
"""

from __future__ import annotations

from chipforge.arch import ChipSpec, load_chip
from chipforge.compiler.lower import (
    _conv_kernels,
    _layout_kernels,
    _math_kernels,
    _matmul_kernel,
    _row_kernels,
)
from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph
from chipforge.compiler.lower._lowering import FLOAT_DTYPES, Lowering
from chipforge.isa import Program, TensorPlacement
from chipforge.machine import compiles_for

KERNELS = {
    "matmul": _matmul_kernel.matmul_kernel,
    "conv2d": _conv_kernels.conv2d_kernel,
    "max_pool2d": _conv_kernels.max_pool2d_kernel,
    "global_avg_pool2d": _row_kernels.global_avg_pool_kernel,
    "softmax": _row_kernels.softmax_kernel,
    "layernorm": _row_kernels.norm_kernel,
    "rmsnorm": _row_kernels.norm_kernel,
    "quantize": _row_kernels.quantize_kernel,
    "reshape": _layout_kernels.reshape_kernel,
    "permute": _layout_kernels.permute_kernel,
    "slice": _layout_kernels.slice_kernel,
    "cat": _layout_kernels.cat_kernel,
    "expand": _layout_kernels.expand_kernel,
    "embedding": _layout_kernels.embedding_kernel,
    "scatter_add": _layout_kernels.scatter_add_kernel,
    "pow": _row_kernels.pow_kernel,
    **{op: _math_kernels.math_kernel for op in _math_kernels.MATH_OPS},
    **{op: _row_kernels.unary_kernel for op in _row_kernels.UNARY},
    **{op: _row_kernels.binary_kernel for op in _row_kernels.BINARY},
    **{op: _row_kernels.reduce_kernel for op in ("sum", "max", "mean")},
}


def lower(lw: Lowering) -> Program:
    """Emit every node of ``lw.graph`` as its kernel; the program."""
    lw.place_constants()
    for name in lw.graph.inputs:
        lw.place(name)
    for node in lw.graph.nodes:
        kernel = KERNELS.get(node.op)
        if kernel is None:
            where = f" (from {node.source})" if node.source else ""
            raise CompileError(f"no kernel for op {node.op!r}{where}; kernels exist for "
                               f"{', '.join(sorted(KERNELS))}")
        lw.begin(node)
        before = sum(len(em.instrs) for em in lw.ems)
        try:
            mapping = kernel(lw, node)
        except CompileError as e:  # the user's line, where the front end recorded it
            if not node.source or node.source in str(e):
                raise
            raise CompileError(f"{e} (from {node.source})") from None
        lw.kernels.append({"label": node.output, "op": node.op, "mapping": mapping or ""})
        if sum(len(em.instrs) for em in lw.ems) > before:  # aliases need no barrier
            lw.end()
    tensors = {n: TensorPlacement(n, b.addr, b.shape, b.dtype)
               for n, b in lw.bufs.items()
               if n in lw.graph.inputs or n in lw.graph.outputs}
    return Program(lw.chip.name, [em.instrs for em in lw.ems], max(lw.dram.top, 64), tensors,
                   list(lw.graph.inputs), list(lw.graph.outputs), lw.init,
                   {"kernels": lw.kernels, "act_dtype": lw.act_dtype, "graph": lw.graph.name})


def compile_graph(graph: KernelGraph, chip: ChipSpec | str, *, dtype: str = "bf16") -> Program:
    """Compile ``graph`` for ``chip`` with floating-point activations stored in ``dtype``."""
    spec = load_chip(chip) if isinstance(chip, str) else chip
    if not compiles_for(spec):
        raise CompileError(f"chip {spec.name!r} has no systolic matrix unit; the chipforge "
                           f"ISA targets forge-t1, forge-i1 and other systolic designs")
    if dtype not in FLOAT_DTYPES:
        raise CompileError(f"activation dtype {dtype!r}; expected one of {FLOAT_DTYPES}")
    _refuse_empty(graph)
    return lower(Lowering(graph, spec, dtype))


def _refuse_empty(graph: KernelGraph) -> None:
    """A zero-size tensor has no kernel on the chip (a DMA or a fold of nothing): one clear
    error naming it, rather than a failed mapping search deep in the lowering."""
    for name, info in graph.tensors.items():
        if 0 in info.shape:
            raise CompileError(f"tensor {name!r} has shape {tuple(info.shape)}: zero-size "
                               f"tensors cannot be compiled; give every dimension >= 1")
