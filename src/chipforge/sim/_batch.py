"""Deferred matrix-unit products, batched by A operand.

Consecutive MM_MULs (weight-stationary) or MM_OSs (output-stationary) that stream the
same A rows through different weights are one product of A with those weights side by
side. BLAS computes that at up to ~1.5x the speed of the separate narrow products (a
1024 x 128 @ 128 x 64 dgemm runs at ~2/3 of the speed of a 128 x 256 one), so the core
defers each such instruction (:meth:`CoreState.defer_mm`) and runs the batch in program
order (:func:`run_batch`) before anything else reads or writes the accumulator words it
spans. Each instruction's result is the same as if it had run alone: every output is its
own exact sum rounded once (numerics._exact), then written or added into its tile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chipforge.numerics import Operand
from chipforge.numerics._exact import matmul_n, matmul_t

if TYPE_CHECKING:
    from chipforge.sim._state import CoreState

# assumption: 2**21 float64 outputs (16 MiB) bound one batch: ~2,048 columns of a
# 1,024-row MM_MUL; past ~256 columns OpenBLAS gains nothing more
BATCH_OUTPUTS = 1 << 21
F32 = np.dtype(np.float32)


class MmBatch:
    """Deferred products of one A operand: per instruction its weights (an MM_LW tile as
    loaded, raw, or an MM_OS B operand already decoded, with its operand-cache key) and
    its accumulator tile."""

    __slots__ = ("a", "acc_dtype", "weights", "keys", "tiles", "cols", "lo", "hi")

    def __init__(self, a: Operand, acc_dtype: np.dtype) -> None:
        self.a, self.acc_dtype = a, acc_dtype
        self.weights: list[np.ndarray | Operand] = []
        self.keys: list[tuple | None] = []  # CoreState.operand keys of decoded weights
        self.tiles: list[tuple[int, int, int, int, bool]] = []  # word, rows, cols, stride, acc
        self.cols = 0
        self.lo, self.hi = 1 << 62, 0  # accumulator words the tiles span

    def fits(self, a: Operand, acc_dtype: np.dtype, cols: int) -> bool:
        return (a is self.a and acc_dtype == self.acc_dtype
                and (self.cols + cols) * a.f64.shape[0] <= BATCH_OUTPUTS)

    def add(self, weight: np.ndarray | Operand, key: tuple | None, tile: tuple) -> None:
        word, rows, cols, stride, _ = tile
        self.weights.append(weight)
        self.keys.append(key)
        self.tiles.append(tile)
        self.cols += cols
        self.lo, self.hi = min(self.lo, word), max(self.hi, word + (rows - 1) * stride + cols)

    def touches(self, lo: int, hi: int) -> bool:
        return self.lo < hi and lo < self.hi


def run_batch(core: CoreState, batch: MmBatch) -> None:
    """The batch's product, then each instruction's columns into its tile, in order
    (float32: the product rounded once, RNE, then with ACCUMULATE one RNE add; int32: the
    exact integers, adds wrap)."""
    decoded = _decoded_here(batch)
    weight = _weights(core, batch)
    a = batch.a
    cast_rule = "same_kind" if batch.acc_dtype == F32 else "unsafe"
    tall = a.f64.shape[0] >= batch.cols
    # tall A: BLAS is faster with A's rows as its long side, into tiles held transposed
    # (CoreState.acc_t); short A, wide weights: the plain product, into accumulator memory
    prod = matmul_t(a, weight) if tall else matmul_n(a, weight)
    if decoded:  # free again: the next batch decodes into it (memory still in cache)
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


def _decoded_here(batch: MmBatch) -> bool:
    return all(isinstance(w, np.ndarray) for w in batch.weights)


def _weights(core: CoreState, batch: MmBatch) -> Operand:
    """The batch's weights side by side as one operand: MM_LW tiles decoded together (into
    the core's reused buffer), MM_OS operands as the cached operand of the SRAM region
    they tile when they are adjacent and unchanged, else concatenated."""
    ws = batch.weights
    if _decoded_here(batch):
        raw = ws[0] if len(ws) == 1 else np.concatenate(ws, axis=1)
        return Operand.of(raw, 0, out=core.wbuf)
    if len(ws) == 1 and isinstance(ws[0], Operand):
        return ws[0]
    ops = [w if isinstance(w, Operand) else Operand.of(w, 0) for w in ws]
    union = _union_key(core, batch, ops)
    if union is None:
        return Operand.hstack(ops)
    return core.operand_of_parts(union, ops)


def _union_key(core: CoreState, batch: MmBatch, ops: list[Operand]) -> tuple | None:
    """The operand-cache key of the SRAM region the batch's weights tile side by side
    (each starting where the previous one's first row ends, one k, one row stride), if
    they do and each is still the cached operand of its view (no byte written since)."""
    if any(k is None for k in batch.keys):
        return None
    addr0, k0, _, stride0, dt0, axis0 = batch.keys[0]
    nxt, cols = addr0, 0
    for key, op in zip(batch.keys, ops):
        addr, rows, n, stride, dt, axis = key
        if (addr, rows, stride, dt, axis) != (nxt, k0, stride0, dt0, axis0) \
                or not core.is_cached(key, op):
            return None
        nxt, cols = addr + n * dt.itemsize, cols + n
    return (addr0, k0, cols, stride0, dt0, axis0)
