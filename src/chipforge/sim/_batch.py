"""Deferred matrix-unit products, batched by A operand.

Consecutive MM_MULs (weight-stationary) or MM_OSs (output-stationary) that stream the
same A rows through different weights are one product of A with those weights side by
side, which BLAS computes faster than the separate narrow products (measured here, one
thread: 128 dgemms of 1024 x 128 @ 128 x 64 take 37-48 ms, the same flops as 32 of
1024 x 128 @ 128 x 256 take 32 ms; 128 of 128 x 1024 @ 1024 x 64 take 45 ms, as 8 of
128 x 1024 @ 1024 x 1024 33 ms), so the core
defers each such instruction (:meth:`CoreState.defer_mm`) and runs the batch in program
order (:func:`run_batch`) before anything else reads or writes the accumulator words it
spans. Each instruction's result is the same as if it had run alone: every output is its
own exact sum rounded once (numerics._exact), then written or added into its tile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chipforge.numerics import Operand, matmul_n, matmul_t

if TYPE_CHECKING:
    from chipforge.sim._state import CoreState

# assumption: 2**21 float64 outputs (16 MiB) bound one batch: ~2,048 columns of a
# 1,024-row MM_MUL; past ~256 columns OpenBLAS gains nothing more
BATCH_OUTPUTS = 1 << 21
F32 = np.dtype(np.float32)


class MmBatch:
    """Deferred products of one A operand: per instruction its weights (an MM_LW tile or an
    MM_OS B block, raw) and its accumulator tile. A weight is a *pinned* view of SRAM (its
    source ``(addr, rows, cols, stride, dtype)`` kept) until a write to the bytes the
    batch reads makes :meth:`unpin` copy them first (CoreState.written)."""

    __slots__ = ("a", "acc_dtype", "memo", "weights", "srcs", "tiles", "cols", "lo", "hi",
                 "src_lo", "src_hi")

    def __init__(self, a: Operand, acc_dtype: np.dtype, memo: bool) -> None:
        # memo: weights read straight from SRAM (MM_OS's B), memoized like A; MM_MUL's
        # pass through the weight register once per MM_LW and are decoded in a reused buffer
        self.a, self.acc_dtype, self.memo = a, acc_dtype, memo
        self.weights: list[np.ndarray] = []  # [k, n] each, as the instruction read them
        self.srcs: list[tuple | None] = []  # the SRAM view a weight still is, or None
        self.tiles: list[tuple[int, int, int, int, bool]] = []  # word, rows, cols, stride, acc
        self.cols = 0
        self.lo, self.hi = 1 << 62, 0  # accumulator words the tiles span
        self.src_lo, self.src_hi = 1 << 62, 0  # SRAM bytes the pinned weights span

    def fits(self, a: Operand, acc_dtype: np.dtype, memo: bool, cols: int) -> bool:
        return (a is self.a and acc_dtype == self.acc_dtype and memo == self.memo
                and (self.cols + cols) * a.f64.shape[0] <= BATCH_OUTPUTS)

    def add(self, weight: np.ndarray, src: tuple | None, tile: tuple) -> None:
        word, rows, cols, stride, _ = tile
        self.weights.append(weight)
        self.srcs.append(src)
        self.tiles.append(tile)
        self.cols += cols
        self.lo, self.hi = min(self.lo, word), max(self.hi, word + (rows - 1) * stride + cols)
        if src is not None:
            lo, hi = src_bytes(src)
            self.src_lo, self.src_hi = min(self.src_lo, lo), max(self.src_hi, hi)

    def touches(self, lo: int, hi: int) -> bool:
        """Whether accumulator words [lo, hi) meet a deferred product's tile."""
        return self.lo < hi and lo < self.hi

    def unpin(self, lo: int, hi: int) -> None:
        """SRAM bytes [lo, hi) are about to change: weights that are views of SRAM take a
        copy of their (current) values first."""
        if not (self.src_lo < hi and lo < self.src_hi):
            return
        for i, src in enumerate(self.srcs):
            if src is not None:
                self.weights[i], self.srcs[i] = self.weights[i].copy(), None
        self.src_lo, self.src_hi = 1 << 62, 0


def src_bytes(src: tuple) -> tuple[int, int]:
    """The SRAM bytes [lo, hi) an ``(addr, rows, cols, stride, dtype)`` view spans."""
    addr, rows, cols, stride, dt = src
    return addr, addr + ((rows - 1) * stride + cols) * dt.itemsize


def run_batch(core: CoreState, batch: MmBatch) -> None:
    """The batch's product, then each instruction's columns into its tile, in order
    (float32: the product rounded once, RNE, then with ACCUMULATE one RNE add; int32: the
    exact integers, adds wrap)."""
    weight, reused = _weights(core, batch)
    a = batch.a
    cast_rule = "same_kind" if batch.acc_dtype == F32 else "unsafe"
    m, k = a.f64.shape
    # OpenBLAS's dgemm is fastest with the longest dimension as its M (measured, ms per
    # 2 GFLOP: m 1024 x k 128 x n 256 transposed 34.5 vs plain 35.8; m 128 x k 1024 x n 64
    # transposed 50.6 vs plain 45.1; m 128 x k 1024 x n 1024 40.8 vs 32.5). A's rows
    # longest: the transpose, into tiles held transposed (CoreState.acc_t); else the plain
    # product, into accumulator memory
    tall = m >= max(k, batch.cols)
    prod = matmul_t(a, weight) if tall else matmul_n(a, weight)
    if reused:  # free again: the next batch decodes into it (memory still in cache)
        core.wbuf = weight.f64
    col = 0
    for word, rows, cols, stride, accumulate in batch.tiles:
        if tall:
            out = core.acc_t(word, rows, cols, stride, batch.acc_dtype, load=accumulate)
            part = prod[col:col + cols]
        else:
            out = core.acc_view(word, rows, cols, stride, batch.acc_dtype)
            part = prod[:, col:col + cols]
        col += cols
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf
            if accumulate:
                np.add(out, part, out=out, dtype=batch.acc_dtype, casting=cast_rule)
            else:
                np.copyto(out, part, casting=cast_rule)


def _weights(core: CoreState, batch: MmBatch) -> tuple[Operand, bool]:
    """The batch's weights side by side as one operand, and whether it was decoded into the
    core's reused buffer: weights that are still views of one SRAM region side by side
    (each starting where the previous one's first row ends; one k, one row stride) are
    read as that region (memoized ones: its CoreState.operand, decoded once while the
    bytes stay); others are concatenated first."""
    union = _union(batch)
    if union is not None:
        addr, rows, cols, stride, dt = union
        raw = core.sram_view(addr, rows, cols, stride, dt)
        if batch.memo:
            return core.operand(raw, addr, stride, axis=0), False
    else:
        ws = batch.weights
        raw = ws[0] if len(ws) == 1 else np.concatenate(ws, axis=1)
    return Operand.of(raw, 0, out=core.wbuf), True


def _union(batch: MmBatch) -> tuple | None:
    if any(src is None for src in batch.srcs):
        return None
    addr0, k0, _, stride0, dt0 = batch.srcs[0]
    nxt, cols = addr0, 0
    for addr, rows, n, stride, dt in batch.srcs:
        if (addr, rows, stride, dt) != (nxt, k0, stride0, dt0):
            return None
        nxt, cols = addr + n * dt.itemsize, cols + n
    return (addr0, k0, cols, stride0, dt0)
