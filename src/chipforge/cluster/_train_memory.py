"""Memory per chip of an LLM training plan: weights, gradients, optimizer state and
activations of the most loaded pipeline stage.

- Weights in the training dtype (2 bytes), fp32 main gradients (4 bytes) and the fp32
  master weights plus Adam's two moments (12 bytes): 18 bytes per parameter, which is what
  Korthikanti et al. 2022 (arXiv 2205.05198) Fig. 1 measures ("parameters and optimizer
  state": 45.56 GiB for a GPT-3 175B stage of 12 layers at tp 8). ZeRO stage 1 shards the
  12 optimizer bytes over the data-parallel ranks (Megatron's distributed optimizer), 2 the
  gradients too, 3 (FSDP) the weights too (Rajbhandari et al. 2020, arXiv 1910.02054).
- Activations per layer and micro-batch follow Korthikanti et al. §4 (eq. 1-4): for GPT,
  ``sbh (10 + 24/t + 5as/(ht))`` bytes; all of it divided by ``t`` with sequence
  parallelism; selective recompute drops the ``5as/h`` attention-score term; full recompute
  keeps only each layer's input (``2sbh``). The terms are derived per tensor below, so the
  same count holds for GQA, SwiGLU and MoE layers, and flash attention never stores the
  s x s scores.
- In flight: 1F1B's first stage holds ``min(p, m)`` micro-batches of its ``L/p`` layers;
  the interleaved schedule adds ``(1 + (p-1)/(p v))`` (Korthikanti §4.2.3).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from chipforge.cluster._train_job import Parallelism
from chipforge.cluster._train_ops import attention_style
from chipforge.workloads import LLMConfig

WEIGHT_BYTES = 2  # bf16/fp16 weights
# source: Korthikanti et al. 2022 Fig. 1 (45.5625 GiB for 2.718e9 params/GPU = 18 B/param):
# Megatron keeps fp32 main gradients (4 B) next to 12 B of fp32 master weights and Adam m, v
MAIN_GRAD_BYTES = 4
OPTIMIZER_BYTES = 12


@dataclass(frozen=True)
class StageLoad:
    """What one pipeline stage holds: its layers and whether it carries the embedding
    (first stage) or the output layer (last stage)."""

    layers: int
    first: bool
    last: bool


@functools.lru_cache(maxsize=1024)  # pure, and asked for every stage of every plan searched
def layer_params(cfg: LLMConfig, ep: int = 1) -> float:
    """Parameters of one average transformer layer on one expert-parallel rank (MoE
    layers averaged in; each of the ``ep`` ranks holds ``1/ep`` of the routed experts)."""
    routed = cfg.num_experts * cfg.mlp_params(cfg.moe_intermediate_size)
    moe = cfg.moe_params(cfg.num_experts) - routed + routed / ep if cfg.is_moe else 0.0
    mlp = (cfg.dense_layers * cfg.mlp_params(cfg.intermediate_size)
           + cfg.moe_layers * moe) / cfg.num_layers
    return cfg.attention_params() + 2 * cfg.norm_params + mlp


def stage_params(cfg: LLMConfig, stage: StageLoad, pp: int, ep: int = 1) -> float:
    """Parameters a stage holds before tensor parallelism splits them."""
    params = stage.layers * layer_params(cfg, ep)
    embedding = cfg.embedding_params
    if stage.first:
        params += embedding + cfg.max_position_embeddings * cfg.hidden_size * \
            cfg.position_embeddings
    if stage.last:
        params += cfg.norm_params
        # untied output layer, or (pp > 1) the tied copy Megatron keeps on the last stage
        if not cfg.tie_word_embeddings or (pp > 1 and not stage.first):
            params += embedding
    return params


def activation_bytes_per_token(cfg: LLMConfig, seq: int, tp: int, sp: bool,
                               recompute: str) -> float:
    """Bytes one token leaves stored in one layer until its backward (Korthikanti §4.1)."""
    h, q, kv = cfg.hidden_size, cfg.q_dim, cfg.kv_dim
    gpt = attention_style(cfg) == "unfused"
    split = tp if sp else 1
    if recompute == "full":
        return 2 * h / split  # the layer's input only
    masks = 2 * h if gpt else 0  # 1-byte dropout masks after attention and after the MLP
    # LayerNorm inputs, the QKV and fc1 inputs: replicated across tp unless sp
    unsplit = 8 * h + masks
    if cfg.is_moe:
        inner = cfg.experts_per_token * (2 * h + (6 if cfg.mlp_gated else 4)
                                         * cfg.moe_intermediate_size)
    else:
        inner = (6 if cfg.mlp_gated else 4) * cfg.intermediate_size
    # Q and K for QK^T, V, the attention output, and the MLP's inner activations
    split_part = 2 * (q + kv) + 2 * kv + 2 * q + inner
    scores = 0.0
    if gpt and recompute == "none":  # softmax out (2), dropout mask (1), dropout out (2)
        scores = 5 * cfg.num_heads * seq
    return unsplit / split + (split_part + scores) / tp


def inflight_factor(par: Parallelism, microbatches: int) -> float:
    """Micro-batches' worth of a stage's activations the first stage holds at peak."""
    if par.pp == 1:
        return 1.0
    held = min(par.pp, microbatches)
    if par.schedule == "interleaved":
        return held * (1 + (par.pp - 1) / (par.pp * par.virtual_stages))
    return float(held)


def stage_memory(cfg: LLMConfig, par: Parallelism, stage: StageLoad, seq: int,
                 microbatches: int) -> dict[str, float]:
    """Bytes per chip of one stage, by part."""
    params = stage_params(cfg, stage, par.pp, par.ep) / par.tp
    shards = par.dp * par.cp
    weights = params * WEIGHT_BYTES / (shards if par.zero >= 3 else 1)
    grads = params * MAIN_GRAD_BYTES / (shards if par.zero >= 2 else 1)
    optimizer = params * OPTIMIZER_BYTES / (shards if par.zero >= 1 else 1)
    tokens = par.micro_batch * seq / par.cp
    per_token = activation_bytes_per_token(cfg, seq, par.tp, par.sequence_parallel,
                                           par.recompute)
    held = inflight_factor(par, microbatches) if stage.first else 1.0
    activations = per_token * tokens * stage.layers * held
    split = par.tp if par.sequence_parallel else 1
    edge = 0.0
    if stage.first:  # embedding dropout masks of the micro-batches in flight
        edge += tokens * cfg.hidden_size / split * max(held, 1.0)
    if stage.last:  # Korthikanti eq. 5: 4sbh/t (1 + V/h) for the output layer and loss
        edge += 4 * tokens * cfg.hidden_size / par.tp * (1 + cfg.vocab_size / cfg.hidden_size)
    return {"weights": weights, "grads": grads, "optimizer": optimizer,
            "activations": activations, "edge_activations": edge}


def stage_loads(layers: int, pp: int) -> list[StageLoad]:
    """Layers per stage: ``ceil(layers / pp)``, with the shortfall taken from the stages
    that also carry the embedding and the output layer, first and last alternately, then
    their neighbours (Llama 3, Dubey et al. 2024 §3.3.2: one layer fewer on the first and
    the last stage; Megatron-DeepSpeed's 'type:transformer|embedding' partition of BLOOM's
    70 layers over 12 stages gives the same 5, 6 x 10, 5)."""
    full = -(-layers // pp)
    counts = [full] * pp
    order = [i for pair in zip(range(pp), range(pp - 1, -1, -1)) for i in pair]
    for i in order[:full * pp - layers]:
        counts[i] -= 1
    return [StageLoad(n, i == 0, i == pp - 1) for i, n in enumerate(counts)]


def plan_memory(cfg: LLMConfig, par: Parallelism, seq: int,
                microbatches: int) -> dict[str, float]:
    """The parts of the most loaded stage's memory per chip (the largest total)."""
    stages = stage_loads(cfg.num_layers, par.pp)
    candidates = {stages[0], stages[-1], max(stages, key=lambda s: s.layers)}
    parts = [stage_memory(cfg, par, s, seq, microbatches) for s in candidates]
    return max(parts, key=lambda p: sum(p.values()))


__all__: list[str] = []
