"""Elementwise math kernels: each op is a short straight-line sequence of vector
instructions (V_UN / V_BIN on fp32 SRAM temporaries) run on every chunk of one row
pipeline, so the op costs one DRAM round trip however many instructions it takes.

An op is a function ``f(s, x..., into)`` over a :class:`Seq`: it reads its operands
(:class:`Src`), writes temporaries (``s.reg(i)``) and leaves the result in ``into`` (the
chunk's output for the op itself, a register when one op reuses another: gelu_erf's erf).
``MATH_OPS`` maps a kernel op to its sequence; the op semantics (exact float64 functions)
are in the ``_kernel_graph`` docstring and the approximations and their measured errors
are stated at each sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chipforge.compiler.lower._emit import CoreEmitter, Token
from chipforge.compiler.lower._kernel_graph import KernelNode
from chipforge.compiler.lower._lowering import Lowering
from chipforge.compiler.lower._row_kernels import (
    RowOperand,
    _operand,
    out_flags,
    row_pipeline,
    vbin,
    vun,
)
from chipforge.isa import BinOp, Dtype, Flag, UnOp

F32 = Dtype.FP32
I32 = Dtype.INT32


@dataclass(frozen=True)
class Src:
    """An operand in SRAM: address, dtype, row stride and whether it is one value per row."""

    addr: int
    dtype: Dtype
    stride: int
    col: bool = False


class Seq:
    """The instruction sequence of one chunk: ``rows`` x ``cols`` elements, registers of
    ``rows * cols`` fp32 values from ``base``, every instruction after the previous one."""

    def __init__(self, em: CoreEmitter, rows: int, cols: int, base: int, ready: Token,
                 out: Src, out_flag: Flag):
        self.em, self.rows, self.cols, self.base = em, rows, cols, base
        self.last = ready
        self.out = out
        self.out_flag = out_flag

    def reg(self, i: int, dtype: Dtype = F32) -> Src:
        return Src(self.base + 4 * i * self.rows * self.cols, dtype, self.cols)

    def _flags(self, dst: Src) -> Flag:
        return self.out_flag if dst == self.out else Flag.NONE

    def un(self, op: UnOp, a: Src, into: Src, flags: Flag = Flag.NONE) -> Src:
        self.last = vun(self.em, op, into.addr, a.addr, self.rows, self.cols, into.dtype,
                        a.dtype, after=(self.last,), a_stride=a.stride,
                        flags=flags | self._flags(into) | (Flag.A_COL if a.col else Flag.NONE))
        return into

    def bin(self, op: BinOp, a: Src, b: Src | float, into: Src) -> Src:
        flags = self._flags(into) | (Flag.A_COL if a.col else Flag.NONE)
        if isinstance(b, Src):
            flags |= Flag.B_COL if b.col else Flag.NONE
            addr, dt, stride, imm = b.addr, b.dtype, b.stride, 0.0
        else:
            flags |= Flag.B_IMM
            addr, dt, stride, imm = 0, F32, 0, float(b)
        self.last = vbin(self.em, op, into.addr, a.addr, addr, self.rows, self.cols,
                         into.dtype, a.dtype, dt, a_stride=a.stride, b_stride=stride,
                         flags=flags, imm=imm, after=(self.last,))
        return into

    # shorthands
    def add(self, a, b, into):
        return self.bin(BinOp.ADD, a, b, into)

    def sub(self, a, b, into):
        return self.bin(BinOp.SUB, a, b, into)

    def mul(self, a, b, into):
        return self.bin(BinOp.MUL, a, b, into)

    def div(self, a, b, into):
        return self.bin(BinOp.DIV, a, b, into)

    def horner(self, t: Src, coeffs: tuple[float, ...], into: Src) -> Src:
        """c0 * t**(n-1) + ... + c_{n-1} (highest power first), as (c0 t + c1) t + ...:
        2(n - 1) instructions."""
        p = self.mul(t, coeffs[0], into)
        p = self.add(p, coeffs[1], into)
        for c in coeffs[2:]:
            p = self.add(self.mul(p, t, into), c, into)
        return p


# ---- erf and exact GELU ------------------------------------------------------------------
# erf(x) = x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (|erf(4)| rounds to 1 in fp32): the
# rational approximation of Eigen's generic_fast_erf_float (also XLA's ErfImpl32 and TVM's
# fast_erf). Its error in exact arithmetic is 6.5e-8; measured on the simulator over every
# 2**-12 step of [-6, 6]: max |error| 3.7e-7 (6.2 units of 2**-24) against float64 erf, and
# relative error <= 1.7e-7 for tiny |x| (tests/compiler/test_aten_math.py).
# Odd by construction: erf(-x) = -erf(x), erf(+-0) = +-0; NaN propagates (MIN/MAX do).
ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
         -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
         -1.60960333262415e-02)
ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
         -7.37332916720468e-03, -1.42647390514189e-02)
SQRT1_2 = 0.7071067811865476


def erf(s: Seq, x: Src, into: Src) -> Src:
    """25 lane instructions; registers 0-3."""
    c, x2, p, q = s.reg(0), s.reg(1), s.reg(2), s.reg(3)
    s.bin(BinOp.MIN, x, 4.0, c)
    s.bin(BinOp.MAX, c, -4.0, c)
    s.un(UnOp.SQUARE, c, x2)
    s.horner(x2, ERF_P, p)
    s.horner(x2, ERF_Q, q)
    s.div(p, q, p)  # ~-1.13 / -1: dividing x * P instead would go subnormal for tiny x
    return s.mul(p, c, into)


def gelu_erf(s: Seq, x: Src, into: Src) -> Src:
    """x * 0.5 * (1 + erf(x / sqrt(2))), as PyTorch computes the exact GELU; +-inf give NaN
    (as PyTorch's fp32, bf16 and fp16 CPU kernels do) through the added x - x. 31 lane instructions;
    registers 0-4."""
    z, d = s.reg(4), s.reg(1)
    s.mul(x, SQRT1_2, z)
    e = erf(s, z, z)
    s.add(e, 1.0, z)
    s.mul(z, 0.5, z)
    s.mul(z, x, z)  # last: 2x would overflow for x near the fp32 maximum
    s.sub(x, x, d)  # 0, or NaN for +-inf and NaN
    return s.add(z, d, into)


@dataclass(frozen=True)
class MathOp:
    """A sequence kernel: its function, number of tensor operands and fp32 registers."""

    fn: Callable[..., Src]
    arity: int
    regs: int


MATH_OPS: dict[str, MathOp] = {
    "erf": MathOp(erf, 1, 4),
    "gelu_erf": MathOp(gelu_erf, 1, 5),
}


def math_kernel(lw: Lowering, node: KernelNode) -> str:
    """Any op of ``MATH_OPS``: operands broadcast to the output as full tensors, rows,
    one value per row or scalars; the sequence runs once per chunk."""
    spec = MATH_OPS[node.op]
    out = lw.place(node.output)
    cols = out.cols
    operands = [_operand(lw, name, out.shape) for name in node.inputs[:spec.arity]]
    stride = {"full": cols, "row": 0, "col": 1}

    def body(em: CoreEmitter, ch, tmp: int) -> Token:
        s = Seq(em, ch.rows, cols, tmp, ch.ready, Src(ch.out, out.isa_dtype, cols),
                out_flags(out))
        srcs = [Src(addr, o.buf.isa_dtype, stride[o.kind], o.kind == "col")
                for addr, o in zip(ch.ins, operands)]
        spec.fn(s, *srcs, s.out)
        return s.last

    ops: list[RowOperand] = operands
    row_pipeline(lw, out, ops, 4 * spec.regs * cols, body)
    return f"vector sequence {node.op}"
