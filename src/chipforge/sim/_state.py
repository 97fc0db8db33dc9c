"""Machine state: DRAM, and per core a local SRAM, the accumulators and the array's weight
register. Every memory is a flat np.uint8 buffer; operands are strided numpy *views* of it
(no copies), built by :func:`region`, which also bounds-checks them."""

from __future__ import annotations

import numpy as np

from chipforge.errors import ChipforgeError
from chipforge.numerics import Operand

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


class CoreState:
    __slots__ = ("index", "sram", "_acc", "_acc_t", "_spare_t", "weight", "weight_dtype",
                 "weight_shape", "_cache", "_cached_bytes")

    def __init__(self, index: int, sram_bytes: int) -> None:
        self.index = index
        self.sram = np.zeros(sram_bytes, U8)
        # one buffer, viewed as float32 or int32 by the matmul dtype (int8 -> int32)
        self._acc = np.zeros(ACC_WORDS * 4, U8)
        # a float32 accumulator tile held transposed, see acc_t: (key, [cols, rows], view)
        self._acc_t: tuple[tuple, np.ndarray, np.ndarray] | None = None
        self._spare_t: np.ndarray | None = None  # a flushed tile's buffer, for reuse
        self.weight: Operand | None = None  # set by MM_LW
        self.weight_dtype: object = None
        self.weight_shape: tuple[int, int] = (0, 0)
        # (addr, rows, cols, stride, dtype, axis) -> (first byte, end byte, Operand)
        self._cache: dict[tuple, tuple[int, int, Operand]] = {}
        self._cached_bytes = 0

    @property
    def acc(self) -> np.ndarray:
        """The accumulator memory (np.uint8), current: a tile held by :meth:`acc_t` is
        written back first. Every read or write of accumulator words goes through here."""
        if self._acc_t is not None:
            self._flush_acc_t()
        return self._acc

    def acc_t(self, word: int, rows: int, cols: int, stride: int, load: bool) -> np.ndarray:
        """The float32 accumulator tile [rows x cols] at ``word`` (row starts ``stride`` >=
        cols words apart; bounds already checked), as a [cols, rows] C-contiguous
        *transpose* that is the tile's value until the next :attr:`acc` access writes it
        back. MM_MUL's float64 products come out of BLAS transposed (see numerics._exact),
        so a run of MM_MULs into one tile adds them contiguously and transposes once.
        ``load=False``: the caller overwrites every element, the memory is not read."""
        key = (word, rows, cols, stride)
        held = self._acc_t
        if held is not None:
            if held[0] == key:
                return held[1]
            self._flush_acc_t()
        view = region(self._acc, word * 4, rows, cols, stride, F32, "acc", "accumulator memory")
        t = self._spare_t
        if t is None or t.shape != (cols, rows):
            t = np.empty((cols, rows), F32)
        self._spare_t = None
        if load:
            np.copyto(t, view.T)
        self._acc_t = (key, t, view)
        return t

    def _flush_acc_t(self) -> None:
        _, t, view = self._acc_t
        self._acc_t = None
        view[...] = t.T
        self._spare_t = t

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
