"""V_UN / V_BIN / V_RED / V_ACC / V_FILL: float32 compute, one rounding, broadcasts."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from simkit import A_SRAM, B_SRAM, DST_SRAM, ins, round_f32, run_on_sram, sram

from chipforge.isa import BinOp, Dtype, Flag, Opcode, RedOp, UnOp
from chipforge.numerics import NP_DTYPE, cast

RNG = np.random.default_rng(9)
F32, BF = Dtype.FP32, Dtype.BF16


def gelu(x: float) -> float:
    # the tanh approximation in its cancellation-free form x * sigmoid(2z)
    z = math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)
    return x / (1 + math.exp(-2 * z)) if -2 * z < 700 else -0.0


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x > -700 else 0.0


# independent oracles: exact-ish float64 formulas per element, rounded once to float32
ORACLE = {
    UnOp.COPY: lambda x: x, UnOp.NEG: lambda x: -x, UnOp.ABS: abs,
    UnOp.EXP: math.exp, UnOp.LOG: math.log, UnOp.SQRT: math.sqrt,
    UnOp.RSQRT: lambda x: 1 / math.sqrt(x), UnOp.RECIP: lambda x: 1 / x,
    UnOp.RELU: lambda x: max(x, 0.0), UnOp.GELU: gelu, UnOp.SILU: lambda x: x * sigmoid(x),
    UnOp.SIGMOID: sigmoid, UnOp.TANH: math.tanh, UnOp.SQUARE: lambda x: x * x,
}
POSITIVE = {UnOp.LOG, UnOp.SQRT, UnOp.RSQRT}


@pytest.mark.parametrize("op", list(UnOp))
def test_unary_ops_are_float64_formulas_rounded_once(op):
    x = (RNG.standard_normal(96) * 3).astype(np.float32)
    if op in POSITIVE:
        x = np.abs(x) + np.float32(1e-3)
    res = run_on_sram([ins(Opcode.V_UN, DST_SRAM, A_SRAM, 8, 12, 12, 12, alu=op)], x)
    want = np.array([ORACLE[op](float(v)) for v in x], np.float64).astype(np.float32)
    assert np.array_equal(sram(res, DST_SRAM, 96, np.float32), want), op.name


def test_gelu_is_torchs_tanh_approximation():
    torch = pytest.importorskip("torch")
    # above -3: below it torch's 0.5x(1 + tanh(z)) cancels away its float64 digits
    x = np.linspace(-3, 8, 64, dtype=np.float32)
    res = run_on_sram([ins(Opcode.V_UN, DST_SRAM, A_SRAM, 1, 64, 64, 64, alu=UnOp.GELU)], x)
    ref = torch.nn.functional.gelu(torch.from_numpy(x).double(), approximate="tanh")
    np.testing.assert_array_max_ulp(sram(res, DST_SRAM, 64, np.float32),
                                    ref.float().numpy(), maxulp=1)


def test_binary_ops_with_every_broadcast():
    a = RNG.standard_normal((4, 6)).astype(np.float32)
    b = RNG.standard_normal((4, 6)).astype(np.float32)
    flat = np.concatenate([a.ravel(), b.ravel()])
    b_addr = A_SRAM + a.nbytes
    cases = [  # (flags, b field, b_stride, a_stride, expected)
        (Flag.NONE, b_addr, 6, 6, a - b),
        (Flag.B_COL, b_addr, 6, 6, a - b[:, :1]),  # b[r, 0] for row r
        (Flag.NONE, b_addr, 0, 6, a - b[0]),  # stride 0: one row vector for every row
        (Flag.B_IMM, 0, 0, 6, a - np.float32(0.75)),
        (Flag.A_COL, b_addr, 6, 6, a[:, :1] - b),
        (Flag.A_COL | Flag.B_IMM, 0, 0, 6, a[:, :1] - np.float32(0.75) + np.zeros((4, 6),
                                                                            np.float32)),
    ]
    body = [ins(Opcode.V_BIN, DST_SRAM + 256 * i, A_SRAM, bf, 4, 6, 6, sa, sb, alu=BinOp.SUB,
                flags=fl, imm=0.75) for i, (fl, bf, sb, sa, _) in enumerate(cases)]
    res = run_on_sram(body, flat)
    for i, case in enumerate(cases):
        got = sram(res, DST_SRAM + 256 * i, 24, np.float32).reshape(4, 6)
        assert np.array_equal(got, case[-1]), case[0]


NUMPY_BINARY = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.divide,
                "MAX": np.maximum, "MIN": np.minimum, "GT": np.greater,
                "GE": np.greater_equal, "LT": np.less, "LE": np.less_equal, "EQ": np.equal}


@pytest.mark.parametrize("op", list(BinOp))
def test_binary_ops_mixed_source_dtypes_round_into_bf16(op):
    a = cast(RNG.standard_normal(32).astype(np.float32), "bf16")
    b32 = (RNG.standard_normal(32) + 3).astype(np.float32)
    b32[:4] = a[:4].astype(np.float32)  # equal pairs for the comparisons (exact in fp16)
    b = cast(b32, "fp16")
    body = [ins(Opcode.V_BIN, DST_SRAM, A_SRAM, B_SRAM, 4, 8, 8, 8, 8, alu=op, dtype=BF,
                dtype_a=BF, dtype_b=Dtype.FP16)]
    res = run_on_sram(body, a, b)
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    want = cast(NUMPY_BINARY[op.name](fa, fb).astype(np.float32), "bf16")
    assert np.array_equal(sram(res, DST_SRAM, 32, np.uint16), want.view(np.uint16))


def test_reductions_sum_exactly_and_write_rows_contiguously():
    x = (RNG.standard_normal((5, 300)) * 2.0 ** RNG.integers(-30, 30, (5, 300)))
    x = x.astype(np.float32)
    body = [ins(Opcode.V_RED, DST_SRAM, A_SRAM, 5, 300, 300, alu=RedOp.SUM),
            ins(Opcode.V_RED, DST_SRAM + 64, A_SRAM, 5, 300, 300, alu=RedOp.MAX, dtype=BF)]
    res = run_on_sram(body, x)
    exact = [round_f32(sum(Fraction(float(v)) for v in row)) for row in x]
    assert sram(res, DST_SRAM, 5, np.float32).tolist() == exact
    assert np.array_equal(sram(res, DST_SRAM + 64, 5, np.uint16),
                          cast(x.max(axis=1), "bf16").view(np.uint16))


def test_bf16_sum_does_not_stall_like_numpy():
    ones = np.ones((1, 1000), NP_DTYPE["bf16"])
    body = [ins(Opcode.V_RED, DST_SRAM, A_SRAM, 1, 1000, 1000, alu=RedOp.SUM, dtype_a=BF)]
    assert sram(run_on_sram(body, ones), DST_SRAM, 1, np.float32)[0] == 1000.0


def test_casts_saturate_and_round_toward_zero_by_flag():
    x = np.array([1000.0, -1000.0, 1.9, -1.9, 0.3], np.float32)
    e4 = Dtype.FP8_E4M3
    body = [ins(Opcode.V_UN, DST_SRAM, A_SRAM, 1, 5, 5, 5, dtype=e4),
            ins(Opcode.V_UN, DST_SRAM + 8, A_SRAM, 1, 5, 5, 5, dtype=e4, flags=Flag.SATURATE),
            ins(Opcode.V_UN, DST_SRAM + 16, A_SRAM, 1, 5, 5, 5, dtype=Dtype.INT8,
                flags=Flag.ROUND_TOWARD_ZERO | Flag.SATURATE),
            ins(Opcode.V_UN, DST_SRAM + 24, A_SRAM, 1, 5, 5, 5, dtype=Dtype.INT8)]
    res = run_on_sram(body, x)
    plain = sram(res, DST_SRAM, 5, NP_DTYPE["fp8_e4m3"]).astype(np.float32)
    assert np.isnan(plain[:2]).all()
    assert sram(res, DST_SRAM + 8, 5, NP_DTYPE["fp8_e4m3"]).astype(np.float32).tolist() == \
        [448.0, -448.0, 1.875, -1.875, 0.3125]
    assert sram(res, DST_SRAM + 16, 5, np.int8).tolist() == [127, -128, 1, -1, 0]
    assert sram(res, DST_SRAM + 24, 5, np.int8).tolist() == [-24, 24, 2, -2, 0]  # wraps


def test_v_fill_and_v_acc_scale():
    body = [ins(Opcode.V_FILL, DST_SRAM, 3, 2, 4, dtype=BF, imm=1.00390625),
            ins(Opcode.V_ACC, DST_SRAM + 64, 0, 2, 2, 2, 2, dtype=F32, dtype_a=F32, imm=2.0)]
    res = run_on_sram(body)
    filled = sram(res, DST_SRAM, 12, NP_DTYPE["bf16"]).astype(np.float32).reshape(3, 4)
    assert filled[:, :2].tolist() == [[1.0, 1.0]] * 3  # 1 + 2**-8 ties to even in bf16
    assert not filled[:, 2:].any()
    assert sram(res, DST_SRAM + 64, 4, np.float32).tolist() == [0.0] * 4
