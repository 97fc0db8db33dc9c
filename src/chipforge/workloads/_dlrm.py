"""DLRM (Naumov et al. 2019, arXiv:1906.00091) with the MLPerf Criteo Terabyte defaults.

MLPerf training v1 reference (facebookresearch/dlrm, ``--max-ind-range=40000000``):
13 dense features, bottom MLP 13-512-256-128, 26 embedding tables of dim 128, dot
interaction, top MLP 479-1024-1024-512-256-1 (479 = 128 + 27·26/2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from chipforge import ops
from chipforge.errors import WorkloadError
from chipforge.ops import Graph, GraphBuilder, Op
from chipforge.workloads._common import check_dtype, pos_int
from chipforge.workloads._memory import (
    FP32_BYTES,
    MemoryFootprint,
    TableMemory,
    forward_activations,
    training_state_bytes,
)
from chipforge.workloads._training import add_training, optimizer_ops

# rows per sparse feature, Criteo Terabyte hashed to at most 40M (MLPerf DLRM v1)
CRITEO_TB_ROWS = (39884406, 39043, 17289, 7420, 20263, 3, 7120, 1543, 63, 38532951, 2953546,
                  403346, 10, 2208, 11938, 155, 4, 976, 14, 39979771, 25641295, 39664984,
                  585935, 12972, 108, 36)

Nodes = list[tuple[Op, int]]


def _mlp(batch: int, sizes: Sequence[int], dtype: str, prefix: str,
         sigmoid: bool = False) -> tuple[Nodes, int]:
    """Linear + ReLU layers (bias fused into the GEMM epilogue); returns nodes and params.

    A sigmoid closes the top MLP (as 1/(1+exp(-x)): one exp-class op per element).
    """
    nodes: Nodes = []
    params = 0
    for i, (k, n) in enumerate(zip(sizes, sizes[1:], strict=False)):
        last = i == len(sizes) - 2
        nodes.append((ops.matmul(batch, n, k, dtype, name=f"{prefix}_fc{i}"), 1))
        act, label = ("exp", "sigmoid") if last and sigmoid else ("relu", f"relu{i}")
        nodes.append((ops.elementwise(batch * n, act, 1, 1, dtype, name=f"{prefix}_{label}"), 1))
        params += k * n + n
    return nodes, params


def _sizes(where: str, name: str, value: Sequence[int]) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise WorkloadError(f"{where}: {name}={value!r}; expected a non-empty list of ints")
    return tuple(pos_int(where, f"{name}[{i}]", v) for i, v in enumerate(value))


def dlrm(batch: int = 2048, dense_features: int = 13,
         bottom_mlp: Sequence[int] = (512, 256, 128),
         top_mlp: Sequence[int] = (1024, 1024, 512, 256, 1),
         table_rows: Sequence[int] = CRITEO_TB_ROWS, embedding_dim: int = 128,
         pooling: int = 1, dtype: str = "bf16", emb_dtype: str | None = None,
         train: bool = False, optimizer: str = "sgd") -> Graph:
    """One DLRM inference (or, with ``train``, training) step over ``batch`` samples.

    ``pooling`` is the lookups per sample per table (1 = one-hot Criteo). The tables are one
    EmbeddingBag of the mean row count, so the total table bytes match. Training adds the
    backward pass, the embedding-gradient scatter and a sparse update of the touched rows
    (``optimizer`` "sgd", as the MLPerf reference, or "adagrad"; dense layers likewise).
    """
    where = "dlrm"
    pos_int(where, "batch", batch)
    pos_int(where, "dense_features", dense_features)
    pos_int(where, "embedding_dim", embedding_dim)
    pos_int(where, "pooling", pooling)
    bottom = _sizes(where, "bottom_mlp", bottom_mlp)
    top = _sizes(where, "top_mlp", top_mlp)
    rows = _sizes(where, "table_rows", table_rows)
    check_dtype(where, dtype)
    emb_dtype = check_dtype(where, emb_dtype or dtype, "emb_dtype")
    if bottom[-1] != embedding_dim:
        raise WorkloadError(f"{where}: bottom_mlp ends in {bottom[-1]}; expected "
                            f"embedding_dim={embedding_dim} for the dot interaction")
    if optimizer not in ("sgd", "adagrad"):
        raise WorkloadError(f"{where}: optimizer={optimizer!r}; expected 'sgd' or 'adagrad'")
    tables, d = len(rows), embedding_dim
    feats = tables + 1  # the bottom-MLP output joins the embeddings in the interaction
    pairs = feats * (feats - 1) // 2
    bot_nodes, bot_params = _mlp(batch, (dense_features, *bottom), dtype, "bottom")
    top_nodes, top_params = _mlp(batch, (d + pairs, *top), dtype, "top", sigmoid=True)
    emb = ops.embedding_bag(math.ceil(sum(rows) / tables), d, batch, pooling, tables,
                            emb_dtype, name="embedding_tables")
    fwd: Nodes = [*bot_nodes, (emb, 1)]
    fwd += [(ops.elementwise(batch * feats * d, "copy", 1, 1, dtype, name="interaction_concat"),
             1),
            # Z = T·Tᵀ over the 27 feature vectors of each sample (DLRM dot interaction)
            (ops.matmul(feats, feats, d, dtype, batch=batch, name="interaction_bmm"), 1),
            (ops.elementwise(batch * (d + pairs), "copy", 1, 1, dtype,
                             name="interaction_flatten"), 1),
            *top_nodes]
    dense_params = bot_params + top_params
    meta = {"model": "dlrm", "phase": "train" if train else "inference", "dtype": dtype,
            "params": dense_params + sum(rows) * d, "dense_params": dense_params,
            "table_bytes": emb.table_bytes, "batch": batch}
    b = GraphBuilder(f"dlrm {'train' if train else 'inference'} b{batch}")
    if not train:
        for op, n in fwd:
            b.add(op, n)
        meta["memory"] = _memory(fwd, dense_params, emb, dtype, False, optimizer)
        return b.build(items=batch, item_unit="samples", **meta)
    fwd.append((ops.elementwise(batch, "mul", 2, 1, "fp32", name="bce_loss"), 1))
    meta["memory"] = _memory(fwd, dense_params, emb, dtype, True, optimizer)
    add_training(b, fwd, 1, dense_params, dtype, optimizer)
    # sparse update of the rows this batch touched (duplicates counted: an upper bound)
    for op in optimizer_ops(tables * batch * pooling * d, optimizer, name="embedding_update"):
        b.add(op)
    return b.build(items=batch, item_unit="samples", optimizer=optimizer, **meta)


def _memory(fwd: Nodes, dense_params: int, emb: ops.EmbeddingBag, dtype: str, train: bool,
            optimizer: str) -> TableMemory:
    """Dense layers replicated, tables sharded table-wise (the DLRM paper's model-parallel
    embeddings). Training: dense gradients and state as :func:`training_state_bytes`; the
    tables are updated in place by the sparse update (their gradients are the gathered rows,
    counted in the activations), with an fp32 state per element under adagrad."""
    dense = dense_params * ops.dtype_bytes(dtype)
    grads, optim = training_state_bytes(dense_params, dtype, optimizer) if train else (0, 0)
    table_bytes = emb.table_bytes
    adagrad = train and optimizer == "adagrad"
    table_state = table_bytes / emb.itemsize * FP32_BYTES if adagrad else 0.0
    whole = MemoryFootprint(dense + table_bytes, 0.0, forward_activations(fwd, train), grads,
                            optim + table_state,
                            basis=f"{dtype} dense layers and embedding tables"
                            + (f", {optimizer} training state" if train else ""))
    return TableMemory(whole, (), "tables", table_bytes, table_state)
