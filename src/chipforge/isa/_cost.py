"""Cycle cost of each instruction on one core: a dispatch by opcode onto the core's cost
formulas (:class:`chipforge.machine.CoreTiming`, which documents them). The timing
simulator charges these; the performance engine composes the same formulas.
"""

from __future__ import annotations

from collections.abc import Callable

from chipforge.isa._instr import SPECIAL_UNOPS, Instr, Opcode, UnOp
from chipforge.machine import INDEX_BYTES, CoreTiming

DMA_OPS = (Opcode.DMA_LOAD, Opcode.DMA_STORE, Opcode.DMA_GATHER, Opcode.DMA_SCATTER)
VECTOR_OPS = (Opcode.V_UN, Opcode.V_BIN, Opcode.V_RED, Opcode.V_ACC, Opcode.V_FILL)


def latency(instr: Instr, t: CoreTiming) -> int:
    """Cycles after ``instr`` frees its unit until it completes (signals its semaphore):
    the DRAM round trip of a DMA, overlapped with the next transfers (the engine keeps
    several requests in flight); an ``MM_OS``'s drain, R cycles of one output row per
    cycle from the PEs' shadow registers into the accumulators, overlapped with the next
    MM instruction (docs/rtl.md); 0 for everything else."""
    if instr.op in DMA_OPS:
        return t.dram_latency_cycles
    return t.drain_cycles if instr.op is Opcode.MM_OS else 0


def _dma(instr: Instr, t: CoreTiming) -> int:
    a = instr.named
    nbytes = a["rows"] * a["cols"] * instr.dtype.itemsize
    if instr.op in (Opcode.DMA_GATHER, Opcode.DMA_SCATTER):
        nbytes += a["rows"] * INDEX_BYTES
    return t.dma_cycles(nbytes)


def _vector(instr: Instr, t: CoreTiming) -> int:
    a = instr.named
    special = instr.op is Opcode.V_UN and UnOp(instr.alu) in SPECIAL_UNOPS
    return t.vector_cycles(a["rows"] * a["cols"], special)


_COST: dict[Opcode, Callable[[Instr, CoreTiming], int]] = {
    **dict.fromkeys(DMA_OPS, _dma),
    **dict.fromkeys(VECTOR_OPS, _vector),
    Opcode.MM_LW: lambda i, t: t.load_weights_cycles(i.dtype.name_str),
    Opcode.MM_MUL: lambda i, t: t.stream_rows_cycles(i.field("m"), i.dtype.name_str),
    Opcode.MM_OS: lambda i, t: t.output_stationary_cycles(i.field("k"), i.dtype.name_str),
    Opcode.BARRIER: lambda i, t: t.barrier_cycles,
}


def cycles(instr: Instr, t: CoreTiming) -> int:
    """Cycles ``instr`` occupies its unit (a DMA completes ``latency`` cycles later)."""
    cost = _COST.get(instr.op)
    return cost(instr, t) if cost is not None else 1
