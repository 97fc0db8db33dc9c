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

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chipforge.compiler.lower._emit import CoreEmitter, Token
from chipforge.compiler.lower._kernel_graph import KernelNode
from chipforge.compiler.lower._lowering import Buf, Lowering
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
        self.offset = 0  # registers below it belong to a caller (see frame)

    def reg(self, i: int, dtype: Dtype = F32) -> Src:
        return Src(self.base + 4 * (self.offset + i) * self.rows * self.cols, dtype,
                   self.cols)

    @contextmanager
    def frame(self, n: int) -> Iterator[None]:
        """Registers 0..n-1 are kept: a called sequence numbers its own from n."""
        self.offset += n
        try:
            yield
        finally:
            self.offset -= n

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

    def select(self, m: Src, a: Src, n: Src, b: Src, into: Src) -> Src:
        """m * a + n * b for complementary 1.0 / 0.0 masks m, n (both 0 where a NaN must
        show): exact, as long as the branch not taken is finite (0 * inf is NaN)."""
        self.mul(a, m, a)
        self.mul(b, n, b)
        return self.add(a, b, into)

    def sign(self, x: Src, into: Src, tmp: Src) -> Src:
        """(x > 0) - (x < 0): -1, 0 or 1; 0 for NaN and +-0 (as torch.sign)."""
        self.bin(BinOp.GT, x, 0.0, into)
        self.bin(BinOp.LT, x, 0.0, tmp)
        return self.sub(into, tmp, into)

    def horner(self, t: Src, coeffs: tuple[float, ...], into: Src) -> Src:
        """c0 * t**(n-1) + ... + c_{n-1} (highest power first), as (c0 t + c1) t + ...:
        2(n - 1) instructions; ``into`` must not be ``t``, which every step reads."""
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


# ---- sign, rounding, classification -------------------------------------------------------
TWO23 = 8388608.0  # from 2**23 on, every fp32 value is an integer


def sign(s: Seq, x: Src, into: Src) -> Src:
    """3 lane instructions; register 0."""
    return s.sign(x, into, s.reg(0))


def _integral(s: Seq, x: Src, into: Src, rounding: Flag) -> Src:
    """x rounded to an integer through an int32 cast (``rounding``: RNE or toward zero);
    where |x| >= 2**23 (x is integral, or infinite) x itself; NaN stays NaN. A zero result
    is +0. 7 lane instructions; registers 0-2."""
    i, a, m = s.reg(0, I32), s.reg(1), s.reg(2)
    s.un(UnOp.COPY, x, i, rounding | Flag.SATURATE)  # NaN -> 0; exact below 2**31
    s.un(UnOp.ABS, x, a)
    s.bin(BinOp.LT, a, TWO23, m)
    s.bin(BinOp.GE, a, TWO23, a)  # neither holds for NaN, whose x * 0 is NaN
    s.mul(i, m, m)
    s.mul(x, a, a)
    return s.add(m, a, into)


def trunc(s: Seq, x: Src, into: Src) -> Src:
    return _integral(s, x, into, Flag.ROUND_TOWARD_ZERO)


def round_(s: Seq, x: Src, into: Src) -> Src:
    """Half to even (the cast's rounding)."""
    return _integral(s, x, into, Flag.NONE)


def floor(s: Seq, x: Src, into: Src) -> Src:
    """trunc(x) - (trunc(x) > x). 9 lane instructions; registers 0-3."""
    t, g = s.reg(3), s.reg(1)
    trunc(s, x, t)
    s.bin(BinOp.GT, t, x, g)
    return s.sub(t, g, into)


def ceil(s: Seq, x: Src, into: Src) -> Src:
    """trunc(x) + (trunc(x) < x). 9 lane instructions; registers 0-3."""
    t, g = s.reg(3), s.reg(1)
    trunc(s, x, t)
    s.bin(BinOp.LT, t, x, g)
    return s.add(t, g, into)


def isnan(s: Seq, x: Src, into: Src) -> Src:
    """(x == x) == 0. 2 lane instructions; register 0."""
    s.bin(BinOp.EQ, x, x, s.reg(0))
    return s.bin(BinOp.EQ, s.reg(0), 0.0, into)


def isinf(s: Seq, x: Src, into: Src) -> Src:
    """|x| == inf. 2 lane instructions; register 0."""
    s.un(UnOp.ABS, x, s.reg(0))
    return s.bin(BinOp.EQ, s.reg(0), math.inf, into)


# ---- exponentials and logarithms ---------------------------------------------------------
FLT_MAX = 3.4028234663852886e38
BIG = 1e30  # a finite stand-in for +-inf where a ratio's operands are clamped


def _clamp(s: Seq, a: Src, into: Src) -> Src:
    s.bin(BinOp.MIN, a, BIG, into)
    return s.bin(BinOp.MAX, into, -BIG, into)


def expm1(s: Seq, x: Src, into: Src) -> Src:
    """Kahan's exp(x) - 1 = (u - 1) * x / log(u), u = exp(x) rounded (x where u == 1),
    accurate to a few units of rounding for tiny x too. x is taken >= -80 (exp(x) - 1 is
    -1 in fp32 from -17 on; exp(-80) is still normal) and the ratio's operands are clamped
    finite, so that +-inf give inf / -1. 11 lane + 2 special; registers 0-4."""
    u, d, m, lg, xc = (s.reg(i) for i in range(5))
    s.bin(BinOp.MAX, x, -80.0, xc)
    s.un(UnOp.EXP, xc, u)
    s.sub(u, 1.0, d)
    s.bin(BinOp.EQ, u, 1.0, m)
    s.un(UnOp.LOG, u, lg)
    s.add(lg, m, lg)  # 1 where u == 1: no 0 / 0
    _clamp(s, lg, lg)
    s.bin(BinOp.MIN, xc, BIG, xc)  # inf / inf would be NaN
    s.div(xc, lg, lg)  # x / log(u), about 1
    s.mul(d, lg, d)
    s.mul(m, xc, m)
    return s.add(d, m, into)


def log1p(s: Seq, x: Src, into: Src) -> Src:
    """Goldberg's log(1 + x) = log(u) * x / (u - 1), u = 1 + x rounded (x where u == 1);
    -1 gives -inf, x < -1 NaN. 10 lane + 1 special; registers 0-4."""
    u, d, m, xc, r = (s.reg(i) for i in range(5))
    s.add(x, 1.0, u)
    s.sub(u, 1.0, d)
    s.bin(BinOp.EQ, d, 0.0, m)
    s.add(d, m, d)  # 1 where u == 1: no x / 0
    s.bin(BinOp.MIN, x, BIG, xc)  # inf / inf would be NaN
    s.bin(BinOp.MIN, d, BIG, d)
    s.div(xc, d, r)
    s.un(UnOp.LOG, u, u)
    s.mul(u, r, u)
    s.mul(m, xc, m)
    return s.add(u, m, into)


LN2 = math.log(2.0)


def log2(s: Seq, x: Src, into: Src) -> Src:
    s.un(UnOp.LOG, x, s.reg(0))
    return s.mul(s.reg(0), 1.0 / LN2, into)


def log10(s: Seq, x: Src, into: Src) -> Src:
    s.un(UnOp.LOG, x, s.reg(0))
    return s.mul(s.reg(0), 1.0 / math.log(10.0), into)


def _half_exp(s: Seq, a: Src, h: Src, r: Src) -> Src:
    """h = exp(a) / 2 as (exp(a / 2) * 0.5) * exp(a / 2) (finite up to a = 89.4, where
    exp(a) itself overflows at 88.7); r = exp(-a) / 2 = 0.25 / h."""
    s.mul(a, 0.5, r)
    s.un(UnOp.EXP, r, r)
    s.mul(r, 0.5, h)
    s.mul(h, r, h)
    s.un(UnOp.RECIP, h, r)
    return s.mul(r, 0.25, r)


def cosh(s: Seq, x: Src, into: Src) -> Src:
    """exp(|x|) / 2 + exp(-|x|) / 2. 6 lane + 2 special; registers 0-2."""
    a, h, r = s.reg(0), s.reg(1), s.reg(2)
    s.un(UnOp.ABS, x, a)
    _half_exp(s, a, h, r)
    return s.add(h, r, into)


# sinh(a) / a on [0, 1] by its Taylor series in a**2 (truncation <= 1/13! = 1.6e-10)
SINH_TAYLOR = tuple(1.0 / math.factorial(k) for k in (11, 9, 7, 5, 3, 1))


def sinh(s: Seq, x: Src, into: Src) -> Src:
    """sign(x) * (|x| < 1 ? Taylor series : exp(|x|) / 2 - exp(-|x|) / 2). Registers 0-5."""
    a, h, r, t, m, n = (s.reg(i) for i in range(6))
    s.un(UnOp.ABS, x, a)
    _half_exp(s, a, h, r)
    s.sub(h, r, h)
    s.bin(BinOp.MIN, a, 1.0, t)  # the series' operand, finite
    s.un(UnOp.SQUARE, t, r)
    s.horner(r, SINH_TAYLOR, m)
    s.mul(m, t, t)
    s.bin(BinOp.LT, a, 1.0, m)
    s.bin(BinOp.GE, a, 1.0, n)
    s.select(m, t, n, h, h)
    s.sign(x, a, r)
    return s.mul(h, a, into)


def elu(s: Seq, x: Src, into: Src, *, alpha: float = 1.0, scale: float = 1.0,
        input_scale: float = 1.0) -> Src:
    """scale * (max(x, 0) + alpha * expm1(min(x, 0) * input_scale)) (torch's elu; the
    same instructions whatever the attrs). 15 lane + 2 special; registers 0-6."""
    p, q = s.reg(0), s.reg(1)
    s.bin(BinOp.MIN, x, 0.0, q)
    s.mul(q, input_scale, q)
    with s.frame(2):
        expm1(s, q, q)
    s.mul(q, alpha * scale, q)
    s.bin(BinOp.MAX, x, 0.0, p)
    s.mul(p, scale, p)
    return s.add(p, q, into)


def leaky_relu(s: Seq, x: Src, into: Src, *, slope: float = 0.01) -> Src:
    """max(x, 0) + slope * min(x, 0) (x * slope for x < 0, for any slope). 4 lane
    instructions; registers 0-1."""
    p, q = s.reg(0), s.reg(1)
    s.bin(BinOp.MIN, x, 0.0, q)
    s.mul(q, slope, q)
    s.bin(BinOp.MAX, x, 0.0, p)
    return s.add(p, q, into)


# ---- trigonometric -------------------------------------------------------------------------
# Cody-Waite reduction r = x - h * pi in three parts: PI_HI has 8 significant bits and PI_MID
# 12 (cephes sinf's DP1..DP3, times 4), so h * PI_HI and h * PI_MID are exact for |h| < 2**12,
# i.e. |x| <= 8192 (cephes' own range). Measured on the simulator: |error| <= 1.1e-7 for
# |x| <= 16384, 1e-6 up to 65536, 0.03 at 2**20 (PyTorch reduces exactly): so beyond
# TRIG_RANGE the result is NaN, never a silently wrong value.
PI_HI, PI_MID, PI_LO = 3.140625, 9.67502593994140625e-4, 1.509957990978376432e-7
TRIG_RANGE = 65536.0
# sin(r) / r on [-pi/2, pi/2] by its Taylor series in r**2 (truncation <= (pi/2)**14 / 15!)
SIN_TAYLOR = tuple((-1.0) ** (k // 2) / math.factorial(k) for k in (13, 11, 9, 7, 5, 3))


def _sin_reduced(s: Seq, x: Src, into: Src, half: float) -> Src:
    """(-1)**k * sin(x - (k + half) * pi), k = round(x / pi - half): sin(x) for half 0,
    -cos(x) for half 0.5; NaN for NaN and |x| > TRIG_RANGE (+-inf included). Registers
    0-4."""
    k, h, r, t, p = s.reg(0, I32), s.reg(1), s.reg(2), s.reg(3), s.reg(4)
    s.mul(x, 1.0 / math.pi, h)
    if half:
        s.sub(h, half, h)
    s.un(UnOp.COPY, h, k, Flag.SATURATE)  # round half to even
    src = k
    if half:
        src = s.add(k, half, h)
    s.mul(src, PI_HI, t)
    s.sub(x, t, r)
    for part in (PI_MID, PI_LO):
        s.mul(src, part, t)
        s.sub(r, t, r)
    s.un(UnOp.SQUARE, r, t)
    s.horner(t, SIN_TAYLOR, p)  # -1/6 + ... : sin(r) = r + r * t * p
    s.mul(p, t, p)
    s.mul(p, r, p)
    s.add(p, r, p)
    # (-1)**k = 1 - 2 |k - 2 round(k / 2)|
    s.mul(k, 0.5, t)
    s.un(UnOp.COPY, t, s.reg(1, I32), Flag.SATURATE)
    s.mul(s.reg(1, I32), -2.0, t)
    s.add(t, k, t)
    s.un(UnOp.ABS, t, t)
    s.mul(t, -2.0, t)
    s.add(t, 1.0, t)
    s.mul(p, t, p)
    s.un(UnOp.ABS, x, t)
    s.bin(BinOp.GT, t, TRIG_RANGE, t)
    s.mul(t, -1.0, t)
    s.un(UnOp.SQRT, t, t)  # NaN out of range, else -0
    return s.add(p, t, into)


def sin(s: Seq, x: Src, into: Src) -> Src:
    return _sin_reduced(s, x, into, 0.0)


def cos(s: Seq, x: Src, into: Src) -> Src:
    """-(-1)**k sin(x - (k + 1/2) pi): cos near its zeros keeps its relative accuracy."""
    _sin_reduced(s, x, s.reg(5), 0.5)
    return s.mul(s.reg(5), -1.0, into)


def tan(s: Seq, x: Src, into: Src) -> Src:
    """sin(x) / cos(x), each reduced as above. Registers 0-6."""
    sin(s, x, s.reg(6))
    cos(s, x, s.reg(5))
    return s.div(s.reg(6), s.reg(5), into)


# atan on [0, tan(pi/8)] (cephes atanf: a polynomial in t**2, relative error ~1e-7)
ATAN_P = (8.05374449538e-2, -1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1)
TAN_3PI_8, TAN_PI_8 = 2.414213562373095, 0.4142135623730950


def _atan_abs(s: Seq, a: Src, into: Src) -> Src:
    """atan(a) for a >= 0 (cephes atanf's reduction): t = a (a <= tan(pi/8)),
    (a - 1) / (a + 1) + pi/4 (a <= tan(3pi/8)), -1/a + pi/2 (beyond); the three branches
    are selected by disjoint masks with their operands clamped finite, so each select is
    exact and NaN propagates. Registers 0-5."""
    m2, m1, t, u, v, w = (s.reg(i) for i in range(6))
    s.bin(BinOp.GT, a, TAN_3PI_8, m2)
    s.bin(BinOp.GT, a, TAN_PI_8, m1)
    s.bin(BinOp.LE, a, TAN_PI_8, w)
    s.bin(BinOp.MIN, a, 0.5, t)
    s.mul(t, w, t)  # t0 * (a <= tan(pi/8))
    s.bin(BinOp.MIN, a, 3.0, u)
    s.add(u, 1.0, v)
    s.sub(u, 1.0, u)
    s.div(u, v, u)
    s.sub(m1, m2, w)
    s.mul(u, w, u)  # t1 * (tan(pi/8) < a <= tan(3pi/8))
    s.add(t, u, t)
    s.bin(BinOp.MAX, a, 1.0, v)
    s.un(UnOp.RECIP, v, v)
    s.mul(v, m2, v)
    s.sub(t, v, t)  # + t2 * m2, t2 = -1/a
    s.add(m1, m2, m1)
    s.mul(m1, math.pi / 4, m1)  # y0: 0, pi/4 or pi/2
    s.un(UnOp.SQUARE, t, u)
    s.horner(u, ATAN_P, v)
    s.mul(v, u, v)
    s.mul(v, t, v)
    s.add(v, t, v)
    return s.add(v, m1, into)


def _odd(s: Seq, x: Src, into: Src, fn: Callable[[Seq, Src, Src], Src], regs: int) -> Src:
    """sign(x) * fn(|x|) for an odd function fn (NaN stays NaN: fn(NaN) * 0)."""
    a, g = s.reg(regs), s.reg(regs + 1)
    s.un(UnOp.ABS, x, a)
    with s.frame(regs + 2):
        fn(s, a, a)
    s.sign(x, g, s.reg(regs + 2))
    return s.mul(a, g, into)


def atan(s: Seq, x: Src, into: Src) -> Src:
    """Registers 0-8."""
    return _odd(s, x, into, _atan_abs, 0)


def asin(s: Seq, x: Src, into: Src) -> Src:
    """atan(x / sqrt((1 - x)(1 + x))): +-pi/2 at +-1 (x / 0), NaN beyond. Registers 0-9."""
    q, w = s.reg(0), s.reg(1)
    s.mul(x, -1.0, q)
    s.add(q, 1.0, q)  # 1 - x as -x + 1: +0 at 1, where x - 1 negated is -0
    s.add(x, 1.0, w)
    s.mul(q, w, q)
    s.un(UnOp.SQRT, q, q)
    s.div(x, q, q)
    with s.frame(1):
        return atan(s, q, into)


def acos(s: Seq, x: Src, into: Src) -> Src:
    """2 atan(sqrt((1 - x) / (1 + x))): pi at -1 (1 / 0), NaN beyond +-1. Registers 0-9."""
    q, w = s.reg(0), s.reg(1)
    s.mul(x, -1.0, q)
    s.add(q, 1.0, q)
    s.add(x, 1.0, w)
    s.div(q, w, q)
    s.un(UnOp.SQRT, q, q)
    with s.frame(1):
        _atan_abs(s, q, q)
    return s.mul(q, 2.0, into)


def atan2(s: Seq, y: Src, x: Src, into: Src) -> Src:
    """atan(y / x) + (x < 0) * (y >= 0 ? pi : -pi); where both are infinite they are
    clamped to +-FLT_MAX first (+-pi/4, +-3pi/4, as in PyTorch); 0 for y = x = 0. Signed
    zeros are not told apart: atan2(+-0, -0) and atan2(-0, x < 0) are 0 and pi (PyTorch:
    +-pi, -pi). Registers 0-12."""
    q, z, yc, xc = s.reg(0), s.reg(1), s.reg(2), s.reg(3)
    s.un(UnOp.ABS, y, q)
    s.bin(BinOp.EQ, q, math.inf, q)
    s.un(UnOp.ABS, x, z)
    s.bin(BinOp.EQ, z, math.inf, z)
    s.mul(q, z, q)
    s.un(UnOp.RECIP, q, q)
    s.mul(q, FLT_MAX, q)  # the clamp bound: FLT_MAX where both are infinite, else inf
    s.mul(q, -1.0, z)
    for v, c in ((y, yc), (x, xc)):
        s.bin(BinOp.MIN, v, q, c)
        s.bin(BinOp.MAX, c, z, c)
    s.bin(BinOp.EQ, xc, 0.0, z)
    s.bin(BinOp.EQ, yc, 0.0, q)
    s.mul(z, q, z)
    s.add(z, xc, z)  # x, or 1 where y = x = 0 (0 / 1 = 0)
    s.div(yc, z, q)
    with s.frame(4):
        atan(s, q, q)
    s.bin(BinOp.GE, y, 0.0, z)
    s.mul(z, 2 * math.pi, z)
    s.sub(z, math.pi, z)
    s.bin(BinOp.LT, x, 0.0, s.reg(2))
    s.mul(z, s.reg(2), z)
    return s.add(q, z, into)


# ---- inverse hyperbolic ---------------------------------------------------------------------
LARGE = 4096.0  # from here asinh(a) = log(2a) + 1/(4a**2) - ... is log(a) + log(2) in fp32


def _log_large(s: Seq, a: Src, into: Src) -> Src:
    """log(max(a, LARGE)) + log 2, finite for any a >= 0."""
    s.bin(BinOp.MAX, a, LARGE, into)
    s.un(UnOp.LOG, into, into)
    return s.add(into, LN2, into)


def _asinh_abs(s: Seq, a: Src, into: Src) -> Src:
    """a < LARGE: log1p(a + a**2 / (1 + sqrt(1 + a**2))); beyond: log(a) + log 2.
    Registers 0-9."""
    c, q, w, b, m = (s.reg(i) for i in range(5))
    s.bin(BinOp.MIN, a, LARGE, c)
    s.un(UnOp.SQUARE, c, q)
    s.add(q, 1.0, w)
    s.un(UnOp.SQRT, w, w)
    s.add(w, 1.0, w)
    s.div(q, w, q)
    s.add(q, c, q)
    return _log1p_or_log_large(s, a, q, (c, b, m), into)


def _log1p_or_log_large(s: Seq, x: Src, q: Src, scratch: tuple, into: Src) -> Src:
    """log1p(q) where x < LARGE, else log(x) + log 2 (asinh's and acosh's two branches);
    ``scratch`` is three registers below 5 (log1p takes 5-9)."""
    c, b, m = scratch
    with s.frame(5):
        log1p(s, q, q)
    _log_large(s, x, b)
    s.bin(BinOp.LT, x, LARGE, m)
    s.bin(BinOp.GE, x, LARGE, c)
    return s.select(m, q, c, b, into)


def asinh(s: Seq, x: Src, into: Src) -> Src:
    return _odd(s, x, into, _asinh_abs, 0)


def acosh(s: Seq, x: Src, into: Src) -> Src:
    """x < LARGE: log1p((x - 1) + sqrt((x - 1)(x + 1))) (x - 1 exact); beyond: log(x) +
    log 2; NaN below 1. Registers 0-9."""
    c, q, w, b, m = (s.reg(i) for i in range(5))
    s.bin(BinOp.MIN, x, LARGE, c)
    s.sub(c, 1.0, q)
    s.add(c, 1.0, w)
    s.mul(w, q, w)
    s.un(UnOp.SQRT, w, w)
    s.add(q, w, q)
    _log1p_or_log_large(s, x, q, (c, b, m), q)
    s.sub(x, 1.0, w)
    s.bin(BinOp.MIN, w, 0.0, w)
    s.un(UnOp.SQRT, w, w)  # NaN below 1 (-inf too, which the branches miss), else 0
    return s.add(q, w, into)


def _atanh_abs(s: Seq, a: Src, into: Src) -> Src:
    """0.5 * log1p(2a / (1 - a)) for a >= 0 (no cancellation in log1p's 1 + q): inf at 1,
    NaN beyond. Registers 0-6."""
    q, w = s.reg(0), s.reg(1)
    s.mul(a, -1.0, w)
    s.add(w, 1.0, w)  # +0 at a = 1: 2 / +0 = inf
    s.mul(a, 2.0, q)
    s.div(q, w, q)
    with s.frame(2):
        log1p(s, q, q)
    return s.mul(q, 0.5, into)


def atanh(s: Seq, x: Src, into: Src) -> Src:
    return _odd(s, x, into, _atanh_abs, 0)


# ---- two-operand: remainders, powers ----------------------------------------------------------


def _remainder(s: Seq, a: Src, b: Src, into: Src, rounding, side: Src) -> Src:
    """r = a - b * rounding(a / b), the product q * b exact as four products of 12-bit
    halves (Veltkamp's split, which no FMA needs), then the correction of a quotient a / b
    that rounded across an integer: r on the wrong side of 0 (the side of ``side``) moves
    toward it by |b|, and |r| >= |b| moves back by |b|. Exact for integers below 2**24 and
    for floats while |a / b| < 2**24 (measured); NaN for b = 0 (an integer result of 0:
    PyTorch raises), infinite a or b (PyTorch: a for infinite b) and |b| > 8e34 (the
    split's b * 4097 overflows). Registers 0-11."""
    q, g, m, h = s.reg(4), s.reg(5), s.reg(6), s.reg(7)
    s.div(a, b, q)
    rounding(s, q, q)
    bh, bl, qh, ql = s.reg(8), s.reg(9), s.reg(10), s.reg(11)
    for v, hi, lo in ((b, bh, bl), (q, qh, ql)):
        s.mul(v, 4097.0, hi)  # 2**12 + 1
        s.sub(hi, v, lo)
        s.sub(hi, lo, hi)  # v's upper 12 bits
        s.sub(v, hi, lo)  # the rest, exact
    s.mul(qh, bh, g)
    s.sub(a, g, q)  # r, the largest part first
    for x, y in ((qh, bl), (ql, bh), (ql, bl)):
        s.mul(x, y, g)
        s.sub(q, g, q)
    s.sign(side, g, m)  # the sign r must have (or be 0)
    s.un(UnOp.ABS, b, h)
    s.mul(h, g, h)  # |b| toward that side
    s.mul(q, g, m)
    s.bin(BinOp.LT, m, 0.0, m)  # r on the wrong side
    s.mul(m, h, m)
    s.add(q, m, q)
    s.un(UnOp.ABS, q, m)
    s.un(UnOp.ABS, b, g)
    s.bin(BinOp.GE, m, g, m)  # |r| >= |b|
    s.mul(m, h, m)
    return s.sub(q, m, into)


def fmod(s: Seq, a: Src, b: Src, into: Src) -> Src:
    """a - b * trunc(a / b): the sign of a (C's fmod, torch.fmod)."""
    return _remainder(s, a, b, into, trunc, a)


def remainder(s: Seq, a: Src, b: Src, into: Src) -> Src:
    """a - b * floor(a / b), the sign of b (Python's %), computed as PyTorch does: fmod,
    plus b where that is non-zero and of the other sign than b (one rounding).
    Registers 0-14."""
    r, g, h = s.reg(12), s.reg(13), s.reg(14)
    fmod(s, a, b, r)
    s.sign(r, g, h)
    s.sign(b, h, s.reg(0))
    s.mul(g, h, g)
    s.bin(BinOp.LT, g, 0.0, g)
    s.mul(g, b, g)
    return s.add(r, g, into)


def _clamp_max(s: Seq, a: Src, into: Src) -> Src:
    s.bin(BinOp.MIN, a, FLT_MAX, into)
    return s.bin(BinOp.MAX, into, -FLT_MAX, into)


def pow_tensor(s: Seq, x: Src, y: Src, into: Src) -> Src:
    """x ** y = exp(y * log|x|) (log|x| and y clamped finite, so that 0 ** 0 = inf ** 0 =
    (+-1) ** +-inf = 1), times -1 for x < 0 and an odd integer y, NaN for x < 0 and a
    non-integral y; |x| ** y carries exp's argument's rounding: relative error up to
    (|y log x| + 6) * 2**-24 (as kernel op ``pow``). Not as PyTorch: NaN ** 0 and 1 ** NaN
    are NaN (PyTorch: 1), (-0) ** odd negative y is +inf (-inf), (-inf) ** non-integral y
    is NaN (+inf or 0). Registers 0-5."""
    r, n, yi, t, p = (s.reg(i) for i in range(5))
    s.un(UnOp.ABS, x, r)
    s.un(UnOp.LOG, r, r)
    _clamp_max(s, r, r)
    _clamp_max(s, y, t)
    s.mul(r, t, r)
    s.un(UnOp.EXP, r, r)
    s.bin(BinOp.LT, x, 0.0, n)
    with s.frame(3):
        trunc(s, y, yi)
    # parity of the integral part, clamped to +-2**24 (even beyond): |k - 2 round(k / 2)|
    s.bin(BinOp.MIN, yi, 16777216.0, t)
    s.bin(BinOp.MAX, t, -16777216.0, t)
    s.mul(t, 0.5, p)
    s.un(UnOp.COPY, p, s.reg(4, I32), Flag.SATURATE)
    s.mul(s.reg(4, I32), -2.0, p)
    s.add(p, t, p)
    s.un(UnOp.ABS, p, p)
    s.mul(p, n, p)
    s.mul(p, -2.0, p)
    s.add(p, 1.0, p)  # -1 for x < 0 with an odd y, else 1
    s.mul(r, p, r)
    s.bin(BinOp.EQ, yi, y, t)
    s.mul(t, n, t)
    s.sub(n, t, t)  # x < 0 and y not integral
    s.mul(t, -1.0, t)
    s.un(UnOp.SQRT, t, t)  # NaN there, else -0
    return s.add(r, t, into)


@dataclass(frozen=True)
class MathOp:
    """A sequence kernel: its function, number of tensor operands and fp32 registers."""

    fn: Callable[..., Src]
    arity: int
    regs: int


MATH_OPS: dict[str, MathOp] = {
    "erf": MathOp(erf, 1, 4),
    "gelu_erf": MathOp(gelu_erf, 1, 5),
    "sign": MathOp(sign, 1, 1),
    "trunc": MathOp(trunc, 1, 3),
    "floor": MathOp(floor, 1, 4),
    "ceil": MathOp(ceil, 1, 4),
    "round": MathOp(round_, 1, 3),
    "isnan": MathOp(isnan, 1, 1),
    "isinf": MathOp(isinf, 1, 1),
    "expm1": MathOp(expm1, 1, 5),
    "log1p": MathOp(log1p, 1, 5),
    "log2": MathOp(log2, 1, 1),
    "log10": MathOp(log10, 1, 1),
    "sinh": MathOp(sinh, 1, 6),
    "cosh": MathOp(cosh, 1, 3),
    "elu": MathOp(elu, 1, 7),
    "leaky_relu": MathOp(leaky_relu, 1, 2),
    "sin": MathOp(sin, 1, 5),
    "cos": MathOp(cos, 1, 6),
    "tan": MathOp(tan, 1, 7),
    "atan": MathOp(atan, 1, 9),
    "asin": MathOp(asin, 1, 10),
    "acos": MathOp(acos, 1, 10),
    "atan2": MathOp(atan2, 2, 13),
    "asinh": MathOp(asinh, 1, 12),
    "acosh": MathOp(acosh, 1, 10),
    "atanh": MathOp(atanh, 1, 10),
    "fmod": MathOp(fmod, 2, 12),
    "remainder": MathOp(remainder, 2, 15),
    "pow_tensor": MathOp(pow_tensor, 2, 6),
}


def _row_view(lw: Lowering, out: Buf, operands: list[RowOperand], regs: int
              ) -> tuple[Buf, list[RowOperand]]:
    """Elementwise over full operands, the row split is free: a row too long for the
    local SRAM (double-buffered operands and ``regs`` registers) is cut into rows of the
    largest divisor of its length that fits."""
    def per_elem(bufs: list[Buf]) -> int:
        return 2 * sum(b.itemsize for b in bufs) + 2 * out.itemsize + 4 * regs

    bufs = [o.buf for o in operands]
    free = lw.ems[0].sram_free
    if any(o.kind != "full" for o in operands) or per_elem(bufs) * out.cols <= free:
        return out, operands
    fits = free // per_elem(bufs)
    cols = max(d for d in range(1, min(out.cols, fits) + 1) if out.cols % d == 0)
    rows = out.numel // cols
    return (Buf(out.addr, (rows, cols), out.dtype),
            [RowOperand("full", Buf(b.addr, (rows, cols), b.dtype)) for b in bufs])


def math_kernel(lw: Lowering, node: KernelNode) -> str:
    """Any op of ``MATH_OPS``: operands broadcast to the output as full tensors, rows,
    one value per row or scalars; the sequence runs once per chunk."""
    spec = MATH_OPS[node.op]
    out = lw.place(node.output)
    operands = [_operand(lw, name, out.shape) for name in node.inputs[:spec.arity]]
    out, operands = _row_view(lw, out, operands, spec.regs)
    cols = out.cols
    stride = {"full": cols, "row": 0, "col": 1}

    def body(em: CoreEmitter, ch, tmp: int) -> Token:
        s = Seq(em, ch.rows, cols, tmp, ch.ready, Src(ch.out, out.isa_dtype, cols),
                out_flags(out))
        srcs = [Src(addr, o.buf.isa_dtype, stride[o.kind], o.kind == "col")
                for addr, o in zip(ch.ins, operands)]
        spec.fn(s, *srcs, s.out, **dict(node.attrs))
        return s.last

    row_pipeline(lw, out, operands, 4 * spec.regs * cols, body)
    return f"vector sequence {node.op}"
