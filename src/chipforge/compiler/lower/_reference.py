"""Float64 numpy evaluation of a :class:`KernelGraph`: the oracle that front ends are checked
against (not the chip's semantics, which are the simulator's).

Every op follows the ``_kernel_graph`` module docstring. Float tensors are evaluated in float64;
tensors of an integer dtype ("int8", "int32") are held as int64 arrays. Values are rounded
to a tensor's dtype only where an op converts: ``cast`` (round-to-nearest-even onto the
target format; overflow gives inf, or NaN for fp8_e4m3, which has no inf; to an integer
dtype it truncates toward zero and saturates) and ``quantize`` (round-to-nearest-even of
``x / scale + zero_point``, saturated to the target's finite range).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from chipforge.compiler.lower._kernel_graph import CompileError, KernelGraph, KernelNode
from chipforge.numerics import FORMATS, INT_RANGE

# float formats: (mantissa bits, minimum normal exponent, largest finite value, has inf),
# from the formats' bit layouts (numerics.FORMATS); the rounding below is this module's own,
# in float64, independent of ml_dtypes
FLOAT_FORMATS = {name: (f.mantissa_bits, 1 - f.bias, f.max, f.has_inf)
                 for name, f in FORMATS.items()}
FLOAT_FORMATS["tf32"] = (10, -126, (2 - 2.0**-10) * 2.0**127, True)  # fp32's range, 10 bits
INT_RANGES = INT_RANGE


def round_to_format(x: np.ndarray, dtype: str, *, saturate: bool = False) -> np.ndarray:
    """Round float64 values to the nearest value of float format ``dtype`` (ties to even).

    Out-of-range results saturate to +-max with ``saturate``; otherwise they become inf,
    or NaN for formats without inf. Subnormals of the format are kept.
    """
    mant, emin, fmax, has_inf = FLOAT_FORMATS[dtype]
    x = np.asarray(x, np.float64)
    _, e = np.frexp(x)  # |x| = f * 2**e with 0.5 <= f < 1, so floor(log2|x|) = e - 1
    step = np.ldexp(1.0, np.maximum(e - 1, emin) - mant)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.where(np.isfinite(x), np.rint(x / step) * step, x)
        if saturate:
            return np.clip(q, -fmax, fmax)
        big = np.abs(q) > fmax
    return np.where(big, np.copysign(np.inf, q) if has_inf else np.nan, q)


def _convert(x: np.ndarray, dtype: str, *, saturate: bool) -> np.ndarray:
    """``x`` onto ``dtype``'s grid: float formats as float64, integer dtypes as int64."""
    if dtype in INT_RANGES:
        lo, hi = INT_RANGES[dtype]
        if np.issubdtype(np.asarray(x).dtype, np.integer):
            return np.clip(x, lo, hi).astype(np.int64)
        rounded = np.rint(x) if saturate else np.trunc(x)
        return np.clip(rounded, lo, hi).astype(np.int64)
    if dtype not in FLOAT_FORMATS:
        raise CompileError(f"reference: unknown dtype {dtype!r}; expected one of "
                           f"{', '.join([*FLOAT_FORMATS, *INT_RANGES])}")
    return round_to_format(np.asarray(x, np.float64), dtype, saturate=saturate)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _windows(x: np.ndarray, kernel, stride, padding, fill: float) -> np.ndarray:
    """[N, C, OH, OW, kh, kw] sliding windows of x [N, C, H, W] after padding with fill."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return win[:, :, ::sh, ::sw]


def conv2d(x: np.ndarray, w: np.ndarray, stride=1, padding=0, groups: int = 1) -> np.ndarray:
    """x [N, C, H, W] (*) w [O, C/groups, kh, kw] -> [N, O, OH, OW], float64."""
    n, c = x.shape[:2]
    o, cg, kh, kw = w.shape
    if c != cg * groups or o % groups:
        raise CompileError(f"reference conv2d: input channels {c}, weight {w.shape}, groups "
                           f"{groups} do not match")
    win = _windows(np.asarray(x, np.float64), (kh, kw), stride, padding, 0.0)
    og = o // groups
    outs = [np.einsum("nchwij,ocij->nohw", win[:, g * cg:(g + 1) * cg],
                      w[g * og:(g + 1) * og].astype(np.float64)) for g in range(groups)]
    return np.concatenate(outs, axis=1)


def _gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


_erf = np.vectorize(math.erf, otypes=[np.float64])  # exact (libm) erf, NaN -> NaN


def _gelu_erf(x):
    y = 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    return np.where(np.isinf(x), np.nan, y)  # as PyTorch's CPU kernel


def _elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    return scale * (np.maximum(x, 0.0) + alpha * np.expm1(np.minimum(x, 0.0) * input_scale))


def _remainder(a, b):
    """a - b * floor(a / b), computed exactly (torch.remainder): fmod, moved by b where
    its sign differs from b's."""
    r = np.fmod(a, b)
    return np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


def _mask(test: Callable) -> Callable:
    return lambda x: test(x).astype(np.float64)


# the elementwise math ops of _math_kernels, exact (attrs as keyword arguments)
_MATH: dict[str, Callable] = {
    "erf": _erf, "gelu_erf": _gelu_erf,
    "sign": lambda x: np.where(np.isnan(x), 0.0, np.sign(x)),
    "trunc": np.trunc, "floor": np.floor, "ceil": np.ceil, "round": np.rint,
    "isnan": _mask(np.isnan), "isinf": _mask(np.isinf),
    "expm1": np.expm1, "log1p": np.log1p, "log2": np.log2, "log10": np.log10,
    "sinh": np.sinh, "cosh": np.cosh, "elu": _elu,
    "leaky_relu": lambda x, slope=0.01: np.where(x > 0, x, x * slope),
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "atan": np.arctan, "asin": np.arcsin,
    "acos": np.arccos, "atan2": np.arctan2, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "fmod": np.fmod, "remainder": _remainder, "pow_tensor": np.power,
}


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _layernorm(x, w, b, eps):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _slice(x, dim, start, end, step):
    index = [slice(None)] * x.ndim
    index[dim] = slice(start, end, step)
    return x[tuple(index)]


def _check_rows(op: str, idx, rows: int) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= rows):
        raise CompileError(f"reference: {op} index {int(idx.min())}..{int(idx.max())} "
                           f"outside the table's rows 0..{rows - 1}")


def _embedding(table, idx):
    _check_rows("embedding", idx, table.shape[0])
    return table[idx]


def _scatter_add(idx, rows, num_rows: int):
    """[num_rows, D] zeros with rows[i] added into row idx[i], in index order."""
    _check_rows("scatter_add", idx, num_rows)
    out = np.zeros((num_rows,) + rows.shape[1:])
    np.add.at(out, idx, np.asarray(rows, np.float64))  # unbuffered: duplicates accumulate
    return out


_BINARY: dict[str, Callable] = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                                "div": np.divide, "maximum": np.maximum, "minimum": np.minimum}
_UNARY: dict[str, Callable] = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x), "reciprocal": lambda x: 1.0 / x,
    "relu": lambda x: np.maximum(x, 0), "gelu": _gelu, "silu": lambda x: x / (1.0 + np.exp(-x)),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "tanh": np.tanh, "square": np.square,
}
_REDUCE: dict[str, Callable] = {"sum": np.sum, "max": np.max, "mean": np.mean}
_COMPARE: dict[str, Callable] = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less,
                                 "le": np.less_equal, "eq": np.equal}


def _eval(node: KernelNode, args: list[np.ndarray], out_dtype: str) -> np.ndarray:
    op, a = node.op, node.attr
    if op in _BINARY or op in _COMPARE:
        if len(args) == 1:
            scalar = a("scalar")
            if scalar is None:
                raise CompileError(f"reference: {op} -> {node.output} has one input and no "
                                   f"scalar attr")
            args = [args[0], np.asarray(scalar)]
        if op in _COMPARE:
            return _COMPARE[op](*args).astype(np.float64)
        if op == "div" and out_dtype in INT_RANGES:
            return np.trunc(np.true_divide(*args))
        return _BINARY[op](*args)
    if op in _UNARY:
        return _UNARY[op](np.asarray(args[0], np.float64))
    if op in _MATH:
        return _MATH[op](*(np.asarray(v, np.float64) for v in args), **dict(node.attrs))
    if op == "pow":
        return np.power(np.asarray(args[0], np.float64), float(a("exponent")))
    if op == "cast":
        return _convert(args[0], out_dtype, saturate=False)
    if op == "quantize":
        x = np.asarray(args[0], np.float64) / float(a("scale")) + float(a("zero_point", 0))
        return _convert(x, out_dtype, saturate=True)
    if op in _REDUCE:
        return _REDUCE[op](args[0], axis=-1, keepdims=True)
    simple = {
        "matmul": lambda: np.matmul(*args),
        "conv2d": lambda: conv2d(*args, a("stride", 1), a("padding", 0), a("groups", 1)),
        "softmax": lambda: _softmax(np.asarray(args[0], np.float64)),
        "layernorm": lambda: _layernorm(*args, float(a("eps"))),
        "rmsnorm": lambda: _rmsnorm(*args, float(a("eps"))),
        "reshape": lambda: np.reshape(args[0], tuple(a("shape"))),
        "permute": lambda: np.transpose(args[0], tuple(a("dims"))),
        "slice": lambda: _slice(args[0], a("dim"), a("start"), a("end"), a("step", 1)),
        "cat": lambda: np.concatenate(args, axis=a("dim")),
        "expand": lambda: np.broadcast_to(args[0], tuple(a("shape"))),
        "embedding": lambda: _embedding(*args),
        "scatter_add": lambda: _scatter_add(*args, int(a("num_rows"))),
        "max_pool2d": lambda: _windows(np.asarray(args[0], np.float64), a("kernel"),
                                       a("stride") or a("kernel"), a("padding", 0),
                                       -np.inf).max(axis=(-2, -1)),
        "global_avg_pool2d": lambda: np.mean(args[0], axis=(2, 3), keepdims=True),
    }
    if op not in simple:
        raise CompileError(f"reference: no evaluation for op {op!r} ({node.output})")
    return simple[op]()


def reference(graph: KernelGraph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate ``graph`` in float64 on ``inputs`` (one array per graph input); returns the
    graph outputs by name, float64 arrays or, for integer dtypes, int64 arrays."""
    graph.validate()
    missing = [n for n in graph.inputs if n not in inputs]
    extra = sorted(set(inputs) - set(graph.inputs))
    if missing or extra:
        raise CompileError(f"reference: inputs {sorted(inputs)}; graph {graph.name!r} expects "
                           f"{graph.inputs}")
    env: dict[str, np.ndarray] = {}

    def store(name: str, value) -> None:
        info = graph.tensors[name]
        value = np.asarray(value)
        if value.shape != info.shape:
            raise CompileError(f"reference: tensor {name!r} has shape {value.shape}; the graph "
                               f"declares {info.shape}")
        is_int = info.dtype in INT_RANGES
        if is_int and not np.issubdtype(value.dtype, np.integer):
            value = np.trunc(value)
        env[name] = value.astype(np.int64 if is_int else np.float64)

    for name, value in graph.constants.items():
        store(name, value)
    for name in graph.inputs:
        store(name, inputs[name])
    for node in graph.nodes:
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            value = _eval(node, [env[i] for i in node.inputs], graph.tensors[node.output].dtype)
        store(node.output, value)
    return {name: env[name] for name in graph.outputs}
