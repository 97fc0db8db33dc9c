"""Kernel-by-kernel agreement between the simulator and the performance engine.

For each node of a compiled graph, the engine's kernel model (``chipforge.perf``'s
``*_kernel_time``) predicts the kernel's cycles from the same mapping the compiler used
(partition, dataflow, SRAM tile from the engine's search) and the same schedules
(:func:`chipforge.machine.vector_passes`: chunking and passes of the vector kernels); the
simulator measures them (first instruction start to barrier release, over all arrays).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from chipforge.arch import ChipSpec, load_chip
from chipforge.compiler.lower._compile import compile_graph
from chipforge.compiler.lower._kernel_graph import MATH_OPS, KernelGraph, KernelNode
from chipforge.compiler.lower._lowering import FLOAT_DTYPES
from chipforge.compiler.lower._row_kernels import BINARY, UNARY, classify
from chipforge.machine import DEFAULT, CoreTiming, VectorPasses, vector_passes
from chipforge.numerics import np_dtype
from chipforge.perf import (
    KernelTime,
    conv_kernel_time,
    copy_kernel_time,
    gather_kernel_time,
    matmul_kernel_time,
    pool_kernel_time,
    row_kernel_time,
    search_matmul,
)

# the row kernels besides the unary and binary elementwise ones
ROW_OPS = ("softmax", "layernorm", "rmsnorm", "sum", "max", "mean", "pow", "quantize")
REDUCE_OPS = ("sum", "max", "mean")


@dataclass(frozen=True)
class Agreement:
    label: str
    op: str
    simulated: int
    modelled: float

    @property
    def error(self) -> float:
        return (self.modelled - self.simulated) / self.simulated


def _info(graph: KernelGraph, name: str, act: str) -> tuple[tuple[int, ...], str, int]:
    t = graph.tensors[name]
    dtype = act if t.dtype in FLOAT_DTYPES else t.dtype
    return t.shape, dtype, np_dtype(dtype).itemsize


def model_kernel(graph: KernelGraph, node: KernelNode, chip: ChipSpec, act: str = "bf16"
                 ) -> KernelTime | None:
    """The engine's cycles for the kernel the compiler emits for ``node`` (None: no kernel,
    e.g. a reshape, or a kernel the engine does not model)."""
    a = CoreTiming.of(chip, DEFAULT)  # one array = one core
    out_shape, out_dt, osz = _info(graph, node.output, act)
    cols = out_shape[-1] if out_shape else 1
    rows = int(np.prod(out_shape[:-1], dtype=np.int64)) if len(out_shape) > 1 else 1
    op = node.op
    if op == "reshape":
        return None
    if op == "matmul":
        a_shape, a_dt, isz = _info(graph, node.inputs[0], act)
        b_shape = graph.tensors[node.inputs[1]].shape
        k, n = b_shape[-2], b_shape[-1]
        b_batch = int(np.prod(b_shape, dtype=np.int64)) // (k * n)
        if b_batch == 1:
            batch, m = 1, int(np.prod(a_shape, dtype=np.int64)) // k
        else:
            batch, m = b_batch, a_shape[-2]
        cost = search_matmul(chip, m, n, k, batch, a_dt, isz, DEFAULT, orders=("k",))
        return matmul_kernel_time(a, cost, m, n, k, batch, a_dt, isz, osz)
    ins = [_info(graph, i, act) for i in node.inputs]
    if op in ROW_OPS or op in UNARY or op in BINARY or op in MATH_OPS:
        in_row, const = 0.0, []  # const: each row operand's bytes (one DMA each)
        pre = 0.0  # operands the kernel first materializes at the output's shape
        for shape, _, size in ins:
            kind = classify(shape, out_shape)
            if kind is None:
                pre += _expand_model(a, shape, out_shape, size).cycles
                kind = "full"
                shape = out_shape
            if kind == "full":
                in_row += (shape[-1] if shape else 1) * size
            elif kind in ("col", "scalar"):
                in_row += size
            else:
                const.append(shape[-1] * size)
        cols_in = ins[0][0][-1] if ins[0][0] else 1
        work_cols = cols_in if op in REDUCE_OPS else cols
        k = row_kernel_time(a, rows, work_cols, in_row, cols * osz, _passes(node),
                            tuple(const))
        return KernelTime(k.cycles + pre, k.dma_cycles, k.compute_cycles, k.fill_cycles)
    if op in ("slice", "cat", "expand", "permute"):
        return _copy_model(graph, node, a, act)
    if op == "conv2d":
        return _conv_model(graph, node, a, chip, act)
    if op == "embedding":
        return _embedding_model(graph, node, a, act)
    if op == "max_pool2d":
        return _pool_model(graph, node, a, act)
    if op == "global_avg_pool2d":
        n, c, h, w = ins[0][0]
        return row_kernel_time(a, n * c, h * w, h * w * ins[0][2], osz,
                               vector_passes("reduce"))
    return None


def _blocks_copy(a: CoreTiming, shape: tuple[int, ...], size: int) -> KernelTime:
    """A copy in blocks of the last two dims, one per index of the leading dims."""
    lead = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
    block = (shape[-2] * shape[-1] if len(shape) >= 2 else shape[-1]) * size
    return copy_kernel_time(a, lead, block)


def _expand_model(a: CoreTiming, in_shape, shape, size: int) -> KernelTime:
    """Blocks of the last two dims; a broadcast last dim is spread by the vector unit."""
    k = _blocks_copy(a, shape, size)
    if (in_shape[-1] if in_shape else 1) == 1 and shape[-1] > 1:
        lead = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
        per_core = ceil(lead / max(1, min(lead, a.cores)))
        rows = shape[-2] if len(shape) >= 2 else 1
        small = a.dma_cycles(rows * size)
        big = a.dma_cycles(rows * shape[-1] * size)
        spread = a.vector_cycles(rows * shape[-1])
        lat = a.dram_latency_cycles
        pair = max(2 * (small + big), small + big + spread + 2 * lat)
        cycles = small + lat + spread + (per_core - 1) * pair / 2 + big + lat
        return KernelTime(cycles + a.barrier_cycles, per_core * (small + big), per_core * spread,
                          2 * lat + a.barrier_cycles)
    return k


def _embedding_model(graph: KernelGraph, node: KernelNode, a: CoreTiming, act: str) -> KernelTime:
    (_, d), _, size = _info(graph, node.inputs[0], act)
    count = int(np.prod(graph.tensors[node.inputs[1]].shape, dtype=np.int64))
    return gather_kernel_time(a, count, d, size)


def _pool_model(graph: KernelGraph, node: KernelNode, a: CoreTiming, act: str) -> KernelTime:
    (n, c, h, w), _, isz = _info(graph, node.inputs[0], act)
    out_shape, _, osz = _info(graph, node.output, act)
    kh, kw = _pair(node.attr("kernel"))
    return pool_kernel_time(a, n, c, h, w, out_shape[2], out_shape[3], kh, kw, isz, osz)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _conv_model(graph: KernelGraph, node: KernelNode, a: CoreTiming, chip: ChipSpec, act: str
                ) -> KernelTime:
    (n, c, h, w), x_dt, isz = _info(graph, node.inputs[0], act)
    o, _, kh, kw = graph.tensors[node.inputs[1]].shape
    out_shape, _, osz = _info(graph, node.output, act)
    return conv_kernel_time(a, chip, n, c, h, w, o, kh, kw, out_shape[2], out_shape[3], x_dt, isz,
                       osz)


def _passes(node: KernelNode) -> VectorPasses:
    """The machine's schedule of the row kernel the compiler emits for ``node``."""
    op = node.op
    if op in UNARY:
        return vector_passes(UNARY[op].name.lower())
    if op in ("layernorm", "rmsnorm"):
        return vector_passes(op, affine=len(node.inputs) - 1)
    if op in REDUCE_OPS:
        return vector_passes("reduce")
    if op == "pow":
        return vector_passes("pow", exponent=float(node.attr("exponent")))
    return vector_passes(op)  # softmax, quantize, math sequences; a binary op: one lane pass


def _copy_model(graph: KernelGraph, node: KernelNode, a: CoreTiming, act: str) -> KernelTime:
    shape, _, size = _info(graph, node.output, act)
    if node.op == "permute":
        return _blocks_copy(a, shape, size)
    if node.op == "expand":
        return _expand_model(a, graph.tensors[node.inputs[0]].shape, shape, size)
    dim = int(node.attr("dim", 0)) % len(shape)
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    used = max(1, min(outer, a.cores))
    if node.op == "cat":  # each input: one block of its rows per array
        per_core = ceil(outer / used)
        blocks = [per_core * graph.tensors[i].shape[dim] * inner * size for i in node.inputs]
        times = [copy_kernel_time(a, 1, b).cycles - a.barrier_cycles for b in blocks]
        lat = a.dram_latency_cycles
        return KernelTime(sum(times) - (len(times) - 1) * lat + a.barrier_cycles,
                          sum(2 * a.dma_cycles(b) for b in blocks), 0.0,
                          2 * lat + a.barrier_cycles)
    if inner == 1:  # a slice of the last dim: one block per array
        return copy_kernel_time(a, used, ceil(outer / used) * shape[dim] * size)
    return copy_kernel_time(a, outer, shape[dim] * inner * size)


def agreement(graph: KernelGraph, chip: str | ChipSpec, inputs: dict[str, np.ndarray],
              act: str = "bf16") -> list[Agreement]:
    """Simulated and modelled cycles for every kernel of ``graph`` on ``chip``."""
    from chipforge.sim import simulate

    spec = load_chip(chip) if isinstance(chip, str) else chip
    program = compile_graph(graph, spec, dtype=act)
    measured = simulate(program, spec, inputs, trace=True, functional=False).kernel_cycles()
    out = []
    for node in graph.nodes:
        model = model_kernel(graph, node, spec, act)
        if model is None or node.output not in measured:
            continue
        out.append(Agreement(node.output, node.op, measured[node.output], model.cycles))
    return out


__all__ = ["ceil"]
