"""The rows x cols output-stationary array: each PE keeps one output and accumulates it in
place, and a shadow register per PE drains the finished outputs while the next block
computes.

Timing (cycle 1 = the first cycle operands arrive): ``a_col[i]`` carries A[i, t] in cycle
1 + i + t (the feeder skews A by row) and moves one column right per cycle; ``b_row[j]``
carries B[t, j] in cycle 1 + t, is delayed j cycles here (column skew) and moves one row
down per cycle. So PE(i, j) multiplies A[i, t] by B[t, j] in cycle 1 + t + i + j.

``capture`` (the instruction's last cycle, when PE(R-1, C-1) takes its last product)
copies every PE's sum including this cycle's product into its shadow register and clears
the sum, so the next block accumulates from zero. In every other cycle the shadow
registers shift one row down; ``out`` is the bottom row's: row R-1 of the captured block in the
cycle after ``capture``, row 0 R cycles after it. For floats the shadow holds the exact
(Kulisch) sum and flags, rounded once to fp32 at the bottom of each column.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from chipforge.rtl._array import delay
from chipforge.rtl._float import RoundF32, product
from chipforge.rtl._formats import MxFormat

K_BITS = 16  # MM_OS's k: up to 65535 products per output on the RTL


def os_sum_width(fmt: MxFormat) -> int:
    """A PE's sum: int32 (wrapping adds are exact mod 2^32, as the ISA's int32 results);
    for floats the Kulisch width of (2^K_BITS - 1) products, which never overflows."""
    return 32 if not fmt.is_float else fmt.sum_width((1 << K_BITS) - 1)


class OsProcessingElement(wiring.Component):
    """One MAC with its output in place: ``a``/``b`` pass right/down (registered); ``sh_in``
    is the shadow of the PE above, ``sh`` this PE's (``shf*``: their float flags)."""

    def __init__(self, fmt: MxFormat) -> None:
        self.fmt, self.width = fmt, os_sum_width(fmt)
        ports = {
            "capture": In(1),
            "a_in": In(fmt.bits), "a_out": Out(fmt.bits),
            "b_in": In(fmt.bits), "b_out": Out(fmt.bits),
            "sh_in": In(signed(self.width)), "sh": Out(signed(self.width)),
        }
        if fmt.is_float:
            ports.update(shf_in=In(3), shf=Out(3))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b, sh = (Signal.like(p, reset_less=True) for p in (self.a_out, self.b_out, self.sh))
        acc = Signal(signed(self.width))  # reset: the first block starts from zero
        m.d.comb += [self.a_out.eq(a), self.b_out.eq(b), self.sh.eq(sh)]
        m.d.sync += [a.eq(self.a_in), b.eq(self.b_in)]
        if self.fmt.is_float:
            prod, pflags = product(m, self.fmt, self.a_in, self.b_in, self.width)
        else:
            prod = self.a_in.as_signed() * self.b_in.as_signed()
        nxt = Signal(signed(self.width))
        m.d.comb += nxt.eq(acc + prod)  # int8: truncated to 32 bits, the int32 wrap
        with m.If(self.capture):
            m.d.sync += [sh.eq(nxt), acc.eq(0)]
        with m.Else():
            m.d.sync += [sh.eq(self.sh_in), acc.eq(nxt)]
        if self.fmt.is_float:
            flags, shf = Signal(3), Signal(3, reset_less=True)
            m.d.comb += self.shf.eq(shf)
            with m.If(self.capture):
                m.d.sync += [shf.eq(flags | pflags), flags.eq(0)]
            with m.Else():
                m.d.sync += [shf.eq(self.shf_in), flags.eq(flags | pflags)]
        return m


def os_out_shape(fmt: MxFormat):
    """A drained result: fp32 bits for floats, the int32 sum for int8."""
    return 32 if fmt.is_float else signed(32)


class OsArray(wiring.Component):
    """``a_col``: one A element per row (already skewed, zero when not valid); ``b_row``:
    one B row (zero when not valid); ``capture``: see the module docstring; ``out``: the
    bottom shadow row, as results (fp32 bits or int32)."""

    def __init__(self, fmt: MxFormat, rows: int, cols: int) -> None:
        self.fmt, self.rows, self.cols = fmt, rows, cols
        super().__init__({
            "capture": In(1),
            "a_col": In(data.ArrayLayout(fmt.bits, rows)),
            "b_row": In(data.ArrayLayout(fmt.bits, cols)),
            "out": Out(data.ArrayLayout(os_out_shape(fmt), cols)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt, R, C = self.fmt, self.rows, self.cols
        pe = [[OsProcessingElement(fmt) for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                p = pe[i][j]
                m.submodules[f"os_{i}_{j}"] = p
                m.d.comb += p.capture.eq(self.capture)
                left = pe[i][j - 1].a_out if j else self.a_col[i]
                m.d.comb += p.a_in.eq(left)
                top = pe[i - 1][j].b_out if i else delay(m, self.b_row[j], j, f"bskew{j}")
                m.d.comb += p.b_in.eq(top)
                if i:  # row 0's shadow takes zeros from above
                    m.d.comb += p.sh_in.eq(pe[i - 1][j].sh)
                    if fmt.is_float:
                        m.d.comb += p.shf_in.eq(pe[i - 1][j].shf)
        for j in range(C):
            bottom = pe[R - 1][j]
            if fmt.is_float:
                rnd = RoundF32(bottom.width, fmt.lsb_exp)
                m.submodules[f"os_round_{j}"] = rnd
                m.d.comb += [rnd.value.eq(bottom.sh), rnd.flags.eq(bottom.shf)]
                m.d.comb += self.out[j].eq(rnd.bits)
            else:
                m.d.comb += self.out[j].eq(bottom.sh)
        return m
