"""How a chip serves an LLM: its serving dtype and its tensor-parallel group, by hand."""

from __future__ import annotations

import dataclasses

import pytest

from chipforge.arch import load_chip
from chipforge.cost import (
    CostError,
    serving_bytes_per_chip,
    serving_dtype,
    tensor_parallel_size,
)
from chipforge.workloads import load_llm_config


def test_serving_dtype_is_the_first_preferred_dtype_the_matrix_units_run():
    # Hopper runs fp8; Ampere's narrowest matrix format is int8; forge-t1 runs fp8
    assert serving_dtype(load_chip("h100-sxm")) == "fp8_e4m3"
    assert serving_dtype(load_chip("a100-sxm")) == "int8"
    assert serving_dtype(load_chip("forge-t1")) == "fp8_e4m3"
    assert serving_dtype(load_chip("h100-sxm"), ["bf16", "fp8_e4m3"]) == "bf16"
    assert serving_dtype(load_chip("a100-sxm"), ["fp8_e4m3", "fp8_e5m2"]) is None


def test_tensor_parallel_size_takes_the_usable_fraction_and_the_cap():
    """Llama-3.1-70B bf16 at batch 64, context 4096: weights 70.55e9 x 2 = 141.1 GB, KV
    64 x 4096 x 2 x 80 x 8 x 128 x 2 = 85.9 GB. An H100 with 0.54 x 80 GB = 43.2 GB
    usable: tp 4 needs 35.3 + 21.5 = 56.8 GB, tp 8 17.6 + 10.7 = 28.4 GB."""
    cfg = load_llm_config("llama-3.1-70b")
    assert serving_bytes_per_chip(cfg, 64, 4096, "bf16", 8) == (
        70_553_706_496 * 2 / 8 + 64 * 4096 * 2 * 80 * 1 * 128 * 2)
    assert tensor_parallel_size("h100-sxm", cfg, 64, 4096, usable_fraction=0.54) == 8
    with pytest.raises(CostError, match=r"does not fit 4 x chip 'h100-sxm' \(80 GB each\)"):
        tensor_parallel_size("h100-sxm", cfg, 64, 4096, usable_fraction=0.54, max_tp=4)
    # fp8, batch 1, context 128: 70.6 GB of weights + 42 MB of KV fits one 80 GB chip
    assert tensor_parallel_size("h100-sxm", cfg, 1, 128, "fp8_e4m3", usable_fraction=1.0) == 1


def test_a_sliding_window_caps_the_kv_cache_the_group_holds():
    """Llama-3.1-8B bf16: 16.06 GB of weights, 131,072 B of KV per token. Batch 256 at
    context 32768 is 1.10 TB of KV: past tp 8 the 8 KV heads replicate, so a chip keeps
    >= 137 GB and no group of H100s (72 GB usable) holds it. A 4096-token window (as
    ``llm_decode`` attends) leaves 137.4 GB: tp 2 needs 8.03 + 68.7 = 76.7 GB, tp 4 38.4 GB."""
    cfg = load_llm_config("llama-3.1-8b")
    with pytest.raises(CostError, match=r"does not fit 64 x chip 'h100-sxm'"):
        tensor_parallel_size("h100-sxm", cfg, 256, 32768)
    windowed = dataclasses.replace(cfg, sliding_window=4096)
    assert serving_bytes_per_chip(windowed, 256, 32768, "bf16", 4) == (
        8_030_261_248 * 2 / 4 + 256 * 4096 * 131_072 / 4)
    assert tensor_parallel_size("h100-sxm", windowed, 256, 32768) == 4


def test_the_serving_bytes_are_the_workload_memory_model():
    """cost sizes a serving group with chipforge.workloads' memory model, the one
    ``perf.estimate`` checks: the same weights and KV cache at every tensor-parallel size."""
    from chipforge.workloads import llm_decode, memory_footprint

    cfg = load_llm_config("llama-3.1-70b")
    graph = llm_decode(cfg, 64, 4096)
    for tp in (1, 2, 4, 8, 16):
        part = memory_footprint(graph, tp=tp)
        assert serving_bytes_per_chip(cfg, 64, 4096, "bf16", tp) == (
            part.weights_bytes + part.kv_cache_bytes)
    # the group counts the transient activations too: at usable_fraction 1.0 and a chip of
    # exactly the tp=4 weights + KV cache, the few MB of activations push it to tp=8
    from chipforge.arch import derive_chip

    tight = derive_chip(load_chip("h100-sxm"), {"memory": {
        "capacity": serving_bytes_per_chip(cfg, 64, 4096, "bf16", 4)}})
    assert tensor_parallel_size(tight, cfg, 64, 4096, usable_fraction=1.0) == 8
