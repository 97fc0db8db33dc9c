"""Exact dot products and sums, rounded once: the matrix unit's and V_RED's semantics.

Definition: an output is the exact (infinitely precise) sum of its products, rounded once
to float32, round-to-nearest-even. Integer (int8) matmuls are exact and wrap to int32.

Implementation: float64 BLAS, proved exact per output before it is trusted.

* A value x of a p-bit format (p: significand bits with the implicit one: fp32 24, fp16 11,
  bf16 8, fp8 e4m3 4, e5m2 3) is an integer multiple of its ulp 2**u(x), and
  2**u(x) > |x| * 2**-p (subnormals, whose ulp is the format's smallest, too).
* For output (i, j) let L = min_k u(a_ik) + min_k u(b_kj) over nonzero finite entries.
  Every product a_ik * b_kj is an integer multiple of 2**L, and so is every partial sum
  of them, in any order and with or without fma. Each is bounded by
  S = sum_k |a_ik * b_kj| <= ||a_i||_2 * ||b_j||_2 (Cauchy-Schwarz), and float64 holds
  every integer multiple of 2**L below 2**(53 + L) exactly. So BLAS's float64 result is
  the exact sum whenever

      (log2 ||a_i||_2 - min u(a_i)) + (log2 ||b_j||_2 - min u(b_j)) < 53,

  the test applied per output (each factor is an operand's per-row/column ``slack``).
* In magnitudes: if the nonzero products of an output span s = max|ab| / min|ab| then
  S < k * max|ab| and 2**L > min|ab| * 2**-2p, so the sum is exact whenever
  s < 2**(53 - 2p - log2 k): for fp16 2**(31 - log2 k), bf16 2**(37 - log2 k),
  e4m3 2**(45 - log2 k), e5m2 2**(47 - log2 k); fp32 only 2**(5 - log2 k).
* Products are always exact in float64 (at most 2p <= 22 significant bits, exponents far
  inside float64's range: bf16 products can overflow float32, not float64).
* The exact float64 is then rounded to float32 once by ``astype`` (RNE).

Outputs that fail the test (about 1 in 10**4 for bf16 random normal data at k = 128, most
fp32 outputs) are recomputed from their products by :func:`exact_rows_f32` (an exact
two-part float64 split, math.fsum beyond its range). A row or column holding inf/NaN makes
every output it touches inf or NaN whatever the order, so it needs no test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chipforge.numerics._dtypes import FORMATS, FloatFormat, name_of

_INT_MM = ("int8",)
_FEW_ROWS = 16
_LOG_MARGIN = 1e-6  # covers float64 rounding in the computed norms (relative ~k * 2**-53)
_TINY = np.float64(5e-324)


@dataclass(frozen=True)
class Operand:
    """A matmul operand upcast to float64 plus its per-row (``axis=1``) or per-column
    (``axis=0``) exactness slack. The simulator builds one per weight tile and reuses it."""

    name: str
    f64: np.ndarray  # the values, exactly: float64 (float32 for int8 with k <= 1024)
    slack: np.ndarray | None  # None for integer operands (always exact)

    @classmethod
    def of(cls, x: np.ndarray, axis: int) -> Operand:
        name = name_of(x.dtype)
        if name in _INT_MM:
            # int8 sums of k <= 1024 products stay within 1024 * 2**14 = 2**24: exact in
            # float32, whose BLAS is twice as fast; longer ones use float64 (exact < 2**53)
            k = x.shape[axis] if x.ndim == 2 else 0
            return cls(name, x.astype(np.float32 if k <= 1024 else np.float64), None)
        if name not in FORMATS:
            raise TypeError(f"matmul operands must be a float format or int8, got {name}")
        x64 = x.astype(np.float64)  # exact for every float format
        sq = np.einsum("ij,ij->i" if axis == 1 else "ij,ij->j", x64, x64)
        return cls(name, x64, slack(x, FORMATS[name], axis, sq))


def min_ulp_exponent(x: np.ndarray, fmt: FloatFormat, axis: int) -> np.ndarray:
    """min u over the nonzero entries along ``axis``.

    On the bit patterns: magnitude bits order like magnitudes, so the smallest nonzero
    magnitude is min(mag - 1) + 1 (0 wraps to the type's max); its biased exponent field E
    gives u = max(E, 1) - bias - (p - 1) (subnormals share E = 1's ulp)."""
    if x.shape[axis] == 0:  # nothing to sum: any u will do (the norm is 0)
        return np.zeros(x.shape[1 - axis], np.int64)
    mag = np.bitwise_and(x.view(fmt.uint), fmt.uint.type((1 << (8 * fmt.uint.itemsize - 1)) - 1))
    mag -= fmt.uint.type(1)  # in place: wraps 0 to the type's max
    low = mag.min(axis=axis) + fmt.uint.type(1)
    return np.maximum(low >> fmt.mantissa_bits, 1).astype(np.int64) - (fmt.bias
                                                                       + fmt.mantissa_bits)


def slack(x: np.ndarray, fmt: FloatFormat, axis: int, sumsq: np.ndarray,
          log_norm: np.ndarray | None = None) -> np.ndarray:
    """log2 of the 2-norm (from ``sumsq``, or ``log_norm`` given directly) minus min u along
    ``axis``. -inf where an inf/NaN makes the outputs nonfinite anyway (the sum of squares
    is then inf/NaN: finite squares cannot overflow float64). All-zero rows get -1074 - u,
    far below any test (log2 of the smallest float64 stands in for -inf, avoiding
    errstate's cost on this hot path)."""
    if log_norm is None:
        log_norm = 0.5 * np.log2(np.maximum(sumsq, _TINY))
    out = log_norm + _LOG_MARGIN - min_ulp_exponent(x, fmt, axis)
    bad = ~np.isfinite(sumsq)
    if bad.any():
        out[bad] = -np.inf
    return out


def matmul_acc(a: np.ndarray | Operand, b: np.ndarray | Operand,
               dtype: str | None = None) -> np.ndarray:
    """a [m, k] @ b [k, n] as the matrix unit computes it: float formats give float32 (each
    output the exact sum of exact products, rounded once, RNE); int8 gives int32 (exact, as
    float32/float64 integers, see Operand.of, then wrapped two's complement).
    ``dtype`` (optional) names the operands' format and must match both."""
    a = a if isinstance(a, Operand) else Operand.of(np.asarray(a), axis=1)
    b = b if isinstance(b, Operand) else Operand.of(np.asarray(b), axis=0)
    if a.name != b.name or (dtype is not None and dtype != a.name):
        raise TypeError(f"matmul operands must share one dtype, got {a.name} and {b.name}"
                        + (f" (expected {dtype})" if dtype else ""))
    if a.f64.shape[1] != b.f64.shape[0]:
        raise ValueError(f"matmul inner dims differ: {a.f64.shape} @ {b.f64.shape}")
    with np.errstate(invalid="ignore"):  # inf * 0 -> NaN is the defined result
        exact = a.f64 @ b.f64
    if a.slack is None:
        return exact.astype(np.int64).astype(np.int32)
    out = exact.astype(np.float32)
    if a.slack.size and b.slack.size:
        # only rows that fail against the column with the most slack can fail at all
        rows = np.nonzero(a.slack >= 53 - b.slack.max())[0]
        if rows.size:
            bad_r, bad_c = np.nonzero(a.slack[rows, None] + b.slack[None, :] >= 53)
            for s in range(0, bad_r.size, 4096):  # chunks bound the products' memory
                i, j = rows[bad_r[s:s + 4096]], bad_c[s:s + 4096]
                out[i, j] = exact_rows_f32(a.f64[i, :] * b.f64[:, j].T)
    return out


def dot_exact(a: np.ndarray, b: np.ndarray, acc: np.ndarray | None = None) -> np.ndarray:
    """``acc + matmul_acc(a, b)``: the accumulate step of MM_* with Flag.ACCUMULATE. Float
    accumulators add in float32 (one more RNE rounding); int32 ones wrap."""
    prod = matmul_acc(a, b)
    if acc is None:
        return prod
    if acc.dtype != prod.dtype:
        raise TypeError(f"accumulator is {acc.dtype}, the product {prod.dtype}")
    return acc + prod  # numpy float32 adds round to nearest even; int32 adds wrap


def sum_f32(x: np.ndarray) -> np.ndarray:
    """Row sums of float32 ``x`` [rows, n]: exact sums rounded once to float32 (the V_RED
    SUM definition). Same test as matmul_acc with S = sum |x| directly."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"sum_f32 takes [rows, n], got shape {x.shape}")
    x64 = x.astype(np.float64)
    out = x64.sum(axis=1).astype(np.float32)
    l1 = np.abs(x64).sum(axis=1)
    sl = slack(x, FORMATS["fp32"], 1, l1, np.log2(np.maximum(l1, _TINY)))
    bad = np.nonzero(sl >= 53)[0]
    if bad.size:
        out[bad] = exact_rows_f32(x64[bad])
    return out


def exact_rows_f32(terms: np.ndarray) -> np.ndarray:
    """Exact row sums of float64 ``terms`` [rows, n] (finite), each rounded once to float32.

    Vectorized: per row, with S = sum |t| and 2**L the lowest set bit of any term, split
    every term at T = floor(log2 S) - 52 into hi (a multiple of 2**T) and lo = t - hi
    (|lo| < 2**T, a multiple of 2**L). Partial sums of the hi parts stay below
    S < 2**(53 + T), those of the lo parts below n * 2**T <= 2**(53 + L) when
    T - L + ceil(log2 n) <= 53, so both float64 sums are exact; TwoSum then gives the exact
    total as s + e, and :func:`_round_once` rounds it. Rows outside that range (a span of
    more than ~2**(105 - log2 n)) go through math.fsum."""
    terms = np.asarray(terms, np.float64)
    rows, n = terms.shape
    if rows <= _FEW_ROWS:  # a few fsums cost less than the vectorized split's set-up
        return _fsum_rows(terms)
    mant, exp = np.frexp(terms)
    sig = np.ldexp(np.abs(mant), 53).astype(np.int64)  # the exact integer significand
    low = np.frexp((sig & -sig).astype(np.float64))[1] - 1  # its trailing zero bits
    lowest = np.where(sig == 0, np.iinfo(np.int64).max, exp - 53 + low).min(axis=1)
    total = np.abs(terms).sum(axis=1) * (1 + 2.0 ** -40)
    with np.errstate(divide="ignore"):
        t_exp = np.floor(np.log2(total)) - 52
    zero = total == 0
    t_exp[zero] = 0
    t_exp = t_exp.astype(np.int64)
    hi = np.ldexp(np.trunc(np.ldexp(terms, -t_exp[:, None])), t_exp[:, None])
    h_sum, l_sum = hi.sum(axis=1), (terms - hi).sum(axis=1)
    s = h_sum + l_sum
    bb = s - h_sum
    e = (h_sum - (s - bb)) + (l_sum - bb)  # TwoSum: s + e == h_sum + l_sum exactly
    ok = zero | (t_exp - np.minimum(lowest, t_exp) + math.ceil(math.log2(max(n, 1))) <= 53)
    out = _round_once(s, e)
    bad = np.nonzero(~ok)[0]
    if bad.size:
        out[bad] = _fsum_rows(terms[bad])
    return out


def _fsum_rows(terms: np.ndarray) -> np.ndarray:
    """math.fsum per row (the correctly rounded float64 r) and the remainder's sign."""
    r, rest = [], []
    for row in terms.tolist():
        total = math.fsum(row)
        r.append(total)
        rest.append(math.fsum(row + [-total]))
    return _round_once(np.array(r, np.float64), np.array(rest, np.float64))


def _round_once(s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """float32 RNE of the exact s + e, where s = float64 RN(s + e). Rounding s alone errs only
    when s lies exactly halfway between two float32 values (any other float32 midpoint
    strictly between s and s + e would be a float64 nearer to s + e than s is); then the
    sign of e picks the side (e == 0 is a true tie, which astype breaks to even)."""
    f = s.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        f64 = f.astype(np.float64)
        other = np.nextafter(f, np.where(f64 < s, np.float32(np.inf), np.float32(-np.inf)))
        tie = (e != 0) & (f64 != s) & np.isfinite(f) & ((f64 + other.astype(np.float64)) / 2
                                                         == s)
    if tie.any():
        up = e[tie] > 0
        pair = np.stack([f[tie], other[tie]])
        f[tie] = np.where(up, pair.max(axis=0), pair.min(axis=0))
    return f


def fsum_f32(terms: np.ndarray) -> np.float32:
    """The exact sum of finite float64 ``terms`` rounded once to float32 (RNE)."""
    return exact_rows_f32(np.asarray(terms, np.float64).reshape(1, -1))[0]
