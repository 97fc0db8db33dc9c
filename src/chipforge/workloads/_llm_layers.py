"""The ops of one decoder-only transformer forward pass, as ``(op, count)`` lists.

Shapes follow the Hugging Face Llama / Mixtral / Qwen2 modules (``LlamaDecoderLayer``):
RMSNorm -> fused QKV -> RoPE -> attention -> O -> residual -> RMSNorm -> SwiGLU MLP or MoE
-> residual. Tensor parallelism is Megatron-LM's (Shoeybi et al. 2019, arXiv:1909.08053):
column-parallel QKV / gate-up, row-parallel O / down, one all-reduce after each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chipforge import ops
from chipforge.errors import WorkloadError
from chipforge.ops import Op
from chipforge.workloads._hf_config import LLMConfig

Nodes = list[tuple[Op, int]]


@dataclass(frozen=True)
class Shard:
    """Per-device sizes under tensor parallelism ``tp`` and expert parallelism ``ep``."""

    heads: int
    kv_heads: int
    ffn: int
    moe_ffn: int
    shared_ffn: int
    vocab: int
    tp: int
    ep: int

    @classmethod
    def of(cls, cfg: LLMConfig, tp: int, ep: int, where: str) -> Shard:
        if cfg.num_heads % tp:
            raise WorkloadError(f"{where}: tp={tp} does not divide num_heads={cfg.num_heads}; "
                                "expected a divisor of the head count")
        if cfg.num_kv_heads >= tp and cfg.num_kv_heads % tp:
            raise WorkloadError(f"{where}: tp={tp} does not divide num_kv_heads="
                                f"{cfg.num_kv_heads}; expected a divisor or a multiple of it")
        if cfg.num_experts and cfg.num_experts % ep:
            raise WorkloadError(f"{where}: ep={ep} does not divide num_experts="
                                f"{cfg.num_experts}; expected a divisor of the expert count")
        if ep > 1 and not cfg.num_experts:
            raise WorkloadError(f"{where}: ep={ep} on a dense model; expected ep=1")
        # KV heads are replicated when there are fewer than tp of them (Megatron GQA)
        return cls(cfg.num_heads // tp, max(cfg.num_kv_heads // tp, 1),
                   math.ceil(cfg.intermediate_size / tp), math.ceil(cfg.moe_intermediate_size / tp),
                   math.ceil(cfg.shared_expert_intermediate_size / tp),
                   math.ceil(cfg.vocab_size / tp), tp, ep)


def mlp(tokens: int, hidden: int, ffn: int, dtype: str, prefix: str = "",
        gated: bool = True) -> Nodes:
    """SwiGLU MLP: fused gate+up projection, silu(gate)*up, down projection; or, not
    ``gated``, GPT's fc1, GeLU, fc2."""
    if not gated:
        return [(ops.matmul(tokens, ffn, hidden, dtype, name=f"{prefix}fc1"), 1),
                (ops.elementwise(tokens * ffn, "gelu", 1, 1, dtype, name=f"{prefix}gelu"), 1),
                (ops.matmul(tokens, hidden, ffn, dtype, name=f"{prefix}fc2"), 1)]
    return [(ops.matmul(tokens, 2 * ffn, hidden, dtype, name=f"{prefix}gate_up_proj"), 1),
            (ops.elementwise(tokens * ffn, "swiglu", 2, 1, dtype, name=f"{prefix}swiglu"), 1),
            (ops.matmul(tokens, hidden, ffn, dtype, name=f"{prefix}down_proj"), 1)]


def norm(cfg: LLMConfig, rows: int, cols: int, dtype: str, name: str) -> Op:
    """The model's norm layer: RMSNorm (Llama) or LayerNorm (GPT, BLOOM)."""
    make = ops.layernorm if cfg.norm == "layernorm" else ops.rmsnorm
    return make(rows, cols, dtype, name=name)


def routed_experts(cfg: LLMConfig, tokens: int, ep: int) -> tuple[int, int]:
    """(experts on this device that get tokens, tokens per such expert).

    assumption: a load-balanced router spreading tokens uniformly; ``tokens`` tokens per
    device, ``ep`` devices exchanging them. Of E experts, E·(1 - (1 - k/E)^T) expect at least
    one of T tokens, so a small decode batch reads only the experts it uses.
    """
    e, k = cfg.num_experts, cfg.experts_per_token
    routed = tokens * ep * k
    active = min(e, max(k, round(e * (1 - (1 - k / e) ** (tokens * ep)))))
    return max(1, round(active / ep)), math.ceil(routed / active)


def moe(cfg: LLMConfig, sh: Shard, tokens: int, dtype: str) -> Nodes:
    h, e, k = cfg.hidden_size, cfg.num_experts, cfg.experts_per_token
    local, per_expert = routed_experts(cfg, tokens, sh.ep)
    nodes: Nodes = [(ops.matmul(tokens, e, h, dtype, name="router"), 1),
                    (ops.softmax(tokens, e, dtype, name="router_softmax"), 1)]
    a2a = [(ops.all_to_all(tokens * k * h, sh.ep, dtype, name="moe_all_to_all"), 1)]
    nodes += a2a if sh.ep > 1 else []
    nodes += [(ops.matmul(per_expert, 2 * sh.moe_ffn, h, dtype, batch=local,
                          name="expert_gate_up_proj"), 1),
              (ops.elementwise(local * per_expert * sh.moe_ffn, "swiglu", 2, 1, dtype,
                               name="expert_swiglu"), 1),
              (ops.matmul(per_expert, h, sh.moe_ffn, dtype, batch=local,
                          name="expert_down_proj"), 1)]
    nodes += a2a if sh.ep > 1 else []
    nodes.append((ops.elementwise(tokens * k * h, "mul", 2, 1, dtype, name="moe_combine"), 1))
    if sh.shared_ffn:  # Qwen2-MoE shared expert, scaled by sigmoid(x @ w_gate)
        nodes += mlp(tokens, h, sh.shared_ffn, dtype, prefix="shared_")
        nodes += [(ops.matmul(tokens, 1, h, dtype, name="shared_expert_gate"), 1),
                  (ops.elementwise(tokens * h, "mul", 2, 1, dtype, name="shared_scale"), 1)]
    return nodes


def decoder_layers(cfg: LLMConfig, sh: Shard, tokens: int, attn: Op, dtype: str,
                   kv_write: bool, times: int = 1) -> Nodes:
    """All ``num_layers`` layers for ``tokens`` tokens, each op once with its layer count."""
    h, hd, L = cfg.hidden_size, cfg.head_dim, cfg.num_layers * times
    qkv = (sh.heads + 2 * sh.kv_heads) * hd
    ar = [(ops.all_reduce(tokens * h, sh.tp, dtype, name="tp_all_reduce"), L)] if sh.tp > 1 else []
    nodes: Nodes = [(norm(cfg, tokens, h, dtype, "input_norm"), L),
                    (ops.matmul(tokens, qkv, h, dtype, name="qkv_proj"), L)]
    if cfg.qk_norm:
        nodes.append((ops.rmsnorm(tokens * (sh.heads + sh.kv_heads), hd, dtype,
                                  name="qk_norm"), L))
    if cfg.rotary:
        nodes.append((ops.elementwise(tokens * (sh.heads + sh.kv_heads) * hd, "rope", 1, 1,
                                      dtype, name="rope"), L))
    if kv_write:
        nodes.append((ops.elementwise(tokens * 2 * sh.kv_heads * hd, "copy", 1, 1, dtype,
                                      name="kv_cache_write"), L))
    nodes += [(attn, L), (ops.matmul(tokens, h, sh.heads * hd, dtype, name="o_proj"), L), *ar,
              (ops.elementwise(tokens * h, "residual_add", 2, 1, dtype, name="residual"), L),
              (norm(cfg, tokens, h, dtype, "post_attention_norm"), L)]
    nodes += [(op, n * cfg.dense_layers * times)
              for op, n in mlp(tokens, h, sh.ffn, dtype, gated=cfg.mlp_gated)]
    if cfg.moe_layers:
        nodes += [(op, n * cfg.moe_layers * times) for op, n in moe(cfg, sh, tokens, dtype)]
    nodes += [*ar, (ops.elementwise(tokens * h, "residual_add", 2, 1, dtype,
                                    name="residual"), L)]
    return [(op, n) for op, n in nodes if n > 0]


def embed(cfg: LLMConfig, sh: Shard, tokens: int, dtype: str) -> Nodes:
    """Token embedding gather; vocab-parallel under tp, so partial rows are all-reduced."""
    nodes: Nodes = [(ops.embedding_bag(sh.vocab, cfg.hidden_size, tokens, 1, 1, dtype,
                                       name="embed_tokens"), 1)]
    if sh.tp > 1:
        nodes.append((ops.all_reduce(tokens * cfg.hidden_size, sh.tp, dtype,
                                     name="embed_all_reduce"), 1))
    return nodes


def lm_head(cfg: LLMConfig, sh: Shard, norm_tokens: int, logit_tokens: int, dtype: str) -> Nodes:
    """Final RMSNorm, then the vocabulary projection for ``logit_tokens`` positions."""
    h = cfg.hidden_size
    nodes: Nodes = [(norm(cfg, norm_tokens, h, dtype, "final_norm"), 1),
                    (ops.matmul(logit_tokens, sh.vocab, h, dtype, name="lm_head"), 1)]
    if sh.tp > 1:
        nodes.append((ops.all_gather(logit_tokens * sh.vocab * sh.tp, sh.tp, dtype,
                                     name="logits_all_gather"), 1))
    return nodes
