"""The float datapath pieces against exact references: RoundF32 (fixed point -> fp32, one
RNE rounding) against rational arithmetic, AddF32 against numpy's IEEE float32 add."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402

from chipforge.rtl import AddF32, RoundF32  # noqa: E402
from chipforge.rtl._float import F32_NAN  # noqa: E402


def f32_of_fraction(x: Fraction) -> int:
    """fp32 bits of the exact rational x, round to nearest even (overflow to inf)."""
    if x == 0:
        return 0
    sign, x = (1 << 31 if x < 0 else 0), abs(x)
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while Fraction(2) ** e > x:
        e -= 1
    while Fraction(2) ** (e + 1) <= x:
        e += 1
    q = max(e - 23, -149)  # exponent of the result's last bit
    scaled = x / Fraction(2) ** q
    n, rem = divmod(scaled.numerator, scaled.denominator)
    if 2 * rem > scaled.denominator or (2 * rem == scaled.denominator and n & 1):
        n += 1
    value = Fraction(n) * Fraction(2) ** q
    if value >= Fraction(2) ** 128:
        return sign | 0x7F800000
    return sign | int(np.float32(float(value)).view(np.uint32))


def _comb(dut, cases, drive, read) -> list:
    out = []

    async def bench(ctx) -> None:
        for case in cases:
            drive(ctx, case)
            out.append(read(ctx))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("width,lsb", [(40, -18), (70, -32), (530, -266)])
def test_round_f32_matches_exact_rounding(width: int, lsb: int) -> None:
    rng = np.random.default_rng(width)
    values = [0, 1, -1, (1 << (width - 2)) - 1, -(1 << (width - 2))]
    for _ in range(400):
        bits = int(rng.integers(1, width - 1))
        v = int(rng.integers(0, 1 << min(bits, 62))) << max(0, bits - 62)
        if rng.random() < 0.3:  # a tie or near-tie: exactly 25 significant bits
            v = (int(rng.integers(1 << 24, 1 << 25)) | 1) << int(rng.integers(0, width - 27))
        values.append(-v if rng.random() < 0.5 else v)
    dut = RoundF32(width, lsb)
    got = _comb(dut, values, lambda ctx, v: ctx.set(dut.value, v),
                lambda ctx: ctx.get(dut.bits))
    want = [f32_of_fraction(Fraction(v) * Fraction(2) ** lsb) for v in values]
    assert got == want


def test_round_f32_special_flags() -> None:
    dut = RoundF32(40, -18)
    cases = [(5, 0b001), (5, 0b010), (5, 0b100), (5, 0b110), (0, 0b010)]
    got = _comb(dut, cases, lambda ctx, c: (ctx.set(dut.value, c[0]), ctx.set(dut.flags, c[1])),
                lambda ctx: ctx.get(dut.bits))
    assert got == [F32_NAN, 0x7F800000, 0xFF800000, F32_NAN, 0x7F800000]


def _f32_cases(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random fp32 bit patterns: every class, and pairs whose exponents are close."""
    bits = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    special = np.array([0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF,
                        0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x3F800000,
                        0xBF800000, 0x33800000], np.uint32)
    pick = rng.integers(0, special.size, n // 4)
    bits[:n // 4] = special[pick]
    near = rng.standard_normal(n // 2).astype(np.float32).view(np.uint32)
    bits[n // 2:] = near[:n - n // 2]
    return bits


def test_add_f32_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    a, b = _f32_cases(rng, 1200), _f32_cases(rng, 1200)
    with np.errstate(over="ignore"):  # near-cancellation
        b[:300] = (a[:300].view(np.float32) * np.float32(-1.0000001)).view(np.uint32)
    dut = AddF32()
    got = np.array(_comb(dut, list(zip(a.tolist(), b.tolist())),
                         lambda ctx, c: (ctx.set(dut.a, c[0]), ctx.set(dut.b, c[1])),
                         lambda ctx: ctx.get(dut.sum)), np.uint32)
    with np.errstate(all="ignore"):
        want = (a.view(np.float32) + b.view(np.float32)).view(np.uint32)
    nan = np.isnan(want.view(np.float32))
    assert np.isnan(got[nan].view(np.float32)).all()
    assert np.array_equal(got[~nan], want[~nan])
