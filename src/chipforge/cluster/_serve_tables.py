"""The serving step cost's tables, each sampled from the single-chip engine
(``chipforge.perf.estimate``) or the cluster collectives (``collective_time``).

Every function takes ``(cfg, system, tp, pp, ep, dtype, kv_dtype)``; times cover all of the
model's layers (the ``pp`` stages in turn) for one replica.
"""

from __future__ import annotations

from typing import Any

from chipforge import ops
from chipforge.cluster._serve_grid import Curve, Surface, geometric
from chipforge.perf import estimate
from chipforge.workloads import LLMConfig, llm_decode

# ops of llm_decode(cfg, batch=T) that are not per-token body work (each has its own table)
NOT_BODY = frozenset({"decode_attention", "tp_all_reduce", "embed_all_reduce",
                      "moe_all_to_all", "final_norm", "lm_head", "logits_all_gather",
                      "sample_softmax"})
HEAD = frozenset({"final_norm", "lm_head", "sample_softmax"})
# assumption: activations between GEMMs (what all-reduces and pipeline sends carry) stay
# 16-bit in fp8/int8 serving, as TensorRT-LLM's FP8 path keeps them
ACTIVATION_BYTES = 2
# grid ends: tokens per iteration (by default; a replica's tables stop at its scheduler's
# token budget), sequences per iteration, and the shortest context sampled
MAX_TOKENS = 262_144
MAX_SEQS = 8192
MIN_CONTEXT = 16
# samples per doubling: the engine's matmul time steps with tile and wave counts, so the
# token curves are sampled densely; attention and collectives are smooth in their sizes
TOKEN_STEPS = 8
SEQ_STEPS = 4
SURFACE_STEPS = 2

Args = tuple[LLMConfig, Any, int, int, int, str, str]


def decode_graph_seconds(cfg: LLMConfig, chip: Any, batch: int, dtype: str, tp: int,
                         ep: int) -> dict[str, float]:
    """Seconds by op name of ``llm_decode(cfg, batch, 1)`` at ``tp``/``ep``, repeated names
    summed: the engine's answer the body and head tables are sampled from."""
    est = estimate(llm_decode(cfg, batch, 1, dtype, tp, ep), chip, parallel=None)
    out: dict[str, float] = {}
    for part in est.breakdown:
        out[part.name] = out.get(part.name, 0.0) + part.seconds
    return out


def body_seconds(cfg: LLMConfig, chip: Any, tokens: int, dtype: str, tp: int, ep: int) -> float:
    parts = decode_graph_seconds(cfg, chip, tokens, dtype, tp, ep)
    return sum(s for name, s in parts.items() if name not in NOT_BODY)


def head_seconds(cfg: LLMConfig, chip: Any, seqs: int, dtype: str, tp: int, ep: int) -> float:
    parts = decode_graph_seconds(cfg, chip, seqs, dtype, tp, ep)
    return sum(s for name, s in parts.items() if name in HEAD)


def _collective(system: Any, kind: str, nbytes: float, group: int, stride: int = 1) -> float:
    if group <= 1 or nbytes <= 0:
        return 0.0
    from chipforge.cluster._collectives import collective_time

    return collective_time(system, kind, nbytes, group, stride).seconds


def _tokens(max_tokens: int) -> list[int]:
    return geometric(1, max(max_tokens, 64), TOKEN_STEPS)


def _seqs(max_tokens: int, steps: int) -> list[int]:
    return geometric(1, max(min(max_tokens, MAX_SEQS), 64), steps)


def body_curve(cfg: LLMConfig, system: Any, tp: int, pp: int, ep: int, dtype: str,
               kv_dtype: str, max_tokens: int = MAX_TOKENS) -> Curve:
    return Curve.sample(lambda t: body_seconds(cfg, system.chip, int(t), dtype, tp, ep),
                        _tokens(max_tokens))


def head_curve(cfg: LLMConfig, system: Any, tp: int, pp: int, ep: int, dtype: str,
               kv_dtype: str, max_tokens: int = MAX_TOKENS) -> Curve:
    def head(seqs: float) -> float:
        logits = seqs * cfg.vocab_size * ACTIVATION_BYTES  # the gathered output buffer
        return (head_seconds(cfg, system.chip, int(seqs), dtype, tp, ep)
                + _collective(system, "all_gather", logits, tp))
    return Curve.sample(head, _seqs(max_tokens, SEQ_STEPS))


def comm_seconds(cfg: LLMConfig, system: Any, tp: int, pp: int, ep: int,
                 tokens: float) -> float:
    """Per-rank ``tokens``: two tensor-parallel all-reduces per layer (after attention's O
    and the MLP's down projection, Megatron-LM) and the vocab-parallel embedding's; two
    all-to-alls per MoE layer (dispatch, combine) over the ``ep`` ranks; ``pp - 1`` sends of
    the hidden states between stages."""
    hidden = tokens * cfg.hidden_size * ACTIVATION_BYTES
    seconds = (2 * cfg.num_layers + 1) * _collective(system, "all_reduce", hidden, tp)
    routed = hidden * cfg.experts_per_token
    seconds += 2 * cfg.moe_layers * _collective(system, "all_to_all", routed * ep, ep, tp)
    seconds += (pp - 1) * _collective(system, "send_recv", hidden * ep, 2, tp * ep)
    return seconds


def comm_curve(cfg: LLMConfig, system: Any, tp: int, pp: int, ep: int, dtype: str,
               kv_dtype: str, max_tokens: int = MAX_TOKENS) -> Curve:
    return Curve.sample(lambda t: comm_seconds(cfg, system, tp, pp, ep, t), _tokens(max_tokens))


def _heads(cfg: LLMConfig, tp: int) -> tuple[int, int]:
    return cfg.num_heads // tp, max(cfg.num_kv_heads // tp, 1)


def attention_dtype(dtype: str) -> str:
    """The dtype attention computes in: fp8 where the weights are fp8 (FP8 FMHA), else the
    16-bit activations'. assumption: int8 weights keep 16-bit attention."""
    return dtype if dtype.startswith("fp8") or dtype in ("bf16", "fp16", "fp32") else "bf16"


def decode_attention_seconds(cfg: LLMConfig, chip: Any, tp: int, dtype: str, kv_dtype: str,
                             seqs: int, context: int) -> float:
    heads, kv_heads = _heads(cfg, tp)
    context = min(context, cfg.sliding_window or context)
    op = ops.attention(seqs, 1, context, heads, kv_heads, cfg.head_dim, attention_dtype(dtype),
                       causal=True, kv_dtype=kv_dtype)
    return cfg.num_layers * estimate(op, chip).seconds


def prefill_attention_seconds(cfg: LLMConfig, chip: Any, tp: int, dtype: str, kv_dtype: str,
                              prompts: int, length: int) -> float:
    heads, kv_heads = _heads(cfg, tp)
    op = ops.attention(prompts, length, length, heads, kv_heads, cfg.head_dim,
                       attention_dtype(dtype), causal=True, kv_dtype=kv_dtype)
    return cfg.num_layers * estimate(op, chip).seconds


def _context_grid(cfg: LLMConfig) -> list[int]:
    return geometric(MIN_CONTEXT, max(cfg.max_position_embeddings, 2 * MIN_CONTEXT),
                     SURFACE_STEPS)


def decode_attention_surface(cfg: LLMConfig, system: Any, tp: int, pp: int, ep: int,
                             dtype: str, kv_dtype: str, max_tokens: int = MAX_TOKENS) -> Surface:
    return Surface.sample(
        lambda b, c: decode_attention_seconds(cfg, system.chip, tp, dtype, kv_dtype, int(b),
                                              int(c)),
        _seqs(max_tokens, SURFACE_STEPS), _context_grid(cfg))


def prefill_attention_surface(cfg: LLMConfig, system: Any, tp: int, pp: int, ep: int,
                              dtype: str, kv_dtype: str, max_tokens: int = MAX_TOKENS
                              ) -> Surface:
    """Over (prompts, length²): causal attention's work grows with the square of the
    prompt, so the surface is bilinear in these coordinates (query it with ``length**2``)."""
    lengths = _context_grid(cfg)
    return Surface.sample(
        lambda b, n2: prefill_attention_seconds(cfg, system.chip, tp, dtype, kv_dtype, int(b),
                                                round(n2 ** 0.5)),
        _seqs(max_tokens, SURFACE_STEPS), [n * n for n in lengths])


def kv_send_curve(cfg: LLMConfig, system: Any, tp: int, pp: int, ep: int, dtype: str,
                  kv_dtype: str, kv_bytes_per_token_per_chip: float) -> Curve:
    """Each chip of a prefill replica sends its KV shard to its peer in a decode replica
    (the next ``tp·ep·pp`` ranks), all chips at once; a prompt is at most the model's
    context."""
    chips = tp * ep * pp
    return Curve.sample(
        lambda t: _collective(system, "send_recv", t * kv_bytes_per_token_per_chip, 2, chips),
        geometric(1, max(cfg.max_position_embeddings, 2), 1))
