"""LLM inference graphs: prefill (the prompt) and decode (one new token per sequence)."""

from __future__ import annotations

from chipforge import ops
from chipforge.errors import WorkloadError
from chipforge.ops import Graph, GraphBuilder
from chipforge.workloads._common import check_dtype, pos_int
from chipforge.workloads._hf_config import LLMConfig
from chipforge.workloads._llm_layers import Nodes, Shard, decoder_layers, embed, lm_head
from chipforge.workloads._memory import LLMMemory


def _check_len(where: str, name: str, value: int, cfg: LLMConfig) -> int:
    pos_int(where, name, value)
    if value > cfg.max_position_embeddings:
        raise WorkloadError(f"{where}: {name}={value} exceeds max_position_embeddings="
                            f"{cfg.max_position_embeddings}; expected at most that")
    return value


def _check_cfg(where: str, cfg: object) -> LLMConfig:
    if not isinstance(cfg, LLMConfig):
        raise WorkloadError(f"{where}: cfg is {type(cfg).__name__}; expected an LLMConfig "
                            "(see load_llm_config)")
    return cfg


def _meta(cfg: LLMConfig, phase: str, dtype: str, tp: int, ep: int, **extra: object) -> dict:
    itemsize = ops.dtype_bytes(dtype)
    return {"model": cfg.name, "phase": phase, "dtype": dtype, "tp": tp, "ep": ep,
            "params": cfg.param_count(), "active_params": cfg.active_param_count(),
            "weight_bytes": cfg.param_count() * itemsize, **extra}


class LLMGraphMemory(LLMMemory):
    """:class:`LLMMemory` that rebuilds an inference graph for another tensor-parallel size
    (the split training step, with its collectives and pipeline bubble, is not modelled)."""

    def reshard(self, tp: int, pp: int = 1) -> Graph | None:
        if self.phase == "train" or pp != 1:
            return None
        if self.phase == "decode":
            return llm_decode(self.cfg, self.batch, self.length, self.dtype, tp, self.ep)
        return llm_prefill(self.cfg, self.batch, self.length, self.dtype, tp, self.ep,
                           self.logits)


def _build(name: str, nodes: Nodes) -> GraphBuilder:
    b = GraphBuilder(name)
    for op, n in nodes:
        b.add(op, n)
    return b


def llm_prefill(cfg: LLMConfig, batch: int, seq_len: int, dtype: str = "bf16", tp: int = 1,
                ep: int = 1, logits: str = "last") -> Graph:
    """Process ``batch`` prompts of ``seq_len`` tokens, writing the KV cache.

    ``logits="last"`` projects only each sequence's last position through the LM head (what
    serving engines such as vLLM do); ``"all"`` projects every token. Sliding-window
    attention is not modelled here (full causal attention over the prompt).
    """
    where = "llm_prefill"
    cfg = _check_cfg(where, cfg)
    pos_int(where, "batch", batch)
    _check_len(where, "seq_len", seq_len, cfg)
    check_dtype(where, dtype)
    pos_int(where, "tp", tp)
    pos_int(where, "ep", ep)
    if logits not in ("last", "all"):
        raise WorkloadError(f"{where}: logits={logits!r}; expected 'last' or 'all'")
    sh = Shard.of(cfg, tp, ep, where)
    tokens = batch * seq_len
    attn = ops.attention(batch, seq_len, seq_len, sh.heads, sh.kv_heads, cfg.head_dim, dtype,
                         causal=True, name="attention")
    out = batch if logits == "last" else tokens
    nodes = (embed(cfg, sh, tokens, dtype)
             + decoder_layers(cfg, sh, tokens, attn, dtype, kv_write=True)
             + lm_head(cfg, sh, tokens, out, dtype)
             + [(ops.softmax(batch, cfg.vocab_size, dtype, name="sample_softmax"), 1)])
    b = _build(f"{cfg.name or 'llm'} prefill b{batch} s{seq_len}", nodes)
    memory = LLMGraphMemory(cfg, "prefill", batch, seq_len, dtype, tp, ep, logits)
    return b.build(items=tokens, item_unit="tokens",
                   **_meta(cfg, "prefill", dtype, tp, ep, batch=batch, seq_len=seq_len,
                           logits=logits, memory=memory))


def llm_decode(cfg: LLMConfig, batch: int, context_len: int, dtype: str = "bf16", tp: int = 1,
               ep: int = 1) -> Graph:
    """One decode step: each of ``batch`` sequences adds one token to ``context_len`` context.

    The new token attends to ``context_len`` keys (the cache plus itself), capped by the
    model's sliding window when it has one (Mistral v0.1).
    """
    where = "llm_decode"
    cfg = _check_cfg(where, cfg)
    pos_int(where, "batch", batch)
    _check_len(where, "context_len", context_len, cfg)
    check_dtype(where, dtype)
    pos_int(where, "tp", tp)
    pos_int(where, "ep", ep)
    sh = Shard.of(cfg, tp, ep, where)
    kv_len = min(context_len, cfg.sliding_window or context_len)
    attn = ops.attention(batch, 1, kv_len, sh.heads, sh.kv_heads, cfg.head_dim, dtype,
                         causal=True, name="decode_attention")
    nodes = (embed(cfg, sh, batch, dtype)
             + decoder_layers(cfg, sh, batch, attn, dtype, kv_write=True)
             + lm_head(cfg, sh, batch, batch, dtype)
             + [(ops.softmax(batch, cfg.vocab_size, dtype, name="sample_softmax"), 1)])
    b = _build(f"{cfg.name or 'llm'} decode b{batch} ctx{context_len}", nodes)
    kv_bytes = batch * kv_len * cfg.kv_cache_bytes_per_token(ops.dtype_bytes(dtype))
    return b.build(items=batch, item_unit="tokens",
                   **_meta(cfg, "decode", dtype, tp, ep, batch=batch, context_len=context_len,
                           kv_cache_bytes=kv_bytes,
                           memory=LLMGraphMemory(cfg, "decode", batch, context_len, dtype, tp, ep)))
