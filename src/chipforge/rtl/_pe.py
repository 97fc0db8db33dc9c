"""The processing element of the weight-stationary array.

A PE holds one weight. Each cycle it multiplies the activation arriving from its left
neighbour by that weight, adds the product to the partial sum arriving from above, and
passes the activation right and the sum down (both registered). ``load`` shifts the
weight chain one row up (``w_in`` comes from the PE below): MM_LW fills the array in R
cycles.

int8: the product is exact in 16 bits and the sum is two's complement, wide enough never
to overflow (``psum_out`` grows by one bit per doubling of the rows above it). Floats:
the product is exact and lands in a fixed-point (Kulisch) sum; NaN/inf travel as flags.
"""

from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from chipforge.rtl._float import product
from chipforge.rtl._formats import MxFormat


class ProcessingElement(wiring.Component):
    """One MAC. ``sum``/``flags`` are the combinational result (the bottom row of the array
    feeds them straight to the column output); ``psum_out``/``flags_out`` are registered."""

    def __init__(self, fmt: MxFormat, in_width: int, out_width: int) -> None:
        self.fmt, self.in_width, self.out_width = fmt, in_width, out_width
        ports = {
            "load": In(1), "w_in": In(fmt.bits), "w": Out(fmt.bits),
            "a_in": In(fmt.bits), "a_out": Out(fmt.bits),
            "psum_in": In(signed(in_width)), "psum_out": Out(signed(out_width)),
            "sum": Out(signed(out_width)),
        }
        if fmt.is_float:
            ports.update(flags_in=In(3), flags_out=Out(3), flags=Out(3))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        # datapath registers need no reset: every result is defined by the data fed in
        w, a, psum = (Signal.like(p, reset_less=True) for p in (self.w, self.a_out,
                                                                 self.psum_out))
        m.d.comb += [self.w.eq(w), self.a_out.eq(a), self.psum_out.eq(psum)]
        with m.If(self.load):
            m.d.sync += w.eq(self.w_in)
        m.d.sync += a.eq(self.a_in)
        if self.fmt.is_float:
            prod, flags = product(m, self.fmt, self.a_in, w, self.out_width)
            m.d.comb += self.flags.eq(self.flags_in | flags)
            flags_reg = Signal(3, reset_less=True)
            m.d.sync += flags_reg.eq(self.flags)
            m.d.comb += self.flags_out.eq(flags_reg)
        else:
            prod = Signal(signed(2 * self.fmt.bits))
            m.d.comb += prod.eq(self.a_in.as_signed() * w.as_signed())
        m.d.comb += self.sum.eq(self.psum_in + prod)
        m.d.sync += psum.eq(self.sum)
        return m
