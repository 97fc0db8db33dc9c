"""The workload memory model against hand-derived bytes: weights = params x itemsize, KV cache
= 2 x layers x KV heads x head_dim x context x batch x itemsize, training state per ZeRO
(2 + 2 + 12 bytes per parameter in mixed-precision AdamW), and the smallest split that fits."""

from __future__ import annotations

import pytest

from chipforge.errors import WorkloadError
from chipforge.ops import GraphBuilder, matmul
from chipforge.workloads import (
    USABLE_MEMORY_FRACTION,
    dlrm,
    fit_split,
    llm_decode,
    llm_prefill,
    llm_train_step,
    load_llm_config,
    memory_footprint,
    resnet50,
)

# exact parameter counts (Hugging Face safetensors metadata, test_workload_hf_config.py)
P8, P70 = 8_030_261_248, 70_553_706_496
GB = 1e9


def test_llama_8b_decode_weights_and_kv_cache_by_hand():
    """Llama-3.1-8B: 32 layers, 8 KV heads of 128, hidden 4096, ffn 14336, vocab 128256."""
    g = llm_decode(load_llm_config("llama-3.1-8b"), 32, 2048, "bf16")
    m = memory_footprint(g)
    assert m.weights_bytes == P8 * 2
    assert m.kv_cache_bytes == 2 * 32 * 8 * 128 * 2048 * 32 * 2 == 8_589_934_592
    # the transient peak: fp32 logits of the 32 sampled tokens plus the residual, larger
    # than one layer's live tensors 32 x (4096 + 48 x 128 + 3 x 14336) x 2 = 3.4 MB
    assert m.activations_bytes == 32 * 128256 * 4 + 32 * 4096 * 2
    assert m.gradients_bytes == m.optimizer_bytes == 0
    assert m.total_bytes == pytest.approx(24.67 * GB, rel=1e-3)
    assert (m.tp, m.pp, m.chips, m.split) == (1, 1, 1, "1 chip")


def test_llama_70b_decode_by_hand_and_under_tensor_parallelism():
    """Llama-3.1-70B: 80 layers, 8 KV heads of 128. Batch 64 x context 4096 in bf16 holds
    141.1 GB of weights and 85.9 GB of KV cache."""
    g = llm_decode(load_llm_config("llama-3.1-70b"), 64, 4096, "bf16")
    kv = 2 * 80 * 8 * 128 * 4096 * 64 * 2
    one = memory_footprint(g)
    assert (one.weights_bytes, one.kv_cache_bytes) == (P70 * 2, kv)
    four = memory_footprint(g, tp=4)
    assert (four.weights_bytes, four.kv_cache_bytes) == (P70 * 2 / 4, kv / 4)
    # past 8 chips the 8 KV heads are replicated: each chip keeps one head's cache
    sixteen = memory_footprint(g, tp=16)
    assert sixteen.kv_cache_bytes == kv / 8
    # a graph built tensor-parallel reports its own split by default
    assert memory_footprint(llm_decode(load_llm_config("llama-3.1-70b"), 64, 4096,
                                       tp=4)) == four


def test_the_smallest_split_that_fits_and_the_one_below_does_not():
    """70B decode on a 96 GB H20 (86.4 GB usable): tp 2 holds 70.6 + 42.9 GB, too much;
    tp 4 holds 35.3 + 21.5 GB."""
    g = llm_decode(load_llm_config("llama-3.1-70b"), 64, 4096, "bf16")
    usable = 96 * GB * USABLE_MEMORY_FRACTION
    found = fit_split(g, 96 * GB)
    assert (found.tp, found.chips) == (4, 4)
    assert found.total_bytes <= usable < memory_footprint(g, tp=2).total_bytes
    assert fit_split(g, 1 * GB) is None  # not even 64 chips of 1 GB
    assert fit_split(g, 300 * GB).chips == 1


def test_training_state_is_16_bytes_per_parameter_plus_activations():
    """Mixed-precision AdamW: bf16 weights (2) and gradients (2), fp32 master, m, v (12).
    Activations of one 4096-token micro-batch, per token: 32 layers x (4h + (2·32 + 2·8)·128
    + 3·14336) elements + 3h + the logits in bf16 and fp32 (128256 x 6 bytes)."""
    g = llm_train_step(load_llm_config("llama-3.1-8b"), 8, 4096, "bf16", micro_batch=1)
    m = memory_footprint(g)
    assert (m.weights_bytes, m.gradients_bytes, m.optimizer_bytes) == (P8 * 2, P8 * 2, P8 * 12)
    per_token = 32 * (4 * 4096 + 80 * 128 + 3 * 14336) * 2 + 3 * 4096 * 2 + 128256 * 6
    assert m.activations_bytes == 4096 * per_token
    assert m.kv_cache_bytes == 0
    # an 80 GB H100 (72 GB usable): tp 2 holds 64.2 + 10.8 GB, tp 4 32.1 + 5.4 GB
    found = fit_split(g, 80 * GB)
    assert (found.tp, found.pp, found.chips, found.split) == (4, 1, 4, "tp=4")
    assert memory_footprint(g, tp=2).total_bytes > 72 * GB
    # beyond one 8-chip tensor-parallel domain the split goes to pipeline stages
    deep = fit_split(g, 20 * GB)
    assert deep.tp == 8 and deep.pp > 1 and 32 % deep.pp == 0
    assert memory_footprint(g, tp=8, pp=deep.pp // 2).total_bytes > 18 * GB


def test_prefill_caches_the_prompt_and_fp32_training_keeps_no_master_copy():
    cfg = load_llm_config("llama-3.1-8b")
    m = memory_footprint(llm_prefill(cfg, 2, 1024, "fp8_e4m3"))
    assert m.weights_bytes == P8 * 1
    assert m.kv_cache_bytes == 2 * 32 * 8 * 128 * 1024 * 2 * 1
    t = memory_footprint(llm_train_step(cfg, 1, 128, "fp32"))
    assert (t.gradients_bytes, t.optimizer_bytes) == (P8 * 4, P8 * 8)


def test_dlrm_tables_shard_and_vision_weights_replicate():
    """DLRM: the tables are the weights' bulk and split table-wise; ResNet-50's 25.6M
    parameters stay whole on every chip while its activations split over the batch."""
    g = dlrm(2048, dtype="bf16")
    m = memory_footprint(g)
    dense = g.meta["dense_params"]
    tables = g.meta["table_bytes"]
    assert m.weights_bytes == dense * 2 + tables
    halves = memory_footprint(g, tp=2)
    assert halves.weights_bytes == dense * 2 + tables / 2
    assert halves.split == "tables over 2 chips"
    r = resnet50(256)
    one, two = memory_footprint(r), memory_footprint(r, tp=2)
    assert one.weights_bytes == two.weights_bytes == 25_557_032 * 2
    assert two.activations_bytes == one.activations_bytes / 2
    # inference activations: 2 x the largest output, conv1's 256 x 64 x 112 x 112 in bf16
    assert one.activations_bytes == 2 * 256 * 64 * 112 * 112 * 2


def test_a_hand_built_graph_has_no_memory_model():
    g = GraphBuilder("hand").add(matmul(64, 64, 64)).build()
    with pytest.raises(WorkloadError, match="carries no memory model"):
        memory_footprint(g)
    assert fit_split(g, 80 * GB) is None
