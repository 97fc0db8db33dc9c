"""Banked SRAM with unaligned row access: the operand SRAM and the accumulator SRAM.

Word address e lives in bank e % B at index e // B (B a power of two). Any B consecutive
words starting at any address fall in distinct banks, so one cycle reads or writes a whole
row (k <= R activations, n <= C weights, n <= C accumulators) at an arbitrary address and
stride: bank b serves element (b - s) mod B of the row starting at s, at index
s // B + (b < s % B); a rotation puts the elements back in order. Addresses wrap modulo
the SRAM's size. Reads have one cycle of latency (synchronous SRAM macros).
"""

from __future__ import annotations

from amaranth import Array, Module, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out


class RotatingBanks(wiring.Component):
    """``banks`` x ``depth`` words of ``width`` bits: one row read port (``r_*``, data the
    next cycle) and one row write port with a per-element mask (``w_*``)."""

    def __init__(self, width: int, banks: int, depth: int) -> None:
        if banks & (banks - 1) or depth & (depth - 1):
            raise ValueError(f"banks and depth must be powers of two, got {banks}, {depth}")
        self.width, self.nbanks, self.depth = width, banks, depth
        self.addr_bits = (banks * depth - 1).bit_length()
        row = data.ArrayLayout(width, banks)
        super().__init__({
            "r_addr": In(self.addr_bits), "r_data": Out(row),
            "w_en": In(1), "w_addr": In(self.addr_bits), "w_data": In(row),
            "w_mask": In(banks),
        })
        self.banks = [memory.Memory(shape=width, depth=depth, init=[]) for _ in range(banks)]

    def elaborate(self, platform) -> Module:
        m = Module()
        B, lg = self.nbanks, (self.nbanks - 1).bit_length()
        r_off = Signal(range(B))  # the read row's offset, for the rotation a cycle later
        m.d.sync += r_off.eq(self.r_addr[:lg])
        r_words = []
        for b, mem in enumerate(self.banks):
            m.submodules[f"bank{b}"] = mem
            rp, wp = mem.read_port(), mem.write_port()
            r_words.append(rp.data)
            m.d.comb += rp.addr.eq(self._index(self.r_addr, b))
            c = Signal(range(B), name=f"w_col{b}")  # the row element bank b receives
            m.d.comb += [
                c.eq(b - self.w_addr[:lg]),
                wp.addr.eq(self._index(self.w_addr, b)),
                wp.data.eq(Array(self.w_data)[c]),
                wp.en.eq(self.w_en & Array(self.w_mask)[c]),
            ]
        words = Array(r_words)
        for c in range(B):
            m.d.comb += self.r_data[c].eq(words[(r_off + c)[:lg]])
        return m

    def _index(self, addr, b: int):
        lg = (self.nbanks - 1).bit_length()
        return addr[lg:] + (b < addr[:lg]) if lg else addr
