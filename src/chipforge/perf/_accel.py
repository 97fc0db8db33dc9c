"""The engine's model of chipforge's own chips running compiled kernels.

A chip with systolic arrays runs what the chipforge compiler emits: one kernel per op,
each split over the arrays, streaming DRAM -> local SRAM -> DRAM with double buffering,
and closed by a barrier (no host launch). This module predicts a kernel's cycles from its
mapping and the ISA's cost terms (DMA occupancy and latency, array fold cycles, vector
passes), without simulating instructions; the agreement table in docs/validation.md
compares it with the simulator kernel by kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from chipforge.arch import ChipSpec
from chipforge.perf._hw import (
    BARRIER_CYCLES,
    DMA_ISSUE_CYCLES,
    DRAM_LATENCY_S,
    ROW_CHUNK,
    VECTOR_PIPELINE_CYCLES,
)
from chipforge.perf._matmul import MatmulCost, matrix_unit, tiled_systolic_cycles
from chipforge.perf._params import Efficiency


def compiles_for(chip: ChipSpec) -> bool:
    """Chips whose matrix units are systolic arrays run chipforge-compiled programs."""
    return any(mu.kind == "systolic" for mu in chip.cores.matrix_units)


@dataclass(frozen=True)
class Arrays:
    """Per-array figures (one array = one ISA core), as the ISA's CoreTiming derives them."""

    count: int
    hz: float  # sustained clock
    bytes_per_cycle: float  # DMA: the array's share of achievable DRAM bandwidth
    latency: int  # DRAM latency, cycles
    lanes: int
    special_lanes: int
    rows: int
    cols: int

    @classmethod
    def of(cls, chip: ChipSpec, eff: Efficiency) -> Arrays:
        mu = next(m for m in chip.cores.matrix_units if m.kind == "systolic")
        vu = chip.cores.vector_unit
        count = chip.cores.count * mu.count
        hz = chip.clock_hz * eff.clock_fraction
        share = chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency / hz / count
        return cls(count, hz, min(float(chip.cores.local_sram.bytes_per_cycle), share),
                   round(DRAM_LATENCY_S * hz), max(1, vu.lanes // mu.count),
                   max(1, (vu.special_function_lanes or vu.lanes) // mu.count), mu.rows,
                   mu.cols)

    def dma(self, nbytes: float) -> float:
        return DMA_ISSUE_CYCLES + ceil(nbytes / self.bytes_per_cycle)

    def vec(self, elements: float, special: bool = False) -> float:
        return VECTOR_PIPELINE_CYCLES + ceil(elements / (self.special_lanes if special
                                                         else self.lanes))


@dataclass(frozen=True)
class KernelTime:
    cycles: float
    dma_cycles: float  # busiest array's DMA occupancy
    compute_cycles: float  # busiest array's MXU or VEC occupancy
    fill_cycles: float  # exposed latency, pipeline fill and drain, barrier


def row_kernel(a: Arrays, rows: int, cols: int, in_bytes_per_row: float,
               out_bytes_per_row: float, passes: tuple[int, int], row_passes: int = 0,
               const_bytes: float = 0.0) -> KernelTime:
    """A vector kernel streaming rows in chunks: per chunk the DMA loads the inputs and
    stores the output, the vector unit makes ``passes`` = (lane passes, special-function
    passes) over the chunk and ``row_passes`` over one value per row."""
    used = max(1, min(rows, a.count))
    per_core = ceil(rows / used)
    chunk = min(ROW_CHUNK, per_core)
    chunks = ceil(per_core / chunk)
    d_in = a.dma(chunk * in_bytes_per_row)
    d_out = a.dma(chunk * out_bytes_per_row)
    v = (passes[0] * a.vec(chunk * cols) + passes[1] * a.vec(chunk * cols, special=True)
         + row_passes * a.vec(chunk))
    start = a.dma(const_bytes) if const_bytes else 0.0
    steady = max(v, d_in + d_out)
    cycles = start + d_in + a.latency + v + (chunks - 1) * steady + d_out + a.latency
    return KernelTime(cycles + BARRIER_CYCLES, chunks * (d_in + d_out) + start, chunks * v,
                      2 * a.latency + BARRIER_CYCLES + d_in + d_out)


def copy_kernel(a: Arrays, blocks: int, block_bytes: float) -> KernelTime:
    """DMA-only copies of ``blocks`` blocks through a double-buffered SRAM staging area:
    each block is loaded, then stored once its load completes; a slot is reloaded once the
    store two blocks back completes."""
    used = max(1, min(blocks, a.count))
    per_core = ceil(blocks / used)
    d = a.dma(block_bytes)
    # two blocks in flight: each pair costs its four transfers or the load->store->reload
    # latency chain, whichever is longer
    pair = max(4 * d, 2 * d + 2 * a.latency)
    cycles = d + a.latency + (per_core - 1) * pair / 2 + d + a.latency
    return KernelTime(cycles + BARRIER_CYCLES, per_core * 2 * d, 0.0,
                      2 * a.latency + BARRIER_CYCLES)


def matmul_kernel(a: Arrays, cost: MatmulCost, m: int, n: int, k: int, batch: int,
                  itemsize: float, out_itemsize: float, dtype_slow: float = 1.0,
                  cols_eff: int | None = None) -> KernelTime:
    """The compiled matmul kernel on its busiest array: per k step an A and a B tile in
    (double-buffered), the array's folds, per output tile an accumulator read and a
    store."""
    pb, pm, pn = cost.partition
    tm, tn, tk = cost.tile
    mw, nw, bw = ceil(m / pm), ceil(n / pn), ceil(batch / pb)
    tm, tn, tk = min(tm, mw), min(tn, nw), min(tk, k)
    cols = cols_eff or a.cols
    from chipforge.perf._matmul import SramTile

    tile = SramTile(tm, tn, tk, "k", 0, 0, 0.0, 0.0)
    mxu = tiled_systolic_cycles(cost.dataflow, a.rows, cols, mw, nw, k, tile) * bw * dtype_slow
    m_tiles, n_tiles, k_tiles = ceil(mw / tm), ceil(nw / tn), ceil(k / tk)
    steps = m_tiles * n_tiles * k_tiles * bw
    d_step = a.dma(tm * tk * itemsize) + a.dma(tk * tn * itemsize)
    d_store = a.dma(tm * tn * out_itemsize)
    dma = steps * d_step + m_tiles * n_tiles * bw * d_store
    v_acc = a.vec(tm * tn)
    first_mm = mxu / steps
    fill = d_step + a.latency + v_acc + d_store + a.latency
    cycles = max(mxu + d_step + a.latency, dma + first_mm) + v_acc + d_store + a.latency
    return KernelTime(cycles + BARRIER_CYCLES, dma, mxu, fill + BARRIER_CYCLES)


def pack_of(chip: ChipSpec, dtype: str) -> tuple[int, float]:
    """(array columns, slowdown) of ``dtype`` on the chip's arrays, as the ISA defines."""
    mu = matrix_unit(chip, dtype)
    p = mu.macs_per_cycle[dtype] / (mu.rows * mu.cols)
    return (max(1, round(mu.cols * p)) if p >= 1 else mu.cols), (1.0 / p if p < 1 else 1.0)
