"""Bit-accurate numerics of the chipforge units on numpy + ml_dtypes.

Every value is upcast exactly (:func:`to_f32`), computed, and rounded once
(:func:`cast`, from float32 only). The matrix unit's dot products are exact sums rounded
once to float32 (:func:`matmul_acc`); int8 products accumulate exactly and wrap to int32.
"""

from chipforge.numerics._dtypes import (
    FLOAT_NAMES,
    FORMATS,
    INT_RANGE,
    NP_DTYPE,
    FloatFormat,
    cast,
    dtype_name,
    name_of,
    np_dtype,
    to_f32,
)
from chipforge.numerics._exact import (
    Operand,
    dot_exact,
    exact_rows_f32,
    fsum_f32,
    matmul_acc,
    matmul_into,
    matmul_n,
    matmul_t,
    sum_f32,
)
from chipforge.numerics._quant import dequantize, quantize, requantize

__all__ = [
    "FLOAT_NAMES", "FORMATS", "INT_RANGE", "NP_DTYPE", "FloatFormat", "Operand", "cast",
    "dequantize", "dot_exact", "dtype_name", "exact_rows_f32", "fsum_f32", "matmul_acc",
    "matmul_into", "matmul_n", "matmul_t",
    "name_of", "np_dtype", "quantize", "requantize", "sum_f32", "to_f32",
]
