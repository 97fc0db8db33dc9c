"""Banked SRAM with unaligned row access: the operand SRAM and the accumulator SRAM.

Word address e lives in bank e % B at index e // B (B a power of two). Any B consecutive
words starting at any address fall in distinct banks, so one cycle reads or writes a whole
row (k <= R activations, n <= C weights, n <= C accumulators) at an arbitrary address and
stride: bank b serves element (b - s) mod B of the row starting at s, at index
s // B + (b < s % B); a rotation puts the elements back in order. Addresses wrap modulo
the SRAM's size. Reads have one cycle of latency (synchronous SRAM macros).

Options: ``read_ports=2`` adds a second, independent row read port (``r2_*``: the
operand SRAM's, for MM_OS's A rows beside its B rows); ``transparent`` makes a read of a
word written in the same cycle return the new data (write-first: the accumulator SRAM,
where one instruction's first read may meet the previous one's last write).
"""

from __future__ import annotations

from amaranth import Array, Module, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out


class RotatingBanks(wiring.Component):
    """``banks`` x ``depth`` words of ``width`` bits: one row read port (``r_*``, data the
    next cycle; ``r2_*`` a second one) and one row write port with a per-element mask
    (``w_*``)."""

    def __init__(self, width: int, banks: int, depth: int, read_ports: int = 1,
                 transparent: bool = False) -> None:
        if banks & (banks - 1) or depth & (depth - 1):
            raise ValueError(f"banks and depth must be powers of two, got {banks}, {depth}")
        self.width, self.nbanks, self.depth = width, banks, depth
        self.read_ports, self.transparent = read_ports, transparent
        self.addr_bits = (banks * depth - 1).bit_length()
        row = data.ArrayLayout(width, banks)
        ports = {
            "r_addr": In(self.addr_bits), "r_data": Out(row),
            "w_en": In(1), "w_addr": In(self.addr_bits), "w_data": In(row),
            "w_mask": In(banks),
        }
        if read_ports == 2:
            ports.update(r2_addr=In(self.addr_bits), r2_data=Out(row))
        super().__init__(ports)
        self.banks = [memory.Memory(shape=width, depth=depth, init=[]) for _ in range(banks)]

    def elaborate(self, platform) -> Module:
        m = Module()
        B, lg = self.nbanks, (self.nbanks - 1).bit_length()
        reads = [(self.r_addr, self.r_data)]
        if self.read_ports == 2:
            reads.append((self.r2_addr, self.r2_data))
        words: list[list] = [[] for _ in reads]
        for b, mem in enumerate(self.banks):
            m.submodules[f"bank{b}"] = mem
            wp = mem.write_port()
            for p, (addr, _) in enumerate(reads):
                rp = mem.read_port(transparent_for=(wp,) if self.transparent else ())
                words[p].append(rp.data)
                m.d.comb += rp.addr.eq(self._index(addr, b))
            c = Signal(range(B), name=f"w_col{b}")  # the row element bank b receives
            m.d.comb += [
                c.eq(b - self.w_addr[:lg]),
                wp.addr.eq(self._index(self.w_addr, b)),
                wp.data.eq(Array(self.w_data)[c]),
                wp.en.eq(self.w_en & Array(self.w_mask)[c]),
            ]
        for p, (addr, out) in enumerate(reads):
            off = Signal(range(B), name=f"r{p}_off")  # the row's offset, for the rotation
            m.d.sync += off.eq(addr[:lg])
            arr = Array(words[p])
            for c in range(B):
                m.d.comb += out[c].eq(arr[(off + c)[:lg]])
        return m

    def _index(self, addr, b: int):
        lg = (self.nbanks - 1).bit_length()
        return addr[lg:] + (b < addr[:lg]) if lg else addr
