"""One LLM training step (forward, backward, AdamW) for the whole global batch on one chip.

No parallelism: the cluster layer splits the step across devices later. Mixed precision as
in Megatron-LM: ``dtype`` weights and activations; fp32 master weights and AdamW state.
"""

from __future__ import annotations

from chipforge import ops
from chipforge.errors import WorkloadError
from chipforge.ops import Graph, GraphBuilder
from chipforge.workloads._common import check_dtype, pos_int
from chipforge.workloads._hf_config import LLMConfig
from chipforge.workloads._llm import _check_cfg, _check_len, _meta
from chipforge.workloads._llm_layers import Nodes, Shard, decoder_layers, embed, lm_head
from chipforge.workloads._memory import LLMMemory
from chipforge.workloads._training import add_training


def llm_train_step(cfg: LLMConfig, global_batch: int, seq_len: int, dtype: str = "bf16",
                   micro_batch: int | None = None) -> Graph:
    """Forward + backward over ``global_batch`` sequences of ``seq_len`` tokens, then AdamW.

    ``micro_batch`` sequences go through the model at a time (gradient accumulation);
    ``None`` runs the whole global batch at once. Every layer's activations are kept (no
    recomputation).
    """
    where = "llm_train_step"
    cfg = _check_cfg(where, cfg)
    pos_int(where, "global_batch", global_batch)
    _check_len(where, "seq_len", seq_len, cfg)
    check_dtype(where, dtype)
    micro = global_batch if micro_batch is None else pos_int(where, "micro_batch", micro_batch)
    if global_batch % micro:
        raise WorkloadError(f"{where}: micro_batch={micro} does not divide global_batch="
                            f"{global_batch}; expected a divisor")
    steps = global_batch // micro
    sh = Shard.of(cfg, 1, 1, where)
    tokens = micro * seq_len
    attn = ops.attention(micro, seq_len, seq_len, sh.heads, sh.kv_heads, cfg.head_dim, dtype,
                         causal=True, name="attention")
    # cross-entropy over the vocabulary in fp32 (logits are upcast for the loss)
    loss = [(ops.softmax(tokens, cfg.vocab_size, "fp32", name="cross_entropy"), 1)]
    fwd: Nodes = (embed(cfg, sh, tokens, dtype)
                  + decoder_layers(cfg, sh, tokens, attn, dtype, kv_write=False)
                  + lm_head(cfg, sh, tokens, tokens, dtype) + loss)
    b = GraphBuilder(f"{cfg.name or 'llm'} train gbs{global_batch} s{seq_len}")
    add_training(b, fwd, steps, cfg.param_count(), dtype, "adamw")
    return b.build(items=global_batch * seq_len, item_unit="tokens",
                   **_meta(cfg, "train", dtype, 1, 1, global_batch=global_batch,
                           seq_len=seq_len, micro_batch=micro,
                           memory=LLMMemory(cfg, "train", micro, seq_len, dtype)))
