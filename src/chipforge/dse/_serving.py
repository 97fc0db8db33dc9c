"""Workload throughput of one chip: the serving mix (with the tensor-parallel group that
fits the model) and the training step.

Serving: a model is served by a group of ``tp`` chips, the smallest power of two whose
memory holds the weights and the KV cache; the group's tokens/s is divided by ``tp`` so
throughput per chip (and per $) is honest. The mix's tokens/s is the weighted harmonic
mean (the rate of serving the stated shares of tokens), likewise its tokens per joule.
"""

from __future__ import annotations

import functools
from typing import Any

from chipforge.arch import ChipSpec
from chipforge.errors import ChipforgeError
from chipforge.ops import Graph
from chipforge.workloads import LLMConfig, llm_decode, llm_train_step, load_llm_config


@functools.cache
def _config(model: str) -> LLMConfig:
    return load_llm_config(model)


@functools.lru_cache(maxsize=256)
def _decode_graph(model: str, batch: int, context_len: int, dtype: str, tp: int) -> Graph:
    return llm_decode(_config(model), batch, context_len, dtype, tp=tp)


@functools.lru_cache(maxsize=16)
def _train_graph(model: str, global_batch: int, seq_len: int, dtype: str, micro: int) -> Graph:
    return llm_train_step(_config(model), global_batch, seq_len, dtype, micro_batch=micro)


def serving_metrics(chip: ChipSpec, workloads: Any) -> dict[str, Any]:
    """Per-chip tokens/s and tokens/J of each serving workload and of the mix, and the
    mix's TCO in $ per million tokens (token-share weighted: cost per token is additive)."""
    from chipforge.cost import (
        CostError,
        serving_dtype,
        serving_tco,
        tensor_parallel_size,
        workload_power,
    )

    dtype = serving_dtype(chip, workloads.serving_dtypes)
    if dtype is None:
        raise ChipforgeError(f"chip {chip.name!r} supports none of the serving dtypes "
                             f"{workloads.serving_dtypes}")
    m: dict[str, Any] = {"serving_dtype": dtype, "memory_fits": True}
    rate_sum = energy_sum = weight_sum = power_w = usd_sum = 0.0
    for w in workloads.serving:
        key = f"{w.model.lower()}_b{w.batch}_c{w.context_len}"
        cfg = _config(w.model)
        try:
            tp = tensor_parallel_size(chip, cfg, w.batch, w.context_len, dtype,
                                      usable_fraction=workloads.memory_usable_fraction,
                                      max_tp=workloads.max_tp)
        except CostError:
            m.update({"memory_fits": False, f"{key}_tp": 0, f"{key}_tokens_per_s": 0.0,
                      "memory_note": f"{w.model} batch {w.batch} context {w.context_len} does "
                                     f"not fit {workloads.max_tp} chips"})
            rate_sum = energy_sum = usd_sum = float("inf")
            continue
        graph = _decode_graph(w.model, w.batch, w.context_len, dtype, tp)
        report = workload_power(chip, graph)
        usd_per_mtok = serving_tco(chip, graph, w.batch, chips=tp).usd_per_million_tokens
        tokens_per_chip = w.batch / tp
        rate = tokens_per_chip / report.estimate.seconds
        m.update({f"{key}_tp": tp, f"{key}_tokens_per_s": rate,
                  f"{key}_clock_hz": report.clock_hz, f"{key}_usd_per_mtok": usd_per_mtok})
        usd_sum += w.weight * usd_per_mtok
        weight_sum += w.weight
        rate_sum += w.weight / rate
        energy_sum += w.weight * report.energy_j / tokens_per_chip
        power_w = max(power_w, report.avg_power_w)
    m["serving_tokens_per_s"] = weight_sum / rate_sum if rate_sum < float("inf") else 0.0
    m["serving_tokens_per_j"] = weight_sum / energy_sum if energy_sum < float("inf") else 0.0
    m["serving_power_w"] = power_w
    # a mix that does not fit is infinitely expensive (kept finite for CSV and Optuna)
    m["serving_usd_per_million_tokens"] = (usd_sum / weight_sum if usd_sum < float("inf")
                                           else 1e9)
    return m


def training_metrics(chip: ChipSpec, workloads: Any) -> dict[str, Any]:
    """Tokens/s of one chip on the training step (data parallel; no memory-fit check) and
    its TCO per million tokens."""
    from chipforge.cost import training_tco, workload_power

    t = workloads.training
    if chip.macs_per_cycle(t.dtype) == 0:
        raise ChipforgeError(f"chip {chip.name!r} has no {t.dtype} matrix rate for training")
    graph = _train_graph(t.model, t.global_batch, t.seq_len, t.dtype, t.micro_batch)
    report = workload_power(chip, graph)
    # $ per million training tokens: one step's TCO over the step's tokens
    usd = training_tco(chip, graph, 1).usd_per_run
    return {"training_tokens_per_s": graph.items / report.estimate.seconds,
            "training_power_w": report.avg_power_w, "training_clock_hz": report.clock_hz,
            "training_usd_per_million_tokens": usd / graph.items * 1e6}
