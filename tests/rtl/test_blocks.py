"""The building blocks on their own: the int8 PE, the array's skew / de-skew timing, and the
banked SRAM's unaligned row reads and masked writes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402

from chipforge.rtl import FORMATS, ProcessingElement, RotatingBanks, SystolicArray  # noqa: E402
from chipforge.rtl._os_array import OsArray  # noqa: E402


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


@pytest.mark.parametrize("rows,cols,k", [(3, 4, 5), (4, 2, 1)])
def test_os_array_drains_row_r_minus_1_first_after_capture(rows: int, cols: int,
                                                           k: int) -> None:
    """Two blocks back to back: A skewed by row, B by the array; capture in cycle
    N = R + C + k - 2 (the last product's, hand-derived: 1 + (k - 1) + (R - 1) + (C - 1));
    result row R - 1 - s at ``out`` in cycle N + 1 + s, while the next block computes."""
    rng = np.random.default_rng(rows * 10 + k)
    blocks = [(rng.integers(-128, 128, (rows, k)), rng.integers(-128, 128, (k, cols)))
              for _ in range(2)]
    arr = OsArray(FORMATS["int8"], rows, cols)
    n_cyc = rows + cols + k - 2
    seen: dict[int, list[int]] = {}

    async def bench(ctx) -> None:
        for c in range(2 * n_cyc + rows + 1):
            f, t = divmod(c, n_cyc)  # block f's cycle t (its accept cycle is t = 0)
            a, b = blocks[f] if f < 2 else (None, None)
            for i in range(rows):  # A[i, s] in cycle 1 + i + s
                s = t - 1 - i
                ctx.set(arr.a_col[i], int(a[i, s]) & 0xFF if a is not None and 0 <= s < k
                        else 0)
            for j in range(cols):  # B[s, j] in cycle 1 + s (the array skews by column)
                ctx.set(arr.b_row[j], int(b[t - 1, j]) & 0xFF if b is not None
                        and 1 <= t <= k else 0)
            ctx.set(arr.capture, int(t == 0 and c > 0))  # the previous block's cycle N
            seen[c] = [ctx.get(arr.out[j]) for j in range(cols)]
            await ctx.tick()

    _run(arr, bench)
    for f, (a, b) in enumerate(blocks):
        want = a @ b
        for s in range(rows):
            assert seen[(f + 1) * n_cyc + 1 + s] == list(want[rows - 1 - s]), (f, s)


def test_rotating_banks_second_port_and_write_first() -> None:
    """``r2_*`` reads independently of ``r_*``; with ``transparent`` a read of a word being
    written returns the new word."""
    mem = RotatingBanks(8, 4, 4, read_ports=2, transparent=True)

    async def bench(ctx) -> None:
        ctx.set(mem.w_en, 1)
        ctx.set(mem.w_mask, 0b1111)
        for addr in range(0, 16, 4):
            ctx.set(mem.w_addr, addr)
            ctx.set(mem.w_data, [addr + c for c in range(4)])
            await ctx.tick()
        ctx.set(mem.w_addr, 5)  # words 5..8 become 100..103 at this edge
        ctx.set(mem.w_data, [100, 101, 102, 103])
        ctx.set(mem.r_addr, 6)
        ctx.set(mem.r2_addr, 13)
        await ctx.tick()
        ctx.set(mem.w_en, 0)
        assert [ctx.get(mem.r_data[c]) for c in range(4)] == [101, 102, 103, 9]
        assert [ctx.get(mem.r2_data[c]) for c in range(4)] == [13, 14, 15, 0]

    _run(mem, bench)


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


def test_core_flags_a_non_matrix_opcode() -> None:
    """Anything but MM_LW / MM_MUL / MM_OS (here V_ACC) is consumed in one cycle and sets
    ``error``."""
    from chipforge.rtl import CoreConfig, MatrixCore

    cfg = CoreConfig(2, 2)
    core = MatrixCore(cfg)
    word = cfg.layout().const({"opcode": 0x33, "m": 3}).as_value().value

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
