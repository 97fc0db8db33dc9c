"""The core's one timing model: CoreTiming's formulas against values derived by hand from
forge-t1's spec (10 tiles of one 128 x 64 array, 512 lanes, 128 special-function lanes,
512 B/cycle SRAM port, 0.9 GHz), the ISA's dispatch onto them, and the kernel schedules."""

from __future__ import annotations

from math import ceil

import pytest

from chipforge.arch import load_chip
from chipforge.isa import SPECIAL_UNOPS, Dtype, Instr, Opcode, UnOp, cycles, latency
from chipforge.machine import (
    BARRIER_CYCLES,
    DEFAULT,
    DMA_ISSUE_CYCLES,
    DRAM_LATENCY_S,
    POW_SEQUENCES,
    SPECIAL_FUNCTIONS,
    VECTOR_PIPELINE_CYCLES,
    CoreTiming,
    VectorPasses,
    vector_passes,
)

T1 = load_chip("forge-t1")
T = CoreTiming.of(T1)


def test_core_timing_from_the_spec() -> None:
    hz = 1.5e9 * DEFAULT.clock_fraction
    share = T1.memory.bandwidth_bytes_per_s * DEFAULT.dram_efficiency / hz / 4
    assert (T.cores, T.rows, T.cols, T.lanes, T.special_lanes) == (4, 128, 64, 512, 128)
    assert T.clock_hz == pytest.approx(hz)
    assert T.dma_bytes_per_cycle == pytest.approx(min(512.0, share))
    assert T.dram_latency_cycles == round(DRAM_LATENCY_S * hz)
    assert T.local_sram_bytes == 16 * 2**20


def test_dtype_packing_widens_or_slows_the_array() -> None:
    assert (T.array_cols("bf16"), T.slowdown("bf16")) == (64, 1.0)
    assert (T.array_cols("fp8_e4m3"), T.slowdown("fp8_e4m3")) == (128, 1.0)  # 2x packed
    assert (T.array_cols("fp32"), T.slowdown("fp32")) == (64, 4.0)  # a quarter rate
    assert T.pack("int32") == 0  # no matrix unit multiplies int32


def test_an_isa_dtype_is_refused_not_silently_missed() -> None:
    with pytest.raises(TypeError, match="dtype names"):
        T.array_cols(Dtype.BF16)


def test_unit_formulas() -> None:
    assert T.load_weights_cycles("bf16") == 128
    assert T.load_weights_cycles("fp32") == 512
    assert T.stream_rows_cycles(100, "bf16") == 100 + 128 + 64 - 2
    assert T.stream_rows_cycles(100, "int8") == 100 + 128 + 128 - 2
    assert T.output_stationary_cycles(300, "fp32") == 4 * (128 + 64 + 300 - 2)
    assert T.dma_cycles(10_000) == DMA_ISSUE_CYCLES + ceil(10_000 / T.dma_bytes_per_cycle)
    assert T.vector_cycles(1000) == VECTOR_PIPELINE_CYCLES + 2  # 1000 over 512 lanes
    assert T.vector_cycles(1000, special=True) == VECTOR_PIPELINE_CYCLES + 8  # 128 lanes
    assert T.barrier_cycles == BARRIER_CYCLES


@pytest.mark.parametrize("instr, expected", [
    (Instr(Opcode.DMA_LOAD, (0, 0, 16, 64, 64, 64), dtype=Dtype.BF16), T.dma_cycles(2048)),
    (Instr(Opcode.DMA_GATHER, (0, 0, 0, 16, 64, 100), dtype=Dtype.BF16),
     T.dma_cycles(2048 + 16 * 4)),  # and the int32 row indices
    (Instr(Opcode.MM_LW, (0, 128, 64, 64), dtype=Dtype.BF16), 128),
    (Instr(Opcode.MM_MUL, (0, 0, 32, 128, 128, 64), dtype=Dtype.FP8_E4M3), 32 + 128 + 128 - 2),
    (Instr(Opcode.MM_OS, (0, 0, 0, 128, 64, 50, 50, 64, 64), dtype=Dtype.BF16),
     128 + 64 + 50 - 2),
    (Instr(Opcode.V_UN, (0, 0, 2, 512, 512, 512), alu=UnOp.EXP), VECTOR_PIPELINE_CYCLES + 8),
    (Instr(Opcode.V_UN, (0, 0, 2, 512, 512, 512), alu=UnOp.RELU), VECTOR_PIPELINE_CYCLES + 2),
    (Instr(Opcode.BARRIER, (0,)), BARRIER_CYCLES),
    (Instr(Opcode.NOP), 1),
])
def test_isa_cycles_dispatch_onto_the_machine(instr: Instr, expected: int) -> None:
    assert cycles(instr, T) == expected


def test_latency_is_the_dram_round_trip_or_the_drain() -> None:
    assert latency(Instr(Opcode.DMA_STORE, (0, 0, 1, 1, 1, 1)), T) == T.dram_latency_cycles
    assert latency(Instr(Opcode.MM_OS, (0, 0, 0, 1, 1, 1, 1, 1, 1)), T) == 128
    assert latency(Instr(Opcode.V_FILL, (0, 1, 1, 1)), T) == 0


def test_special_unops_are_the_machines_special_functions() -> None:
    assert {u.name.lower() for u in SPECIAL_UNOPS} == SPECIAL_FUNCTIONS
    for seq in POW_SEQUENCES.values():  # every step of a sequence is a vector function
        assert all(f.upper() in UnOp.__members__ for f in seq)


@pytest.mark.parametrize("kernel, kw, expected", [
    ("softmax", {}, VectorPasses(4, 1, 1)),
    ("layernorm", {"affine": 2}, VectorPasses(7, 0, 4)),
    ("layernorm", {"affine": 0}, VectorPasses(5, 0, 4)),
    ("rmsnorm", {"affine": 1}, VectorPasses(4, 0, 3)),
    ("reduce", {}, VectorPasses(1, 0, 1)),
    ("pow", {"exponent": 2.0}, VectorPasses(1, 0)),
    ("pow", {"exponent": -2.0}, VectorPasses(1, 1)),  # square, then recip on special lanes
    ("pow", {"exponent": 3.0}, VectorPasses(2, 0)),
    ("pow", {"exponent": 1.7}, VectorPasses(1, 2)),  # log, scale, exp
    ("gelu", {}, VectorPasses(0, 1)),
    ("sigmoid", {}, VectorPasses(0, 1)),
    ("add", {}, VectorPasses(1)),
])
def test_vector_passes(kernel: str, kw: dict, expected: VectorPasses) -> None:
    assert vector_passes(kernel, **kw) == expected
