"""Small models built directly as KernelGraphs (no PyTorch needed): the report's compiled
examples and quick smoke checks. Weights are deterministic (seeded)."""

from __future__ import annotations

import numpy as np

from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph


def mlp_graph(batch: int = 64, sizes: tuple[int, ...] = (256, 512, 512, 10),
              seed: int = 0) -> KernelGraph:
    """Linear-ReLU stack: [batch, sizes[0]] -> [batch, sizes[-1]]."""
    rng = np.random.default_rng(seed)
    g = KernelGraph(name="mlp")
    g.inputs = [g.add_tensor("x", (batch, sizes[0]), "fp32")]
    h = "x"
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = g.add_constant(f"w{i}", (rng.standard_normal((fan_in, fan_out))
                                      / np.sqrt(fan_in)).astype(np.float32), "fp32")
        b = g.add_constant(f"b{i}", (0.1 * rng.standard_normal(fan_out)).astype(np.float32),
                           "fp32")
        mm = g.add_node("matmul", (h, w), f"fc{i}", (batch, fan_out), "fp32")
        h = g.add_node("add", (mm, b), f"fc{i}.bias", (batch, fan_out), "fp32")
        if i < len(sizes) - 2:
            h = g.add_node("relu", (h,), f"relu{i}", (batch, fan_out), "fp32")
    g.outputs = [h]
    return g


def attention_graph(seq: int = 128, dim: int = 128, seed: int = 0) -> KernelGraph:
    """One causal self-attention head with RMSNorm: x [seq, dim] -> [seq, dim]."""
    rng = np.random.default_rng(seed)
    g = KernelGraph(name="attention")
    g.inputs = [g.add_tensor("x", (seq, dim), "fp32")]
    norm_w = g.add_constant("norm.w", np.ones(dim, np.float32), "fp32")
    h = g.add_node("rmsnorm", ("x", norm_w), "norm", (seq, dim), "fp32", eps=1e-6)
    proj = {}
    for name in ("q", "k", "v", "o"):
        w = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
        proj[name] = g.add_constant(f"w{name}", w, "fp32")
    q = g.add_node("matmul", (h, proj["q"]), "q", (seq, dim), "fp32")
    k = g.add_node("matmul", (h, proj["k"]), "k", (seq, dim), "fp32")
    v = g.add_node("matmul", (h, proj["v"]), "v", (seq, dim), "fp32")
    kt = g.add_node("permute", (k,), "k.T", (dim, seq), "fp32", dims=(1, 0))
    s = g.add_node("matmul", (q, kt), "scores", (seq, seq), "fp32")
    s = g.add_node("mul", (s,), "scaled", (seq, seq), "fp32", scalar=1.0 / np.sqrt(dim))
    mask = np.triu(np.full((seq, seq), -1e9, np.float32), 1)
    s = g.add_node("add", (s, g.add_constant("causal", mask, "fp32")), "masked", (seq, seq),
                   "fp32")
    p = g.add_node("softmax", (s,), "probs", (seq, seq), "fp32")
    a = g.add_node("matmul", (p, v), "attn", (seq, dim), "fp32")
    o = g.add_node("matmul", (a, proj["o"]), "out", (seq, dim), "fp32")
    g.outputs = [g.add_node("add", ("x", o), "residual", (seq, dim), "fp32")]
    return g


EXAMPLES = {"mlp": mlp_graph, "attention": attention_graph}


def example_graph(name: str) -> KernelGraph:
    if name not in EXAMPLES:
        raise CompileError(f"unknown example {name!r}; expected one of {', '.join(EXAMPLES)}")
    return EXAMPLES[name]()
