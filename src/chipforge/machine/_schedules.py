"""Kernel schedules of chipforge's compiled vector kernels: how rows are chunked, which
functions run on the special-function lanes, and how many vector passes each kernel makes.

This is the one home of these facts: the compiler's emitters read the chunking and the
power sequences, the ISA derives its special-function opcodes from
:data:`SPECIAL_FUNCTIONS`, and the engine's kernel model and the compiler's agreement check
read the passes. ``tests/compiler/test_schedules.py`` counts the vector instructions each
emitter produces and holds them to :func:`vector_passes`.
"""

from __future__ import annotations

from dataclasses import dataclass

# rows per vector-kernel chunk: enough to hide the vector pipeline's fill behind a chunk
ROW_CHUNK_ROWS = 256
# a flat elementwise tensor is laid out as rows of this many elements (op IR -> kernels)
ELEMENTWISE_ROW_ELEMENTS = 4096

# vector-unit functions that run on the special-function lanes (transcendentals), by the
# vector ALU's function names
SPECIAL_FUNCTIONS = frozenset({"exp", "log", "sqrt", "rsqrt", "recip", "gelu", "silu",
                               "sigmoid", "tanh"})
# x ** c as a short sequence of unary functions where one exists (exact powers stay exact);
# other exponents: x * x**2 for c = 3, exp(c * log x) otherwise
POW_SEQUENCES: dict[float, tuple[str, ...]] = {
    1.0: ("copy",), 2.0: ("square",), 0.5: ("sqrt",), -0.5: ("rsqrt",), -1.0: ("recip",),
    -2.0: ("square", "recip")}
# the elementwise math sequences of the compiler (its ``_math_kernels``): one kernel op, a
# straight-line sequence of (lane, special-function) passes per chunk
MATH_SEQUENCES: dict[str, tuple[int, int]] = {
    "erf": (25, 0), "gelu_erf": (31, 0), "sign": (3, 0), "trunc": (7, 0), "round": (7, 0),
    "floor": (9, 0), "ceil": (9, 0), "isnan": (2, 0), "isinf": (2, 0), "expm1": (11, 2),
    "log1p": (10, 1), "log2": (1, 1), "log10": (1, 1), "sinh": (28, 2), "cosh": (6, 2),
    "elu": (17, 2), "leaky_relu": (4, 0), "sin": (34, 1), "cos": (37, 1), "tan": (72, 2),
    "atan": (33, 1), "asin": (38, 2), "acos": (33, 2), "atan2": (55, 2), "asinh": (28, 3),
    "acosh": (25, 4), "atanh": (20, 1), "fmod": (38, 0), "remainder": (48, 0),
    "pow_tensor": (30, 3)}
# affine row operands (weight, bias) an op-IR norm carries: each is loaded once per core
NORM_AFFINE_OPERANDS = {"layernorm": 2, "rmsnorm": 1}


@dataclass(frozen=True)
class VectorPasses:
    """The vector instructions one chunk of a row kernel makes: passes over every element
    on the ALU lanes and on the special-function lanes, and passes over one value per row
    (a row's statistics)."""

    lane: int
    special: int = 0
    per_row: int = 0


def is_special(function: str) -> bool:
    return function in SPECIAL_FUNCTIONS


def vector_passes(kernel: str, *, affine: int = 0, exponent: float | None = None
                  ) -> VectorPasses:
    """The passes of the compiled row kernel ``kernel``:

    * "softmax": max, subtract, exp, sum, then a reciprocal per row and a scale;
    * "layernorm" / "rmsnorm" with ``affine`` weight and bias operands: (sum, then per row
      the mean; centre), square, sum, then per row scale, add eps, rsqrt; normalize; one
      pass per operand;
    * "reduce" (sum, max, mean): one pass, then one per row (mean's scale or a copy out);
    * "quantize": divide by the scale, add the zero point;
    * "pow" with ``exponent``: :data:`POW_SEQUENCES`, x * x**2, or log, scale, exp;
    * "adamw": the fused optimizer update the engine assumes for one op-IR AdamW op;
    * an elementwise math op of :data:`MATH_SEQUENCES`: its sequence's passes;
    * any other name: one elementwise pass, on the special lanes if :func:`is_special`.
    """
    if kernel == "softmax":
        return VectorPasses(4, 1, 1)
    if kernel == "layernorm":
        return VectorPasses(5 + affine, 0, 4)
    if kernel == "rmsnorm":
        return VectorPasses(3 + affine, 0, 3)
    if kernel == "reduce":
        return VectorPasses(1, 0, 1)
    if kernel == "quantize":
        return VectorPasses(2)
    if kernel == "pow":
        seq = POW_SEQUENCES.get(exponent)
        if seq is not None:
            return VectorPasses(sum(not is_special(f) for f in seq),
                                sum(is_special(f) for f in seq))
        return VectorPasses(2) if exponent == 3.0 else VectorPasses(1, 2)
    if kernel == "adamw":
        # assumption: the engine's model of one AdamW op; the compiled update
        # (compiler adamw_graph) runs 13 lane kernels and one sqrt
        return VectorPasses(12, 1)
    if kernel in MATH_SEQUENCES:
        return VectorPasses(*MATH_SEQUENCES[kernel])
    return VectorPasses(0, 1) if is_special(kernel) else VectorPasses(1)
