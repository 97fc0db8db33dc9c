"""The vector unit's ALU: float32 in, float32 out.

Cheap ops (neg, abs, relu, square, the binary ops) are single float32 operations, so
numpy's float32 arithmetic is already the correctly rounded result. Transcendentals are
computed in float64 and rounded once to float32: float64 libm results differ across
platforms by at most an ulp of float64, which almost never moves the float32 rounding,
where float32 libm results differ by whole float32 ulps. SQRT, RSQRT and RECIP via float64
are correctly rounded float32 results (53 >= 2 * 24 + 2, so no double-rounding error).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from chipforge.isa import BinOp, UnOp

F64 = np.float64
_GELU_C = np.sqrt(2.0 / np.pi)


def _in64(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def op(x: np.ndarray) -> np.ndarray:
        return f(x.astype(F64)).astype(np.float32)
    return op


def _gelu(x: np.ndarray) -> np.ndarray:
    """0.5x(1 + tanh(z)) written as x / (1 + exp(-2z)) (the same function: 1 + tanh(z) =
    2 sigmoid(2z)), which avoids 1 + tanh(z)'s cancellation for negative x, where the
    tanh form loses all float64 digits and libm's last-bit differences would show."""
    z = _GELU_C * (x + 0.044715 * x * x * x)
    return x / (1.0 + np.exp(-2.0 * z))


UNARY: dict[UnOp, Callable[[np.ndarray], np.ndarray]] = {
    UnOp.COPY: lambda x: x,
    UnOp.NEG: np.negative,
    UnOp.ABS: np.abs,
    UnOp.EXP: _in64(np.exp),
    UnOp.LOG: _in64(np.log),
    UnOp.SQRT: _in64(np.sqrt),
    UnOp.RSQRT: _in64(lambda x: 1.0 / np.sqrt(x)),
    UnOp.RECIP: _in64(lambda x: 1.0 / x),
    UnOp.RELU: lambda x: np.maximum(x, np.float32(0)),
    UnOp.GELU: _in64(_gelu),
    UnOp.SILU: _in64(lambda x: x / (1.0 + np.exp(-x))),
    UnOp.SIGMOID: _in64(lambda x: 1.0 / (1.0 + np.exp(-x))),
    UnOp.TANH: _in64(np.tanh),
    UnOp.SQUARE: lambda x: x * x,
}

def _compare(f: Callable[[np.ndarray, np.ndarray], np.ndarray]
             ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def op(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return f(a, b).astype(np.float32)  # 1.0 / 0.0; any comparison with NaN is false
    return op


# MAX/MIN propagate NaN (np.maximum/np.minimum), like IEEE 754-2019 maximum/minimum
BINARY: dict[BinOp, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    BinOp.ADD: np.add,
    BinOp.SUB: np.subtract,
    BinOp.MUL: np.multiply,
    BinOp.DIV: np.divide,
    BinOp.MAX: np.maximum,
    BinOp.MIN: np.minimum,
}
for _name, _f in (("GT", np.greater), ("GE", np.greater_equal), ("LT", np.less),
                  ("LE", np.less_equal), ("EQ", np.equal)):
    if hasattr(BinOp, _name):  # comparisons, where this ISA version has them
        BINARY[BinOp[_name]] = _compare(_f)
