"""The matrix core: instruction queue, controller, operand SRAM, array, accumulator SRAM.

The controller accepts the queue head (``accepted`` strobes in that cycle, call it cycle
0) and runs it for exactly the ISA's cost N (``chipforge.isa.cycles``); ``done`` strobes
in cycle N, whose clock edge commits the instruction's last accumulator write (MM_MUL) or
weight shift (MM_LW), or the last MAC of an MM_OS, whose results then drain into the
accumulators in cycles N + 1 .. N + R (``os_we``; the ISA's ``latency``). The next
instruction is accepted in that same cycle N, so a full queue runs back to back at the
ISA's throughput.

* MM_LW (N = R): the read of weight row 0 is issued in cycle 0 straight from the queue
  head; row i arrives in cycle i + 1 and shifts into the array (rows >= k and columns
  >= n as zeros), so the last shift commits at the end of cycle R.
* MM_MUL (N = m + R + C - 2): A row r is read in cycle r, enters the array in cycle
  r + 1 masked to k elements, and its de-skewed result is at the array's output in cycle
  r + R + C - 1, where the accumulator row (read one cycle earlier) is added or
  overwritten; row m - 1 is written in cycle m + R + C - 2 = N.
* MM_OS (N = R + C + k - 2): see :mod:`chipforge.rtl._os_unit`. Its drain never meets
  another instruction's accumulator traffic: the next MM_MUL reads from cycle R + C - 2 >=
  R after its accept and the next MM_OS's drain starts at its own N >= R; a read in the
  cycle of the drain's last write sees the new word (the accumulator SRAM is write-first).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from chipforge.isa import Opcode
from chipforge.rtl._array import SystolicArray
from chipforge.rtl._config import M_BITS, CoreConfig
from chipforge.rtl._float import AddF32
from chipforge.rtl._os_unit import OsUnit
from chipforge.rtl._sram import RotatingBanks


class MatrixCore(wiring.Component):
    """``instr``: the instruction stream (ready/valid). ``h_*``: host ports that fill the
    operand SRAM and read/write accumulators (use ``h_acc_*`` only while ``busy`` is low:
    it stays high until the last MM_OS drain is written)."""

    def __init__(self, cfg: CoreConfig) -> None:
        self.cfg = cfg
        B, BA = cfg.banks, cfg.acc_banks
        super().__init__({
            "instr": In(stream.Signature(cfg.layout())),
            "accepted": Out(1), "done": Out(1), "busy": Out(1), "error": Out(1),
            "acc_we": Out(1), "os_we": Out(1), "w_load": Out(1),
            "h_sram_en": In(1), "h_sram_addr": In(cfg.sram_bits),
            "h_sram_data": In(data.ArrayLayout(cfg.fmt.bits, B)), "h_sram_mask": In(B),
            "h_acc_en": In(1), "h_acc_addr": In(cfg.acc_bits),
            "h_acc_data": In(data.ArrayLayout(32, BA)), "h_acc_mask": In(BA),
            "h_acc_raddr": In(cfg.acc_bits), "h_acc_rdata": Out(data.ArrayLayout(32, BA)),
        })
        self.sram = RotatingBanks(cfg.fmt.bits, B, cfg.sram_words // B, read_ports=2)
        self.acc = RotatingBanks(32, BA, cfg.acc_words // BA, transparent=True)
        self.array = SystolicArray(cfg.fmt, cfg.rows, cfg.cols)
        self.os_unit = OsUnit(cfg)

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, R, C = self.cfg, self.cfg.rows, self.cfg.cols
        layout = cfg.layout()
        m.submodules.queue = q = fifo.SyncFIFO(width=layout.size, depth=cfg.fifo_depth)
        m.submodules.sram = sram = self.sram
        m.submodules.acc = acc = self.acc
        m.submodules.array = arr = self.array
        m.submodules.os_unit = osu = self.os_unit
        m.d.comb += [q.w_data.eq(self.instr.payload), q.w_en.eq(self.instr.valid),
                     self.instr.ready.eq(q.w_rdy)]
        head = data.View(layout, q.r_data)
        cur = Signal(layout)  # the instruction being executed

        # --- sequencing: cycle t = 1..N after the accept cycle ---------------------------
        busy, t, n_cyc = Signal(), Signal(M_BITS + 1), Signal(M_BITS + 1)
        last = busy & (t == n_cyc)
        accept = (~busy | last) & q.r_rdy
        is_lw, is_mul = cur.opcode == Opcode.MM_LW, cur.opcode == Opcode.MM_MUL
        is_os = cur.opcode == Opcode.MM_OS
        head_lw, head_mul = head.opcode == Opcode.MM_LW, head.opcode == Opcode.MM_MUL
        head_os = head.opcode == Opcode.MM_OS
        m.d.comb += [q.r_en.eq(accept), self.accepted.eq(accept), self.done.eq(last),
                     self.busy.eq(busy | osu.draining)]
        with m.If(accept):
            skew = R + C - 2
            cost = Mux(head_lw, R, Mux(head_mul, head.m + skew,
                                       Mux(head_os, head.k + skew, 1)))  # else: error
            m.d.sync += [busy.eq(1), t.eq(1), cur.eq(head), n_cyc.eq(cost)]
            with m.If(~head_lw & ~head_mul & ~head_os):
                m.d.sync += self.error.eq(1)  # not a matrix-unit instruction
        with m.Elif(busy):
            m.d.sync += t.eq(t + 1)
            with m.If(last):
                m.d.sync += busy.eq(0)

        # --- operand reads: row 0 in the accept cycle, then one row per cycle -------------
        shift = (cfg.itemsize - 1).bit_length()
        row_addr = Signal(cfg.sram_bits)
        with m.If(accept):
            m.d.sync += row_addr.eq(head.sram[shift:] + head.stride)
        with m.Else():
            m.d.sync += row_addr.eq(row_addr + cur.stride)
        m.d.comb += sram.r_addr.eq(Mux(accept, head.sram[shift:], row_addr))
        m.d.comb += [sram.w_en.eq(self.h_sram_en), sram.w_addr.eq(self.h_sram_addr),
                     sram.w_data.eq(self.h_sram_data), sram.w_mask.eq(self.h_sram_mask)]

        # --- MM_LW: row t - 1 shifts in during cycle t ------------------------------------
        w_n = Signal(range(C + 1))  # the loaded tile's n: MM_MUL writes that many columns
        with m.If(accept & head_lw):
            m.d.sync += w_n.eq(head.n)
        load = busy & is_lw
        m.d.comb += [arr.load.eq(load), self.w_load.eq(load)]
        for j in range(C):
            keep = (t - 1 < cur.k) & (j < cur.n)
            m.d.comb += arr.w_row[j].eq(Mux(keep, sram.r_data[j], 0))

        # --- MM_MUL: row t - 1 enters the array in cycle t, masked to k ------------------
        a_valid = busy & is_mul & (t <= cur.m)
        for i in range(R):
            m.d.comb += arr.a_row[i].eq(Mux(a_valid & (i < cur.k), sram.r_data[i], 0))

        # --- MM_OS: B rows on the first port, A row chunks on the second, then the drain --
        m.d.comb += [osu.start.eq(accept & head_os), osu.head.eq(head), osu.cur.eq(cur),
                     osu.feed.eq(busy & is_os & (t <= cur.k)), osu.capture.eq(last & is_os),
                     osu.a_data.eq(sram.r2_data), osu.b_data.eq(sram.r_data),
                     sram.r2_addr.eq(osu.a_addr)]

        # --- accumulators: read row r in cycle r + R + C - 2, write it the next cycle -----
        first = R + C - 2
        rd_en = busy & is_mul & (t >= first) & (t < first + cur.m)
        wr_en = busy & is_mul & (t > first)
        acc_rd, acc_wr = Signal(cfg.acc_bits), Signal(cfg.acc_bits)
        with m.If(accept):  # the accept cycle may be the previous MUL's last write
            m.d.sync += [acc_rd.eq(head.acc), acc_wr.eq(head.acc)]
        with m.Else():
            with m.If(rd_en):
                m.d.sync += acc_rd.eq(acc_rd + cur.acc_stride)
            with m.If(wr_en):
                m.d.sync += acc_wr.eq(acc_wr + cur.acc_stride)
        # an MM_OS drain and an MM_MUL never use the accumulator ports in the same cycle
        os_we = osu.we
        accumulate = Mux(os_we, osu.accumulate, cur.accumulate)
        row = Signal(data.ArrayLayout(32, cfg.acc_banks))
        for j in range(C):
            new = Mux(os_we, osu.out[j], arr.out[j])
            m.d.comb += row[j].eq(self._combine(m, j, accumulate, acc.r_data[j], new))
        m.d.comb += [
            acc.r_addr.eq(Mux(rd_en, acc_rd, Mux(osu.rd_en, osu.rd_addr, self.h_acc_raddr))),
            self.h_acc_rdata.eq(acc.r_data),
            acc.w_en.eq(wr_en | os_we | self.h_acc_en),
            acc.w_addr.eq(Mux(wr_en, acc_wr, Mux(os_we, osu.wr_addr, self.h_acc_addr))),
            acc.w_data.eq(Mux(wr_en | os_we, row.as_value(), self.h_acc_data.as_value())),
            acc.w_mask.eq(Mux(wr_en, (1 << w_n) - 1, Mux(os_we, osu.mask, self.h_acc_mask))),
            self.acc_we.eq(wr_en), self.os_we.eq(os_we),
        ]
        return m

    def _combine(self, m: Module, j: int, accumulate, old, new):
        """Column j's accumulator word: ``new`` or ``old + new`` (int32 wrap / fp32 RNE)."""
        if self.cfg.fmt.is_float:
            add = AddF32()
            m.submodules[f"acc_add{j}"] = add
            m.d.comb += [add.a.eq(old), add.b.eq(new)]
            return Mux(accumulate, add.sum, new)
        return Mux(accumulate, old.as_signed() + new, new)[:32]
