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
from chipforge.perf._matmul import MatmulCost, matrix_unit, search_matmul, tiled_systolic_cycles
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
               const_loads: tuple[float, ...] = ()) -> KernelTime:
    """A vector kernel streaming rows in chunks: per chunk the DMA loads the inputs and
    stores the output, the vector unit makes ``passes`` = (lane passes, special-function
    passes) over the chunk and ``row_passes`` over one value per row. ``const_loads``: the
    bytes of each operand loaded once per core before the rows (a norm's weight, bias)."""
    used = max(1, min(rows, a.count))
    per_core = ceil(rows / used)
    chunk = min(ROW_CHUNK, per_core)
    chunks = ceil(per_core / chunk)
    d_in = a.dma(chunk * in_bytes_per_row)
    d_out = a.dma(chunk * out_bytes_per_row)
    v = (passes[0] * a.vec(chunk * cols) + passes[1] * a.vec(chunk * cols, special=True)
         + row_passes * a.vec(chunk))
    start = sum(a.dma(nbytes) for nbytes in const_loads)
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
    # output-stationary: the last MM_OS's results drain R cycles before the last V_ACC
    # reads them (isa.latency); earlier drains overlap the next MMs
    drain = a.rows if cost.dataflow == "os" else 0
    fill = d_step + a.latency + drain + v_acc + d_store + a.latency
    last_mm = max(mxu + d_step + a.latency, dma + first_mm,
                  _buffer_chain(steps, d_step, a.latency, first_mm))
    cycles = last_mm + drain + v_acc + d_store + a.latency
    return KernelTime(cycles + BARRIER_CYCLES, dma, mxu, fill + BARRIER_CYCLES)


def _buffer_chain(steps: int, load: float, latency: float, mm: float) -> float:
    """When the last step's matmuls can end, from the two SRAM buffers alone: step i's
    operands load into the buffer step i - 2 used, so only after its matmuls end, and each
    such link costs the load, the DRAM latency and a step's matmuls. Binds when
    (load + latency + mm) / 2 > max(load, mm), i.e. the latency is not hidden."""
    if steps < 3:  # no buffer is reused: the DMA and MXU bounds hold
        return 0.0
    link = load + latency + mm
    if steps % 2:  # the last step shares step 0's buffer: (steps + 1) / 2 links
        return (steps + 1) / 2 * link
    # the last step uses step 1's buffer; step 1 loads after step 0 on the one DMA queue
    return load + link + (steps / 2 - 1) * link


def pack_of(chip: ChipSpec, dtype: str) -> tuple[int, float]:
    """(array columns, slowdown) of ``dtype`` on the chip's arrays, as the ISA defines."""
    mu = matrix_unit(chip, dtype)
    p = mu.macs_per_cycle[dtype] / (mu.rows * mu.cols)
    return (max(1, round(mu.cols * p)) if p >= 1 else mu.cols), (1.0 / p if p < 1 else 1.0)


def gather_kernel(a: Arrays, count: int, dim: int, size: float) -> KernelTime:
    """Embedding rows: per array its indices in, the rows gathered, the rows out, each step
    waiting for the previous one's DRAM latency."""
    used = max(1, min(count, a.count))
    m = ceil(count / used)
    steps = a.dma(m * 4) + a.dma(m * dim * size + m * 4) + a.dma(m * dim * size)
    return KernelTime(steps + 3 * a.latency + BARRIER_CYCLES, steps, 0.0,
                      3 * a.latency + BARRIER_CYCLES)


def pool_kernel(a: Arrays, n: int, c: int, h: int, w: int, oh: int, ow: int, kh: int,
                kw: int, isz: float, osz: float) -> KernelTime:
    """Max pooling: NHWC transpose, per output row the windows' loads and running max,
    transpose back."""
    t_in = copy_kernel(a, n, h * w * c * isz)
    used = max(1, min(n * oh, a.count))
    per_core = ceil(n * oh / used)
    d_win = a.dma(ow * c * isz)
    per_row = kh * kw * d_win + a.latency + a.vec(ow * c) + a.dma(ow * c * osz)
    pool = a.vec(ow * c) + per_core * per_row + a.latency + BARRIER_CYCLES
    t_out = copy_kernel(a, n, oh * ow * c * osz)
    total = t_in.cycles + pool + t_out.cycles
    return KernelTime(total, t_in.dma_cycles + t_out.dma_cycles, 0.0, total)


def conv_kernel(a: Arrays, chip: ChipSpec, n: int, c: int, h: int, w: int, o: int, kh: int,
                kw: int, oh: int, ow: int, dtype: str, isz: float, osz: float) -> KernelTime:
    """Convolution as the compiler runs it: NHWC transpose, im2col gather (per output row a
    zero fill, the windows' loads, then the row's store queued behind them), the implicit
    GEMM, transpose back."""
    from chipforge.perf._params import DEFAULT

    kdim = kh * kw * c
    t_in = copy_kernel(a, n, h * w * c * isz)
    used = max(1, min(n * oh, a.count))
    per_core = ceil(n * oh / used)
    per_row = kh * kw * a.dma(ow * c * isz) + a.latency + a.dma(ow * kdim * isz)
    im2col = a.vec(ow * kdim) + per_core * per_row + a.latency + BARRIER_CYCLES
    m = n * oh * ow
    cost = search_matmul(chip, m, o, kdim, 1, dtype, isz, DEFAULT, orders=("k",))
    cols_eff, slow = pack_of(chip, dtype)
    mm = matmul_kernel(a, cost, m, o, kdim, 1, isz, osz, slow, cols_eff)
    t_out = copy_kernel(a, n, oh * ow * o * osz)
    total = t_in.cycles + im2col + mm.cycles + t_out.cycles
    return KernelTime(total, t_in.dma_cycles + mm.dma_cycles + t_out.dma_cycles,
                      mm.compute_cycles, total - mm.compute_cycles)


# vector passes of each row op as the compiler's kernels make them: (lane passes,
# special-function passes) over every element, and passes over one value per row
ROW_PASSES = {"softmax": ((4, 1), 1), "layernorm": ((7, 0), 3), "rmsnorm": ((4, 0), 3),
              "reduce": ((1, 0), 1)}
# row operands the compiled norms load once per core, one DMA each: weight (and bias)
ROW_CONSTS = {"layernorm": 2, "rmsnorm": 1}
SPECIAL_FNS = {"exp", "gelu", "silu", "tanh"}


def accel_kernel(op, chip: ChipSpec, eff: Efficiency) -> tuple[KernelTime, float] | None:
    """(kernel time, DRAM bytes moved) of an op-IR op compiled for ``chip``, or None for
    the ops the compiler runs as other kernels' parts (attention, collectives)."""
    from chipforge.ops import Conv2d, Elementwise, EmbeddingBag, Matmul, OpKind

    a = Arrays.of(chip, eff)
    isz = op.itemsize
    if isinstance(op, Matmul):
        cost = search_matmul(chip, op.m, op.n, op.k, op.batch, op.dtype, isz, eff,
                             orders=("k",))
        cols, slow = pack_of(chip, op.dtype)
        return (matmul_kernel(a, cost, op.m, op.n, op.k, op.batch, isz, isz, slow, cols),
                cost.shared_bytes)
    if isinstance(op, Conv2d):
        if op.groups != 1:
            return None
        kt = conv_kernel(a, chip, op.batch, op.in_ch, op.h, op.w, op.out_ch, op.kh, op.kw,
                         op.out_h, op.out_w, op.dtype, isz, isz)
        return kt, op.bytes + 2 * op.batch * op.out_h * op.out_w * op.in_ch * op.kh * op.kw * isz
    if isinstance(op, EmbeddingBag):
        rows = op.tables * op.batch * op.pooling
        kt = gather_kernel(a, rows, op.dim, isz)
        return kt, op.bytes
    if op.kind in (OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.RMSNORM, OpKind.REDUCE):
        passes, row_passes = ROW_PASSES[op.kind.value]
        out_cols = 1 if op.kind is OpKind.REDUCE else op.cols
        consts = (op.cols * isz,) * ROW_CONSTS.get(op.kind.value, 0)
        return (row_kernel(a, op.rows, op.cols, op.cols * isz, out_cols * isz, passes,
                           row_passes, consts), op.bytes)
    if isinstance(op, Elementwise):
        # a flat tensor, streamed as rows of up to 4096 elements
        cols = min(op.numel, 4096)
        rows = ceil(op.numel / cols)
        passes = (0, 1) if op.fn in SPECIAL_FNS else (1, 0)
        if op.fn == "adamw":
            passes = (12, 1)
        return (row_kernel(a, rows, cols, cols * isz * op.inputs, cols * isz * op.outputs,
                           passes), op.bytes)
    return None
