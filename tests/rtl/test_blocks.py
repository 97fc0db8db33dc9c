"""The building blocks on their own: the int8 PE, the array's skew / de-skew timing, and the
banked SRAM's unaligned row reads and masked writes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402

from chipforge.rtl import FORMATS, ProcessingElement, RotatingBanks, SystolicArray  # noqa: E402


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()


def test_pe_int8_mac_and_weight_shift() -> None:
    pe = ProcessingElement(FORMATS["int8"], 17, 18)

    async def bench(ctx) -> None:
        ctx.set(pe.load, 1)
        ctx.set(pe.w_in, 0x80)  # -128
        await ctx.tick()
        ctx.set(pe.load, 0)
        ctx.set(pe.w_in, 5)  # ignored while load is low
        for a, psum in ((0x80, 0), (127, -65536), (0xFF, 65535)):
            ctx.set(pe.a_in, a)
            ctx.set(pe.psum_in, psum)
            signed_a = a - 256 if a > 127 else a
            assert ctx.get(pe.sum) == psum + signed_a * -128
            await ctx.tick()
            assert ctx.get(pe.psum_out) == psum + signed_a * -128
            assert ctx.get(pe.a_out) == a and ctx.get(pe.w) == 0x80

    _run(pe, bench)


@pytest.mark.parametrize("rows,cols", [(3, 4), (4, 2)])
def test_array_result_row_appears_r_plus_c_minus_2_cycles_later(rows: int, cols: int) -> None:
    rng = np.random.default_rng(rows)
    w = rng.integers(-128, 128, (rows, cols))
    a = rng.integers(-128, 128, (5, rows))
    arr = SystolicArray(FORMATS["int8"], rows, cols)
    seen: dict[int, list[int]] = {}

    async def bench(ctx) -> None:
        ctx.set(arr.load, 1)
        for i in range(rows):  # rows shift up: the first row fed ends at the top
            ctx.set(arr.w_row, [int(v) & 0xFF for v in w[i]])
            await ctx.tick()
        ctx.set(arr.load, 0)
        for t in range(5 + rows + cols):
            row = a[t] if t < 5 else np.zeros(rows, int)
            ctx.set(arr.a_row, [int(v) & 0xFF for v in row])
            seen[t] = [ctx.get(arr.out[j]) for j in range(cols)]
            await ctx.tick()

    _run(arr, bench)
    want = a @ w
    for r in range(5):
        assert seen[r + rows + cols - 2] == list(want[r]), r


def test_rotating_banks_unaligned_rows() -> None:
    banks, depth = 4, 8
    mem = RotatingBanks(8, banks, depth)
    size = banks * depth
    rng = np.random.default_rng(0)
    model = np.zeros(size, np.int64)

    async def bench(ctx) -> None:
        for _ in range(60):
            addr = int(rng.integers(0, size))
            data = rng.integers(0, 256, banks)
            mask = int(rng.integers(0, 1 << banks))
            ctx.set(mem.w_en, 1)
            ctx.set(mem.w_addr, addr)
            ctx.set(mem.w_data, [int(v) for v in data])
            ctx.set(mem.w_mask, mask)
            await ctx.tick()
            for c in range(banks):
                if mask >> c & 1:
                    model[(addr + c) % size] = data[c]
            ctx.set(mem.w_en, 0)
            raddr = int(rng.integers(0, size))
            ctx.set(mem.r_addr, raddr)
            await ctx.tick()
            got = [ctx.get(mem.r_data[c]) for c in range(banks)]
            assert got == [int(model[(raddr + c) % size]) for c in range(banks)]

    _run(mem, bench)


def test_core_flags_an_unimplemented_opcode() -> None:
    """MM_OS (and anything but MM_LW / MM_MUL) is consumed in one cycle and sets ``error``."""
    from chipforge.rtl import CoreConfig, MatrixCore

    cfg = CoreConfig(2, 2)
    core = MatrixCore(cfg)
    word = cfg.layout().const({"opcode": 0x22, "m": 3}).as_value().value

    async def bench(ctx) -> None:
        assert ctx.get(core.error) == 0
        ctx.set(core.instr.valid, 1)
        ctx.set(core.instr.payload.as_value(), word)
        await ctx.tick()
        ctx.set(core.instr.valid, 0)
        for _ in range(3):
            await ctx.tick()
        assert ctx.get(core.error) == 1 and ctx.get(core.busy) == 0

    _run(core, bench)
