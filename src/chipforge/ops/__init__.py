"""The operator IR and its constructors.

>>> from chipforge import ops
>>> ops.matmul(4096, 4096, 4096).flops
137438953472.0
"""

from chipforge.ops._graph import Graph, GraphBuilder
from chipforge.ops._ir import (
    COLLECTIVE_OPS,
    MATRIX_OPS,
    MEMORY_OPS,
    VECTOR_OPS,
    AllGather,
    AllReduce,
    AllToAll,
    Attention,
    Collective,
    Conv2d,
    Elementwise,
    EmbeddingBag,
    LayerNorm,
    Matmul,
    Op,
    OpKind,
    Reduce,
    ReduceScatter,
    RMSNorm,
    Softmax,
    arithmetic_intensity,
    dtype_bytes,
)
from chipforge.ops._moe import MoE, moe
from chipforge.ops._parse import parse_op


def matmul(m: int, n: int, k: int, dtype: str = "bf16", batch: int = 1, name: str = "",
           out_dtype: str = "") -> Matmul:
    return Matmul(m=m, n=n, k=k, batch=batch, dtype=dtype, out_dtype=out_dtype, name=name)


def conv2d(batch: int, in_ch: int, out_ch: int, h: int, w: int, kernel: int = 3, stride: int = 1,
           padding: int = 0, groups: int = 1, dtype: str = "bf16", name: str = "") -> Conv2d:
    return Conv2d(batch=batch, in_ch=in_ch, out_ch=out_ch, h=h, w=w, kh=kernel, kw=kernel,
                  stride=stride, padding=padding, groups=groups, dtype=dtype, name=name)


def attention(batch: int, q_len: int, kv_len: int, heads: int, kv_heads: int, head_dim: int,
              dtype: str = "bf16", causal: bool = True, backward: bool = False,
              name: str = "", kv_dtype: str = "") -> Attention:
    return Attention(batch=batch, q_len=q_len, kv_len=kv_len, heads=heads, kv_heads=kv_heads,
                     head_dim=head_dim, causal=causal, backward=backward, dtype=dtype,
                     kv_dtype=kv_dtype, name=name)


def elementwise(numel: int, fn: str = "add", inputs: int = 1, outputs: int = 1,
                dtype: str = "bf16", name: str = "") -> Elementwise:
    return Elementwise(numel=numel, fn=fn, inputs=inputs, outputs=outputs, dtype=dtype, name=name)


def softmax(rows: int, cols: int, dtype: str = "bf16", name: str = "") -> Softmax:
    return Softmax(rows=rows, cols=cols, dtype=dtype, name=name)


def layernorm(rows: int, cols: int, dtype: str = "bf16", name: str = "") -> LayerNorm:
    return LayerNorm(rows=rows, cols=cols, dtype=dtype, name=name)


def rmsnorm(rows: int, cols: int, dtype: str = "bf16", name: str = "") -> RMSNorm:
    return RMSNorm(rows=rows, cols=cols, dtype=dtype, name=name)


def reduce(rows: int, cols: int, fn: str = "sum", dtype: str = "bf16", name: str = "") -> Reduce:
    return Reduce(rows=rows, cols=cols, fn=fn, dtype=dtype, name=name)


def embedding_bag(num_embeddings: int, dim: int, batch: int, pooling: int, tables: int = 1,
                  dtype: str = "fp32", name: str = "") -> EmbeddingBag:
    return EmbeddingBag(num_embeddings=num_embeddings, dim=dim, batch=batch, pooling=pooling,
                        tables=tables, dtype=dtype, name=name)


def all_reduce(elements: int, devices: int, dtype: str = "bf16", name: str = "") -> AllReduce:
    return AllReduce(elements=elements, devices=devices, dtype=dtype, name=name)


def all_gather(elements: int, devices: int, dtype: str = "bf16", name: str = "") -> AllGather:
    return AllGather(elements=elements, devices=devices, dtype=dtype, name=name)


def reduce_scatter(elements: int, devices: int, dtype: str = "bf16",
                   name: str = "") -> ReduceScatter:
    return ReduceScatter(elements=elements, devices=devices, dtype=dtype, name=name)


def all_to_all(elements: int, devices: int, dtype: str = "bf16", name: str = "") -> AllToAll:
    return AllToAll(elements=elements, devices=devices, dtype=dtype, name=name)


__all__ = [
    "COLLECTIVE_OPS", "MATRIX_OPS", "MEMORY_OPS", "VECTOR_OPS", "AllGather", "AllReduce",
    "AllToAll", "Attention", "Collective", "Conv2d", "Elementwise", "EmbeddingBag", "Graph",
    "GraphBuilder", "LayerNorm", "Matmul", "MoE", "Op", "OpKind", "RMSNorm", "Reduce",
    "ReduceScatter", "Softmax", "all_gather", "all_reduce", "all_to_all",
    "arithmetic_intensity", "attention", "conv2d", "dtype_bytes", "elementwise",
    "embedding_bag", "layernorm", "matmul", "moe", "parse_op", "reduce", "reduce_scatter",
    "rmsnorm", "softmax",
]
