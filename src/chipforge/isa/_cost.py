"""Cycle cost of each instruction on one core of a chip: the single timing definition
used by the timing simulator and by the performance engine's agreement check.

* DMA: a fixed DRAM latency plus bytes over the core's DMA bandwidth, which is the core's
  static share of the chip's achievable DRAM bandwidth, capped by its SRAM port.
* Matrix unit (rows R, cols C): ``MM_LW`` R cycles (one weight row per cycle, a partial
  tile costs a full one); ``MM_MUL`` m + R + C - 2 (m rows streamed, row skew, column
  drain), so one weight-stationary fold is 2R + C + m - 2 cycles, SCALE-Sim v3's count
  (:mod:`chipforge.perf.systolic`, which also subtracts SCALE-Sim's final index -1);
  ``MM_OS`` R + C + k - 2 (SCALE-Sim's os fold), and it completes R cycles later (its
  outputs drain out of the array, a row per cycle, while the next instruction runs). A
  dtype whose MACs per cycle are p x R x C (fp8 packing) widens the array to p x C
  columns; p < 1 (fp32 on a bf16 array) slows every cost by 1/p (not the drain: it moves
  finished fp32/int32 words, not MACs).
* Vector: a pipeline fill plus elements over lanes (special-function lanes for
  transcendentals).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from chipforge.arch import ChipSpec
from chipforge.isa._instr import SPECIAL_UNOPS, Dtype, Instr, Opcode, UnOp
from chipforge.perf import DEFAULT, Efficiency
from chipforge.perf._hw import (  # noqa: F401  (re-exported for the simulator)
    BARRIER_CYCLES,
    DMA_ISSUE_CYCLES,
    DRAM_LATENCY_S,
    VECTOR_PIPELINE_CYCLES,
)

_DTYPE_NAMES = {Dtype.FP32: "fp32", Dtype.BF16: "bf16", Dtype.FP16: "fp16",
                Dtype.FP8_E4M3: "fp8_e4m3", Dtype.FP8_E5M2: "fp8_e5m2", Dtype.INT8: "int8",
                Dtype.INT32: "int32"}  # no matrix unit multiplies int32


@dataclass(frozen=True)
class CoreTiming:
    """The per-core figures the cycle costs need, derived from a chip spec."""

    clock_hz: float
    cores: int  # matrix arrays on the chip: each is one ISA core with its share of SRAM
    rows: int
    cols: int
    macs_per_cycle: dict[str, int]
    lanes: int
    special_lanes: int
    dma_bytes_per_cycle: float
    dram_latency_cycles: int
    local_sram_bytes: int

    @classmethod
    def of(cls, chip: ChipSpec, eff: Efficiency = DEFAULT) -> CoreTiming:
        mu = next(m for m in chip.cores.matrix_units if m.kind == "systolic")
        vu = chip.cores.vector_unit
        arrays = chip.cores.count * mu.count
        # the chip runs at its sustained clock under load, the engine's shared parameter
        hz = chip.clock_hz * eff.clock_fraction
        share = chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency / hz / arrays
        return cls(hz, arrays, mu.rows, mu.cols,
                   dict(mu.macs_per_cycle), max(1, vu.lanes // mu.count),
                   max(1, (vu.special_function_lanes or vu.lanes) // mu.count),
                   min(float(chip.cores.local_sram.bytes_per_cycle), share),
                   round(DRAM_LATENCY_S * hz),
                   int(chip.cores.local_sram.size_bytes // max(1, mu.count)))

    def pack(self, dtype: Dtype) -> float:
        """MACs per cycle of ``dtype`` over rows x cols (2 for fp8 on forge-t1)."""
        macs = self.macs_per_cycle.get(_DTYPE_NAMES[dtype], 0)
        return macs / (self.rows * self.cols)

    def array_cols(self, dtype: Dtype) -> int:
        p = self.pack(dtype)
        return max(1, round(self.cols * p)) if p >= 1 else self.cols

    def slowdown(self, dtype: Dtype) -> float:
        p = self.pack(dtype)
        return 1.0 / p if 0 < p < 1 else 1.0


DMA_OPS = (Opcode.DMA_LOAD, Opcode.DMA_STORE, Opcode.DMA_GATHER, Opcode.DMA_SCATTER)


def latency(instr: Instr, t: CoreTiming) -> int:
    """Cycles after ``instr`` frees its unit until it completes (signals its semaphore):
    the DRAM round trip of a DMA, overlapped with the next transfers (the engine keeps
    several requests in flight); an ``MM_OS``'s drain, R cycles of one output row per
    cycle from the PEs' shadow registers into the accumulators, overlapped with the next
    MM instruction (docs/rtl.md); 0 for everything else."""
    if instr.op in DMA_OPS:
        return t.dram_latency_cycles
    return t.rows if instr.op is Opcode.MM_OS else 0


def cycles(instr: Instr, t: CoreTiming) -> int:
    """Cycles ``instr`` occupies its unit (a DMA completes ``latency`` cycles later)."""
    op, a = instr.op, instr.named
    if op in DMA_OPS:
        nbytes = a["rows"] * a["cols"] * instr.dtype.itemsize
        if op in (Opcode.DMA_GATHER, Opcode.DMA_SCATTER):
            nbytes += a["rows"] * 4  # the int32 row indices
        return DMA_ISSUE_CYCLES + ceil(nbytes / t.dma_bytes_per_cycle)
    if op is Opcode.MM_LW:
        return ceil(t.rows * t.slowdown(instr.dtype))
    if op is Opcode.MM_MUL:
        return ceil((a["m"] + t.rows + t.array_cols(instr.dtype) - 2)
                    * t.slowdown(instr.dtype))
    if op is Opcode.MM_OS:
        return ceil((t.rows + t.array_cols(instr.dtype) + a["k"] - 2)
                    * t.slowdown(instr.dtype))
    if op in (Opcode.V_UN, Opcode.V_BIN, Opcode.V_RED, Opcode.V_ACC, Opcode.V_FILL):
        lanes = t.lanes
        if op is Opcode.V_UN and UnOp(instr.alu) in SPECIAL_UNOPS:
            lanes = t.special_lanes
        return VECTOR_PIPELINE_CYCLES + ceil(a["rows"] * a["cols"] / lanes)
    if op is Opcode.BARRIER:
        return BARRIER_CYCLES
    return 1
