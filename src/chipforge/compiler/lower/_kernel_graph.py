"""The compiler's input: a kernel graph (``KernelGraph``) of tensor ops on named tensors.

Front ends (the op-graph builder, ``torch.export`` and aot_autograd captures) produce a
KernelGraph; the lowering turns each node into per-core instructions. ``KERNEL_OPS`` is the
supported set; :func:`reference` evaluates a graph in float64 numpy and is used to check
front ends, not the chip (the chip's semantics are the simulator's).

Shapes are tuples of ints, dtypes chipforge names ("fp32", "bf16", "fp8_e4m3", "int8",
"int32"). Op semantics (numpy broadcasting everywhere it applies):

- ``matmul`` (a [..., m, k], b [..., k, n]) -> [..., m, n]; b's batch dims broadcast.
- ``conv2d`` (x [N, C, H, W], w [O, C/groups, kh, kw]); attrs stride, padding, groups.
- binary ``add sub mul div maximum minimum``: two inputs, or one input and attr
  ``scalar`` (the scalar is the second operand); ``div`` to an integer dtype truncates
  the quotient toward zero.
- unary ``neg abs exp log sqrt rsqrt reciprocal relu gelu silu sigmoid tanh square cast``;
  ``gelu`` is the tanh approximation; ``cast`` converts to the output dtype: to a float
  format round-to-nearest-even (overflow gives inf, NaN for fp8_e4m3), to an integer
  truncate toward zero and saturate (torch's float-to-int conversion).
- ``sum max mean`` over the last dim, keeping it (size 1).
- ``softmax`` over the last dim; ``layernorm`` (x, weight, bias; attr eps) and
  ``rmsnorm`` (x, weight; attr eps) over the last dim.
- layout: ``reshape`` (attr shape), ``permute`` (attr dims), ``slice`` (attrs dim, start,
  end, step), ``cat`` (attr dim), ``expand`` (attr shape).
- ``embedding`` (table [V, D], indices int32 [...]) -> [..., D].
- ``max_pool2d`` (attrs kernel, stride, padding), ``global_avg_pool2d`` -> [N, C, 1, 1].
- ``quantize`` (x; attrs scale, zero_point) -> int8 / fp8 output dtype: round-to-nearest-
  even of x / scale + zero_point, saturated to the output dtype's range.
- ``pow`` (x; attr ``exponent``, a float): x ** exponent exactly as numpy's float64
  ``power`` (a negative x gives the signed result for an integral exponent, NaN for a
  non-integral one; 0 ** negative is inf).
- comparisons ``gt ge lt le eq``: two inputs, or one input and attr ``scalar`` (the second
  operand); 1.0 where the comparison holds, else 0.0, in the output dtype (a float
  format). Inputs may be integer ("int32") or float tensors. Masks (PyTorch's bool
  tensors) are carried as such 1.0 / 0.0 float tensors.
- ``scatter_add`` (indices int32 [N], rows [N, D]; attr ``num_rows`` V) -> [V, D]: zeros,
  then rows[i] added into row indices[i] for i = 0, 1, ..., N - 1 in that order (duplicate
  indices accumulate); every index must be in 0..V-1.
- elementwise math (``MATH_OPS``; each one vector sequence in one kernel,
  ``_math_kernels``, which states each approximation and its measured error; the
  semantics here are the exact functions, float64 in :func:`reference`):
  ``erf`` (x) -> erf(x); ``gelu_erf`` (x) -> x * 0.5 * (1 + erf(x / sqrt(2))), the exact
  GELU, NaN at +-inf as PyTorch's fp32 / bf16 / fp16 CPU kernels give;
  ``sign`` (0 for NaN, as torch.sign); ``trunc floor ceil``; ``round`` (half to even);
  ``isnan isinf`` (1.0 / 0.0 masks); ``expm1 log1p log2 log10 sinh cosh``;
  ``elu`` (attrs alpha, scale, input_scale: scale * (max(x, 0) + alpha * expm1(min(x, 0) *
  input_scale))); ``leaky_relu`` (attr slope: x for x > 0, else slope * x);
  ``sin cos tan atan asin acos asinh acosh atanh``; two inputs, broadcast as the binary
  ops: ``atan2`` (y, x), ``fmod`` (a, b) (sign of a, C's fmod), ``remainder`` (a, b) (sign
  of b, a - b * floor(a / b)), ``pow_tensor`` (x, y) -> x ** y (numpy's power).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chipforge.errors import ChipforgeError

BINARY_OPS = ("add", "sub", "mul", "div", "maximum", "minimum")
UNARY_OPS = ("neg", "abs", "exp", "log", "sqrt", "rsqrt", "reciprocal", "relu", "gelu", "silu",
             "sigmoid", "tanh", "square", "cast")
REDUCE_OPS = ("sum", "max", "mean")
MATH_OPS = ("erf", "gelu_erf", "sign", "trunc", "floor", "ceil", "round", "isnan", "isinf",
            "expm1", "log1p", "log2", "log10", "sinh", "cosh", "elu", "leaky_relu", "sin",
            "cos", "tan", "atan", "asin", "acos", "atan2", "asinh", "acosh", "atanh", "fmod",
            "remainder", "pow_tensor")
LAYOUT_OPS = ("reshape", "permute", "slice", "cat", "expand")
KERNEL_OPS = (("matmul", "conv2d") + BINARY_OPS + UNARY_OPS + REDUCE_OPS
              + ("softmax", "layernorm", "rmsnorm") + LAYOUT_OPS
              + ("embedding", "max_pool2d", "global_avg_pool2d", "quantize")
              + ("pow", "gt", "ge", "lt", "le", "eq", "scatter_add") + MATH_OPS)


class CompileError(ChipforgeError):
    """A graph or op the compiler cannot handle."""


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class KernelNode:
    op: str
    inputs: tuple[str, ...]
    output: str
    attrs: tuple[tuple[str, object], ...] = ()
    source: str = field(default="", compare=False)  # the user's source line, if known

    def attr(self, name: str, default: object = None) -> object:
        return dict(self.attrs).get(name, default)


@dataclass
class KernelGraph:
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    nodes: list[KernelNode] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "graph"

    def add_tensor(self, name: str, shape: tuple[int, ...], dtype: str) -> str:
        self.tensors[name] = TensorInfo(tuple(int(s) for s in shape), dtype)
        return name

    def add_constant(self, name: str, value: np.ndarray, dtype: str) -> str:
        self.add_tensor(name, value.shape, dtype)
        self.constants[name] = value
        return name

    def add_node(self, op: str, inputs: tuple[str, ...] | list[str], output: str,
                 shape: tuple[int, ...], dtype: str, /, source: str = "", **attrs) -> str:
        if op not in KERNEL_OPS:
            raise CompileError(f"unsupported op {op!r}; supported: {', '.join(KERNEL_OPS)}")
        self.add_tensor(output, shape, dtype)
        self.nodes.append(KernelNode(op, tuple(inputs), output, tuple(sorted(attrs.items())),
                                source))
        return output

    def validate(self) -> None:
        known = set(self.inputs) | set(self.constants)
        for node in self.nodes:
            for name in node.inputs:
                if name not in known:
                    raise CompileError(f"node {node.op} -> {node.output} reads {name!r}, "
                                       f"which no earlier node or input defines")
            known.add(node.output)
        for name in self.outputs:
            if name not in known:
                raise CompileError(f"graph output {name!r} is never computed")
