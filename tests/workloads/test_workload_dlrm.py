"""DLRM graph against FLOPs and sizes derived by hand from the MLPerf reference model."""

from __future__ import annotations

import pytest

from chipforge.errors import WorkloadError
from chipforge.ops import OpKind
from chipforge.workloads import dlrm

# MLPerf DLRM v1 (Criteo Terabyte) per-sample GEMM MACs, written out layer by layer
BOTTOM_MACS = 13 * 512 + 512 * 256 + 256 * 128  # 170,496
TOP_MACS = 479 * 1024 + 1024 * 1024 + 1024 * 512 + 512 * 256 + 256 * 1  # 2,194,688
INTERACTION_MACS = 27 * 27 * 128  # batched T·Tᵀ, 27 = 26 embeddings + bottom output
TOTAL_ROWS = 187_767_399  # sum of the 26 MLPerf table row counts (max-ind-range 40M)


def gemm_flops(graph) -> float:
    return sum(op.flops * n for op, n in graph if op.kind is OpKind.MATMUL)


def test_inference_flops_per_sample() -> None:
    b = 2048
    g = dlrm(batch=b)
    per_sample = 2 * (BOTTOM_MACS + TOP_MACS + INTERACTION_MACS)  # 4,916,992 FLOPs
    assert gemm_flops(g) == per_sample * b
    assert g.flops == pytest.approx(per_sample * b, rel=0.01)
    assert g.items == b and g.item_unit == "samples"


def test_interaction_is_batched_matmul() -> None:
    g = dlrm(batch=512)
    bmm = [op for op, _ in g if op.name == "interaction_bmm"][0]
    assert (bmm.batch, bmm.m, bmm.n, bmm.k) == (512, 27, 27, 128)
    top0 = [op for op, _ in g if op.name == "top_fc0"][0]
    assert top0.k == 128 + 27 * 26 // 2 == 479


def test_embedding_tables_match_mlperf_size() -> None:
    g = dlrm(batch=1024, dtype="fp32")
    emb = [op for op, _ in g if op.kind is OpKind.EMBEDDING_BAG][0]
    assert (emb.tables, emb.dim, emb.pooling, emb.batch) == (26, 128, 1, 1024)
    # fp32 tables of the MLPerf model: about 96 GB
    assert emb.table_bytes == pytest.approx(TOTAL_ROWS * 128 * 4, rel=1e-6)
    dense = (13 * 512 + 512 + 512 * 256 + 256 + 256 * 128 + 128
             + 479 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 512 + 512
             + 512 * 256 + 256 + 256 + 1)
    assert g.meta["dense_params"] == dense
    assert g.meta["params"] == dense + TOTAL_ROWS * 128


def test_pooling_and_emb_dtype() -> None:
    g = dlrm(batch=64, pooling=20, emb_dtype="int8")
    emb = [op for op, _ in g if op.kind is OpKind.EMBEDDING_BAG][0]
    assert emb.pooling == 20 and emb.dtype == "int8"
    assert {op.dtype for op, _ in g if op.kind is OpKind.MATMUL} == {"bf16"}


def test_training_adds_backward_scatter_and_optimizer() -> None:
    b = 1024
    g = dlrm(batch=b, train=True)
    # backward GEMMs (dgrad + wgrad) are twice the forward
    assert gemm_flops(g) == pytest.approx(3 * gemm_flops(dlrm(batch=b)), rel=1e-9)
    names = {op.name: op for op, _ in g}
    assert names["embedding_tables_grad_scatter"].numel == 26 * b * 128
    assert names["embedding_update"].numel == 26 * b * 128
    assert names["sgd"].numel == g.meta["dense_params"]
    assert "adagrad" in {op.name for op, _ in dlrm(batch=8, train=True, optimizer="adagrad")}
    assert g.meta["phase"] == "train"


@pytest.mark.parametrize("kwargs, match", [
    ({"batch": 0}, r"dlrm: batch=0; expected a positive integer"),
    ({"bottom_mlp": (512, 64)}, r"bottom_mlp ends in 64; expected embedding_dim=128"),
    ({"top_mlp": ()}, r"top_mlp=\(\); expected a non-empty list"),
    ({"table_rows": (10, -1)}, r"table_rows\[1\]=-1"),
    ({"dtype": "fp64"}, r"dtype='fp64'"),
    ({"train": True, "optimizer": "lamb"}, r"optimizer='lamb'"),
])
def test_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(WorkloadError, match=match):
        dlrm(**kwargs)
