"""Float datapath pieces: operand decode, exact product into a fixed-point (Kulisch) sum,
one round-to-nearest-even to fp32, and the fp32 accumulator add.

Every float value is an integer significand times a power of two, so sums of products
are exact in a wide enough two's-complement register; rounding happens exactly once, in
:class:`RoundF32`. Special values travel beside the sum as three flags (NaN, +inf, -inf).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from chipforge.rtl._formats import MxFormat

F32_NAN = 0x7FC00000
F32_INF = 0x7F800000
NAN, PINF, NINF = 0, 1, 2  # bit positions of the special-value flags


class Decoded:
    """Fields of one float operand as signals (built combinationally into ``m``)."""

    def __init__(self, m: Module, fmt: MxFormat, x: Value) -> None:
        e = x[fmt.man_bits:fmt.man_bits + fmt.exp_bits]
        mant = x[:fmt.man_bits]
        sub = e == 0
        top = e == (1 << fmt.exp_bits) - 1
        self.sign = x[fmt.bits - 1]
        self.sig = Cat(mant, ~sub)  # the implicit one, except for zero / subnormals
        self.exp = Mux(sub, 1, e)  # subnormals share exponent field 1's scale
        self.zero = sub & (mant == 0)
        if fmt.has_inf:
            self.inf = top & (mant == 0)
            self.nan = top & (mant != 0)
        else:  # e4m3fn: S.1111.111 is NaN, the rest of E=1111 are normal numbers
            self.inf = Const(0)
            self.nan = top & (mant == (1 << fmt.man_bits) - 1)


def product(m: Module, fmt: MxFormat, a: Value, b: Value, width: int) -> tuple[Value, Value]:
    """(a*b as a signed fixed-point value with LSB 2**fmt.lsb_exp, 3 special flags)."""
    da, db = Decoded(m, fmt, a), Decoded(m, fmt, b)
    special = da.inf | da.nan | db.inf | db.nan
    mag = Signal(unsigned(width - 1))
    m.d.comb += mag.eq(Mux(special, 0, (da.sig * db.sig) << (da.exp + db.exp - 2).as_unsigned()))
    neg = da.sign ^ db.sign
    value = Signal(signed(width))
    m.d.comb += value.eq(Mux(neg, -mag, mag))
    nan = da.nan | db.nan | (da.inf & db.zero) | (da.zero & db.inf)
    inf = (da.inf | db.inf) & ~nan
    flags = Signal(3)
    m.d.comb += flags.eq(Cat(nan, inf & ~neg, inf & neg))
    return value, flags


def leading_one(m: Module, v: Value) -> Value:
    """Index of the highest set bit of ``v`` (0 when v == 0), a log-depth mux tree."""
    def tree(bits: Value, base: int) -> tuple[Value, Value]:
        if len(bits) <= 4:  # a small priority chain: the last true condition wins
            pos: Value = Const(base, range(base + len(bits)))
            for i in range(1, len(bits)):
                pos = Mux(bits[i], base + i, pos)
            return bits.any(), pos
        half = len(bits) // 2
        lo_any, lo_pos = tree(bits[:half], base)
        hi_any, hi_pos = tree(bits[half:], base + half)
        # named signals keep the expression a DAG (each is used twice by the parent)
        any_, pos = Signal(name=f"lz_any_{base}"), Signal(range(base + len(bits)),
                                                          name=f"lz_pos_{base}")
        m.d.comb += [any_.eq(lo_any | hi_any), pos.eq(Mux(hi_any, hi_pos, lo_pos))]
        return any_, pos
    _, pos = tree(v, 0)
    out = Signal(range(len(v)))
    m.d.comb += out.eq(pos)
    return out


class RoundF32(wiring.Component):
    """Signed fixed-point ``value`` (LSB 2**lsb_exp) plus special flags -> fp32 bits, RNE.

    Exact zero gives +0 (numpy's BLAS sums start from +0.0); NaN is 0x7FC00000. The
    magnitude is shifted left 24 bits first so the shift that drops bits is always >= 1."""

    def __init__(self, width: int, lsb_exp: int) -> None:
        self.width, self.lsb_exp = width, lsb_exp
        super().__init__({"value": In(signed(width)), "flags": In(3), "bits": Out(32)})

    def elaborate(self, platform) -> Module:
        m = Module()
        w, lsb = self.width + 24, self.lsb_exp - 24
        neg = self.value[-1]
        mag = Signal(w)
        m.d.comb += mag.eq(Mux(neg, -self.value, self.value) << 24)
        p = leading_one(m, mag)
        # drop = max(p - 23, -149 - lsb): keep 24 bits, or stop at the subnormal LSB 2**-149
        floor = -149 - lsb
        drop = Signal(range(max(w, floor + 1) + 1))
        m.d.comb += drop.eq(Mux(p - 23 > floor, p - 23, floor))
        kept = Signal(w)
        m.d.comb += kept.eq(mag >> drop)
        dm1, back = Signal.like(drop), Signal(w)
        m.d.comb += [dm1.eq(drop - 1), back.eq((mag >> dm1) << dm1)]
        guard = (mag >> dm1)[0]
        sticky = back != mag  # some bit below the guard bit is set
        up = guard & (sticky | kept[0])
        rounded = Signal(w + 1)
        m.d.comb += rounded.eq(kept + up)
        # biased exponent of the hidden bit; (E - 1) << 23 plus the hidden bit gives E
        ebits = Signal(signed(len(drop) + 12))
        m.d.comb += ebits.eq(drop + (lsb + 23 + 127 - 1))
        total = Signal(signed(w + 32))
        m.d.comb += total.eq((ebits << 23) + rounded)
        mag_bits = Signal(31)
        with m.If(total >= F32_INF):
            m.d.comb += mag_bits.eq(F32_INF)
        with m.Else():
            m.d.comb += mag_bits.eq(total)
        f = self.flags
        with m.If(f[NAN] | (f[PINF] & f[NINF])):
            m.d.comb += self.bits.eq(F32_NAN)
        with m.Elif(f[PINF] | f[NINF]):
            m.d.comb += self.bits.eq(Cat(Const(F32_INF, 31), f[NINF]))
        with m.Elif(mag == 0):
            m.d.comb += self.bits.eq(0)
        with m.Else():
            m.d.comb += self.bits.eq(Cat(mag_bits, neg))
        return m


F32 = MxFormat("fp32", 32, 8, 23, 127)


class AddF32(wiring.Component):
    """fp32 a + b with one RNE rounding (IEEE 754 addition, subnormals kept): both operands
    are converted exactly to fixed point (LSB 2**-149), added, and rounded by RoundF32."""

    WIDTH = 24 + 254 + 2  # significand << (254 - 1) plus sign and carry

    def __init__(self) -> None:
        super().__init__({"a": In(32), "b": In(32), "sum": Out(32)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.round = rnd = RoundF32(self.WIDTH, -149)
        vals, flags = [], []
        for x in (self.a, self.b):
            d = Decoded(m, F32, x)
            mag = Signal(self.WIDTH - 1)
            m.d.comb += mag.eq(Mux(d.inf | d.nan, 0, d.sig << (d.exp - 1).as_unsigned()))
            v = Signal(signed(self.WIDTH))
            m.d.comb += v.eq(Mux(d.sign, -mag, mag))
            vals.append(v)
            flags.append(Cat(d.nan, d.inf & ~d.sign, d.inf & d.sign))
        m.d.comb += [rnd.value.eq(vals[0] + vals[1]), rnd.flags.eq(flags[0] | flags[1])]
        # an exact zero is -0 only for (-0) + (-0); RoundF32 gives +0
        both_neg_zero = (self.a == 0x80000000) & (self.b == 0x80000000)
        m.d.comb += self.sum.eq(Mux(both_neg_zero, 0x80000000, rnd.bits))
        return m
