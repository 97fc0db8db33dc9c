"""The operator IR: one frozen dataclass per op kind, an op enum with named groups.

Each op knows its shapes and dtype, its FLOPs (one MAC = 2 FLOPs) and the minimum bytes it
must move (every input read once, every output written once). The performance engine adds
what a real mapping moves on top of that minimum.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

from chipforge.arch import BITS, DTYPES
from chipforge.errors import OpSyntaxError


class OpKind(enum.Enum):
    MATMUL = "matmul"
    CONV2D = "conv2d"
    ATTENTION = "attention"
    ELEMENTWISE = "elementwise"
    REDUCE = "reduce"
    SOFTMAX = "softmax"
    LAYERNORM = "layernorm"
    RMSNORM = "rmsnorm"
    EMBEDDING_BAG = "embedding_bag"
    ALL_REDUCE = "all_reduce"
    ALL_GATHER = "all_gather"
    REDUCE_SCATTER = "reduce_scatter"
    ALL_TO_ALL = "all_to_all"
    MOE = "moe"


MATRIX_OPS = frozenset({OpKind.MATMUL, OpKind.CONV2D, OpKind.ATTENTION})
VECTOR_OPS = frozenset({OpKind.ELEMENTWISE, OpKind.REDUCE, OpKind.SOFTMAX, OpKind.LAYERNORM,
                        OpKind.RMSNORM})
MEMORY_OPS = frozenset({OpKind.EMBEDDING_BAG})
COLLECTIVE_OPS = frozenset({OpKind.ALL_REDUCE, OpKind.ALL_GATHER, OpKind.REDUCE_SCATTER,
                            OpKind.ALL_TO_ALL})

# Elementwise functions and their FLOPs per output element. assumption: a transcendental
# counts as the handful of FMA-class operations a vector unit's polynomial needs; the model
# is bandwidth-bound for all of these on every chip in the catalog, so the exact count
# only matters for the roofline placement.
ELEMENTWISE_FLOPS: dict[str, int] = {
    "add": 1, "mul": 1, "sub": 1, "div": 1, "max": 1, "copy": 0, "cast": 1, "relu": 1,
    "gelu": 8, "silu": 5, "swiglu": 6, "tanh": 6, "exp": 4, "rope": 6, "dropout": 2,
    "residual_add": 1, "bias_add": 1, "scale": 1,
    # AdamW: m, v updates, bias correction, sqrt, divide, weight decay (torch.optim.AdamW)
    "adamw": 14,
}


# assumption: no tensor dimension or count exceeds 2^48 (~2.8e14); beyond that FLOP and byte
# counts stop being exact floats, and products of several such sizes overflow
MAX_DIM = 2**48


def dtype_bytes(dtype: str) -> float:
    return BITS[dtype] / 8


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise OpSyntaxError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")


def _default_to_op_dtype(op: Op, field: str) -> None:
    """A second dtype field of ``op`` (a Matmul's output, an Attention's KV cache): the op's
    ``dtype`` when left empty, and a known dtype either way."""
    if not getattr(op, field):
        object.__setattr__(op, field, op.dtype)
    _check_dtype(getattr(op, field))


@dataclass(frozen=True)
class Op:
    """Base of every op. ``name`` labels an op in a graph and is not part of its identity."""

    kind: ClassVar[OpKind]
    _non_negative: ClassVar[tuple[str, ...]] = ()
    dtype: str = "bf16"
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_dtype(self.dtype)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type not in ("int", int):
                continue
            low = 0 if f.name in self._non_negative else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                what = "a non-negative" if low == 0 else "a positive"
                raise OpSyntaxError(f"{self.kind.value}: {f.name} must be {what} integer, "
                                    f"got {value!r}")
            if value > MAX_DIM:
                raise OpSyntaxError(f"{self.kind.value}: {f.name} must be at most 2**48 "
                                    f"({MAX_DIM:,}), got {value!r}")

    @property
    def flops(self) -> float:
        raise NotImplementedError

    @property
    def bytes(self) -> float:
        """Minimum bytes moved: each input read once, each output written once."""
        raise NotImplementedError

    @property
    def itemsize(self) -> float:
        return dtype_bytes(self.dtype)

    def describe(self) -> str:
        """The op-string form, readable back by :func:`parse_op`."""
        parts = [self.kind.value]
        for f in fields(self):
            if f.name != "name":
                parts.append(f"{f.name}={getattr(self, f.name)}")
        return " ".join(parts)


@dataclass(frozen=True)
class Matmul(Op):
    """C[batch, m, n] = A[batch, m, k] @ B[batch, k, n].

    ``out_dtype`` is C's element type (an fp8 GEMM writing bf16, as TensorRT-LLM's fp8
    Linear does); it defaults to ``dtype``."""

    kind: ClassVar[OpKind] = OpKind.MATMUL
    m: int = 1
    n: int = 1
    k: int = 1
    batch: int = 1
    out_dtype: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        _default_to_op_dtype(self, "out_dtype")

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.n * self.k

    @property
    def out_itemsize(self) -> float:
        return dtype_bytes(self.out_dtype)

    def describe(self) -> str:
        """As :meth:`Op.describe`; ``out_dtype`` only where it differs from ``dtype``."""
        text = super().describe()
        suffix = f" out_dtype={self.out_dtype}"
        return text.removesuffix(suffix) if self.out_dtype == self.dtype else text

    @property
    def bytes(self) -> float:
        return self.batch * ((self.m * self.k + self.k * self.n) * self.itemsize
                             + self.m * self.n * self.out_itemsize)


@dataclass(frozen=True)
class Conv2d(Op):
    """NCHW convolution; runs as an implicit GEMM of M = N·OH·OW, N = OC, K = IC/g·KH·KW."""

    kind: ClassVar[OpKind] = OpKind.CONV2D
    _non_negative: ClassVar[tuple[str, ...]] = ("padding",)
    batch: int = 1
    in_ch: int = 1
    out_ch: int = 1
    h: int = 1
    w: int = 1
    kh: int = 1
    kw: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for side, kernel in (("h", "kh"), ("w", "kw")):
            size, k = getattr(self, side), getattr(self, kernel)
            if k > size + 2 * self.padding:
                raise OpSyntaxError(
                    f"conv2d: {kernel}={k} exceeds the padded input {side}={size} + 2 x "
                    f"padding={self.padding}; expected {kernel} <= {size + 2 * self.padding}")
        for ch in ("in_ch", "out_ch"):
            if getattr(self, ch) % self.groups:
                raise OpSyntaxError(f"conv2d: groups={self.groups} does not divide "
                                    f"{ch}={getattr(self, ch)}; expected a divisor of both "
                                    f"in_ch and out_ch")

    @property
    def out_h(self) -> int:
        return (self.h + 2 * self.padding - self.kh) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.w + 2 * self.padding - self.kw) // self.stride + 1

    def as_matmul(self) -> Matmul:
        return Matmul(m=self.batch * self.out_h * self.out_w, n=self.out_ch // self.groups,
                      k=self.in_ch // self.groups * self.kh * self.kw, batch=self.groups,
                      dtype=self.dtype, name=self.name)

    @property
    def flops(self) -> float:
        return self.as_matmul().flops

    @property
    def bytes(self) -> float:
        act_in = self.batch * self.in_ch * self.h * self.w
        weights = self.out_ch * self.in_ch // self.groups * self.kh * self.kw
        act_out = self.batch * self.out_ch * self.out_h * self.out_w
        return (act_in + weights + act_out) * self.itemsize


@dataclass(frozen=True)
class Attention(Op):
    """Fused scaled-dot-product attention (FlashAttention-style: scores never reach DRAM).

    Prefill: q_len == kv_len. Decode: q_len new tokens against a KV cache of kv_len.
    GQA when kv_heads < heads. ``backward`` is the FlashAttention-2 backward pass.
    ``kv_dtype`` is the KV cache's element type (e.g. ``fp8_e4m3`` for an fp8 cache under
    bf16 attention); it defaults to ``dtype``.
    """

    kind: ClassVar[OpKind] = OpKind.ATTENTION
    batch: int = 1
    q_len: int = 1
    kv_len: int = 1
    heads: int = 1
    kv_heads: int = 1
    head_dim: int = 128
    causal: bool = True
    backward: bool = False
    kv_dtype: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        _default_to_op_dtype(self, "kv_dtype")
        if self.heads % self.kv_heads:
            raise OpSyntaxError(f"attention: heads={self.heads} must be a multiple of "
                                f"kv_heads={self.kv_heads}")

    @property
    def score_pairs(self) -> float:
        """(query, key) pairs computed per head, after the causal mask skips whole pairs.

        The q_len queries are the last positions of the kv_len context, so query i
        (0-based) sees kv_len - q_len + i + 1 keys.
        """
        q, kv = self.q_len, self.kv_len
        if not self.causal:
            return float(q * kv)
        offset = max(kv - q, 0)
        return float(q * offset + q * (q + 1) / 2) if q <= kv else float(kv * (kv + 1) / 2)

    @property
    def matmul_flops(self) -> float:
        # QK^T and PV: 2 matmuls of 2·d FLOPs per pair; backward does 5 (FlashAttention-2, Dao 2023)
        per_pair = 4.0 * self.head_dim * (2.5 if self.backward else 1.0)
        return self.batch * self.heads * self.score_pairs * per_pair

    @property
    def softmax_flops(self) -> float:
        # max, subtract, exp, sum, scale per score (online softmax)
        return self.batch * self.heads * self.score_pairs * 5.0 * (2.0 if self.backward else 1.0)

    @property
    def flops(self) -> float:
        return self.matmul_flops + self.softmax_flops

    @property
    def bytes(self) -> float:
        q_o = 2 * self.batch * self.q_len * self.heads * self.head_dim * self.itemsize
        # backward reads q, k, v, o, dO and writes dq, dk, dv
        factor = 2.5 if self.backward else 1.0
        return (q_o + self.kv_bytes) * factor

    @property
    def kv_bytes(self) -> float:
        """The K and V read once, in the cache's element type."""
        return 2.0 * self.batch * self.kv_len * self.kv_heads * self.head_dim * \
            dtype_bytes(self.kv_dtype)


@dataclass(frozen=True)
class Elementwise(Op):
    """``fn`` over ``numel`` elements, reading ``inputs`` and writing ``outputs`` tensors."""

    kind: ClassVar[OpKind] = OpKind.ELEMENTWISE
    numel: int = 1
    fn: str = "add"
    inputs: int = 1
    outputs: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fn not in ELEMENTWISE_FLOPS:
            raise OpSyntaxError(f"elementwise: unknown fn {self.fn!r}; expected one of "
                                f"{', '.join(ELEMENTWISE_FLOPS)}")

    @property
    def flops(self) -> float:
        return float(self.numel * ELEMENTWISE_FLOPS[self.fn])

    @property
    def bytes(self) -> float:
        return self.numel * (self.inputs + self.outputs) * self.itemsize


@dataclass(frozen=True)
class _RowOp(Op):
    """An op over ``rows`` independent rows of ``cols`` elements each."""

    rows: int = 1
    cols: int = 1
    flops_per_element: ClassVar[float] = 1.0

    @property
    def flops(self) -> float:
        return self.rows * self.cols * self.flops_per_element

    @property
    def bytes(self) -> float:
        return 2 * self.rows * self.cols * self.itemsize


@dataclass(frozen=True)
class Reduce(_RowOp):
    kind: ClassVar[OpKind] = OpKind.REDUCE
    fn: str = "sum"

    @property
    def bytes(self) -> float:
        return (self.rows * self.cols + self.rows) * self.itemsize


@dataclass(frozen=True)
class Softmax(_RowOp):
    kind: ClassVar[OpKind] = OpKind.SOFTMAX
    flops_per_element: ClassVar[float] = 5.0  # max, sub, exp, sum, div


@dataclass(frozen=True)
class LayerNorm(_RowOp):
    kind: ClassVar[OpKind] = OpKind.LAYERNORM
    flops_per_element: ClassVar[float] = 8.0  # mean, var, sub, mul rstd, affine


@dataclass(frozen=True)
class RMSNorm(_RowOp):
    kind: ClassVar[OpKind] = OpKind.RMSNORM
    flops_per_element: ClassVar[float] = 4.0  # square, sum, mul rstd, scale


@dataclass(frozen=True)
class EmbeddingBag(Op):
    """Gather ``pooling`` rows of a ``num_embeddings`` × ``dim`` table per sample and sum them."""

    kind: ClassVar[OpKind] = OpKind.EMBEDDING_BAG
    num_embeddings: int = 1
    dim: int = 1
    batch: int = 1
    pooling: int = 1
    tables: int = 1

    @property
    def flops(self) -> float:
        return float(self.tables * self.batch * self.pooling * self.dim)

    @property
    def bytes(self) -> float:
        gathered = self.tables * self.batch * self.pooling * self.dim
        return (gathered + self.tables * self.batch * self.dim) * self.itemsize

    @property
    def table_bytes(self) -> float:
        return self.tables * self.num_embeddings * self.dim * self.itemsize


@dataclass(frozen=True)
class Collective(Op):
    """A collective over ``devices`` peers of a tensor of ``elements`` per device.

    ``elements`` is the full (unsharded) tensor for all-reduce and the gathered size for
    all-gather / reduce-scatter, as nccl-tests counts it.
    """

    elements: int = 1
    devices: int = 2

    @property
    def flops(self) -> float:
        reduces = self.kind in (OpKind.ALL_REDUCE, OpKind.REDUCE_SCATTER)
        return float(self.elements * (self.devices - 1) / self.devices) if reduces else 0.0

    @property
    def bytes(self) -> float:
        return self.elements * self.itemsize

    @property
    def wire_bytes(self) -> float:
        """Bytes each device sends, ring algorithm (nccl-tests PERFORMANCE.md bus bandwidth)."""
        frac = (self.devices - 1) / self.devices
        factor = 2 * frac if self.kind is OpKind.ALL_REDUCE else frac
        return self.elements * self.itemsize * factor


@dataclass(frozen=True)
class AllReduce(Collective):
    kind: ClassVar[OpKind] = OpKind.ALL_REDUCE


@dataclass(frozen=True)
class AllGather(Collective):
    kind: ClassVar[OpKind] = OpKind.ALL_GATHER


@dataclass(frozen=True)
class ReduceScatter(Collective):
    kind: ClassVar[OpKind] = OpKind.REDUCE_SCATTER


@dataclass(frozen=True)
class AllToAll(Collective):
    kind: ClassVar[OpKind] = OpKind.ALL_TO_ALL


OP_CLASSES: dict[str, type[Op]] = {cls.kind.value: cls for cls in (
    Matmul, Conv2d, Attention, Elementwise, Reduce, Softmax, LayerNorm, RMSNorm, EmbeddingBag,
    AllReduce, AllGather, ReduceScatter, AllToAll)}


def arithmetic_intensity(op: Op) -> float:
    """FLOPs per minimum byte moved."""
    return op.flops / op.bytes if op.bytes else math.inf
