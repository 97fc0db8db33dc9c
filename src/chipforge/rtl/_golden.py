"""Random matrix-unit instructions and the golden model that checks the RTL against them.

The golden model is the functional simulator's own semantics (:data:`chipforge.sim.SEMANTICS`
on a one-core :class:`~chipforge.sim.Machine` whose timing is the RTL array's), so every
result is compared with exactly what ``chipforge.sim.simulate`` computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chipforge.isa import Flag, Instr, Opcode
from chipforge.numerics import np_dtype
from chipforge.rtl._config import CoreConfig
from chipforge.sim import SEMANTICS, CoreState, Machine


@dataclass
class Golden:
    """The simulator's state of one core, restricted to the RTL's memory sizes."""

    cfg: CoreConfig
    machine: Machine

    @classmethod
    def of(cls, cfg: CoreConfig) -> Golden:
        core = CoreState(0, cfg.sram_words * cfg.itemsize)
        return cls(cfg, Machine(cfg.timing(), np.zeros(0, np.uint8), [core]))

    @property
    def core(self) -> CoreState:
        return self.machine.cores[0]

    def set_sram(self, elems: np.ndarray) -> None:
        """Replace the operand SRAM (elements of the core's dtype)."""
        # first: views of SRAM the core still holds (the weight register, deferred
        # products' weights) copy their values, and memoized operands are dropped
        self.core.written(0, self.core.sram.size)
        self.core.sram[:] = elems.view(np.uint8)

    def set_acc(self, words: np.ndarray) -> None:
        self.core.acc[:words.size * 4] = words.view(np.uint8)

    def acc_words(self) -> np.ndarray:
        return self.core.acc[:self.cfg.acc_words * 4].view(np.uint32).copy()

    def run(self, ins: Instr) -> None:
        SEMANTICS[ins.op](self.machine, self.core, ins)


def written_words(ins: Instr, n_loaded: int) -> set[int]:
    """Accumulator words an MM_MUL (n = the loaded tile's) or an MM_OS writes."""
    if ins.op not in (Opcode.MM_MUL, Opcode.MM_OS):
        return set()
    a = ins.named
    n = a["n"] if ins.op is Opcode.MM_OS else n_loaded
    return {a["acc"] + r * a["acc_stride"] + c for r in range(a["m"]) for c in range(n)}


class InstrGen:
    """Random, valid MM_LW / MM_MUL / MM_OS instructions within the array and the RTL
    memories: shapes up to the array (k, n = 0 now and then), MM_MUL's m up to 2R, MM_OS's
    k up to 3 * max(R, C) (several A chunks per row), any operand stride (0 and
    overlapping rows included), accumulator rows that do not overlap within one
    instruction (see docs/rtl.md), ACCUMULATE half the time. ``os_share`` of the
    instructions are MM_OS; the first MM_MUL follows an MM_LW."""

    def __init__(self, cfg: CoreConfig, rng: np.random.Generator,
                 os_share: float = 0.35) -> None:
        self.cfg, self.rng, self.loaded, self.os_share = cfg, rng, None, os_share

    def _dim(self, hi: int) -> int:
        return 0 if self.rng.random() < 0.03 else int(self.rng.integers(1, hi + 1))

    def _place(self, rows: int, cols: int, size: int, min_stride: int = 0) -> tuple[int, int]:
        stride = int(self.rng.integers(min_stride, max(min_stride, 2 * cols) + 4))

        def span() -> int:
            return (rows - 1) * stride + cols if rows and cols else 0

        while span() > size and stride > min_stride:
            stride = max(min_stride, stride // 2)
        if span() > size:
            raise ValueError(f"{rows} x {cols} does not fit {size} words")
        return int(self.rng.integers(0, size - span() + 1)), stride

    def _flags(self) -> Flag:
        return Flag.ACCUMULATE if self.rng.random() < 0.5 else Flag.NONE

    def _os(self) -> Instr:
        cfg = self.cfg
        m, n = self._dim(cfg.rows), self._dim(cfg.cols)
        k = self._dim(3 * max(cfg.rows, cfg.cols))
        a, a_stride = self._place(m, k, cfg.sram_words)
        b, b_stride = self._place(k, n, cfg.sram_words)
        acc, acc_stride = self._place(m, n, cfg.acc_words, min_stride=n if m > 1 else 0)
        isz = cfg.itemsize
        return Instr(Opcode.MM_OS, (acc, a * isz, b * isz, m, n, k, a_stride, b_stride,
                                    acc_stride), dtype=cfg.isa_dtype(), flags=self._flags())

    def next(self) -> Instr:
        cfg, rng, dt = self.cfg, self.rng, self.cfg.isa_dtype()
        if rng.random() < self.os_share:
            return self._os()
        if self.loaded is None or rng.random() < 0.3:
            k, n = self._dim(cfg.rows), self._dim(cfg.cols)
            addr, stride = self._place(k, n, cfg.sram_words)
            self.loaded = (k, n)
            return Instr(Opcode.MM_LW, (addr * cfg.itemsize, k, n, stride), dtype=dt)
        k, n = self.loaded
        m = 0 if rng.random() < 0.02 else int(rng.integers(1, 2 * cfg.rows + 1))
        addr, stride = self._place(m, k, cfg.sram_words)
        acc, acc_stride = self._place(m, n, cfg.acc_words, min_stride=n if m > 1 else 0)
        return Instr(Opcode.MM_MUL, (acc, addr * cfg.itemsize, m, k, stride, acc_stride),
                     dtype=dt, flags=self._flags())


def random_elems(cfg: CoreConfig, rng: np.random.Generator, count: int) -> np.ndarray:
    """Operand data: int8 uniform; floats either uniform random bit patterns (every
    exponent, subnormals, inf, NaN: exercises the exact wide sums) or normal values with
    a few zeros and specials (exercises cancellation and rounding), per call."""
    dt = np_dtype(cfg.dtype)
    if not cfg.fmt.is_float:
        return rng.integers(-128, 128, count).astype(np.int8)
    uint = np.uint16 if cfg.fmt.bits == 16 else np.uint8
    if rng.random() < 0.5:
        return rng.integers(0, 1 << cfg.fmt.bits, count).astype(uint).view(dt)
    scale = 2.0 ** rng.integers(-6, 7)
    x = (rng.standard_normal(count) * scale).astype(np.float32).astype(dt)
    bits = x.view(uint)
    pick = rng.random(count) < 0.05
    bits[pick] = rng.integers(0, 1 << cfg.fmt.bits, int(pick.sum())).astype(uint)
    zero = rng.random(count) < 0.03
    bits[zero] = (rng.integers(0, 2, int(zero.sum())) << (cfg.fmt.bits - 1)).astype(uint)
    return bits.view(dt)


def random_acc(cfg: CoreConfig, rng: np.random.Generator) -> np.ndarray:
    """Initial accumulator words (as uint32): int32 uniform, or fp32 values and specials."""
    if not cfg.fmt.is_float:  # a quarter near the int32 limits, where adds wrap
        x = rng.integers(0, 1 << 32, cfg.acc_words, dtype=np.uint64)
        edge = rng.random(cfg.acc_words) < 0.25
        x[edge] = (2**31 + rng.integers(-2**20, 2**20, int(edge.sum()))) % 2**32
        return x.astype(np.uint32)
    x = (rng.standard_normal(cfg.acc_words) * 4).astype(np.float32).view(np.uint32)
    pick = rng.random(cfg.acc_words) < 0.05
    x[pick] = rng.integers(0, 1 << 32, int(pick.sum()), dtype=np.uint64).astype(np.uint32)
    return x


def same_words(rtl: np.ndarray, gold: np.ndarray, is_float: bool) -> np.ndarray:
    """Per-word agreement: bit-exact, except that any NaN matches any NaN for floats
    (the simulator's NaN sign/payload comes from the host's float64 BLAS)."""
    same = rtl == gold
    if is_float:
        nan = lambda w: ((w & 0x7F800000) == 0x7F800000) & ((w & 0x7FFFFF) != 0)  # noqa: E731
        same |= nan(rtl) & nan(gold)
    return same
