"""DMA_LOAD / DMA_STORE strided copies, DMA_GATHER, and their range errors."""

from __future__ import annotations

import numpy as np
import pytest
from simkit import CHIP, fence, ins, program, sram

from chipforge.isa import Dtype, Flag, Opcode
from chipforge.numerics import NP_DTYPE, cast
from chipforge.sim import SimError, simulate

RNG = np.random.default_rng(11)
BF = Dtype.BF16


def test_strided_load_then_strided_store_moves_a_sub_block():
    x = cast(RNG.standard_normal((6, 10)).astype(np.float32), "bf16")
    # rows 1..4, cols 2..8 of x (DRAM row stride 10) -> SRAM rows 16 elements apart
    load = ins(Opcode.DMA_LOAD, 0 + (1 * 10 + 2) * 2, 256, 4, 7, 10, 16, dtype=BF)
    # SRAM block -> out (4 x 7) at DRAM 4096, dense rows of 7
    store = ins(Opcode.DMA_STORE, 4096, 256, 4, 7, 7, 16, dtype=BF)
    prog = program([fence(load, store)], {"x": (0, (6, 10), "bf16"),
                                          "out": (4096, (4, 7), "bf16")}, ("out",))
    res = simulate(prog, CHIP, {"x": x})
    assert np.array_equal(res.outputs["out"].view(np.uint16), x[1:5, 2:9].view(np.uint16))
    got = sram(res, 256, 4 * 16, np.uint16).reshape(4, 16)
    assert np.array_equal(got[:, :7], x[1:5, 2:9].view(np.uint16))
    assert not got[:, 7:].any()  # bytes between the rows are untouched


def test_transposing_load():
    if not hasattr(Flag, "TRANSPOSE"):
        pytest.skip("this ISA has no DMA_LOAD transpose")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    load = ins(Opcode.DMA_LOAD, 0, 64, 3, 4, 4, 8, dtype=Dtype.FP32, flags=Flag.TRANSPOSE)
    res = simulate(program([fence(load)], {"x": (0, (3, 4), "fp32")}), CHIP, {"x": x})
    got = sram(res, 64, 4 * 8, np.float32).reshape(4, 8)
    assert np.array_equal(got[:, :3], x.T)


def test_gather_copies_table_rows_by_int32_index():
    table = RNG.standard_normal((50, 6)).astype(np.float32)
    idx = np.array([7, 0, 49, 7, 3], np.int32)
    code = fence(ins(Opcode.DMA_LOAD, 4096, 0, 1, 5, 5, 5, dtype=Dtype.INT32),
                 ins(Opcode.DMA_GATHER, 0, 128, 0, 5, 6, 50, dtype=Dtype.FP32))
    prog = program([code], {"table": (0, (50, 6), "fp32"), "idx": (4096, (5,), "int32")})
    res = simulate(prog, CHIP, {"table": table, "idx": idx})
    assert np.array_equal(sram(res, 128, 30, np.float32).reshape(5, 6), table[idx])


def test_gather_index_out_of_range_names_core_pc_and_index():
    idx = np.array([1, 50], np.int32)
    code = fence(ins(Opcode.DMA_LOAD, 4096, 0, 1, 2, 2, 2, dtype=Dtype.INT32),
                 ins(Opcode.DMA_GATHER, 0, 128, 0, 2, 6, 50, dtype=Dtype.FP32))
    prog = program([code], {"table": (0, (50, 6), "fp32"), "idx": (4096, (2,), "int32")})
    with pytest.raises(SimError, match=r"^core 0 pc 2 DMA_GATHER: index\[1\] = 50, expected "
                                       r"0 <= index < table_rows = 50$"):
        simulate(prog, CHIP, {"table": np.zeros((50, 6), np.float32), "idx": idx})


def test_out_of_range_sram_and_dram_regions():
    big = ins(Opcode.DMA_LOAD, 0, (4 << 20) - 8, 1, 16, 16, 16, dtype=Dtype.INT8)
    with pytest.raises(SimError, match=r"core 0 pc 0 DMA_LOAD: sram=4194296: 1x16 uint8 .*"
                                       r"expected within the 4194304-byte SRAM of core 0"):
        simulate(program([[big]]), CHIP)
    far = ins(Opcode.DMA_STORE, (1 << 20) - 4, 0, 2, 4, 4, 4, dtype=Dtype.INT8)
    with pytest.raises(SimError, match=r"DMA_STORE: dram=1048572: 2x4 .* 1048576-byte DRAM"):
        simulate(program([[far]]), CHIP)


def test_every_dtype_is_moved_bit_exactly():
    for name, dt in NP_DTYPE.items():
        x = RNG.integers(0, 256, 64, dtype=np.uint8).view(dt)
        n = x.size
        code = fence(ins(Opcode.DMA_LOAD, 0, 0, 1, n, n, n, dtype=Dtype[name.upper()]),
                     ins(Opcode.DMA_STORE, 512, 0, 1, n, n, n, dtype=Dtype[name.upper()]))
        prog = program([code], {"x": (0, (n,), name), "y": (512, (n,), name)}, ("y",))
        res = simulate(prog, CHIP, {"x": x})
        assert res.outputs["y"].tobytes() == x.tobytes(), name


def test_scatter_writes_rows_in_order_last_repeat_wins():
    if not hasattr(Opcode, "DMA_SCATTER"):
        pytest.skip("this ISA has no DMA_SCATTER")
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    idx = np.array([5, 1, 5, 0], np.int32)
    code = fence(ins(Opcode.DMA_LOAD, 4096, 0, 1, 4, 4, 4, dtype=Dtype.INT32),
                 ins(Opcode.DMA_LOAD, 8192, 64, 4, 3, 3, 3, dtype=Dtype.FP32),
                 ins(Opcode.DMA_SCATTER, 0, 64, 0, 4, 3, 8, dtype=Dtype.FP32))
    prog = program([code], {"table": (0, (8, 3), "fp32"), "idx": (4096, (4,), "int32"),
                            "rows": (8192, (4, 3), "fp32")}, ("table",))
    res = simulate(prog, CHIP, {"idx": idx, "rows": rows,
                                "table": np.full((8, 3), -1, np.float32)})
    want = np.full((8, 3), -1, np.float32)
    want[1], want[0], want[5] = rows[1], rows[3], rows[2]
    assert np.array_equal(res.outputs["table"], want)
