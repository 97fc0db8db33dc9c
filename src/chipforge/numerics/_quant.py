"""Affine quantization, per tensor or per channel (a scale per element of the last axis).

quantize:    q = sat(round(x / scale) + zero_point), x / scale one float32 division (RNE),
             round = rint (ties to even) or trunc, zero_point added after rounding.
dequantize:  x = float32(q - zero_point) * scale, one float32 multiply.
requantize:  q = sat(round(float32(acc) * scale) + zero_point): what V_ACC computes
             (dst = cast(acc * imm)) for zero_point 0, per tensor.

torch differs on near-ties: its quantize_per_tensor computes fma(x, float32(1/scale),
zero_point) rounded to float32 and then rints, so values within an ulp of a half-integer
can land one step apart (about 1 in 10**5 of random data; tests/numerics pin it).
"""

from __future__ import annotations

import numpy as np

from chipforge.numerics._dtypes import FLOAT_NAMES, INT_RANGE, NP_DTYPE, cast, dtype_name, to_f32


def _scale(scale: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64).astype(np.float32)
    if s.ndim > 1 or (s.ndim == 1 and (x.ndim == 0 or s.shape[0] != x.shape[-1])):
        raise ValueError(f"scale must be a scalar or one per channel of the last axis "
                         f"({x.shape[-1] if x.ndim else 0}), got shape {s.shape}")
    return s


def _zero_point(zero_point: int | np.ndarray, x: np.ndarray) -> np.ndarray:
    zp = np.asarray(zero_point, dtype=np.int64)
    if zp.ndim > 1 or (zp.ndim == 1 and zp.shape[0] != x.shape[-1]):
        raise ValueError(f"zero_point must be a scalar or one per channel, got {zp.shape}")
    return zp


def _round_shift(y: np.ndarray, zp: np.ndarray, name: str, rounding: str,
                 saturate: bool) -> np.ndarray:
    """round(y) + zp into integer ``name``; NaN rounds to 0 (so gives zp), +-inf saturate."""
    if not zp.any():
        return cast(y, name, rounding, saturate)
    r = np.rint(y) if rounding == "rne" else np.trunc(y)
    r64 = np.where(np.isnan(r), 0.0, r.astype(np.float64)) + zp
    lo, hi = INT_RANGE[name]
    if saturate:
        return np.clip(r64, lo, hi).astype(NP_DTYPE[name])
    inf = np.isinf(r64)
    wrapped = np.fmod(np.where(inf, 0.0, r64), 2.0 ** (hi.bit_length() + 1))
    out = wrapped.astype(np.int64).astype(NP_DTYPE[name])
    out[inf & (r64 > 0)] = hi
    out[inf & (r64 < 0)] = lo
    return out


def quantize(x: np.ndarray, scale: float | np.ndarray, zero_point: int | np.ndarray = 0,
             dtype: str = "int8", rounding: str = "rne", saturate: bool = True) -> np.ndarray:
    """float32 ``x`` -> ``dtype`` (int8, int32, or a float format with zero_point 0)."""
    x = to_f32(x)
    name = dtype_name(dtype)
    s, zp = _scale(scale, x), _zero_point(zero_point, x)
    y = x / s
    if name in FLOAT_NAMES:
        if zp.any():
            raise ValueError(f"{name} quantization takes zero_point 0")
        return cast(y, name, rounding, saturate)
    return _round_shift(y, zp, name, rounding, saturate)


def dequantize(q: np.ndarray, scale: float | np.ndarray,
               zero_point: int | np.ndarray = 0) -> np.ndarray:
    """``q`` (int8/int32/float format) -> float32 (q - zero_point) * scale."""
    q = np.asarray(q)
    s, zp = _scale(scale, q), _zero_point(zero_point, q)
    if np.issubdtype(q.dtype, np.integer):
        return (q.astype(np.int64) - zp).astype(np.float32) * s
    return to_f32(q) * s


def requantize(acc: np.ndarray, scale: float | np.ndarray, zero_point: int | np.ndarray = 0,
               dtype: str = "int8", rounding: str = "rne",
               saturate: bool = True) -> np.ndarray:
    """int32 accumulators -> ``dtype``: round(float32(acc) * scale) + zero_point, saturated
    (or wrapped). float32(acc) is exact for |acc| <= 2**24 and RNE beyond."""
    acc = np.asarray(acc)
    if acc.dtype != np.int32:
        raise TypeError(f"requantize takes int32 accumulators, got {acc.dtype}")
    s, zp = _scale(scale, acc), _zero_point(zero_point, acc)
    y = to_f32(acc) * s
    name = dtype_name(dtype)
    if name in FLOAT_NAMES:
        return cast(y, name, rounding, saturate)
    return _round_shift(y, zp, name, rounding, saturate)
