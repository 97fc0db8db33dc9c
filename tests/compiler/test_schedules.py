"""The compiler's vector kernels emit exactly the passes the machine's schedule names
(chipforge.machine.vector_passes), which the engine's kernel model and the agreement check
charge: per chunk, passes over every element on the ALU lanes and on the special-function
lanes, and passes over one value per row. Counted from the emitted instructions."""

from __future__ import annotations

import pytest

from chipforge.compiler import KernelGraph, compile_graph
from chipforge.isa import SPECIAL_UNOPS, Opcode, UnOp
from chipforge.machine import VectorPasses, vector_passes

ROWS, COLS = 4, 256  # one row per core on forge-t1: one chunk, every pass over COLS


def _graph(op: str, extra: tuple[tuple[str, tuple[int, ...]], ...] = (), **attrs
           ) -> KernelGraph:
    g = KernelGraph(name=op)
    g.add_tensor("x", (ROWS, COLS), "fp32")
    for name, shape in extra:
        g.add_tensor(name, shape, "fp32")
    g.inputs = ["x", *(name for name, _ in extra)]
    out = (ROWS, 1) if op in ("sum", "max", "mean") else (ROWS, COLS)
    g.add_node(op, tuple(g.inputs), "y", out, "fp32", **attrs)
    g.outputs = ["y"]
    return g


def _counted(graph: KernelGraph) -> VectorPasses:
    program = compile_graph(graph, "forge-t1", dtype="bf16")
    vector = [i for i in program.cores[0] if i.op in (Opcode.V_UN, Opcode.V_BIN,
                                                      Opcode.V_RED)]
    full = [i for i in vector if i.field("cols") == COLS]
    special = sum(i.op is Opcode.V_UN and UnOp(i.alu) in SPECIAL_UNOPS for i in full)
    per_row = sum(i.field("cols") == 1 for i in vector)
    assert len(full) + per_row == len(vector)  # nothing else was emitted
    return VectorPasses(len(full) - special, special, per_row)


ROW = ("w", (COLS,))
CASES = [
    ("softmax", _graph("softmax"), {}),
    ("layernorm", _graph("layernorm", (ROW, ("b", (COLS,))), eps=1e-5), {"affine": 2}),
    ("layernorm", _graph("layernorm", eps=1e-5), {"affine": 0}),
    ("rmsnorm", _graph("rmsnorm", (ROW,), eps=1e-6), {"affine": 1}),
    ("reduce", _graph("sum"), {}),
    ("reduce", _graph("mean"), {}),
    ("reduce", _graph("max"), {}),
    ("quantize", _graph("quantize", scale=0.1), {}),
    *[("pow", _graph("pow", exponent=c), {"exponent": c})
      for c in (1.0, 2.0, 0.5, -0.5, -1.0, -2.0, 3.0, 1.7)],
    ("exp", _graph("exp"), {}),
    ("gelu", _graph("gelu"), {}),
    ("relu", _graph("relu"), {}),
    ("add", _graph("add", (("z", (ROWS, COLS)),)), {}),
]


@pytest.mark.parametrize("kernel, graph, kw", CASES,
                         ids=[f"{g.nodes[0].op}-{i}" for i, (_, g, _) in enumerate(CASES)])
def test_emitted_passes_are_the_schedule(kernel: str, graph: KernelGraph, kw: dict) -> None:
    assert _counted(graph) == vector_passes(kernel, **kw)
