"""Machine state: DRAM, and per core a local SRAM, the accumulators and the array's weight
register. Every memory is a flat np.uint8 buffer; operands are strided numpy *views* of it
(no copies), built by :func:`region`, which also bounds-checks them."""

from __future__ import annotations

import numpy as np

from chipforge.errors import ChipforgeError
from chipforge.numerics import Operand
from chipforge.numerics._exact import matmul_t

# assumption: like TPU v1's 4 MiB accumulators, sized for 4 x 128 x 1024 fp32 tiles
# (2 MiB: 2**19 32-bit words per core)
ACC_WORDS = 1 << 19

U8 = np.dtype(np.uint8)
F32 = np.dtype(np.float32)
I32 = np.dtype(np.int32)


class SimError(ChipforgeError):
    """A program the simulator cannot run: bad address, shape, dtype, input, or deadlock.
    The message is one line naming core, pc (instruction index), mnemonic, value and what
    was expected."""


class Fault(Exception):
    """Raised by an instruction's semantics; the scheduler adds core, pc and mnemonic."""


CACHE_BYTES = 64 << 20  # per core: decoded matmul operands kept for reuse
# per core: transposed accumulator tiles (CoreState.acc_t); 8 covers a compiled matmul's
# output tiles in flight (the tiles being multiplied plus those V_ACC has yet to read)
_HELD_TILES = 8
# assumption: 2**21 float64 outputs (16 MiB) bound one deferred product (MmBatch), about
# 2,048 columns of a 1,024-row MM_MUL: past ~256 columns OpenBLAS gains nothing more
_BATCH_OUTPUTS = 1 << 21


class MmBatch:
    """MM_MULs whose products are deferred (see CoreState.defer_mm): they share one A
    operand, so BLAS computes them as one product of A with their weight tiles side by
    side (a 1024 x 128 @ 128 x 64 dgemm runs at ~2/3 of the speed of a 128 x 256 one)."""

    __slots__ = ("a", "acc_dtype", "weights", "tiles", "cols", "lo", "hi")

    def __init__(self, a: Operand, acc_dtype: np.dtype) -> None:
        self.a, self.acc_dtype = a, acc_dtype
        self.weights: list[np.ndarray] = []  # each MM_MUL's weight tile [k, n], as loaded
        self.tiles: list[tuple[int, int, int, int, bool]] = []  # word, rows, cols, stride, acc
        self.cols = 0
        self.lo, self.hi = ACC_WORDS, 0  # accumulator words the tiles span

    def fits(self, a: Operand, acc_dtype: np.dtype, cols: int) -> bool:
        return (a is self.a and acc_dtype == self.acc_dtype
                and (self.cols + cols) * a.f64.shape[0] <= _BATCH_OUTPUTS)

    def add(self, weight: np.ndarray, word: int, rows: int, cols: int, stride: int,
            accumulate: bool) -> None:
        self.weights.append(weight)
        self.tiles.append((word, rows, cols, stride, accumulate))
        self.cols += cols
        self.lo, self.hi = min(self.lo, word), max(self.hi, word + (rows - 1) * stride + cols)

    def touches(self, lo: int, hi: int) -> bool:
        return self.lo < hi and lo < self.hi


class CoreState:
    __slots__ = ("index", "sram", "_acc", "_held", "_spare", "weight_raw", "_weight",
                 "weight_dtype", "weight_shape", "_cache", "_cached_bytes", "_batch", "_wbuf")

    def __init__(self, index: int, sram_bytes: int) -> None:
        self.index = index
        self.sram = np.zeros(sram_bytes, U8)
        # one buffer, viewed as float32 or int32 by the matmul dtype (int8 -> int32)
        self._acc = np.zeros(ACC_WORDS * 4, U8)
        # accumulator tiles held transposed, see acc_t: (word, rows, cols, stride, dtype)
        # -> ([cols, rows] tile, its memory view, end word)
        self._held: dict[tuple, tuple[np.ndarray, np.ndarray, int]] = {}
        self._spare: list[np.ndarray] = []  # written-back tiles' buffers, for reuse
        self.weight_raw: np.ndarray | None = None  # the weight register's values (MM_LW)
        self._weight: Operand | None = None  # weight_raw decoded, when needed at once
        self._batch: MmBatch | None = None  # deferred MM_MULs (defer_mm)
        self._wbuf: np.ndarray | None = None  # decoded weights of the last batch, reused
        self.weight_dtype: object = None
        self.weight_shape: tuple[int, int] = (0, 0)
        # (addr, rows, cols, stride, dtype, axis) -> (first byte, end byte, Operand)
        self._cache: dict[tuple, tuple[int, int, Operand]] = {}
        self._cached_bytes = 0

    @property
    def acc(self) -> np.ndarray:
        """The accumulator memory (np.uint8), current: deferred products are added and tiles
        held by :meth:`acc_t` written back first. Every other read or write of accumulator
        words goes through here (acc_region)."""
        self.flush()
        if self._held:
            self._write_back(0, ACC_WORDS)
        return self._acc

    def acc_t(self, word: int, rows: int, cols: int, stride: int, dtype: np.dtype,
              load: bool) -> np.ndarray:
        """The accumulator tile [rows x cols] at ``word`` (row starts ``stride`` >= cols
        words apart; bounds already checked) viewed as ``dtype`` (float32 or int32), as a
        [cols, rows] C-contiguous *transpose* that holds the tile's value until :attr:`acc`
        writes it back.
        MM_MUL's float64 products come out of BLAS transposed (see numerics._exact), so
        MM_MULs into held tiles add contiguously, and a tile is transposed only when
        accumulator memory is accessed otherwise (V_ACC reads an exactly matching tile
        from here: :meth:`held`). ``load=False``: the caller overwrites every element."""
        key = (word, rows, cols, stride, dtype)
        hit = self._held.get(key)
        if hit is not None:
            return hit[0]
        end = word + (rows - 1) * stride + cols
        self._write_back(word, end)  # held tiles that share a word with this one
        if len(self._held) >= _HELD_TILES:
            self._write_back_tile(next(iter(self._held)))  # the oldest
        view = region(self._acc, word * 4, rows, cols, stride, dtype, "acc",
                      "accumulator memory")
        t = next((b for b in self._spare if b.shape == (cols, rows) and b.dtype == dtype), None)
        if t is None:
            t = np.empty((cols, rows), dtype)
        else:
            self._spare = [b for b in self._spare if b is not t]
        if load:
            np.copyto(t, view.T)
        self._held[key] = (t, view, end)
        return t

    def held(self, word: int, rows: int, cols: int, stride: int,
             dtype: np.dtype) -> np.ndarray | None:
        """The transposed tile :meth:`acc_t` holds for exactly this region and dtype, or
        None; current (deferred products that touch the region are added first)."""
        if self._batch is not None and self._batch.touches(word, word + (rows - 1) * stride
                                                           + cols):
            self.flush()
        hit = self._held.get((word, rows, cols, stride, dtype))
        return None if hit is None else hit[0]

    def _write_back(self, lo: int, hi: int) -> None:
        """Write back (and drop) the held tiles that share a word with [lo, hi)."""
        for key in [k for k, (_, _, end) in self._held.items() if k[0] < hi and lo < end]:
            self._write_back_tile(key)

    def _write_back_tile(self, key: tuple) -> None:
        t, view, _ = self._held.pop(key)
        view[...] = t.T
        self._spare = [t] + self._spare[:_HELD_TILES - 1]

    def operand(self, view: np.ndarray, addr: int, stride: int, axis: int) -> Operand:
        """numerics.Operand of an SRAM view, memoized: a GEMM streams the same A panel
        through many weight tiles, and decoding it (float64 upcast, exactness slack) costs
        as much as the product. Entries die when any byte they cover is written."""
        rows, cols = view.shape
        key = (addr, rows, cols, stride, view.dtype, axis)
        hit = self._cache.pop(key, None)
        if hit is None:
            end = addr + ((rows - 1) * stride + cols) * view.dtype.itemsize if view.size else addr
            hit = (addr, end, Operand.of(view, axis))
            self._cached_bytes += hit[2].f64.nbytes
            while self._cached_bytes > CACHE_BYTES and self._cache:
                old = self._cache.pop(next(iter(self._cache)))
                self._cached_bytes -= old[2].f64.nbytes
        self._cache[key] = hit  # most recently used last
        return hit[2]

    def load_weight(self, view: np.ndarray) -> None:
        """MM_LW: the weight register takes a copy of ``view`` (k x n; SRAM may change
        before the MM_MULs that use it run). It is decoded only when used: at once by
        :attr:`weight`, or in a batch by :meth:`flush`."""
        self.weight_raw = view.copy()
        self._weight = None

    @property
    def weight(self) -> Operand | None:
        """The weight register as a matmul operand (None before the first MM_LW)."""
        if self._weight is None and self.weight_raw is not None:
            self._weight = Operand.of(self.weight_raw, 0)
        return self._weight

    def defer_mm(self, a: Operand, word: int, rows: int, cols: int, stride: int,
                 acc_dtype: np.dtype, accumulate: bool) -> None:
        """MM_MUL of ``a`` through the weight register into the accumulator tile at
        ``word`` (rows x cols, row starts ``stride`` >= cols words apart, bounds checked),
        deferred: consecutive MM_MULs on one A operand become one product (MmBatch). The
        batch runs in program order (:meth:`flush`) before anything else reads or writes
        the accumulator words it spans, so no instruction can tell."""
        b = self._batch
        if b is not None and not b.fits(a, acc_dtype, cols):
            self.flush()
            b = None
        if b is None:
            b = self._batch = MmBatch(a, acc_dtype)
        b.add(self.weight_raw, word, rows, cols, stride, accumulate)

    def flush(self) -> None:
        """Run the deferred MM_MULs: one product of A with their weights side by side,
        then each MM_MUL's columns into its tile in order (float32: the product rounded
        once, RNE, then with ACCUMULATE one RNE add; int32: exact integers, adds wrap)."""
        b, self._batch = self._batch, None
        if b is None:
            return
        w = b.weights[0] if len(b.weights) == 1 else np.concatenate(b.weights, axis=1)
        weight = Operand.of(w, 0, out=self._wbuf)
        t = matmul_t(b.a, weight)
        self._wbuf = weight.f64  # free again: the next batch decodes into it (in cache)
        cast_rule = "same_kind" if b.acc_dtype == F32 else "unsafe"
        col = 0
        for word, rows, cols, stride, accumulate in b.tiles:
            held = self.acc_t(word, rows, cols, stride, b.acc_dtype, load=accumulate)
            part = t[col:col + cols]
            col += cols
            with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf
                if accumulate:
                    np.add(held, part, out=held, dtype=b.acc_dtype, casting=cast_rule)
                else:
                    np.copyto(held, part, casting=cast_rule)

    def written(self, lo: int, hi: int) -> None:
        """SRAM bytes [lo, hi) are about to change: drop the operands that read them."""
        if not self._cache:
            return
        for key in [k for k, (a, b, _) in self._cache.items() if a < hi and lo < b]:
            self._cached_bytes -= self._cache.pop(key)[2].f64.nbytes


def region(buf: np.ndarray, addr: int, rows: int, cols: int, stride: int, dtype: np.dtype,
           what: str, where: str) -> np.ndarray:
    """A rows x cols view of ``buf`` at byte ``addr``, row starts ``stride`` elements apart.

    A stride below cols (0 included) is allowed: rows then overlap, which is how a row
    vector is repeated for every row. Raises Fault if any element falls outside ``buf``."""
    item = dtype.itemsize
    if rows == 0 or cols == 0:
        return np.empty((rows, cols), dtype)
    end = addr + ((rows - 1) * stride + cols) * item
    if end > buf.size:
        raise Fault(f"{what}={addr}: {rows}x{cols} {dtype.name} with stride {stride} spans "
                    f"bytes [{addr}, {end}), expected within the {buf.size}-byte {where}")
    return np.ndarray((rows, cols), dtype, buffer=buf, offset=addr,
                      strides=(stride * item, item))


def check_acc(word: int, rows: int, cols: int, stride: int, what: str = "acc") -> None:
    """Raise Fault unless accumulator words [rows x cols] at ``word`` (row starts ``stride``
    apart) lie within the accumulator memory."""
    if rows and cols and word + (rows - 1) * stride + cols > ACC_WORDS:
        raise Fault(f"{what}={word}: {rows}x{cols} words with stride {stride} end at word "
                    f"{word + (rows - 1) * stride + cols}, expected <= ACC_WORDS = {ACC_WORDS}")


def acc_region(core: CoreState, word: int, rows: int, cols: int, stride: int,
               dtype: np.dtype, what: str = "acc") -> np.ndarray:
    """Accumulator words [rows x cols] at ``word`` + r * stride + c, as float32 or int32."""
    check_acc(word, rows, cols, stride, what)
    return region(core.acc, word * 4, rows, cols, stride, dtype, what, "accumulator memory")
