"""The serving step cost (replica_cost): its tables against direct engine calls, the whole
iteration against the engine's own decode/prefill graphs, and the KV-cache arithmetic by
hand."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from chipforge.cluster import collective_time, replica_cost, system
from chipforge.cluster._serve_tables import (
    body_seconds,
    comm_seconds,
    decode_attention_seconds,
    head_seconds,
    prefill_attention_seconds,
)
from chipforge.errors import ClusterError
from chipforge.perf import estimate
from chipforge.workloads import llm_decode, llm_prefill, load_llm_config

CFG = load_llm_config("llama-3.1-8b")
COLLECTIVES = {"tp_all_reduce", "embed_all_reduce", "logits_all_gather"}


@pytest.fixture(scope="module")
def cost():
    return replica_cost(CFG, "h100-sxm", tp=2, dtype="fp8_e4m3")


def _direct_iteration(sysm, tp, dtype, decodes, context, prompts, length) -> float:
    """The same iteration from the engine directly: every part at its exact size."""
    spec, tokens = sysm.chip, decodes + prompts * length
    seqs = decodes + (1 if prompts else 0)
    seconds = (body_seconds(CFG, spec, tokens, dtype, tp, 1)
               + comm_seconds(CFG, sysm, tp, 1, 1, tokens)
               + head_seconds(CFG, spec, seqs, dtype, tp, 1)
               + collective_time(sysm, "all_gather", seqs * CFG.vocab_size * 2, tp).seconds)
    if decodes:
        seconds += decode_attention_seconds(CFG, spec, tp, dtype, dtype, decodes, context)
    if prompts:
        seconds += prefill_attention_seconds(CFG, spec, tp, dtype, dtype, prompts, length)
    return seconds


def test_the_tables_reproduce_direct_engine_calls(cost):
    """Random iterations (decodes at random contexts, prefills of random prompts): the
    tables smooth the engine's tile and wave steps, nothing more."""
    sysm = system("h100-sxm", 4)
    rng = random.Random(2)
    errors = []
    for _ in range(120):
        decodes = rng.choice([0, int(2 ** rng.uniform(0, 8))])
        context = int(2 ** rng.uniform(6, 13))
        prompts = rng.choice([0, 1, 2]) if decodes else rng.choice([1, 2])
        length = int(2 ** rng.uniform(5, 12))
        table = cost.iteration_s(prompts * length, prompts * length * (length + 1) / 2,
                                 decodes, decodes * context)
        direct = _direct_iteration(sysm, 2, "fp8_e4m3", decodes, context, prompts, length)
        errors.append(abs(table / direct - 1))
    errors.sort()
    assert statistics.median(errors) < 0.005
    assert errors[int(0.95 * len(errors))] < 0.05
    assert errors[-1] < 0.15


def test_comm_table_matches_collective_time(cost):
    sysm = system("h100-sxm", 4)
    for tokens in (5, 300, 5000):
        # two all-reduces per layer and the embedding's, each of tokens x hidden x 2 bytes
        one = collective_time(sysm, "all_reduce", tokens * CFG.hidden_size * 2, 2).seconds
        assert comm_seconds(CFG, sysm, 2, 1, 1, tokens) == pytest.approx(
            (2 * CFG.num_layers + 1) * one, rel=1e-9)
        assert cost.comm(tokens) == pytest.approx(one * (2 * CFG.num_layers + 1), rel=0.03)


def cost_chip():
    return system("h100-sxm", 4).chip


def _graph_seconds_without_collectives(graph) -> float:
    est = estimate(graph, cost_chip(), parallel=None)
    return sum(p.seconds for p in est.breakdown if p.name not in COLLECTIVES)


def test_a_decode_iteration_is_the_engines_decode_step(cost):
    """Independent route: the engine's whole llm_decode graph (its ops, its attention at
    this batch and context), collectives taken from collective_time."""
    batch, context = 96, 2500
    graph = llm_decode(CFG, batch, context, "fp8_e4m3", tp=2)
    sysm = system("h100-sxm", 4)
    logits = collective_time(sysm, "all_gather", batch * CFG.vocab_size * 2, 2).seconds
    direct = (_graph_seconds_without_collectives(graph)
              + comm_seconds(CFG, sysm, 2, 1, 1, batch) + logits)
    assert cost.iteration_s(0, 0, batch, batch * context) == pytest.approx(direct, rel=0.04)


def test_a_prefill_iteration_is_the_engines_prefill(cost):
    n = 3000
    graph = llm_prefill(CFG, 1, n, "fp8_e4m3", tp=2)
    sysm = system("h100-sxm", 4)
    logits = collective_time(sysm, "all_gather", CFG.vocab_size * 2, 2).seconds
    direct = (_graph_seconds_without_collectives(graph)
              + comm_seconds(CFG, sysm, 2, 1, 1, n) + logits)
    assert cost.iteration_s(n, n * (n + 1) / 2, 0, 0) == pytest.approx(direct, rel=0.05)


def test_more_work_never_takes_less_time(cost):
    base = cost.iteration_s(512, 512 * 513 / 2, 32, 32 * 1000)
    assert cost.iteration_s(1024, 1024 * 1025 / 2, 32, 32 * 1000) > base
    assert cost.iteration_s(512, 512 * 513 / 2, 64, 64 * 1000) > base
    assert cost.iteration_s(512, 512 * 513 / 2, 32, 32 * 4000) > base
    assert cost.iteration_s(0, 0, 0, 0) == 0.0


def test_kv_capacity_by_hand():
    """Llama-3.1-8B bf16 on one 80 GB H100 (vLLM-style: 90% of memory, 16-token pages)."""
    cost = replica_cost(CFG, "h100-sxm", tp=1, dtype="bf16", max_batch_tokens=8192)
    weights = CFG.param_count() * 2
    # the widest layer's live tensors for 8,192 tokens: residual, QKV, SwiGLU gate/up/product
    qkv = (32 + 2 * 8) * 128
    activations = 8192 * (4096 + qkv + 3 * 14336) * 2
    per_token = 2 * 32 * 8 * 128 * 2  # K and V, 32 layers, 8 KV heads of 128, 2 bytes
    free = 0.9 * 80e9 - weights - activations
    assert cost.kv_bytes_per_token_per_chip == per_token
    assert cost.kv_capacity_tokens == math.floor(free / (per_token * 16)) * 16
    assert cost.kv_block_tokens == 16


def test_kv_heads_replicate_past_their_count():
    """tp=16 > 8 KV heads: every chip keeps one KV head (Megatron GQA), so the cache per
    token per chip stops shrinking."""
    c8 = replica_cost(CFG, "h100-sxm", tp=8, dtype="bf16", max_batch_tokens=64)
    c16 = replica_cost(CFG, "h100-sxm", tp=16, dtype="bf16", max_batch_tokens=64)
    assert c8.kv_bytes_per_token_per_chip == c16.kv_bytes_per_token_per_chip == 2 * 32 * 128 * 2


def test_trtllm_harness_gives_the_kv_cache_95_percent_of_free_memory():
    cost = replica_cost(CFG, "a100-sxm", tp=1, dtype="fp16", harness="trtllm-0.17",
                        max_batch_tokens=4096)
    free = 80e9 - cost.weights_bytes_per_chip - cost.activations_bytes_per_chip
    blocks = math.floor(0.95 * free / (cost.kv_bytes_per_token_per_chip * 64))
    assert cost.kv_capacity_tokens == blocks * 64


def test_kv_transfer_is_a_send_of_each_chips_shard(cost):
    sysm = system("h100-sxm", 4)
    tokens = 5000
    direct = collective_time(sysm, "send_recv", tokens * cost.kv_bytes_per_token_per_chip, 2,
                             2).seconds
    assert cost.kv_transfer_s(tokens) == pytest.approx(direct, rel=0.02)
    assert cost.kv_transfer_s(0) == 0.0


def test_weights_that_do_not_fit_are_refused_with_the_bytes():
    with pytest.raises(ClusterError) as e:
        replica_cost("llama-3.1-70b", "a100-sxm", tp=1, dtype="bf16")
    msg = str(e.value)
    assert "llama-3.1-70b" in msg and "a100-sxm" in msg and "tp=1" in msg
    assert "141.1 GB of weights" in msg


@pytest.mark.parametrize("kwargs,words", [
    ({"tp": 3}, "tp=3"), ({"tp": 0}, "tp=0"), ({"dtype": "fp8_e4m3"}, "no matrix units"),
    ({"kv_dtype": "fp7"}, "kv_dtype='fp7'"), ({"harness": "vllm-9"}, "harness='vllm-9'"),
    ({"ep": 2}, "ep=2"), ({"pp": 7}, "pp=7"),
])
def test_bad_arguments_name_the_field(kwargs, words):
    with pytest.raises(ClusterError, match=words.replace("(", r"\(")):
        replica_cost(CFG, "a100-sxm", **kwargs)


def test_unknown_model_is_a_cluster_error():
    with pytest.raises(ClusterError, match="no-such-model"):
        replica_cost("no-such-model", "a100-sxm")
