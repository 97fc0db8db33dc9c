"""matmul_t / matmul_into and the outputs that fail the float64 exactness test: each must
still be the exact sum rounded once to float32 (the oracle: Fractions, or exact_rows_f32
over the products, itself checked against Fractions in test_matmul.py)."""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

import chipforge.numerics._exact as ex
from chipforge.numerics import Operand, cast, dot_exact, exact_rows_f32, matmul_acc
from chipforge.numerics._exact import matmul_into, matmul_n, matmul_t

RNG = np.random.default_rng(11)
BF = ml_dtypes.bfloat16


def products_oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Every output's exact sum rounded once, from its (exact float64) products."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    m, n = a.shape[0], b.shape[1]
    terms = (a64[:, None, :] * b64.T[None, :, :]).reshape(m * n, -1)
    return exact_rows_f32(terms).reshape(m, n)


def fraction_oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    out = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            x = sum(Fraction(float(p)) * Fraction(float(q)) for p, q in zip(a64[i], b64[:, j]))
            f = np.float32(float(x))
            cands = [c for c in (f, np.nextafter(f, np.float32(np.inf)),
                                 np.nextafter(f, np.float32(-np.inf))) if np.isfinite(c)]
            out[i, j] = min(cands, key=lambda c: (abs(Fraction(float(c)) - x),
                                                  int(np.array(c).view(np.uint32)) & 1))
    return out


def wide(shape, spread: int) -> np.ndarray:
    x = RNG.standard_normal(shape) * 2.0 ** RNG.integers(-spread, spread + 1, shape)
    return cast(x.astype(np.float32), "bf16", saturate=True)


def cancelling(m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """bf16 a, b whose outputs sum huge products that cancel exactly (pairs x*y, -x*y)
    plus small ones: the float64 sums lose the small terms, S dwarfs the result."""
    a, b = wide((m, k), 6), wide((k, n), 6)
    half = k // 4
    big = cast((RNG.standard_normal((m, half)) * 2.0 ** 40).astype(np.float32), "bf16")
    a[:, :half], a[:, half:2 * half] = big, big
    bigb = cast((RNG.standard_normal((half, n)) * 2.0 ** 30).astype(np.float32), "bf16")
    b[:half], b[half:2 * half] = bigb, -bigb.astype(np.float32).astype(BF)
    return a, b


def test_failing_outputs_kept_or_recomputed_are_exact(monkeypatch):
    """Wide spreads make many outputs fail the exactness test; most are settled by the
    rounding bound, cancelling ones recomputed. Both branches run and agree with the
    oracle."""
    recomputed = []
    real = ex.exact_rows_f32

    def spy(terms):
        recomputed.append(len(terms))
        return real(terms)

    monkeypatch.setattr(ex, "exact_rows_f32", spy)
    a1, b1 = wide((48, 128), 18), wide((128, 40), 18)
    a2, b2 = cancelling(48, 128, 40)
    for a, b in ((a1, b1), (a2, b2)):
        ao, bo = Operand.of(a, axis=1), Operand.of(b, axis=0)
        fails = int(np.sum(ao.slack[:, None] + bo.slack[None, :] >= 53))
        assert fails > 100
        recomputed.clear()
        got = matmul_acc(a, b)
        assert np.array_equal(got, products_oracle(a, b))
        if a is a1:
            assert sum(recomputed) < fails // 4  # most were settled by the bound
        else:
            assert sum(recomputed) > 0


@pytest.mark.parametrize("name", ["bf16", "fp16", "fp8_e5m2", "fp32"])
def test_wide_spreads_against_fractions(name):
    a = cast((RNG.standard_normal((5, 64)) * 2.0 ** RNG.integers(-30, 31, (5, 64)))
             .astype(np.float32), name, saturate=True)
    b = cast((RNG.standard_normal((64, 6)) * 2.0 ** RNG.integers(-30, 31, (64, 6)))
             .astype(np.float32), name, saturate=True)
    assert np.array_equal(matmul_acc(a, b), fraction_oracle(a, b))


def test_a_float64_sum_off_by_its_error_bound_is_not_trusted_near_a_midpoint():
    # exact sum 1 + 2**-24 - 2**-60 (below the float32 midpoint 1 + 2**-24: rounds to 1);
    # a float64 sum off by ~2**-52 (what BLAS's roundings may do, k * 2**-53 * S) lands
    # above the midpoint and would round up: _settle must recompute it
    a = np.array([[1.0, 2.0**-12, 2.0**-30]], np.float32).astype(BF)
    b = np.array([[1.0], [2.0**-12], [-(2.0**-30)]], np.float32).astype(BF)
    ao, bo = Operand.of(a, axis=1), Operand.of(b, axis=0)
    mid = 1 + 2.0**-24
    for fake in (mid + 2.0**-52, mid + 2.0**-51, mid):
        t = np.array([[fake]])
        ex._settle(ao, bo, t, np.array([0]), np.array([0]))
        assert t[0, 0] == 1.0
    t = np.array([[1.0 + 2.0**-26]])  # far from any midpoint (E ~ 2**-50): kept as is
    ex._settle(ao, bo, t, np.array([0]), np.array([0]))
    assert t[0, 0] == 1.0 + 2.0**-26


def test_near_midpoint_sums_are_exact():
    # float64 holds 1 + 2**-24 + 2**-52 (53 bits) but the exact sum also has -2**-80:
    # still above the float32 midpoint 1 + 2**-24, so it rounds up. And the mirror case.
    a = np.array([[1.0, 2.0**-12, 2.0**-26, -(2.0**-40)],
                  [1.0, 2.0**-12, -(2.0**-26), 2.0**-40]], np.float32).astype(BF)
    b = np.array([[1.0], [2.0**-12], [2.0**-26], [2.0**-40]], np.float32).astype(BF)
    got = matmul_acc(a, b)
    assert np.array_equal(got, fraction_oracle(a, b))
    assert got[0, 0] == np.float32(1 + 2.0**-23) and got[1, 0] == np.float32(1.0)


def test_failing_outputs_are_exactly_the_pairs_over_the_bound():
    for trial in range(100):
        a = RNG.uniform(0, 40, int(RNG.integers(0, 40)))
        b = RNG.uniform(0, 40, int(RNG.integers(1, 50)))
        if trial % 3 == 0 and a.size:
            a[0] = -np.inf  # an inf/NaN row: never tested
        if trial % 5 == 0:
            b[-1] = -np.inf
        rows, cols = ex._failing(a, b, float(b.max()))
        want = set(zip(*np.nonzero(a[:, None] + b[None, :] >= 53)))
        assert len(rows) == len(want) and set(zip(rows.tolist(), cols.tolist())) == want


def test_matmul_t_is_the_transpose_and_into_accumulates_once_more():
    a, b = wide((70, 128), 12), wide((128, 33), 12)
    want = matmul_acc(a, b)
    assert np.array_equal(matmul_t(a, b).T.astype(np.float32), want)
    assert np.array_equal(matmul_n(a, b).astype(np.float32), want)
    acc = RNG.standard_normal((70, 33)).astype(np.float32)
    out = acc.copy()
    matmul_into(a, b, out, accumulate=True)
    assert np.array_equal(out, dot_exact(a, b, acc))
    matmul_into(Operand.of(a, 1), Operand.of(b, 0), out, accumulate=False)
    assert np.array_equal(out, want)
    # a strided view (accumulator rows with gaps) keeps its gaps
    mem = np.zeros((70, 40), np.float32)
    matmul_into(a, b, mem[:, :33], accumulate=True)
    assert np.array_equal(mem[:, :33], want) and not mem[:, 33:].any()


def test_matmul_into_int8_wraps_and_checks_the_accumulator():
    a = np.full((3, 256), -128, np.int8)
    b = np.full((256, 2), -128, np.int8)
    out = np.full((3, 2), 2**31 - 2**22, np.int32)
    matmul_into(a, b, out, accumulate=True)
    assert out.tolist() == [[(2**31 - 2**22 + 256 * 16384 + 2**31) % 2**32 - 2**31] * 2] * 3
    with pytest.raises(TypeError, match="accumulator"):
        matmul_into(a, b, np.zeros((3, 2), np.float32), accumulate=False)


def test_scratch_is_not_shared_between_results():
    a1, b1 = wide((64, 16), 3), wide((16, 64), 3)
    a2, b2 = wide((64, 16), 3), wide((16, 64), 3)
    r1 = matmul_acc(a1, b1)
    r2 = matmul_acc(a2, b2)  # same shapes: the same scratch buffer underneath
    assert np.array_equal(r1, products_oracle(a1, b1))
    assert np.array_equal(r2, products_oracle(a2, b2))
