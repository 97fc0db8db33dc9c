"""The op IR (``chipforge.ops``) as compiler input: each op of a workload graph becomes a
kernel with its own synthetic tensors, so an op graph built by the workload builders
(an LLM layer, DLRM, a CNN) compiles and runs on the simulator.

The op IR describes ops by shape, dtype and repeat count, not by the tensors that connect
them; the kernels here therefore read fresh inputs (graph inputs) and constant weights
(deterministic, seeded), which is what timing needs. Unique ops are compiled once: the
caller multiplies by the graph's repeat counts.
"""

from __future__ import annotations

from math import ceil

import numpy as np

from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph
from chipforge.ops import (
    Conv2d,
    Elementwise,
    EmbeddingBag,
    Graph,
    LayerNorm,
    Matmul,
    Op,
    Reduce,
    RMSNorm,
    Softmax,
)

ELEMENTWISE = {"add": "add", "residual_add": "add", "bias_add": "add", "mul": "mul",
               "sub": "sub", "div": "div", "max": "maximum", "relu": "relu", "gelu": "gelu",
               "silu": "silu", "tanh": "tanh", "exp": "exp", "copy": "cast", "cast": "cast",
               "scale": "mul", "swiglu": "mul",
               # RoPE and dropout move the data of a product with a table or a mask
               "rope": "mul", "dropout": "mul"}
ROW = 4096  # elementwise tensors are laid out as rows of this many elements (as the engine)


def _rand(rng, shape) -> np.ndarray:
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


def add_op(g: KernelGraph, op: Op, prefix: str, rng) -> str:
    """Append the kernel of ``op`` to ``g``; returns its output tensor name."""
    f = "fp32"
    if isinstance(op, Matmul):
        if op.out_dtype != op.dtype:
            raise CompileError(f"op {op.describe()!r}: the compiler writes a matmul's output "
                               f"in its input dtype {op.dtype!r}; out_dtype "
                               f"{op.out_dtype!r} is an estimate-only field")
        a = g.add_tensor(f"{prefix}.a", (op.batch, op.m, op.k) if op.batch > 1 else
                         (op.m, op.k), f)
        g.inputs.append(a)
        b = g.add_constant(f"{prefix}.b", _rand(rng, (op.batch, op.k, op.n) if op.batch > 1
                                                 else (op.k, op.n)), f)
        shape = (op.batch, op.m, op.n) if op.batch > 1 else (op.m, op.n)
        return g.add_node("matmul", (a, b), f"{prefix}.out", shape, f)
    if isinstance(op, Conv2d):
        x = g.add_tensor(f"{prefix}.x", (op.batch, op.in_ch, op.h, op.w), f)
        g.inputs.append(x)
        w = g.add_constant(f"{prefix}.w", _rand(rng, (op.out_ch, op.in_ch // op.groups, op.kh,
                                                      op.kw)), f)
        return g.add_node("conv2d", (x, w), f"{prefix}.out",
                          (op.batch, op.out_ch, op.out_h, op.out_w), f,
                          stride=(op.stride, op.stride), padding=(op.padding, op.padding),
                          groups=op.groups)
    if isinstance(op, (Softmax, LayerNorm, RMSNorm, Reduce)):
        x = g.add_tensor(f"{prefix}.x", (op.rows, op.cols), f)
        g.inputs.append(x)
        if isinstance(op, Softmax):
            return g.add_node("softmax", (x,), f"{prefix}.out", (op.rows, op.cols), f)
        if isinstance(op, Reduce):
            kind = "max" if op.fn == "max" else "sum"
            return g.add_node(kind, (x,), f"{prefix}.out", (op.rows, 1), f)
        w = g.add_constant(f"{prefix}.w", np.ones(op.cols, np.float32), f)
        ins = (x, w)
        if isinstance(op, LayerNorm):
            ins += (g.add_constant(f"{prefix}.b", np.zeros(op.cols, np.float32), f),)
        kind = "layernorm" if isinstance(op, LayerNorm) else "rmsnorm"
        return g.add_node(kind, ins, f"{prefix}.out", (op.rows, op.cols), f, eps=1e-5)
    if isinstance(op, Elementwise):
        if op.fn not in ELEMENTWISE:
            raise CompileError(f"op {op.describe()!r}: no kernel for elementwise fn {op.fn!r}")
        cols = min(op.numel, ROW)
        shape = (ceil(op.numel / cols), cols)
        kind = ELEMENTWISE[op.fn]
        xs = []
        for i in range(1 if kind in ("relu", "gelu", "silu", "tanh", "exp", "cast")
                       else max(2, op.inputs)):
            xs.append(g.add_tensor(f"{prefix}.x{i}", shape, f))
            g.inputs.append(xs[-1])
        out = g.add_node(kind, tuple(xs[:2]), f"{prefix}.out", shape, f)
        return out
    if isinstance(op, EmbeddingBag) and op.pooling == 1:
        table = g.add_constant(f"{prefix}.table", _rand(rng, (op.num_embeddings, op.dim)), f)
        idx = g.add_tensor(f"{prefix}.idx", (op.tables * op.batch,), "int32")
        g.inputs.append(idx)
        return g.add_node("embedding", (table, idx), f"{prefix}.out",
                          (op.tables * op.batch, op.dim), f)
    raise CompileError(f"op {op.describe()!r}: the compiler has no kernel for "
                       f"{op.kind.value!r} from the op IR (attention and collectives run as "
                       f"their matmul/softmax parts or on the cluster layer)")


def kernel_graph_from_ops(graph: Graph | list[Op], *, seed: int = 0) -> KernelGraph:
    """One kernel per unique op of ``graph`` (repeat counts are the caller's to apply)."""
    nodes = graph.nodes if isinstance(graph, Graph) else [(op, 1) for op in graph]
    g = KernelGraph(name=graph.name if isinstance(graph, Graph) else "ops")
    rng = np.random.default_rng(seed)
    seen: set[Op] = set()
    for i, (op, _) in enumerate(nodes):
        if op in seen:
            continue
        seen.add(op)
        g.outputs.append(add_op(g, op, f"op{i}.{op.name or op.kind.value}", rng))
    g.validate()
    return g
