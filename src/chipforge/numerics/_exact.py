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
* Products are always exact in float64 (at most 2p <= 48 significant bits, exponents far
  inside float64's range: bf16 products can overflow float32, not float64).
* The exact float64 is then rounded to float32 once (RNE: ``astype``, or the cast inside
  an accumulating ``np.add(..., dtype=float32)``, which rounds before it adds).

Outputs that fail the test (about 1 in 10**4 for bf16 random normal data at k = 128, most
fp32 outputs) keep BLAS's float64 sum where BLAS's error bound proves that it rounds to the
same float32 as the exact sum (:func:`_settle`: the sum lies far enough from a float32
midpoint, nearly always); the rest are recomputed from their products by
:func:`exact_rows_f32` (an exact two-part float64 split, math.fsum beyond its range). A row
or column holding inf/NaN makes every output it touches inf or NaN whatever the order, so
it needs no test.

Speed (the simulator's GEMMs): :func:`matmul_t` has BLAS produce the product transposed
(faster for a tall A and a 128-column weight tile) in a reused scratch buffer, and the
simulator adds it to accumulator tiles it holds transposed (sim._state.CoreState.acc_t).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from chipforge.numerics._dtypes import FORMATS, FloatFormat, name_of

_INT_MM = ("int8",)
_FEW_ROWS = 16
_LOG_MARGIN = 1e-6  # covers float64 rounding in the computed norms (relative ~k * 2**-53)
_TINY = np.float64(5e-324)
_SUMSQ = {0: "ij,ij->j", 1: "ij,ij->i"}  # per column (axis 0) / per row (axis 1)
_BITS = {np.dtype(u): (u(1), u((1 << (8 * np.dtype(u).itemsize - 1)) - 1))
         for u in (np.uint8, np.uint16, np.uint32)}  # (1, magnitude mask) per bit width
_NAMES: dict[np.dtype, str] = {}  # float formats' names by numpy dtype, as name_of finds
_BF16 = np.dtype(ml_dtypes.bfloat16)


@dataclass(frozen=True)
class Operand:
    """A matmul operand upcast to float64 plus its per-row (``axis=1``) or per-column
    (``axis=0``) exactness slack. The simulator builds one per A panel in SRAM and reuses
    it, and one per batch of weight tiles (sim._batch)."""

    name: str
    f64: np.ndarray  # the values, exactly: float64 (float32 for int8 with k <= 1024)
    slack: np.ndarray | None  # None for integer operands (always exact)
    slack_max: float = -math.inf  # slack.max() (-inf when empty or None)
    norm: np.ndarray | None = None  # per-row/column 2-norms, as computed (float operands)

    @classmethod
    def of(cls, x: np.ndarray, axis: int, out: np.ndarray | None = None) -> Operand:
        """``x``'s operand; ``out`` (optional) is a buffer to decode the values into when
        its shape and dtype fit (memory just used is still in cache; fresh memory is not)."""
        name = _NAMES.get(x.dtype) or name_of(x.dtype)
        if name in _INT_MM:
            # int8 sums of k <= 1024 products stay within 1024 * 2**14 = 2**24: exact in
            # float32, whose BLAS is twice as fast; longer ones use float64 (exact < 2**53)
            k = x.shape[axis] if x.ndim == 2 else 0
            return cls(name, _values(x, np.float32 if k <= 1024 else np.float64, out), None)
        if name not in FORMATS:
            raise TypeError(f"matmul operands must be a float format or int8, got {name}")
        _NAMES[x.dtype] = name
        x64 = _values(x, np.float64, out)  # exact for every float format
        fmt = FORMATS[name]
        sq = np.einsum(_SUMSQ[axis], x64, x64)
        norm = np.sqrt(sq)
        if x.shape[axis] == 0 or x.shape[1 - axis] == 0:
            sl = slack(x, fmt, axis, sq)
            return cls(name, x64, sl, float(sl.max()) if sl.size else -math.inf, norm)
        # slack(), in fewer numpy calls (this runs once per weight tile): log2 ||x|| minus
        # u = max(E, 1) - bias - (p - 1), E the exponent field of the smallest nonzero
        # magnitude (see min_ulp_exponent)
        one, mask = _BITS[fmt.uint]
        mag = np.bitwise_and(x.view(fmt.uint), mask)
        mag -= one  # in place: wraps 0 to the type's max
        low = mag.min(axis=axis)
        low += one
        sl = np.log2(np.maximum(norm, _TINY))
        sl -= np.maximum(low >> fmt.mantissa_bits, 1)
        sl += fmt.bias + fmt.mantissa_bits + _LOG_MARGIN
        top = float(sl.max())
        if not math.isfinite(top):  # an inf/NaN: those outputs are nonfinite anyway
            sl[~np.isfinite(sq)] = -np.inf
            top = float(sl.max())
        return cls(name, x64, sl, top, norm)


def _values(x: np.ndarray, dt: type, out: np.ndarray | None) -> np.ndarray:
    """x upcast to ``dt`` (exact), into ``out`` when it fits. A signaling NaN becomes a
    quiet one (NaN stays NaN), which sets the invalid flag: not worth a warning."""
    if x.dtype == _BF16 and x.size:
        # bf16 is float32's top half: a shift gives the float32 exactly, NaN payloads too,
        # at ~3/4 of ml_dtypes' cast time (which is slower still on strided SRAM views)
        x = np.left_shift(x.view(np.uint16), 16, dtype=np.uint32).view(np.float32)
    with np.errstate(invalid="ignore"):
        if out is not None and out.shape == x.shape and out.dtype == dt:
            np.copyto(out, x, casting="unsafe")
            return out
        return x.astype(dt)


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


def _operands(a: np.ndarray | Operand, b: np.ndarray | Operand,
              dtype: str | None) -> tuple[Operand, Operand]:
    a = a if isinstance(a, Operand) else Operand.of(np.asarray(a), axis=1)
    b = b if isinstance(b, Operand) else Operand.of(np.asarray(b), axis=0)
    if a.name != b.name or (dtype is not None and dtype != a.name):
        raise TypeError(f"matmul operands must share one dtype, got {a.name} and {b.name}"
                        + (f" (expected {dtype})" if dtype else ""))
    if a.f64.shape[1] != b.f64.shape[0]:
        raise ValueError(f"matmul inner dims differ: {a.f64.shape} @ {b.f64.shape}")
    return a, b


_SCRATCH = threading.local()


def _scratch(rows: int, cols: int, dt: np.dtype) -> np.ndarray:
    """A reusable [rows, cols] buffer of this thread (its previous contents are garbage).
    Rows are padded by 64 bytes: the transposed reads of a power-of-two row pitch would
    otherwise hit one cache set. A few recent shapes are kept."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    key = (rows, cols, dt)
    buf = bufs.pop(key, None)
    if buf is None:
        buf = np.empty((rows, cols + 64 // dt.itemsize), dt)[:, :cols]
        while len(bufs) >= 4:
            bufs.pop(next(iter(bufs)))
    bufs[key] = buf  # most recently used last
    return buf


def matmul_t(a: np.ndarray | Operand, b: np.ndarray | Operand) -> np.ndarray:
    """(a @ b).T [n, m] in this thread's scratch buffer (valid until the next call): for
    float formats float64, exact where the test passes and elsewhere replaced by the output's
    float32 rounding (a float64 holding a float32, so rounding it again changes nothing);
    for int8 the exact integers as float32/float64.

    BLAS computes the transpose because OpenBLAS's dgemm with m large and n small (here
    m = 1024 A rows, n = 128 weight columns) is ~20% faster with the long side as its M;
    the order of the sum does not matter to the exactness test (any order, fma or not)."""
    return _product(a, b, transposed=True)


def matmul_n(a: np.ndarray | Operand, b: np.ndarray | Operand) -> np.ndarray:
    """a @ b [m, n] in this thread's scratch buffer, otherwise as :func:`matmul_t`: the
    orientation for a short A and a wide B (m = 128 rows of A through 1024 columns of B:
    ~25% faster than the transpose), as output-stationary tiles batch up."""
    return _product(a, b, transposed=False)


def _product(a: np.ndarray | Operand, b: np.ndarray | Operand, transposed: bool) -> np.ndarray:
    a, b = _operands(a, b, None)
    m, n = a.f64.shape[0], b.f64.shape[1]
    with np.errstate(invalid="ignore"):  # inf * 0 -> NaN is the defined result
        if transposed:
            out = t = _scratch(n, m, a.f64.dtype)
            np.matmul(b.f64.T, a.f64.T, out=t)
        else:
            out = _scratch(m, n, a.f64.dtype)
            np.matmul(a.f64, b.f64, out=out)
            t = out.T  # _settle indexes [column, row]
    if a.slack_max + b.slack_max >= 53:  # else every output passes (-inf: int8 or empty)
        bad_r, bad_c = _failing(a.slack, b.slack, b.slack_max)
        if bad_r.size:
            _settle(a, b, t, bad_r, bad_c)
    return out


def _failing(a_slack: np.ndarray, b_slack: np.ndarray,
             b_max: float) -> tuple[np.ndarray, np.ndarray]:
    """The outputs (row, column) that fail the exactness test, a_slack[r] + b_slack[c] >= 53,
    in time proportional to their number: only rows that fail against the column with the
    most slack can fail at all, and per row the failing columns are a prefix of the columns
    sorted by slack (the 53 - a form differs from the sum in the last bit at most, far
    inside _LOG_MARGIN)."""
    rows = np.flatnonzero(a_slack >= 53 - b_max)
    if not rows.size:
        return rows, rows
    order = np.argsort(-b_slack, kind="stable")  # most slack first
    desc = -b_slack[order]  # ascending
    counts = np.searchsorted(desc, a_slack[rows] - 53, side="right")
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(rows, counts), order[np.arange(total) - starts]


_F32_MAX = float(np.finfo(np.float32).max)


def _settle(a: Operand, b: Operand, t: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
    """Outputs (i, j) failed the exactness test: their float64 sums r = t[j, i] may be off.
    Keep r where it provably rounds to the exact sum's float32 anyway, else recompute.

    Proof. BLAS sums the k exact products (float64 holds them, see the module docstring)
    by some tree of k - 1 float64 roundings (fma or not, blocked or not), with no underflow
    or overflow (the products of these formats are multiples of 2**-300 below 2**300), so
    the exact sum s satisfies |r - s| <= gamma(k - 1) * S, gamma(n) = n u / (1 - n u),
    u = 2**-53 (Higham, Accuracy and Stability, eq. 4.4 for any summation order), where
    S = sum |a_ik b_kj| <= ||a_i|| ||b_j|| (Cauchy-Schwarz). E = (k + 1) 2**-52 Na Nb,
    Na and Nb the computed norms (relative errors below (k + 2) u each, and E's own
    roundings below 2u), is at least that bound for any k < 2**40. Let f = fl32(r) (RNE),
    finite and not +-FLT_MAX, and lo < f < hi the midpoints to its float32 neighbours
    (exact float64 values: two adjacent float32s sum exactly, halving is exact). Every
    real in (lo, hi) rounds to f. If fl64(r - lo) > E then r - lo > E (rounding is
    monotone and E is a float64), likewise for hi - r, so lo < s < hi and fl32(s) = f:
    r may stay (its float32 rounding is the answer; a tie r = lo or hi never passes).
    Otherwise t[j, i] becomes fl32(s) computed exactly (:func:`exact_rows_f32`)."""
    k = a.f64.shape[1]
    r = t[j, i]
    e = (k + 1) * 2.0 ** -52 * (a.norm[i] * b.norm[j])
    f = r.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        f64 = f.astype(np.float64)
        lo = (f64 + np.nextafter(f, np.float32(-np.inf)).astype(np.float64)) * 0.5
        hi = (f64 + np.nextafter(f, np.float32(np.inf)).astype(np.float64)) * 0.5
        ok = (np.abs(f64) < _F32_MAX) & (r - lo > e) & (hi - r > e)
    bad = np.flatnonzero(~ok)
    for s in range(0, bad.size, 4096):  # chunks bound the products' memory
        ii, jj = i[bad[s:s + 4096]], j[bad[s:s + 4096]]
        t[jj, ii] = exact_rows_f32(a.f64[ii, :] * b.f64[:, jj].T)


def _ints(t: np.ndarray) -> np.ndarray:
    """Exact integer sums held as float32 (|x| <= 2**24) or float64 -> int32, wrapped."""
    if t.dtype == np.float32:
        return t.astype(np.int32)
    return t.astype(np.int64).astype(np.int32)


def matmul_acc(a: np.ndarray | Operand, b: np.ndarray | Operand,
               dtype: str | None = None) -> np.ndarray:
    """a [m, k] @ b [k, n] as the matrix unit computes it: float formats give float32 (each
    output the exact sum of exact products, rounded once, RNE); int8 gives int32 (exact, as
    float32/float64 integers, see Operand.of, then wrapped two's complement).
    ``dtype`` (optional) names the operands' format and must match both."""
    a, b = _operands(a, b, dtype)
    t = matmul_t(a, b).T
    if a.slack is None:
        return np.ascontiguousarray(_ints(t))
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as rounding defines
        return t.astype(np.float32, order="C")


def matmul_into(a: np.ndarray | Operand, b: np.ndarray | Operand, out: np.ndarray,
                accumulate: bool) -> None:
    """``out`` (float32 or int32 [m, n], e.g. a view of accumulator memory) ``+=`` (with
    ``accumulate``) or ``=`` :func:`matmul_acc` (a, b), without materializing the product:
    float32 adds round once more (RNE), int32 adds wrap."""
    a, b = _operands(a, b, None)
    t = matmul_t(a, b).T
    want = np.int32 if a.slack is None else np.float32
    if out.dtype != want or out.shape != t.shape:
        raise TypeError(f"accumulator is {out.dtype} {out.shape}, the product {np.dtype(want)} "
                        f"{t.shape}")
    if a.slack is None or (out.shape[0] > 1 and out.strides[0] < out.shape[1] * 4):
        # int32 (a cast, then wrapping adds) or rows that overlap (written in order, as
        # ``out += res`` writes them)
        res = _ints(t) if a.slack is None else t.astype(np.float32)
        if accumulate:
            out += res
        else:
            out[...] = res
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if accumulate:  # the float64 -> float32 cast (RNE) happens before the float32 add
            np.add(out, t, out=out, dtype=np.float32, casting="same_kind")
        else:
            np.copyto(out, t, casting="same_kind")


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
