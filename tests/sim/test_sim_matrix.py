"""MM_LW / MM_MUL / MM_OS against torch (float64 on bf16-valued inputs), int8 wrap,
ACCUMULATE, fp8 packing and the matrix unit's errors."""

from __future__ import annotations

import numpy as np
import pytest
from simkit import A_SRAM, B_SRAM, T, acc, ins, run_on_sram

from chipforge.isa import Dtype, Flag, Opcode
from chipforge.machine import ACCUMULATOR_WORDS
from chipforge.numerics import cast, matmul_acc
from chipforge.sim import SimError

RNG = np.random.default_rng(5)
BF, ACCF = Dtype.BF16, Flag.ACCUMULATE


def bf16(shape) -> np.ndarray:
    return cast(RNG.standard_normal(shape).astype(np.float32), "bf16")


def test_mm_mul_bf16_matches_torch_float64_rounded_once():
    torch = pytest.importorskip("torch")
    a, w = bf16((40, 96)), bf16((96, 128))
    body = [ins(Opcode.MM_LW, B_SRAM, 96, 128, 128, dtype=BF),
            ins(Opcode.MM_MUL, 100, A_SRAM, 40, 96, 96, 128, dtype=BF)]
    res = run_on_sram(body, a, w)
    ta = torch.from_numpy(a.astype(np.float32)).double()
    tw = torch.from_numpy(w.astype(np.float32)).double()
    # k = 96 normal values: the float64 sums are exact (numerics' bound), so one rounding
    want = (ta @ tw).float().numpy()
    assert np.array_equal(acc(res, 100, 40 * 128).reshape(40, 128), want)


def test_accumulate_adds_in_float32_and_strides_place_rows():
    a1, a2, w = bf16((8, 16)), bf16((8, 16)), bf16((16, 32))
    body = [ins(Opcode.MM_LW, B_SRAM, 16, 32, 32, dtype=BF),
            ins(Opcode.MM_MUL, 0, A_SRAM, 8, 16, 16, 64, dtype=BF),
            ins(Opcode.MM_MUL, 0, A_SRAM + 8 * 16 * 2, 8, 16, 16, 64, dtype=BF, flags=ACCF)]
    res = run_on_sram(body, np.concatenate([a1, a2]), w)
    got = acc(res, 0, 8 * 64).reshape(8, 64)
    assert np.array_equal(got[:, :32], matmul_acc(a1, w) + matmul_acc(a2, w))
    assert not got[:, 32:].any()


def test_int8_accumulates_int32_and_wraps():
    a = np.full((2, 128), 127, np.int8)
    w = np.full((128, 4), 127, np.int8)
    n = 128 * 127 * 127  # 2,064,512 per MM_MUL
    body = [ins(Opcode.MM_LW, B_SRAM, 128, 4, 4, dtype=Dtype.INT8)]
    body += [ins(Opcode.MM_MUL, 0, A_SRAM, 2, 128, 128, 4, dtype=Dtype.INT8,
                 flags=ACCF if i else Flag.NONE) for i in range(1100)]
    res = run_on_sram(body, a, w)
    want = (1100 * n + 2**31) % 2**32 - 2**31  # two's complement wrap of 2.27e9
    assert acc(res, 0, 8, np.int32).tolist() == [want] * 8


def test_mm_os_and_fp8_packing_doubles_the_columns():
    assert T.array_cols("fp8_e4m3") == 2 * T.cols
    a = cast(RNG.standard_normal((16, 64)).astype(np.float32), "fp8_e4m3")
    b = cast(RNG.standard_normal((64, 256)).astype(np.float32), "fp8_e4m3")
    body = [ins(Opcode.MM_OS, 0, A_SRAM, B_SRAM, 16, 256, 64, 64, 256, 256,
                dtype=Dtype.FP8_E4M3)]
    res = run_on_sram(body, a, b)
    assert np.array_equal(acc(res, 0, 16 * 256).reshape(16, 256), matmul_acc(a, b))


def test_v_acc_reads_int32_accumulators_and_saturates_to_int8():
    a = np.full((1, 4), 100, np.int8)
    w = np.eye(4, dtype=np.int8) * np.int8(3)
    body = [ins(Opcode.MM_LW, B_SRAM, 4, 4, 4, dtype=Dtype.INT8),
            ins(Opcode.MM_MUL, 0, A_SRAM, 1, 4, 4, 4, dtype=Dtype.INT8),
            ins(Opcode.V_ACC, 0x20000, 0, 1, 4, 4, 4, dtype=Dtype.INT8, dtype_a=Dtype.INT32,
                imm=0.25, flags=Flag.SATURATE | Flag.CLEAR)]
    res = run_on_sram(body, a, w)
    # 300 * 0.25 = 75 per element; then the accumulators read are cleared
    assert res.machine.cores[0].sram[0x20000:0x20004].view(np.int8).tolist() == [75] * 4
    assert not acc(res, 0, 4, np.int32).any()


@pytest.mark.parametrize("body, message", [
    ([ins(Opcode.MM_MUL, 0, 0, 4, 8, 8, 8, dtype=BF)],
     r"core 0 pc 0 MM_MUL: no weight tile loaded"),
    ([ins(Opcode.MM_LW, 0, 8, 8, 8, dtype=BF),
      ins(Opcode.MM_MUL, 0, 0, 4, 16, 16, 8, dtype=BF)],
     r"core 0 pc 2 MM_MUL: k=16, expected the loaded weight tile's k = 8"),
    ([ins(Opcode.MM_LW, 0, 129, 8, 8, dtype=BF)],
     r"core 0 pc 0 MM_LW: k=129, expected <= 128 \(array rows\)"),
    ([ins(Opcode.MM_LW, 0, 8, 129, 129, dtype=BF)],
     r"MM_LW: n=129, expected <= 128 \(array columns for bf16\)"),
    ([ins(Opcode.MM_OS, 0, 0, 0, 8, 257, 8, 8, 257, 257, dtype=Dtype.INT8)],
     r"MM_OS: n=257, expected <= 256 \(array columns for int8\)"),
    ([ins(Opcode.MM_LW, 0, 8, 8, 8, dtype=BF),
      ins(Opcode.MM_MUL, ACCUMULATOR_WORDS - 8, 0, 2, 8, 8, 8, dtype=BF)],
     r"core 0 pc 2 MM_MUL: acc=524280: 2x8 words with stride 8 end at word 524296, "
     r"expected <= ACCUMULATOR_WORDS = 524288"),
    ([ins(Opcode.MM_LW, 0, 8, 8, 8, dtype=Dtype.INT32)],
     r"MM_LW: dtype=int32, expected a matrix dtype of this chip: fp32, bf16"),
    ([ins(Opcode.MM_LW, 0, 8, 8, 8, dtype=BF),
      ins(Opcode.MM_MUL, 0, 0, 2, 8, 8, 8, dtype=Dtype.FP16)],
     r"MM_MUL: dtype=fp16, expected the loaded weight tile's bf16"),
])
def test_matrix_errors_name_core_pc_value_and_expectation(body, message):
    with pytest.raises(SimError, match=message):
        run_on_sram(body)


def test_memoized_operands_see_later_sram_writes():
    a, w = bf16((4, 8)), bf16((8, 8))
    mul = ins(Opcode.MM_MUL, 0, A_SRAM, 4, 8, 8, 8, dtype=BF)
    body = [ins(Opcode.MM_LW, B_SRAM, 8, 8, 8, dtype=BF), mul,
            ins(Opcode.V_FILL, A_SRAM + 16, 1, 1, 1, dtype=BF, imm=2.0),  # a[1, 0] = 2
            ins(Opcode.MM_MUL, 64, A_SRAM, 4, 8, 8, 8, dtype=BF)]
    res = run_on_sram(body, a, w)
    a2 = a.copy()
    a2[1, 0] = 2.0
    assert np.array_equal(acc(res, 0, 32).reshape(4, 8), matmul_acc(a, w))
    assert np.array_equal(acc(res, 64, 32).reshape(4, 8), matmul_acc(a2, w))
