"""Small builders for simulator tests: hand-written programs on forge-t1's seed design (one
ISA core per array; 128x128 bf16 arrays, see forge-t1-seed.yaml) with operands placed by DMA
and results read from the final machine state."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chipforge.arch import load_chip
from chipforge.isa import Dtype, Instr, Opcode, Program, TensorPlacement
from chipforge.machine import CoreTiming
from chipforge.numerics import name_of
from chipforge.sim import SimResult, simulate

# a spec path: the ISA tests pin instruction limits of a 128x128 array, not the catalog's
CHIP = str(Path(__file__).with_name("forge-t1-seed.yaml"))
T = CoreTiming.of(load_chip(CHIP))
A_SRAM, B_SRAM, DST_SRAM = 0, 0x10000, 0x20000  # operand slots in SRAM (64 KiB apart)
A_DRAM, B_DRAM = 0, 0x10000


def ins(op: Opcode, *args: int, **kw) -> Instr:
    return Instr(op, tuple(args), **kw)


def fence(*instrs: Instr) -> list[Instr]:
    """The instructions with a BARRIER after each: strictly sequential, no semaphores."""
    out: list[Instr] = []
    for i in instrs:
        out += [i, ins(Opcode.BARRIER, 0)]
    return out + [ins(Opcode.HALT)]


def program(cores: list[list[Instr]], tensors: dict[str, tuple[int, tuple, str]] | None = None,
            outputs: tuple[str, ...] = (), dram_bytes: int = 1 << 20) -> Program:
    tensors = tensors or {}
    return Program(CHIP, cores, dram_bytes,
                   {n: TensorPlacement(n, a, tuple(s), d) for n, (a, s, d) in tensors.items()},
                   [n for n in tensors if n not in outputs], list(outputs))


def load_bytes(dram: int, sram: int, nbytes: int) -> Instr:
    """DMA a contiguous run of bytes (as int8 elements) from DRAM to SRAM."""
    return ins(Opcode.DMA_LOAD, dram, sram, 1, nbytes, nbytes, nbytes, dtype=Dtype.INT8)


def run_on_sram(body: list[Instr], a: np.ndarray | None = None, b: np.ndarray | None = None,
                **kw) -> SimResult:
    """Place ``a`` at A_SRAM and ``b`` at B_SRAM (via DRAM and DMA), then run ``body``
    fenced. Read results from ``result.machine.cores[0].sram``."""
    tensors, inputs, pre = {}, {}, []
    for name, x, dram, sram in (("a", a, A_DRAM, A_SRAM), ("b", b, B_DRAM, B_SRAM)):
        if x is not None:
            tensors[name] = (dram, x.shape, name_of(x.dtype))
            inputs[name] = x
            pre.append(load_bytes(dram, sram, x.nbytes))
    return simulate(program([fence(*pre, *body)], tensors), CHIP, inputs, **kw)


def sram(res: SimResult, addr: int, count: int, dtype) -> np.ndarray:
    """``count`` elements of ``dtype`` at byte ``addr`` of core 0's final SRAM."""
    dt = np.dtype(dtype)
    return res.machine.cores[0].sram[addr:addr + count * dt.itemsize].view(dt).copy()


def acc(res: SimResult, word: int, count: int, dtype=np.float32) -> np.ndarray:
    return res.machine.cores[0].acc[word * 4:(word + count) * 4].view(dtype).copy()


def round_f32(x) -> np.float32:
    """The float32 nearest to the exact rational x (a Fraction), ties to even."""
    from fractions import Fraction

    f = np.float32(float(x))
    cands = [c for c in (f, np.nextafter(f, np.float32(np.inf)),
                         np.nextafter(f, np.float32(-np.inf))) if np.isfinite(c)]
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - x),
                                     int(np.array(c).view(np.uint32)) & 1))
