"""matmul_acc / sum_f32: exact sums rounded once to float32, checked against Fractions."""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from chipforge.numerics import (
    NP_DTYPE,
    Operand,
    cast,
    dot_exact,
    exact_rows_f32,
    fsum_f32,
    matmul_acc,
    sum_f32,
)

RNG = np.random.default_rng(7)
FLOATS = ["bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fp32"]


def round_f32(x: Fraction) -> np.float32:
    """The float32 nearest to x, ties to even (the oracle's single rounding)."""
    f = np.float32(float(x))  # within an ulp of the answer; pick among neighbours exactly
    cands = [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))]
    cands = [c for c in cands if np.isfinite(c)]
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - x),
                                     int(np.array(c).view(np.uint32)) & 1))


def oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    out = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for i in range(a.shape[0]):
        fa = [Fraction(float(v)) for v in a64[i]]
        for j in range(b.shape[1]):
            out[i, j] = round_f32(sum(x * Fraction(float(y)) for x, y in zip(fa, b64[:, j])))
    return out


def mixed(shape: tuple[int, ...], name: str, spread: int) -> np.ndarray:
    """Random values over 2**+-spread (clipped to the format's range), in format ``name``."""
    x = RNG.standard_normal(shape) * 2.0 ** RNG.integers(-spread, spread + 1, shape)
    return cast(x.astype(np.float32), name, saturate=True)


@pytest.mark.parametrize("name", FLOATS)
@pytest.mark.parametrize("spread", [0, 8, 40])
def test_matmul_acc_equals_the_exact_sum_rounded_once(name, spread):
    for _ in range(3):
        m, k, n = 3, int(RNG.integers(1, 48)), 4
        a, b = mixed((m, k), name, spread), mixed((k, n), name, spread)
        got = matmul_acc(a, b)
        assert got.dtype == np.float32
        assert np.array_equal(got, oracle(a, b)), (name, spread, k)


@pytest.mark.parametrize("name", ["bf16", "fp16", "fp8_e4m3"])
def test_large_k_and_mixed_magnitudes(name):
    k = 4096
    a = mixed((2, k), name, 12)
    b = mixed((k, 3), name, 12)
    assert np.array_equal(matmul_acc(a, b), oracle(a, b))


def test_cancellation_that_plain_float64_gets_wrong():
    bf = ml_dtypes.bfloat16
    a = np.array([[2.0**60, 1.0, -(2.0**60)]], np.float32).astype(bf)
    b = np.array([[2.0**40], [1.0], [2.0**40]], np.float32).astype(bf)
    naive = a.astype(np.float64) @ b.astype(np.float64)  # 2**100 + 1 loses the 1
    assert naive[0, 0] == 0.0
    assert matmul_acc(a, b)[0, 0] == 1.0


def test_float32_midpoint_plus_a_tiny_term_rounds_up():
    # 1 + 2**-24 is exactly halfway between float32 1 and 1 + 2**-23; the 2**-60 term makes
    # the exact sum round up. float64 cannot hold all three bits, and its tie would round
    # to even (1.0): the exactness test must catch this output.
    bf = ml_dtypes.bfloat16
    a = np.array([[1.0, 2.0**-12, 2.0**-30]], np.float32).astype(bf)
    b = np.array([[1.0], [2.0**-12], [2.0**-30]], np.float32).astype(bf)
    assert (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)[0, 0] == 1.0
    assert matmul_acc(a, b)[0, 0] == np.float32(1 + 2.0**-23)


def test_nonfinite_operands_propagate():
    bf = ml_dtypes.bfloat16
    a = np.array([[np.inf, 1.0], [np.nan, 1.0], [1.0, 2.0**-100]], np.float32).astype(bf)
    b = np.array([[1.0, 0.0], [1.0, 2.0**100]], np.float32).astype(bf)
    got = matmul_acc(a, b)
    assert got[0, 0] == np.inf and np.isnan(got[0, 1]) and np.isnan(got[1]).all()
    assert got[2, 1] == 1.0


def test_int8_exact_and_wrapped_to_int32():
    a = RNG.integers(-128, 128, (5, 300)).astype(np.int8)
    b = RNG.integers(-128, 128, (300, 7)).astype(np.int8)
    got = matmul_acc(a, b)
    assert got.dtype == np.int32
    assert np.array_equal(got, a.astype(np.int64) @ b.astype(np.int64))
    k = 140_000  # 140000 * 16384 > 2**31: two's-complement wrap
    big = matmul_acc(np.full((1, k), -128, np.int8), np.full((k, 1), -128, np.int8))
    assert int(big[0, 0]) == k * 16384 - 2**32


def test_dot_exact_accumulates_in_float32_and_int32_wraps():
    a, b = mixed((4, 16), "bf16", 4), mixed((16, 5), "bf16", 4)
    acc = RNG.standard_normal((4, 5)).astype(np.float32)
    assert np.array_equal(dot_exact(a, b, acc), acc + matmul_acc(a, b))
    ia, ib = np.full((1, 1), 100, np.int8), np.full((1, 1), 100, np.int8)
    assert int(dot_exact(ia, ib, np.array([[2**31 - 1]], np.int32))[0, 0]) == -(2**31) + 9999


def test_operand_is_reusable_and_dtypes_must_match():
    a, w = mixed((8, 16), "fp16", 3), mixed((16, 4), "fp16", 3)
    op = Operand.of(w, axis=0)
    assert np.array_equal(matmul_acc(a, op), matmul_acc(a, w))
    with pytest.raises(TypeError, match="share one dtype"):
        matmul_acc(a, w.astype(np.float32).astype(NP_DTYPE["bf16"]))


def rows_oracle(t: np.ndarray) -> np.ndarray:
    return np.array([round_f32(sum(Fraction(float(v)) for v in row)) for row in t],
                    np.float32)


@pytest.mark.parametrize("rows", [3, 40])  # the few-rows fsum path and the vectorized split
@pytest.mark.parametrize("spread", [10, 60, 120])
def test_exact_rows_and_sum_f32(rows, spread):
    x = (RNG.standard_normal((rows, 33)) * 2.0 ** RNG.integers(-spread, spread, (rows, 33)))
    x = x.astype(np.float32)
    want = rows_oracle(x)
    assert np.array_equal(exact_rows_f32(x.astype(np.float64)), want)
    assert np.array_equal(sum_f32(x), want)


def test_exact_rows_breaks_float32_ties_by_the_remainder():
    t = np.array([[1.0, 2.0**-24, 2.0**-70], [1.0, 2.0**-24, -(2.0**-70)], [1.0, 2.0**-24, 0]])
    want = [1 + 2.0**-23, 1.0, 1.0]
    assert exact_rows_f32(t).tolist() == want
    many = np.repeat(t, 10, axis=0)  # 30 rows: the vectorized split path
    assert exact_rows_f32(many).tolist() == np.repeat(want, 10).tolist()
    assert fsum_f32(t[0]) == np.float32(1 + 2.0**-23)


def test_empty_operands():
    bf = NP_DTYPE["bf16"]
    assert not matmul_acc(np.zeros((3, 0), bf), np.zeros((0, 2), bf)).any()
    assert matmul_acc(np.zeros((0, 4), bf), np.zeros((4, 2), bf)).shape == (0, 2)
    assert sum_f32(np.zeros((2, 0), np.float32)).tolist() == [0.0, 0.0]
