"""LLM prefill / decode / train graphs against hand-derived FLOP and byte counts."""

from __future__ import annotations

import time

import pytest

from chipforge.errors import WorkloadError
from chipforge.ops import OpKind
from chipforge.workloads import (
    llm_decode,
    llm_prefill,
    llm_train_step,
    load_llm_config,
)

L8 = load_llm_config("llama-3.1-8b")
L70 = load_llm_config("llama-3.1-70b")
MIX = load_llm_config("mixtral-8x7b")


def matrix_flops(graph) -> float:
    """GEMM FLOPs only: matmuls, convs and attention's two GEMMs (no softmax)."""
    total = 0.0
    for op, n in graph:
        if op.kind is OpKind.ATTENTION:
            total += op.matmul_flops * n
        elif op.kind in (OpKind.MATMUL, OpKind.CONV2D):
            total += op.flops * n
    return total


def causal_attn_fwd(cfg, batch: int, seq: int) -> float:
    """QKᵀ and PV, 2·d FLOPs per (query, key) pair each, over the T(T+1)/2 causal pairs."""
    return cfg.num_layers * batch * cfg.num_heads * 4 * cfg.head_dim * seq * (seq + 1) / 2


def count(graph, kind: OpKind) -> int:
    return sum(n for op, n in graph if op.kind is kind)


def test_prefill_flops_all_logits_hand_formula() -> None:
    b, s = 2, 2048
    g = llm_prefill(L8, b, s, logits="all")
    # every weight except the embedding table is one GEMM per token: 2 FLOPs per param
    expected = 2 * (L8.param_count() - L8.embedding_params) * b * s + causal_attn_fwd(L8, b, s)
    norms = 2 * L8.num_layers * L8.hidden_size + L8.hidden_size  # RMSNorm weights: no GEMM
    assert matrix_flops(g) == pytest.approx(expected - 2 * norms * b * s, rel=1e-9)
    assert g.flops == pytest.approx(expected, rel=0.01)
    assert g.items == b * s and g.item_unit == "tokens"


def test_prefill_last_logits_skips_lm_head_for_other_tokens() -> None:
    b, s = 2, 2048
    full, last = llm_prefill(L8, b, s, logits="all"), llm_prefill(L8, b, s)
    lm_head = 2 * L8.vocab_size * L8.hidden_size
    assert full.flops - last.flops == pytest.approx(lm_head * (b * s - b), rel=1e-9)


def test_prefill_moe_uses_active_params() -> None:
    b, s = 1, 4096
    g = llm_prefill(MIX, b, s, logits="all")
    active = MIX.active_param_count() - MIX.embedding_params
    expected = 2 * active * b * s + causal_attn_fwd(MIX, b, s)
    assert g.flops == pytest.approx(expected, rel=0.01)
    experts = [op for op, _ in g if op.name == "expert_gate_up_proj"]
    assert experts[0].batch == 8 and experts[0].m == 4096 * 2 // 8


def test_decode_bytes_weights_plus_kv_cache() -> None:
    b, ctx = 64, 4096
    g = llm_decode(L70, b, ctx)
    # every weight matrix read once (the embedding only gathers b rows) + the whole KV cache
    weights = (L70.param_count() - L70.embedding_params) * 2
    kv = b * ctx * L70.num_layers * 2 * L70.num_kv_heads * L70.head_dim * 2
    assert g.bytes == pytest.approx(weights + kv, rel=0.02)
    assert g.meta["kv_cache_bytes"] == kv
    assert g.items == b and g.item_unit == "tokens"
    attn = [op for op, _ in g if op.kind is OpKind.ATTENTION][0]
    assert (attn.q_len, attn.kv_len, attn.causal) == (1, ctx, True)


def test_decode_flops_per_token() -> None:
    g = llm_decode(L8, 1, 2048)
    expected = 2 * (L8.param_count() - L8.embedding_params) + (
        L8.num_layers * L8.num_heads * 4 * L8.head_dim * 2048)
    assert g.flops == pytest.approx(expected, rel=0.01)


def test_decode_moe_small_batch_reads_only_routed_experts() -> None:
    one = llm_decode(MIX, 1, 1024)
    experts = [op for op, _ in one if op.name == "expert_gate_up_proj"][0]
    assert (experts.batch, experts.m) == (2, 1)  # top-2 of 8: two experts' weights
    weights = (MIX.active_param_count() - MIX.embedding_params) * 2
    kv = 1024 * MIX.kv_cache_bytes_per_token()
    assert one.bytes == pytest.approx(weights + kv, rel=0.02)
    many = llm_decode(MIX, 64, 1024)
    assert [op.batch for op, _ in many if op.name == "expert_gate_up_proj"] == [8]


def test_tensor_parallel_shards_and_all_reduces() -> None:
    b, s, tp = 1, 2048, 8
    one, sharded = llm_prefill(L70, b, s), llm_prefill(L70, b, s, tp=tp)
    assert sharded.flops * tp == pytest.approx(one.flops, rel=0.01)
    ars = [(op, n) for op, n in sharded if op.kind is OpKind.ALL_REDUCE]
    # Megatron: 2 per layer (after attention and MLP) + 1 for the vocab-parallel embedding
    assert sum(n for _, n in ars) == 2 * L70.num_layers + 1
    assert all(op.elements == b * s * L70.hidden_size and op.devices == tp for op, _ in ars)
    qkv = [op for op, _ in sharded if op.name == "qkv_proj"][0]
    assert qkv.n == (64 + 2 * 8) * 128 // tp
    assert count(one, OpKind.ALL_REDUCE) == 0


def test_expert_parallel_adds_all_to_all() -> None:
    g = llm_prefill(MIX, 1, 1024, ep=8)
    assert count(g, OpKind.ALL_TO_ALL) == 2 * MIX.num_layers
    assert count(llm_prefill(MIX, 1, 1024), OpKind.ALL_TO_ALL) == 0


def test_train_flops_match_palm_formula() -> None:
    gbs, s = 8, 4096
    g = llm_train_step(L8, gbs, s)
    tokens = gbs * s
    n = L8.param_count() - L8.embedding_params  # the input embedding does no GEMM
    # PaLM (Chowdhery et al. 2022) Appendix B: 6N + 12·L·H·Q·T per token; the causal mask
    # halves the attention term. The graph adds FlashAttention-2's backward recompute of
    # QKᵀ (2.5x forward instead of 2x): about +1 % of the step here.
    palm = (6 * n + 12 * L8.num_layers * L8.num_heads * L8.head_dim * s / 2) * tokens
    assert g.flops == pytest.approx(palm, rel=0.02)
    assert g.flops > palm
    assert g.items == tokens and g.item_unit == "tokens"


def test_train_backward_gemms_are_twice_forward() -> None:
    g = llm_train_step(L8, 2, 1024)
    names = {}
    for op, n in g:
        if op.kind is OpKind.MATMUL:
            names[op.name] = names.get(op.name, 0.0) + op.flops * n
    for base in ("qkv_proj", "o_proj", "gate_up_proj", "down_proj", "lm_head"):
        assert names[f"{base}_dgrad"] == names[base] == names[f"{base}_wgrad"]
    dgrad = [op for op, _ in g if op.name == "down_proj_dgrad"][0]
    assert (dgrad.m, dgrad.n, dgrad.k) == (2048, L8.intermediate_size, L8.hidden_size)
    assert any(op.kind is OpKind.ATTENTION and op.backward for op, _ in g)


def test_train_optimizer_ops() -> None:
    g = llm_train_step(L8, 2, 1024)
    by_name = {op.name: op for op, _ in g}
    adamw = by_name["adamw"]
    assert (adamw.fn, adamw.numel, adamw.inputs, adamw.outputs, adamw.dtype) == (
        "adamw", L8.param_count(), 4, 3, "fp32")
    assert by_name["grad_cast"].numel == L8.param_count()
    assert "grad_cast" not in {op.name for op, _ in llm_train_step(L8, 2, 1024, "fp32")}


def test_micro_batch_keeps_flops_and_shrinks_gemms() -> None:
    whole, micro = llm_train_step(L8, 8, 1024), llm_train_step(L8, 8, 1024, micro_batch=2)
    assert micro.flops == pytest.approx(whole.flops, rel=1e-9)
    assert [op.m for op, _ in micro if op.name == "qkv_proj"] == [2048]
    assert micro.items == whole.items == 8 * 1024


def test_70b_train_graph_small_and_fast() -> None:
    start = time.perf_counter()
    g = llm_train_step(L70, 1024, 4096)
    elapsed = time.perf_counter() - start
    assert len(g) < 100
    assert elapsed < 0.05


def test_dtype_propagates() -> None:
    g = llm_decode(L8, 4, 128, dtype="fp8_e4m3")
    assert {op.dtype for op, _ in g} == {"fp8_e4m3"}
    assert g.meta["dtype"] == "fp8_e4m3"


@pytest.mark.parametrize("call, match", [
    (lambda: llm_prefill(L8, 0, 128), r"llm_prefill: batch=0; expected a positive integer"),
    (lambda: llm_prefill(L8, 1, 200_000), r"seq_len=200000 exceeds max_position_embeddings"),
    (lambda: llm_prefill(L8, 1, 128, dtype="bf17"), r"dtype='bf17'; expected one of"),
    (lambda: llm_prefill(L8, 1, 128, tp=3), r"tp=3 does not divide num_heads=32"),
    (lambda: llm_prefill(L8, 1, 128, logits="some"), r"logits='some'"),
    (lambda: llm_prefill(L8, 1, 128, ep=2), r"ep=2 on a dense model"),
    (lambda: llm_decode(MIX, 1, 128, ep=3), r"ep=3 does not divide num_experts=8"),
    (lambda: llm_decode(L8, 1, 0), r"context_len=0"),
    (lambda: llm_decode("llama", 1, 1), r"cfg is str; expected an LLMConfig"),
    (lambda: llm_train_step(L8, 6, 128, micro_batch=4), r"micro_batch=4 does not divide"),
    (lambda: llm_train_step(L8, 6, 128, micro_batch=True), r"micro_batch=True"),
])
def test_errors(call, match: str) -> None:
    with pytest.raises(WorkloadError, match=match):
        call()
