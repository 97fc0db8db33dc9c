"""Number formats and the one rounding function, :func:`cast`, every unit uses.

Values move between formats only through explicit, exact upcasts (:func:`to_f32`) and one
rounding step from float32 (:func:`cast`). numpy/ml_dtypes traps this avoids:

* ml_dtypes rounds f64 -> bf16 *through f32* (two roundings), so :func:`cast` refuses any
  input that is not float32 and callers round f64 -> f32 themselves, once, on purpose.
* ml_dtypes has no saturating cast and float8_e4m3fn (no inf) overflows to NaN past 464;
  ``saturate=True`` clips to the finite range first (torch's fp8 cast saturates instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import ml_dtypes
import numpy as np

NP_DTYPE: dict[str, np.dtype] = {
    "fp32": np.dtype(np.float32),
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "fp16": np.dtype(np.float16),
    "fp8_e4m3": np.dtype(ml_dtypes.float8_e4m3fn),
    "fp8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
    "int8": np.dtype(np.int8),
    "int32": np.dtype(np.int32),
}
FLOAT_NAMES = ("fp32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2")
INT_RANGE = {"int8": (-128, 127), "int32": (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class FloatFormat:
    """Bit layout of a sign-magnitude binary float format."""

    name: str
    precision: int  # significand bits p, implicit bit included
    max: float  # largest finite value
    uint: np.dtype  # unsigned integer type of the same width
    nonfinite_bits: int  # magnitude bit patterns >= this are inf or NaN
    bias: int  # exponent bias

    @property
    def mantissa_bits(self) -> int:
        return self.precision - 1

    @property
    def bits(self) -> int:
        return self.uint.itemsize * 8

    @property
    def exponent_bits(self) -> int:
        return self.bits - 1 - self.mantissa_bits

    @property
    def has_inf(self) -> bool:
        """False for e4m3fn, whose top exponent holds normal numbers (S.1111.111 is NaN)."""
        return self.nonfinite_bits == ((1 << self.exponent_bits) - 1) << self.mantissa_bits


FORMATS: dict[str, FloatFormat] = {
    "fp32": FloatFormat("fp32", 24, float(np.finfo(np.float32).max), np.dtype(np.uint32),
                        0x7F800000, 127),
    "bf16": FloatFormat("bf16", 8, float(ml_dtypes.finfo(ml_dtypes.bfloat16).max),
                        np.dtype(np.uint16), 0x7F80, 127),
    "fp16": FloatFormat("fp16", 11, 65504.0, np.dtype(np.uint16), 0x7C00, 15),
    # e4m3fn: only S.1111.111 is NaN; S.1111.xxx are normal numbers up to 448
    "fp8_e4m3": FloatFormat("fp8_e4m3", 4, 448.0, np.dtype(np.uint8), 0x7F, 7),
    "fp8_e5m2": FloatFormat("fp8_e5m2", 3, 57344.0, np.dtype(np.uint8), 0x7C, 15),
}

class NamedDtype(Protocol):
    """A dtype object that knows its chipforge name (the ISA's ``Dtype``): numerics sits
    below the ISA, so it reads the name rather than importing the enum."""

    @property
    def name_str(self) -> str: ...


DtypeLike = str | NamedDtype


def dtype_name(dtype: DtypeLike) -> str:
    """The chipforge dtype name ("bf16", ...) of a name or of anything that carries one as
    ``name_str`` (the ISA's ``Dtype``)."""
    dtype = getattr(dtype, "name_str", dtype)
    if dtype not in NP_DTYPE:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(NP_DTYPE)}")
    return dtype


def np_dtype(dtype: DtypeLike) -> np.dtype:
    return NP_DTYPE[dtype_name(dtype)]


def name_of(np_type: np.dtype) -> str:
    """The chipforge name of a numpy dtype in :data:`NP_DTYPE`."""
    for name, dt in NP_DTYPE.items():
        if dt == np_type:
            return name
    raise TypeError(f"{np_type} is not a chipforge dtype ({', '.join(NP_DTYPE)})")


def to_f32(x: np.ndarray) -> np.ndarray:
    """Upcast to float32. Exact for every format but int32, whose values beyond 2**24 are
    rounded to nearest even (numpy's int -> float conversion). float64 is refused: that is a
    rounding, not an upcast, and must be written as an explicit ``astype(np.float32)``."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        return x
    name_of(x.dtype)  # raises for float64 and other foreign types
    return x.astype(np.float32)


def cast(x: np.ndarray, dtype: DtypeLike, rounding: str = "rne",
         saturate: bool = False) -> np.ndarray:
    """Round float32 ``x`` to ``dtype`` once.

    rounding: "rne" (to nearest, ties to even) or "rtz" (toward zero; like IEEE, rtz never
    overflows a finite value to inf/NaN, it gives the largest finite value).
    saturate: values beyond the finite range, +-inf included, become +-max (NaN stays NaN);
    without it fp16/bf16/e5m2 overflow to inf and e4m3 (which has no inf) to NaN.
    Integers: round (rne: np.rint, rtz: np.trunc), then saturate to the range, or wrap
    modulo 2**bits (two's complement) without ``saturate``. NaN -> 0 and +-inf -> max/min in
    both modes (wrapping an infinity has no meaning).
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"cast() takes float32 input, got {x.dtype}: round float64 to float32 "
                        "explicitly first (f64 -> bf16 in ml_dtypes double-rounds)")
    if rounding not in ("rne", "rtz"):
        raise ValueError(f"rounding must be 'rne' or 'rtz', got {rounding!r}")
    name = dtype_name(dtype)
    if name in INT_RANGE:
        return _cast_int(x, name, rounding, saturate)
    fmt = FORMATS[name]
    if saturate:
        x = np.clip(x, np.float32(-fmt.max), np.float32(fmt.max))
    if name == "fp32":
        return x.copy()
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf/NaN is defined here
        y = x.astype(NP_DTYPE[name])
    if rounding == "rtz":
        y = _toward_zero(x, y, fmt)
    return y


def _toward_zero(x: np.ndarray, y: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Turn a round-to-nearest result into round-toward-zero: where rounding moved away from
    zero (or overflowed a finite value to inf/NaN), step the magnitude down one code. The
    formats are sign-magnitude, so magnitude bits - 1 is the next value toward zero (inf - 1
    and e4m3's NaN 0x7F - 1 are the largest finite values)."""
    yf = y.astype(np.float32)
    with np.errstate(invalid="ignore"):
        away = np.abs(yf) > np.abs(x)
    away |= np.isnan(yf) & np.isfinite(x)
    if not away.any():
        return y
    bits = np.ascontiguousarray(y).view(fmt.uint).copy()
    bits[away] -= 1
    return bits.view(y.dtype).reshape(y.shape)


def _cast_int(x: np.ndarray, name: str, rounding: str, saturate: bool) -> np.ndarray:
    lo, hi = INT_RANGE[name]
    r = np.rint(x) if rounding == "rne" else np.trunc(x)
    r = np.where(np.isnan(r), np.float32(0), r)
    if saturate:
        # float32(2**31 - 1) rounds up to 2**31, so clip in float64 (exact for these values)
        return np.clip(r.astype(np.float64), lo, hi).astype(NP_DTYPE[name])
    inf = np.isinf(r)
    r64 = np.fmod(np.where(inf, np.float32(0), r), np.float32(2.0 ** (hi.bit_length() + 1)))
    out = r64.astype(np.int64).astype(NP_DTYPE[name])  # int64 -> narrower wraps
    if inf.any():
        out[inf & (r > 0)] = hi
        out[inf & (r < 0)] = lo
    return out
