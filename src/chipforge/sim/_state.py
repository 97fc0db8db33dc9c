"""Machine state: DRAM, and per core a local SRAM, the accumulators and the array's weight
register. Every memory is a flat np.uint8 buffer; operands are strided numpy *views* of it
(no copies), built by :func:`region`, which also bounds-checks them."""

from __future__ import annotations

import numpy as np

from chipforge.errors import ChipforgeError
from chipforge.machine import ACCUMULATOR_WORD_BYTES, ACCUMULATOR_WORDS
from chipforge.numerics import Operand
from chipforge.sim._batch import MmBatch, run_batch, src_bytes

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


class CoreState:
    __slots__ = ("index", "sram", "_acc", "_held", "_spare", "weight_raw", "weight_src", "_weight",
                 "weight_dtype", "weight_shape", "_cache", "_cached_bytes", "_batch", "wbuf")

    def __init__(self, index: int, sram_bytes: int) -> None:
        self.index = index
        self.sram = np.zeros(sram_bytes, U8)
        # one buffer, viewed as float32 or int32 by the matmul dtype (int8 -> int32)
        self._acc = np.zeros(ACCUMULATOR_WORDS * ACCUMULATOR_WORD_BYTES, U8)
        # accumulator tiles held transposed, see acc_t: (word, rows, cols, stride, dtype)
        # -> ([cols, rows] tile, its memory view, end word)
        self._held: dict[tuple, tuple[np.ndarray, np.ndarray, int]] = {}
        self._spare: list[np.ndarray] = []  # written-back tiles' buffers, for reuse
        self.weight_raw: np.ndarray | None = None  # the weight register's values (MM_LW)
        self.weight_src: tuple | None = None  # the SRAM view weight_raw still is (pinned)
        self._weight: Operand | None = None  # weight_raw decoded, when needed at once
        self._batch: MmBatch | None = None  # deferred MM_MULs (defer_mm)
        self.wbuf: np.ndarray | None = None  # decoded weights of the last batch, reused
        self.weight_dtype: object = None
        self.weight_shape: tuple[int, int] = (0, 0)
        # (addr, rows, cols, stride, dtype, axis) -> (first byte, end byte, Operand)
        self._cache: dict[tuple, tuple[int, int, Operand]] = {}
        self._cached_bytes = 0

    @property
    def acc(self) -> np.ndarray:
        """The whole accumulator memory (np.uint8), current: deferred products are added and
        tiles held by :meth:`acc_t` written back first. Instructions reach accumulator words
        through :meth:`acc_view` (acc_region), which settles only what they touch."""
        self.flush()
        if self._held:
            self._write_back(0, ACCUMULATOR_WORDS)
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
        self._settle_products(word, word + (rows - 1) * stride + cols)
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
            self._evict()
        self._cache[key] = hit  # most recently used last
        return hit[2]

    def _evict(self) -> None:
        while self._cached_bytes > CACHE_BYTES and self._cache:
            old = self._cache.pop(next(iter(self._cache)))
            self._cached_bytes -= old[2].f64.nbytes

    def load_weight(self, view: np.ndarray, addr: int, stride: int) -> None:
        """MM_LW: the weight register takes ``view`` (k x n) as it is now. It stays a view of
        SRAM, pinned, until a write to those bytes makes it copy them first
        (:meth:`written`); it is decoded only when used: at once by :attr:`weight`, or in a
        batch (sim._batch)."""
        self.weight_raw = view
        self.weight_src = (addr, *view.shape, stride, view.dtype) if view.size else None
        self._weight = None

    def sram_view(self, addr: int, rows: int, cols: int, stride: int,
                  dtype: np.dtype) -> np.ndarray:
        """A rows x cols view of SRAM (bounds checked), as :func:`region`."""
        return region(self.sram, addr, rows, cols, stride, dtype, "sram",
                      f"SRAM of core {self.index}")

    @property
    def weight(self) -> Operand | None:
        """The weight register as a matmul operand (None before the first MM_LW)."""
        if self._weight is None and self.weight_raw is not None:
            self._weight = Operand.of(self.weight_raw, 0)
        return self._weight

    def defer_mm(self, a: Operand, weight: np.ndarray, src: tuple | None,
                 tile: tuple[int, int, int, int, bool], acc_dtype: np.dtype,
                 memo: bool = False) -> None:
        """A matrix-unit product of ``a`` and ``weight`` (raw [k, n]: the weight register for
        MM_MUL, B's block for MM_OS; ``src`` the SRAM view it still is, or None for a
        copy) into the accumulator ``tile`` = (word, rows, cols, stride >= cols,
        accumulate), bounds checked, deferred: consecutive products of one A operand run as
        one (sim._batch), in program order, before anything else reads or writes the
        accumulator words they span. ``memo``: memoize the weights' decoded operand (MM_OS)."""
        b = self._batch
        if b is not None and not b.fits(a, acc_dtype, memo, tile[2]):
            self.flush()
            b = None
        if b is None:
            b = self._batch = MmBatch(a, acc_dtype, memo)
        b.add(weight, src, tile)

    def flush(self) -> None:
        """Run the deferred products (sim._batch.run_batch)."""
        b, self._batch = self._batch, None
        if b is not None:
            run_batch(self, b)

    def acc_view(self, word: int, rows: int, cols: int, stride: int, dtype: np.dtype,
                 what: str = "acc") -> np.ndarray:
        """Accumulator words [rows x cols] at ``word`` (bounds checked) as ``dtype``, current:
        the deferred products and held tiles that share a word with them are settled first
        (the others stay as they are)."""
        end = word + (rows - 1) * stride + cols
        self._settle_products(word, end)
        if self._held:
            self._write_back(word, end)
        return region(self._acc, word * 4, rows, cols, stride, dtype, what,
                      "accumulator memory")

    def _settle_products(self, lo: int, hi: int) -> None:
        """Run the deferred products if they touch accumulator words [lo, hi)."""
        if self._batch is not None and self._batch.touches(lo, hi):
            self.flush()

    def _weight_pinned(self, lo: int, hi: int) -> bool:
        """Whether the weight register is still a view of any of SRAM bytes [lo, hi)."""
        if self.weight_src is None:
            return False
        w_lo, w_hi = src_bytes(self.weight_src)
        return w_lo < hi and lo < w_hi

    def keeps(self, lo: int, hi: int) -> bool:
        """Whether decoded operands or pinned views read any of SRAM bytes [lo, hi)."""
        if self._weight_pinned(lo, hi):
            return True
        b = self._batch
        if b is not None and b.src_lo < hi and lo < b.src_hi:
            return True
        return any(a < hi and lo < e for a, e, _ in self._cache.values())

    def written(self, lo: int, hi: int) -> None:
        """SRAM bytes [lo, hi) are about to change: pinned views of them (the weight register,
        deferred weights) copy their values, and the operands decoded from them are dropped."""
        if self._weight_pinned(lo, hi):
            self.weight_raw, self.weight_src = self.weight_raw.copy(), None
        if self._batch is not None:
            self._batch.unpin(lo, hi)
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
    if rows and cols and word + (rows - 1) * stride + cols > ACCUMULATOR_WORDS:
        end = word + (rows - 1) * stride + cols
        raise Fault(f"{what}={word}: {rows}x{cols} words with stride {stride} end at word "
                    f"{end}, expected <= ACCUMULATOR_WORDS = {ACCUMULATOR_WORDS}")


def acc_region(core: CoreState, word: int, rows: int, cols: int, stride: int,
               dtype: np.dtype, what: str = "acc") -> np.ndarray:
    """Accumulator words [rows x cols] at ``word`` + r * stride + c, as float32 or int32."""
    check_acc(word, rows, cols, stride, what)
    return core.acc_view(word, rows, cols, stride, dtype, what)
