"""The core's output-stationary datapath for MM_OS: A-row feeder, OsArray, drain.

Cycle 0 is the accept cycle (``start``), N = R + C + k - 2 the instruction's last
(``capture``); W = the operand SRAM's banks (>= R, >= C).

* B: the core reads row t of B in cycle t on the operand SRAM's first port (its MM_MUL
  row reader, with ``sram`` = b and ``stride`` = b_stride); it arrives in cycle t + 1
  (``feed`` is high in cycles 1..k) and enters the top of the array masked to n columns.
* A: array row i needs A[i, t] in cycle 1 + i + t, one element per cycle, but A's rows
  are consecutive in SRAM, not its columns. So the second read port fetches W consecutive
  elements of one A row per cycle, round robin: in cycle c it reads row c mod W, chunk
  c div W (elements W * (c div W) onward) if the row is < R. The chunk arrives in cycle
  c + 1 = 1 + i + W * q, exactly when row i needs its first element, and a W-element
  shift register per row hands out the rest, one per cycle. The skew is the read order.
* Drain: after ``capture`` the bottom shadow row carries result row R - 1 - s in cycle
  N + 1 + s; it is written to accumulator row acc + (R - 1 - s) * acc_stride in that cycle
  (rows >= m and columns >= n masked), after reading the old row in the cycle before, so
  the last write (row 0) commits at the end of cycle N + R.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from chipforge.rtl._array import delay
from chipforge.rtl._config import CoreConfig
from chipforge.rtl._os_array import OsArray, os_out_shape


class OsUnit(wiring.Component):
    """``head``/``cur``: the queue head (read in ``start``) and the executing instruction;
    ``a_addr`` drives the operand SRAM's second port, whose data is ``a_data``; ``rd_*``,
    ``we``, ``wr_addr``, ``mask``, ``accumulate`` and ``out`` drive the accumulator SRAM
    while ``draining``."""

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        row = data.ArrayLayout(cfg.fmt.bits, cfg.banks)
        super().__init__({
            "start": In(1), "feed": In(1), "capture": In(1),
            "head": In(cfg.layout()), "cur": In(cfg.layout()),
            "a_data": In(row), "b_data": In(row), "a_addr": Out(cfg.sram_bits),
            "out": Out(data.ArrayLayout(os_out_shape(cfg.fmt), cfg.cols)),
            "rd_en": Out(1), "rd_addr": Out(cfg.acc_bits),
            "we": Out(1), "wr_addr": Out(cfg.acc_bits), "mask": Out(cfg.cols),
            "accumulate": Out(1), "draining": Out(1),
        })
        self.array = OsArray(cfg.fmt, cfg.rows, cfg.cols)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.array = arr = self.array
        self._feed_a(m, arr)
        cur, C = self.cur, self.cfg.cols
        for j in range(C):
            m.d.comb += arr.b_row[j].eq(Mux(self.feed & (j < cur.n), self.b_data[j], 0))
        m.d.comb += [arr.capture.eq(self.capture), self.out.eq(arr.out)]
        self._drain(m)
        return m

    def _feed_a(self, m: Module, arr: OsArray) -> None:
        """Round-robin chunk reads of the A rows and one shift register per array row."""
        cfg, head, cur = self.cfg, self.head, self.cur
        W, shift = cfg.banks, (cfg.itemsize - 1).bit_length()
        r = Signal(range(W))  # the row read in this cycle (chunk q = the base's)
        base, ptr = Signal(cfg.sram_bits), Signal(cfg.sram_bits)  # a + W q, + r a_stride
        with m.If(self.start):
            m.d.sync += [r.eq(1), base.eq(head.a[shift:]),
                         ptr.eq(head.a[shift:] + head.a_stride)]
        with m.Elif(r == W - 1):
            m.d.sync += [r.eq(0), base.eq(base + W), ptr.eq(base + W)]
        with m.Else():
            m.d.sync += [r.eq(r + 1), ptr.eq(ptr + cur.a_stride)]
        m.d.comb += self.a_addr.eq(Mux(self.start, head.a[shift:], ptr))
        loaded = Signal(range(W))  # the row whose chunk is on a_data
        m.d.sync += loaded.eq(Mux(self.start, 0, r))
        for i in range(cfg.rows):
            buf = Signal(data.ArrayLayout(cfg.fmt.bits, W), name=f"a_buf{i}",
                         reset_less=True)
            load = loaded == i
            src = [self.a_data[e] for e in range(W)]
            with m.If(load):
                m.d.sync += [buf[e].eq(src[e + 1]) for e in range(W - 1)]
            with m.Else():
                m.d.sync += [buf[e].eq(buf[e + 1]) for e in range(W - 1)]
            valid = delay(m, self.feed, i, f"a_valid{i}") & (i < cur.m)
            m.d.comb += arr.a_col[i].eq(Mux(valid, Mux(load, src[0], buf[0]), 0))

    def _drain(self, m: Module) -> None:
        """Rows leave bottom first: row R - 1 - s is written in cycle N + 1 + s."""
        cfg, cur, R = self.cfg, self.cur, self.cfg.rows
        first = Signal(cfg.acc_bits)  # row R - 1's address, in the capture cycle
        m.d.comb += first.eq(cur.acc + (R - 1) * cur.acc_stride)
        on, row = Signal(), Signal(range(R))
        addr, stride = Signal(cfg.acc_bits), Signal(cfg.acc_bits)
        rows, cols, acc = Signal(range(R + 1)), Signal(range(cfg.cols + 1)), Signal()
        with m.If(self.capture):
            m.d.sync += [on.eq(1), row.eq(R - 1), addr.eq(first), stride.eq(cur.acc_stride),
                         rows.eq(cur.m), cols.eq(cur.n), acc.eq(cur.accumulate)]
        with m.Elif(on):
            m.d.sync += [row.eq(row - 1), addr.eq(addr - stride)]
            with m.If(row == 0):
                m.d.sync += on.eq(0)
        m.d.comb += [
            self.rd_en.eq(self.capture | (on & (row != 0))),
            self.rd_addr.eq(Mux(self.capture, first, addr - stride)),
            self.we.eq(on & (row < rows)),
            self.wr_addr.eq(addr),
            self.mask.eq((1 << cols) - 1),
            self.accumulate.eq(acc),
            self.draining.eq(on),
        ]
