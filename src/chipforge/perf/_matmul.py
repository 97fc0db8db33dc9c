"""Mapping search for one matmul on one chip.

A mapping fixes the partition of the GEMM across cores (and split-K), the tile held in
each core's local SRAM with double buffering, the loop order (which operand stays in SRAM)
and, on a systolic array, the dataflow (weight- or output-stationary, fill and drain
included). The search enumerates the candidates and keeps the fastest.

Two matrix-unit kinds share the traffic model and differ in the compute model:

* ``tensor_core`` (GPUs): CTA tiles run in waves over the SMs (tile and wave quantization);
  a tile's k-loop runs at the tensor-core rate or the shared-memory operand rate,
  whichever is slower.
* ``systolic``: each core runs its share of the GEMM through its arrays with the
  closed-form fold model that matches SCALE-Sim v3 (:mod:`chipforge.perf.systolic`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from math import ceil, isqrt

import numpy as np

from chipforge.arch import ChipSpec, MatrixUnit
from chipforge.machine import ACCUMULATOR_WORDS, DRAM_LATENCY_S, Efficiency

# CTA tiles cuBLAS-style kernels choose from (m x n); k is staged in slices of TK.
GPU_TILES = ((256, 128), (128, 256), (128, 128), (128, 64), (64, 128), (64, 64), (64, 32),
             (32, 64), (32, 32), (16, 64))
GPU_SPLIT_K = (1, 2, 3, 4, 6, 8, 16)
GPU_TK = 32  # k slice per pipeline stage of 16-bit operands on cp.async kernels
# bytes of an operand row per pipeline stage, without and with a TMA copy engine (see
# gpu_k_slice)
GPU_K_SLICE_BYTES = {False: 64, True: 128}
GPU_WARP_TILE_MAX = 64  # see _warp_tile
GPU_STAGES = 3  # cp.async pipeline depth (assumption: cuBLAS Ampere kernels use 3-5)
# assumption: TMA kernels keep deeper pipelines: CUTLASS sm90's automatic stage count fits
# 6 stages of a 128x128x64 16-bit tile (32 KiB each) in 227 KiB of shared memory beside
# the epilogue's buffer; 6 was also the best of 4, 6 and 8 on the even H100 GEMM rows
GPU_TMA_STAGES = 6
# assumption: cuBLAS tensor-core CTAs keep their fp32 accumulators in registers; a 128x128
# tile is 64 KiB of the 256 KiB register file before operand fragments, so one CTA per SM
GPU_MAX_CTAS_PER_SM = 1
# With TMA (``cores.async_bulk_copy``) a cluster of CTAs shares operand tiles: one L2 read
# of a tile lands in the shared memory of every CTA of the cluster that needs it (CUTLASS
# sm90 SM90_TMA_LOAD_MULTICAST), so a 2x1 cluster reads B once for its two m tiles and a
# 1x2 cluster A once for its two n tiles. assumption: clusters of at most 2 CTAs, the
# shapes TRT-LLM's sm90 GEMM heuristics offer besides 1x1 (cutlass_heuristic.cpp
# ClusterShape_2x1x1, ClusterShape_1x2x1); cuBLAS's choice is not public
GPU_MULTICAST_CLUSTERS = ((1, 1), (2, 1), (1, 2))
ACC_BYTES = 4  # fp32 accumulators
# assumption: on cp.async GPUs the math warps themselves issue the loads, wait for a
# stage (cp.async.wait_group) and meet at a CTA barrier every k slice, so a stage that
# lands late stalls the tensor cores, and a GEMM whose DRAM and tensor-core times are
# close runs slower than the larger of them. The two combine as an L_p norm: p = 3 costs
# 2^(1/3) = +26% where they are equal and +3.7% where one is twice the other. p is the
# shape fitted on the even A100 GEMM rows once L2-served stages were taken out of it
# (MatmulCost.busy_s; median APE 7.34, 7.06, 7.06, 7.12, 7.47% at p = 2.5, 3, 3.5, 4, 5;
# it was 4 when the norm also took the L2 time).
# TMA GPUs load from a dedicated producer warp into mbarrier-tracked stages while the
# math warps run asynchronous MMAs, so they overlap fully (p = inf: the plain max; p = 5
# on H100 took its even bf16 GEMM rows from 5.0% to 8.2%)
GPU_CP_ASYNC_OVERLAP_NORM = 3.0
SYSTOLIC_TILE_MULTIPLES = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class MatmulCost:
    compute_s: float
    dram_bytes: float
    shared_bytes: float  # bytes served by the shared buffer (L2 / global SRAM)
    local_bytes: float  # bytes through local SRAM into the matrix units
    latency_s: float  # exposed pipeline fill (first loads)
    macs: float
    mapping: str
    # structured mapping, for the compiler: cores along batch, m and n; the dataflow
    # ("ws", "os" or "tensor_core"); and the SRAM tile (tm, tn, tk) with its loop order
    partition: tuple[int, int, int] = (1, 1, 1)
    dataflow: str = "tensor_core"
    tile: tuple[int, int, int] = (0, 0, 0)
    loop_order: str = "k"
    # how the compute and memory phases overlap: the L_p norm's p (inf: fully, the max)
    overlap_norm: float = float("inf")

    def time_s(self, chip: ChipSpec, eff: Efficiency) -> float:
        return self.busy_s(chip, eff, self.dram_bytes) + self.latency_s

    def busy_s(self, chip: ChipSpec, eff: Efficiency, dram_bytes: float) -> float:
        """Compute and memory time together: compute and the DRAM time combine as their
        L_p norm (the plain max where they overlap fully; see GPU_CP_ASYNC_OVERLAP_NORM),
        and the shared buffer's read rate caps the result (stages served by L2 land
        within the pipeline's latency cover, so only its rate binds)."""
        overlapped = overlapped_s(self.compute_s, dram_s(chip, eff, dram_bytes),
                                  self.overlap_norm)
        return max(overlapped, shared_buffer_s(chip, eff, self.shared_bytes))


def shared_buffer_read_bytes_per_s(chip: ChipSpec, eff: Efficiency) -> float:
    """What the cores together read from the shared buffer (L2) per second: its aggregate
    bandwidth, or every core at its per-core read rate (``core_read_bytes_per_cycle``) at
    the sustained clock, whichever is less. The per-core rate is what binds the GPUs
    measured: an A100 SM reads ~36 B/clk and an H100 SM ~35 B/clk from L2, where the
    aggregate widths would give 47 and 71."""
    buffer = chip.shared_buffer
    if buffer.core_read_bytes_per_cycle is None:
        return buffer.bandwidth_bytes_per_s
    cores = (chip.cores.count * buffer.core_read_bytes_per_cycle * chip.clock_hz
             * eff.clock_fraction)
    return min(buffer.bandwidth_bytes_per_s, cores)


def dram_s(chip: ChipSpec, eff: Efficiency, nbytes: float) -> float:
    """``nbytes`` of DRAM traffic at the sustained DRAM bandwidth."""
    return nbytes / (chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency)


def shared_buffer_s(chip: ChipSpec, eff: Efficiency, nbytes: float) -> float:
    """``nbytes`` read from the shared buffer at the rate the cores read it."""
    return nbytes / shared_buffer_read_bytes_per_s(chip, eff)


def streaming_s(chip: ChipSpec, eff: Efficiency, dram_bytes: float,
                shared_bytes: float) -> float:
    """A kernel's streaming time: its DRAM traffic or its shared-buffer traffic,
    whichever takes longer."""
    return max(dram_s(chip, eff, dram_bytes), shared_buffer_s(chip, eff, shared_bytes))


def overlapped_s(compute_s: float, memory_s: float, norm: float) -> float:
    """Two concurrent phases' time: max(compute, memory) at norm = inf, else the L_norm
    norm of the two (never below the larger)."""
    big, small = max(compute_s, memory_s), min(compute_s, memory_s)
    if norm == float("inf") or big <= 0.0:
        return big
    return big * (1.0 + (small / big) ** norm) ** (1.0 / norm)


def gpu_overlap_norm(chip: ChipSpec) -> float:
    """How a GPU GEMM's k loop overlaps its loads with its MMAs (GPU_CP_ASYNC_OVERLAP_NORM)."""
    return float("inf") if chip.cores.async_bulk_copy else GPU_CP_ASYNC_OVERLAP_NORM


def matrix_unit(chip: ChipSpec, dtype: str) -> MatrixUnit:
    units = [mu for mu in chip.cores.matrix_units if mu.macs_per_cycle.get(dtype, 0) > 0]
    if not units:
        from chipforge.errors import ChipforgeError

        raise ChipforgeError(f"chip {chip.name!r} has no matrix unit for dtype {dtype!r}; "
                             f"it supports {', '.join(chip.supported_dtypes)}")
    return max(units, key=lambda mu: mu.count * mu.macs_per_cycle[dtype])


def _dram_bytes(chip: ChipSpec, a: float, b: float, c: float, a_reads: float,
                b_reads: float) -> float:
    """DRAM traffic: unique bytes if the operands fit in half the shared buffer (the other
    half holds outputs and other data), else every re-read goes to DRAM."""
    if a + b + c <= chip.shared_buffer.size_bytes / 2:
        return a + b + c
    return a * a_reads + b * b_reads + c


def search_matmul(chip: ChipSpec, m: int, n: int, k: int, batch: int, dtype: str,
                  itemsize: float, eff: Efficiency,
                  orders: tuple[str, ...] = ("k", "m", "n"),
                  out_itemsize: float | None = None) -> MatmulCost:
    """The fastest mapping; ``orders`` limits the systolic SRAM loop orders considered
    (the compiler implements "k"); ``out_itemsize``: C's element size (default
    ``itemsize``)."""
    mu = matrix_unit(chip, dtype)
    if mu.kind == "tensor_core":
        candidates = _search_gpu(chip, mu, m, n, k, batch, dtype, itemsize, eff,
                                 out_itemsize)
    else:
        candidates = _search_systolic(chip, mu, m, n, k, batch, dtype, itemsize, eff, orders,
                                      out_itemsize)
    return min(candidates, key=lambda c: c.time_s(chip, eff))


def _search_gpu(chip, mu, m, n, k, batch, dtype, itemsize, eff, out_itemsize=None):
    sms = chip.cores.count
    macs_per_cycle = mu.count * mu.macs_per_cycle[dtype]
    smem = chip.cores.local_sram.size_bytes
    hz = chip.clock_hz * eff.clock_fraction
    dram_bw = chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency
    out = itemsize if out_itemsize is None else out_itemsize
    a, b, c = batch * m * k * itemsize, batch * k * n * itemsize, batch * m * n * out
    tk = gpu_k_slice(chip, itemsize)
    clusters = GPU_MULTICAST_CLUSTERS if chip.cores.async_bulk_copy else ((1, 1),)
    norm = gpu_overlap_norm(chip)
    for tm, tn in GPU_TILES:
        stage = (tm + tn) * tk * itemsize
        tile_smem = GPU_STAGES * stage
        if tile_smem > smem:
            continue
        occupancy = int(min(GPU_MAX_CTAS_PER_SM, smem // tile_smem))
        tiles_m, tiles_n = ceil(m / tm), ceil(n / tn)
        step_cycles = gpu_step_cycles(chip, mu, tm, tn, itemsize, macs_per_cycle, hz)
        for split in GPU_SPLIT_K:
            if split > 1 and (k / split < 2 * tk or tiles_m * tiles_n * batch >= sms):
                continue
            tiles = batch * tiles_m * tiles_n * split
            k_steps = ceil(ceil(k / split) / tk)
            per_sm_tiles = ceil(tiles / sms)  # CTAs queue per SM; co-resident ones share it
            rounds = ceil(tiles / (sms * occupancy))
            # split-K: each extra slice writes fp32 partials and the reduction reads them
            partial = (split - 1) * batch * m * n * ACC_BYTES * 2 if split > 1 else 0.0
            compute_s = per_sm_tiles * k_steps * step_cycles / hz
            if not chip.cores.async_bulk_copy:
                # threads store the outputs after their main loop, every SM in the same
                # phase: the stores add to the time at the DRAM write rate
                partial_writes = partial / 2
                compute_s += (c + partial_writes) / dram_bw
            # the tiles one round keeps resident cover a near-square block of the output,
            # and each operand panel is fetched once per block it meets
            slots = min(tiles, sms * occupancy)
            gm = max(1, min(tiles_m, isqrt(slots)))
            gn = max(1, min(tiles_n, slots // gm))
            dram = _dram_bytes(chip, a, b, c, ceil(tiles_n / gn), ceil(tiles_m / gm)) + partial
            # split-K's partial sums are reduced by a second kernel (cuBLAS splitKreduce)
            latency = _round_latency_s(rounds) + (eff.launch_overhead_s if split > 1 else 0.0)
            for cm, cn in clusters:
                # every tile reads its A and B panels from L2, once per cluster sharing them
                shared = a * ceil(tiles_n / cn) + b * ceil(tiles_m / cm) + c + partial
                cluster = f", cluster {cm}x{cn}" if cm * cn > 1 else ""
                yield MatmulCost(compute_s, dram, shared, shared, latency,
                                 float(batch) * m * n * k,
                                 f"tensor-core tile {tm}x{tn}x{tk}, split-k {split}{cluster}, "
                                 f"{tiles} CTAs in {rounds} rounds on {sms} SMs",
                                 overlap_norm=norm)


def gpu_k_slice(chip: ChipSpec, itemsize: float) -> int:
    """k elements per pipeline stage: a 64-byte slice of each operand row on cp.async
    kernels (CUTLASS sm80 16-bit tiles are K = 32), a 128-byte one on TMA kernels (the
    128-byte swizzle: K = 64 for 16-bit, 128 for fp8, CUTLASS sm90)."""
    return max(1, int(GPU_K_SLICE_BYTES[chip.cores.async_bulk_copy] // itemsize))


def gpu_step_cycles(chip: ChipSpec, mu: MatrixUnit, tm: int, tn: int, itemsize: float,
                    macs_per_cycle: float, hz: float) -> float:
    """SM cycles of one k slice of a tm x tn CTA tile: the tensor-core rate, the
    shared-memory operand rate, or the pipeline's latency bound, whichever is slowest. A
    stage's buffer is held from the issue of its loads until the MMAs have consumed it: a
    DRAM latency for the loads to land, then the slice's own busy time; so a CTA starts at
    most gpu_stages(chip) slices per (latency + busy) (Little's law on its pipeline)."""
    tk = gpu_k_slice(chip, itemsize)
    busy = max(tm * tn * tk / macs_per_cycle,
               smem_step_bytes(mu, tm, tn, tk, itemsize) / chip.cores.local_sram.bytes_per_cycle)
    return max(busy, (DRAM_LATENCY_S * hz + busy) / gpu_stages(chip))


def gpu_stages(chip: ChipSpec) -> int:
    """k slices a CTA keeps in flight."""
    return GPU_TMA_STAGES if chip.cores.async_bulk_copy else GPU_STAGES


def smem_step_bytes(mu: MatrixUnit, tm: int, tn: int, tk: int, itemsize: float) -> float:
    """Shared-memory traffic of one k slice of a tm x tn CTA tile: the operands written in
    once; read once by the MMA (``shared_memory``), or by each warp for its fragments
    (``warp_registers``: a warp holding a wm x wn output block reads wm + wn rows, so the
    tile's reads are tm x tn x (1/wm + 1/wn) rows of the slice)."""
    stage = (tm + tn) * tk * itemsize
    if mu.mma_operands == "shared_memory":
        return stage
    wm, wn = _warp_tile(tm), _warp_tile(tn)
    return stage + tk * itemsize * tm * tn * (1 / wm + 1 / wn)


def _warp_tile(side: int) -> int:
    """A warp's share of a CTA tile side. assumption: CUTLASS's and cuBLAS's Ampere
    kernels arrange 4 warps 2 x 2 (8 warps 4 x 2 on 256 x 128), warp tiles up to 64 x 64
    (CUTLASS default_gemm_configuration, sm80: 128x128 CTA, 64x64 warp; 64x64 CTA, 32x32
    warp); an m16n8k16 MMA is the smallest."""
    return min(GPU_WARP_TILE_MAX, max(16, side // 2))


def _round_latency_s(rounds: int) -> float:
    """Exposed latency of ``rounds`` rounds of CTAs beyond the first: each later round's
    CTAs start with a DRAM access for their first operand tiles. The first round's
    prologue and epilogue are part of the kernel's fixed cost (``launch_overhead_s``): a
    GEMM too small to fill one round measures one kernel's fixed cost, ~2.5 us a call on
    A100 and H100 alike (data/validation)."""
    return (rounds - 1) * DRAM_LATENCY_S


def _partitions(workers: int, m: int, n: int):
    """(pm, pn) splits of m and n over all the workers, or, where m and n are too small
    for that, over the largest worker count they can use."""
    # no split uses more than m x n workers, and divisors come in pairs around the square
    # root: O(sqrt) per count, not O(count) (a 20,000-core chip took 16 s on a tiny GEMM)
    for count in range(min(workers, m * n), 0, -1):
        small = [d for d in range(1, isqrt(count) + 1) if count % d == 0]
        divisors = sorted({*small, *(count // d for d in small)})
        pairs = [(pm, count // pm) for pm in divisors if pm <= m and count // pm <= n]
        if pairs:
            yield from pairs
            return


def _search_systolic(chip, mu, m, n, k, batch, dtype, itemsize, eff, orders=("k", "m", "n"),
                     out_itemsize=None):
    """Each array is a worker with its share of the core's SRAM; per partition of (batch,
    m, n) over the workers and per dataflow, the SRAM tile and loop order that minimise
    max(compute, DRAM) time are kept."""
    workers_total = chip.cores.count * mu.count
    rows, cols = mu.rows, mu.cols
    pack = mu.macs_per_cycle[dtype] / (rows * cols)  # e.g. 2 for fp8 on a bf16 array
    cols_eff = max(1, round(cols * pack)) if pack >= 1 else cols
    slow = 1.0 / pack if pack < 1 else 1.0
    sram = chip.cores.local_sram.size_bytes / mu.count
    hz = chip.clock_hz * eff.clock_fraction
    dram_bw = chip.memory.bandwidth_bytes_per_s * eff.dram_efficiency
    out = itemsize if out_itemsize is None else out_itemsize
    a, b, c = batch * m * k * itemsize, batch * k * n * itemsize, batch * m * n * out
    pb = min(batch, workers_total)
    for pm, pn in _partitions(max(1, workers_total // pb), m, n):
        mw, nw, bw = ceil(m / pm), ceil(n / pn), ceil(batch / pb)
        workers = pb * pm * pn
        table = _tile_table(mw, nw, k, rows, cols_eff, sram, itemsize, orders)
        if table is None:
            continue
        tiles, tm, tk, a_reads, b_reads, partial = table
        for df in mu.dataflows:
            # every tile at once, in the same arithmetic as tiled_systolic_cycles; the first
            # of equal scores wins, as a scan in tile order keeps it
            cycles = _tiled_cycles_of(df, rows, cols_eff, mw, nw, k, tm, tk) * bw * slow
            traffic = (a * a_reads * pn + b * b_reads * pm + c + partial * workers * bw)
            i = int(np.argmin(np.maximum(cycles / hz, traffic / dram_bw)))
            tile, cycles, traffic = tiles[i], float(cycles[i]), float(traffic[i])
            dram = _dram_bytes(chip, a, b, c, tile.a_reads * pn, tile.b_reads * pm)
            dram += tile.partial_bytes * workers * bw
            # exposed: the first tiles' load before the array starts (DRAM latency + transfer
            # at the worker's share of the bandwidth)
            share = dram_bw / workers
            latency = DRAM_LATENCY_S + tile.first_load_bytes / share
            yield MatmulCost(cycles / hz, dram, traffic, traffic, latency,
                             float(batch) * m * n * k,
                             f"systolic {rows}x{cols} {df}, {workers} of {workers_total} "
                             f"arrays ({pb}b x {pm}m x {pn}n), SRAM tile {tile.tm}x{tile.tn}x"
                             f"{tile.tk}, {tile.order} innermost",
                             (pb, pm, pn), df, (tile.tm, tile.tn, tile.tk), tile.order)


def tiled_systolic_cycles(df: str, rows: int, cols: int, m: int, n: int, k: int,
                          tile: SramTile) -> int:
    """Array cycles of one worker's GEMM run tile by tile (the compiler's schedule): the
    SCALE-Sim fold model per tile, so every m tile (ws) or k tile (os) pays its own fill
    and drain. Equal to :func:`systolic_compute_cycles` + 1 when one tile covers the GEMM."""
    if df == "ws":
        chunks = ceil(m / tile.tm)
        return ceil(k / rows) * ceil(n / cols) * (chunks * (2 * rows + cols - 2) + m)
    chunks = ceil(k / tile.tk)
    return ceil(m / rows) * ceil(n / cols) * (chunks * (rows + cols - 2) + k)


def _tiled_cycles_of(df: str, rows: int, cols: int, m: int, n: int, k: int, tm: np.ndarray,
                     tk: np.ndarray) -> np.ndarray:
    """:func:`tiled_systolic_cycles` of many tiles at once (int64, exact)."""
    if df == "ws":
        chunks = -(-m // tm)
        return ceil(k / rows) * ceil(n / cols) * (chunks * (2 * rows + cols - 2) + m)
    chunks = -(-k // tk)
    return ceil(m / rows) * ceil(n / cols) * (chunks * (rows + cols - 2) + k)


@functools.lru_cache(maxsize=65536)
def _tile_table(m: int, n: int, k: int, rows: int, cols: int, sram_bytes: float,
                itemsize: int, orders: tuple[str, ...]) -> tuple | None:
    """The SRAM tiles of the given loop orders (:func:`_sram_tiles`) and their fields as
    arrays, for the vectorized scan; None when no tile fits."""
    tiles = tuple(t for t in _sram_tiles(m, n, k, rows, cols, sram_bytes, itemsize)
                  if t.order in orders)
    if not tiles:
        return None
    field = lambda name, dtype: np.array([getattr(t, name) for t in tiles], dtype)  # noqa: E731
    return (tiles, field("tm", np.int64), field("tk", np.int64), field("a_reads", np.int64),
            field("b_reads", np.int64), field("partial_bytes", np.float64))


@dataclass(frozen=True)
class SramTile:
    """One core's SRAM blocking: tile sizes, loop order and the traffic they imply.

    Loop orders (innermost loop named): ``k`` keeps the output tile resident and streams
    both operands; ``m`` keeps a weight (B) tile resident and streams rows of A past it,
    spilling fp32 partial sums once per k tile; ``n`` keeps an A tile resident likewise.
    Traffic is in bytes between the core and the level below (shared buffer or DRAM).
    """

    tm: int
    tn: int
    tk: int
    order: str
    a_reads: int  # times A is fetched
    b_reads: int  # times B is fetched
    partial_bytes: float  # fp32 partial-sum spill and reload traffic
    first_load_bytes: float  # exposed before the first tile can start

    def traffic(self, m: int, n: int, k: int, itemsize: float) -> float:
        return ((m * k * self.a_reads + k * n * self.b_reads + m * n) * itemsize
                + self.partial_bytes)


@functools.lru_cache(maxsize=65536)
def _sram_tiles(m: int, n: int, k: int, rows: int, cols: int, sram_bytes: float,
                itemsize: int) -> tuple[SramTile, ...]:
    """Every double-buffered tile and loop order that fits in ``sram_bytes`` (cached: a
    design-space search meets the same shapes on many chips)."""
    tiles = []
    for fm in SYSTOLIC_TILE_MULTIPLES:
        tm = min(m, rows * fm)
        for fn in SYSTOLIC_TILE_MULTIPLES:
            tn = min(n, cols * fn)
            for fk in SYSTOLIC_TILE_MULTIPLES:
                tk = min(k, rows * fk)
                # double-buffered operand and output tiles in SRAM; two output tiles of
                # fp32/int32 partial sums in flight in the accumulators
                need = 2 * (tm * tk + tk * tn + tm * tn) * itemsize
                if need > sram_bytes or 2 * tm * tn > ACCUMULATOR_WORDS:
                    continue
                first = (tm + tn) * tk * itemsize
                k_tiles = ceil(k / tk)
                spill = m * n * ACC_BYTES * 2 * (k_tiles - 1)
                tiles += [SramTile(tm, tn, tk, "k", ceil(n / tn), ceil(m / tm), 0.0, first),
                          SramTile(tm, tn, tk, "m", ceil(n / tn), 1, spill, first),
                          SramTile(tm, tn, tk, "n", 1, ceil(m / tm), spill, first)]
    return tuple(tiles)


