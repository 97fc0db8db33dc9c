"""The rows x cols weight-stationary systolic array with input skew and output de-skew.

Timing (cycle 0 = the cycle ``a_row`` holds row r of A):

* input skew: element i of the row is delayed i cycles, so it meets PE(i, 0) in cycle i;
  activations then move one column right per cycle: PE(i, j) sees A[r, i] in cycle i + j;
* partial sums move one row down per cycle, so PE(R-1, j) completes column j's sum in
  cycle R - 1 + j, combinationally (no register after the bottom row);
* output de-skew: column j is delayed C - 1 - j cycles, so ``out`` holds the whole result
  row r in cycle R + C - 2, the cycle PE(R-1, C-1) computes it.

For floats each column's exact sum is rounded to fp32 at the bottom of the column (one
RoundF32 per column), before the de-skew, so the de-skew registers are 32 bits wide.
"""

from __future__ import annotations

from amaranth import Module, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from chipforge.rtl._float import RoundF32
from chipforge.rtl._formats import MxFormat
from chipforge.rtl._pe import ProcessingElement


def delay(m: Module, value: Value, cycles: int, name: str) -> Value:
    """``value`` delayed by ``cycles`` registers."""
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i + 1}", reset_less=True)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def out_shape(fmt: MxFormat, rows: int):
    """A column result: the exact int32-bound sum for int8, fp32 bits for floats."""
    return 32 if fmt.is_float else signed(fmt.sum_width(rows))


class SystolicArray(wiring.Component):
    """``load`` shifts ``w_row`` into the bottom row of the weight chain (rows shift up);
    ``a_row`` is one row of activations (already masked to k elements); ``out`` is one
    de-skewed result row, R + C - 2 cycles after its ``a_row``."""

    def __init__(self, fmt: MxFormat, rows: int, cols: int) -> None:
        self.fmt, self.rows, self.cols = fmt, rows, cols
        super().__init__({
            "load": In(1),
            "w_row": In(data.ArrayLayout(fmt.bits, cols)),
            "a_row": In(data.ArrayLayout(fmt.bits, rows)),
            "out": Out(data.ArrayLayout(out_shape(fmt, rows), cols)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt, R, C = self.fmt, self.rows, self.cols
        pe = [[ProcessingElement(fmt, fmt.sum_width(i) if i else 1, fmt.sum_width(i + 1))
               for j in range(C)] for i in range(R)]
        for i in range(R):
            a = delay(m, self.a_row[i], i, f"skew{i}")
            for j in range(C):
                p = pe[i][j]
                m.submodules[f"pe_{i}_{j}"] = p
                m.d.comb += [p.load.eq(self.load), p.a_in.eq(a)]
                a = p.a_out
                below = pe[i + 1][j].w if i + 1 < R else self.w_row[j]
                m.d.comb += p.w_in.eq(below)
                if i:
                    m.d.comb += p.psum_in.eq(pe[i - 1][j].psum_out)
                    if fmt.is_float:
                        m.d.comb += p.flags_in.eq(pe[i - 1][j].flags_out)
        for j in range(C):
            bottom = pe[R - 1][j]
            if fmt.is_float:
                rnd = RoundF32(fmt.sum_width(R), fmt.lsb_exp)
                m.submodules[f"round_{j}"] = rnd
                m.d.comb += [rnd.value.eq(bottom.sum), rnd.flags.eq(bottom.flags)]
                col = rnd.bits
            else:
                col = bottom.sum
            m.d.comb += self.out[j].eq(delay(m, col, C - 1 - j, f"deskew{j}"))
        return m
