"""The engine's model of chipforge's own chips running compiled kernels.

A chip with systolic arrays runs what the chipforge compiler emits: one kernel per op,
each split over the arrays, streaming DRAM -> local SRAM -> DRAM with double buffering,
and closed by a barrier (no host launch). This module predicts a kernel's cycles from its
mapping, the core's cycle costs (:class:`chipforge.machine.CoreTiming`: DMA occupancy and
latency, array folds, vector instructions) and the kernels' schedules
(:func:`chipforge.machine.vector_passes`), without simulating instructions; the agreement
table in docs/validation.md compares it with the simulator kernel by kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, gcd

from chipforge.arch import ChipSpec
from chipforge.machine import (
    DEFAULT,
    ELEMENTWISE_ROW_ELEMENTS,
    INDEX_BYTES,
    NORM_AFFINE_OPERANDS,
    ROW_CHUNK_ROWS,
    CoreTiming,
    Efficiency,
    VectorPasses,
    vector_passes,
)
from chipforge.perf._matmul import MatmulCost, SramTile, search_matmul, tiled_systolic_cycles


@dataclass(frozen=True)
class KernelTime:
    cycles: float
    dma_cycles: float  # busiest array's DMA occupancy
    compute_cycles: float  # busiest array's MXU or VEC occupancy
    fill_cycles: float  # exposed latency, pipeline fill and drain, barrier


def row_kernel_time(t: CoreTiming, rows: int, cols: int, in_bytes_per_row: float,
                    out_bytes_per_row: float, passes: VectorPasses,
                    const_loads: tuple[float, ...] = ()) -> KernelTime:
    """A vector kernel streaming rows in chunks: per chunk the DMA loads the inputs and
    stores the output, and the vector unit makes ``passes`` over the chunk's elements and
    its rows. ``const_loads``: the bytes of each operand loaded once per core before the
    rows (a norm's weight, bias)."""
    used = max(1, min(rows, t.cores))
    per_core = ceil(rows / used)
    chunk = min(ROW_CHUNK_ROWS, per_core)
    chunks = ceil(per_core / chunk)
    lat = t.dram_latency_cycles
    d_in = t.dma_cycles(chunk * in_bytes_per_row)
    d_out = t.dma_cycles(chunk * out_bytes_per_row)
    v = (passes.lane * t.vector_cycles(chunk * cols)
         + passes.special * t.vector_cycles(chunk * cols, special=True)
         + passes.per_row * t.vector_cycles(chunk))
    start = sum(t.dma_cycles(nbytes) for nbytes in const_loads)
    steady = max(v, d_in + d_out)
    cycles = start + d_in + lat + v + (chunks - 1) * steady + d_out + lat
    return KernelTime(cycles + t.barrier_cycles, chunks * (d_in + d_out) + start, chunks * v,
                      2 * lat + t.barrier_cycles + d_in + d_out)


def copy_kernel_time(t: CoreTiming, blocks: int, block_bytes: float) -> KernelTime:
    """DMA-only copies of ``blocks`` blocks through a double-buffered SRAM staging area:
    each block is loaded, then stored once its load completes; a slot is reloaded once the
    store two blocks back completes."""
    used = max(1, min(blocks, t.cores))
    per_core = ceil(blocks / used)
    lat = t.dram_latency_cycles
    d = t.dma_cycles(block_bytes)
    # two blocks in flight: each pair costs its four transfers or the load->store->reload
    # latency chain, whichever is longer
    pair = max(4 * d, 2 * d + 2 * lat)
    cycles = d + lat + (per_core - 1) * pair / 2 + d + lat
    return KernelTime(cycles + t.barrier_cycles, per_core * 2 * d, 0.0,
                      2 * lat + t.barrier_cycles)


def matmul_kernel_time(t: CoreTiming, cost: MatmulCost, m: int, n: int, k: int, batch: int,
                       dtype: str, itemsize: float, out_itemsize: float) -> KernelTime:
    """The compiled matmul kernel on its busiest array: per k step an A and a B tile in
    (double-buffered), the array's folds, per output tile an accumulator read and a
    store."""
    pb, pm, pn = cost.partition
    tm, tn, tk = cost.tile
    mw, nw, bw = ceil(m / pm), ceil(n / pn), ceil(batch / pb)
    tm, tn, tk = min(tm, mw), min(tn, nw), min(tk, k)
    lat = t.dram_latency_cycles
    tile = SramTile(tm, tn, tk, "k", 0, 0, 0.0, 0.0)
    mxu = tiled_systolic_cycles(cost.dataflow, t.rows, t.array_cols(dtype), mw, nw, k,
                                tile) * bw * t.slowdown(dtype)
    m_tiles, n_tiles, k_tiles = ceil(mw / tm), ceil(nw / tn), ceil(k / tk)
    steps = m_tiles * n_tiles * k_tiles * bw
    d_step = t.dma_cycles(tm * tk * itemsize) + t.dma_cycles(tk * tn * itemsize)
    d_store = t.dma_cycles(tm * tn * out_itemsize)
    dma = steps * d_step + m_tiles * n_tiles * bw * d_store
    v_acc = t.vector_cycles(tm * tn)
    first_mm = mxu / steps
    # output-stationary: the last MM_OS's results drain before the last V_ACC reads them
    # (isa.latency); earlier drains overlap the next MMs
    drain = t.drain_cycles if cost.dataflow == "os" else 0
    fill = d_step + lat + drain + v_acc + d_store + lat
    # a step that ends an output tile frees its buffers only after the tile's drain,
    # accumulator read and store, which sit before the next loads on the one DMA queue
    tile_end = drain + v_acc + d_store
    last_mm = max(mxu + d_step + lat, dma + first_mm,
                  _buffer_chain(steps, d_step, lat, first_mm, k_tiles, tile_end))
    cycles = last_mm + drain + v_acc + d_store + lat
    return KernelTime(cycles + t.barrier_cycles, dma, mxu, fill + t.barrier_cycles)


def _buffer_chain(steps: int, load: float, latency: float, mm: float, k_tiles: int = 1,
                  tile_end: float = 0.0) -> float:
    """When the last step's matmuls can end, from the two SRAM buffers alone: step i's
    operands load into the buffer step i - 2 used, so only after its matmuls end, and each
    such link costs the load, the DRAM latency and a step's matmuls, plus ``tile_end``
    where step i - 2 ends an output tile (every ``k_tiles``-th step: its drain, accumulator
    read and store come first on the DMA queue). Binds when the latency is not hidden."""
    if steps < 3:  # no buffer is reused: the DMA and MXU bounds hold
        return 0.0
    link = load + latency + mm
    # the chain runs through the last step's parity: steps-1, steps-3, ... back to 0 or 1
    sources = range((steps - 1) % 2, steps - 2, 2)
    extra = tile_end * _count_tile_ends(sources, k_tiles)
    if steps % 2:  # the last step shares step 0's buffer: (steps + 1) / 2 links
        return (steps + 1) / 2 * link + extra
    # the last step uses step 1's buffer; step 1 loads after step 0 on the one DMA queue
    return load + link + (steps / 2 - 1) * link + extra


def _count_tile_ends(sources: range, k_tiles: int) -> int:
    """How many steps in ``sources`` end an output tile (``j % k_tiles == k_tiles - 1``),
    in O(k_tiles): the residues of an arithmetic progression repeat with period
    k_tiles / gcd(k_tiles, step), so whole periods are counted once (a big GEMM on few
    arrays has millions of steps)."""
    period = k_tiles // gcd(k_tiles, sources.step)
    hits = sum(1 for j in sources[:period] if j % k_tiles == k_tiles - 1)
    full, rest = divmod(len(sources), period)
    tail = sources[full * period:]
    return full * hits + sum(1 for j in tail[:rest] if j % k_tiles == k_tiles - 1)


def gather_kernel_time(t: CoreTiming, count: int, dim: int, size: float) -> KernelTime:
    """Embedding rows: per array its indices in, the rows gathered, the rows out, each step
    waiting for the previous one's DRAM latency."""
    used = max(1, min(count, t.cores))
    m = ceil(count / used)
    lat = t.dram_latency_cycles
    index_bytes = m * INDEX_BYTES
    steps = (t.dma_cycles(index_bytes) + t.dma_cycles(m * dim * size + index_bytes)
             + t.dma_cycles(m * dim * size))
    return KernelTime(steps + 3 * lat + t.barrier_cycles, steps, 0.0,
                      3 * lat + t.barrier_cycles)


def pool_kernel_time(t: CoreTiming, n: int, c: int, h: int, w: int, oh: int, ow: int,
                     kh: int, kw: int, isz: float, osz: float) -> KernelTime:
    """Max pooling: NHWC transpose, per output row the windows' loads and running max,
    transpose back."""
    t_in = copy_kernel_time(t, n, h * w * c * isz)
    used = max(1, min(n * oh, t.cores))
    per_core = ceil(n * oh / used)
    lat = t.dram_latency_cycles
    d_win = t.dma_cycles(ow * c * isz)
    per_row = kh * kw * d_win + lat + t.vector_cycles(ow * c) + t.dma_cycles(ow * c * osz)
    pool = t.vector_cycles(ow * c) + per_core * per_row + lat + t.barrier_cycles
    t_out = copy_kernel_time(t, n, oh * ow * c * osz)
    total = t_in.cycles + pool + t_out.cycles
    return KernelTime(total, t_in.dma_cycles + t_out.dma_cycles, 0.0, total)


def conv_kernel_time(t: CoreTiming, chip: ChipSpec, n: int, c: int, h: int, w: int, o: int,
                     kh: int, kw: int, oh: int, ow: int, dtype: str, isz: float,
                     osz: float) -> KernelTime:
    """Convolution as the compiler runs it: NHWC transpose, im2col gather (per output row a
    zero fill, the windows' loads, then the row's store queued behind them), the implicit
    GEMM, transpose back."""
    kdim = kh * kw * c
    t_in = copy_kernel_time(t, n, h * w * c * isz)
    used = max(1, min(n * oh, t.cores))
    per_core = ceil(n * oh / used)
    lat = t.dram_latency_cycles
    per_row = kh * kw * t.dma_cycles(ow * c * isz) + lat + t.dma_cycles(ow * kdim * isz)
    im2col = t.vector_cycles(ow * kdim) + per_core * per_row + lat + t.barrier_cycles
    m = n * oh * ow
    cost = search_matmul(chip, m, o, kdim, 1, dtype, isz, DEFAULT, orders=("k",))
    mm = matmul_kernel_time(t, cost, m, o, kdim, 1, dtype, isz, osz)
    t_out = copy_kernel_time(t, n, oh * ow * o * osz)
    total = t_in.cycles + im2col + mm.cycles + t_out.cycles
    return KernelTime(total, t_in.dma_cycles + mm.dma_cycles + t_out.dma_cycles,
                      mm.compute_cycles, total - mm.compute_cycles)


def compiled_kernel_time(op, chip: ChipSpec, eff: Efficiency
                         ) -> tuple[KernelTime, float] | None:
    """(kernel time, DRAM bytes moved) of an op-IR op compiled for ``chip``, or None for
    the ops the compiler runs as other kernels' parts (attention, collectives)."""
    from chipforge.ops import Conv2d, Elementwise, EmbeddingBag, Matmul, OpKind

    t = CoreTiming.of(chip, eff)
    isz = op.itemsize
    if isinstance(op, Matmul):
        cost = search_matmul(chip, op.m, op.n, op.k, op.batch, op.dtype, isz, eff,
                             orders=("k",), out_itemsize=op.out_itemsize)
        return (matmul_kernel_time(t, cost, op.m, op.n, op.k, op.batch, op.dtype, isz,
                                   op.out_itemsize), cost.shared_bytes)
    if isinstance(op, Conv2d):
        if op.groups != 1:
            return None
        kt = conv_kernel_time(t, chip, op.batch, op.in_ch, op.h, op.w, op.out_ch, op.kh,
                              op.kw, op.out_h, op.out_w, op.dtype, isz, isz)
        return kt, op.bytes + 2 * op.batch * op.out_h * op.out_w * op.in_ch * op.kh * op.kw * isz
    if isinstance(op, EmbeddingBag):
        rows = op.tables * op.batch * op.pooling
        return gather_kernel_time(t, rows, op.dim, isz), op.bytes
    if op.kind in (OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.RMSNORM, OpKind.REDUCE):
        kind = op.kind.value
        affine = NORM_AFFINE_OPERANDS.get(kind, 0)
        out_cols = 1 if op.kind is OpKind.REDUCE else op.cols
        return (row_kernel_time(t, op.rows, op.cols, op.cols * isz, out_cols * isz,
                                vector_passes(kind, affine=affine), (op.cols * isz,) * affine),
                op.bytes)
    if isinstance(op, Elementwise):
        cols = min(op.numel, ELEMENTWISE_ROW_ELEMENTS)
        rows = ceil(op.numel / cols)
        return (row_kernel_time(t, rows, cols, cols * isz * op.inputs,
                                cols * isz * op.outputs, vector_passes(op.fn)), op.bytes)
    return None
