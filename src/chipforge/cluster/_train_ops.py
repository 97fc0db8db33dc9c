"""The compute of one transformer layer (and the embedding and loss) for one micro-batch on
one tensor-parallel rank, forward, backward and recompute, priced by the single-chip engine.

The ops are those Megatron-LM runs (Shoeybi et al. 2019, arXiv 1909.08053; Korthikanti et al.
2022, arXiv 2205.05198 §4): LayerNorm/RMSNorm, the QKV GEMM, core attention, the output GEMM,
bias-dropout-add, then the MLP (fc1, GeLU or SwiGLU, fc2) and bias-dropout-add. Linear biases
are fused in the GEMM epilogue (cuBLAS addmm; Megatron's bias-GeLU fusion), so they add no op.

Core attention comes in two styles:

- ``unfused`` (the GPT-3-style models, as Megatron-LM ran them in 2021-22): two batched
  GEMMs (QKᵀ, PV) around the fused scale-mask-softmax kernel and an attention dropout;
  the s x s scores make a round trip through memory.
- ``flash`` (RoPE models, Megatron-Core with FlashAttention): one fused kernel
  (``chipforge.ops.attention``), whose backward recomputes the scores itself.

Costs are cached per (model, chip, efficiency, shapes): a plan search evaluates thousands
of plans that share a few hundred layer shapes.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from chipforge import ops
from chipforge.arch import ChipSpec
from chipforge.errors import ClusterError
from chipforge.machine import Efficiency
from chipforge.ops import Op
from chipforge.perf import estimate
from chipforge.workloads import LLMConfig

# fitted: the sustained clock of a chip in a training loop relative to the single-kernel
# benchmarks the engine's clock_fraction was fitted on (Efficiency.clock_fraction). A
# training step holds the chip at its power limit for minutes, where the benchmarks time
# kernels one at a time; the factor also absorbs what the step model leaves out and scales
# with compute (host dispatch, kernels sharing SMs with overlapped NCCL, the small copies).
# Fitted by chipforge.cluster._train_validation.fit_training_clock() on the even half of
# the Megatron/Korthikanti rows of train_a100.csv; the odd half is the hold-out (see
# docs/cluster.md and docs/validation.md). The same value applies to every chip.
TRAINING_CLOCK_FRACTION = 0.914

# assumption: GPT-3-style Megatron runs use dropout 0.1 on attention probabilities and on
# both residual branches (Megatron-LM defaults --attention-dropout 0.1 --hidden-dropout 0.1);
# Llama-style runs use none.


@dataclass(frozen=True)
class LayerShape:
    """One layer's work on one rank: micro-batch ``batch`` of ``seq`` tokens (``seq`` is
    the full sequence; context parallelism ``cp`` gives each rank ``seq / cp`` of them)."""

    batch: int
    seq: int
    tp: int
    cp: int
    ep: int
    sequence_parallel: bool
    dtype: str


@dataclass(frozen=True)
class PassCost:
    """Seconds and FLOPs of one layer's forward, backward and recompute on one rank."""

    fwd_s: float
    bwd_s: float
    recompute_selective_s: float  # the core-attention forward again (unfused only)
    fwd_flops: float
    bwd_flops: float
    selective_flops: float
    attention_fwd_s: float  # the core attention's forward (what CP comm can hide behind)


def in_training_loop(eff: Efficiency) -> Efficiency:
    """The engine's efficiency with the clock a chip sustains through a training loop."""
    return dataclasses.replace(eff, clock_fraction=eff.clock_fraction * TRAINING_CLOCK_FRACTION)


def attention_style(cfg: LLMConfig) -> str:
    return "flash" if cfg.rotary else "unfused"


def _norm(cfg: LLMConfig, rows: int, cols: int, dtype: str) -> Op:
    make = ops.layernorm if cfg.norm == "layernorm" else ops.rmsnorm
    return make(rows, cols, dtype)


def _core_attention(cfg: LLMConfig, sh: LayerShape) -> list[Op]:
    heads = cfg.num_heads // sh.tp
    kv_heads = max(cfg.num_kv_heads // sh.tp, 1)
    q_len = sh.seq // sh.cp
    if attention_style(cfg) == "flash":
        # assumption: with cp > 1 each rank attends its q_len queries to all seq keys,
        # load-balanced causal (Megatron-Core's zig-zag split): half the q_len x seq blocks,
        # modelled as a non-causal q_len x seq/2 kernel
        kv = sh.seq if sh.cp == 1 else sh.seq // 2
        return [ops.attention(sh.batch, q_len, kv, heads, kv_heads, cfg.head_dim, sh.dtype,
                              causal=sh.cp == 1, name="core_attention")]
    if sh.cp > 1:
        raise ClusterError(f"context parallelism cp={sh.cp} for {cfg.name or 'a GPT model'} "
                           "with unfused attention; expected cp=1 (Megatron's context "
                           "parallelism needs fused attention)")
    bh = sh.batch * heads
    scores = bh * sh.seq * sh.seq
    return [ops.matmul(sh.seq, sh.seq, cfg.head_dim, sh.dtype, batch=bh, name="qk_bmm"),
            ops.softmax(bh * sh.seq, sh.seq, sh.dtype, name="scale_mask_softmax"),
            ops.elementwise(scores, "dropout", 1, 1, sh.dtype, name="attention_dropout"),
            ops.matmul(sh.seq, cfg.head_dim, sh.seq, sh.dtype, batch=bh, name="pv_bmm")]


def _residual(cfg: LLMConfig, numel: int, dtype: str) -> Op:
    # bias-dropout-add (fused in Megatron) for GPT; a plain residual add for Llama
    if attention_style(cfg) == "unfused":
        return ops.elementwise(numel, "dropout", 2, 1, dtype, name="bias_dropout_add")
    return ops.elementwise(numel, "residual_add", 2, 1, dtype, name="residual")


def _mlp(cfg: LLMConfig, tokens: int, sh: LayerShape) -> list[Op]:
    h = cfg.hidden_size
    if cfg.is_moe:
        return _moe_mlp(cfg, tokens, sh)
    ffn = -(-cfg.intermediate_size // sh.tp)
    if cfg.mlp_gated:
        return [ops.matmul(tokens, 2 * ffn, h, sh.dtype, name="fc1"),
                ops.elementwise(tokens * ffn, "swiglu", 2, 1, sh.dtype, name="swiglu"),
                ops.matmul(tokens, h, ffn, sh.dtype, name="fc2")]
    return [ops.matmul(tokens, ffn, h, sh.dtype, name="fc1"),
            ops.elementwise(tokens * ffn, "gelu", 1, 1, sh.dtype, name="bias_gelu"),
            ops.matmul(tokens, h, ffn, sh.dtype, name="fc2")]


def _moe_mlp(cfg: LLMConfig, tokens: int, sh: LayerShape) -> list[Op]:
    """Routed experts, load-balanced: the ``ep`` ranks exchange tokens so each rank runs
    ``tokens * k`` rows through its ``E / ep`` experts (expert weights also split by tp)."""
    h, e, k = cfg.hidden_size, cfg.num_experts, cfg.experts_per_token
    if e % sh.ep:
        raise ClusterError(f"ep={sh.ep} does not divide num_experts={e} of "
                           f"{cfg.name or 'the model'}; expected a divisor")
    local = e // sh.ep
    rows = max(1, -(-tokens * k // local))
    ffn = -(-cfg.moe_intermediate_size // sh.tp)
    width = 2 * ffn if cfg.mlp_gated else ffn
    out = [ops.matmul(tokens, e, h, sh.dtype, name="router"),
           ops.matmul(rows, width, h, sh.dtype, batch=local, name="expert_fc1"),
           ops.elementwise(rows * local * ffn, "swiglu" if cfg.mlp_gated else "gelu",
                           2 if cfg.mlp_gated else 1, 1, sh.dtype, name="expert_act"),
           ops.matmul(rows, h, ffn, sh.dtype, batch=local, name="expert_fc2"),
           ops.elementwise(tokens * k * h, "mul", 2, 1, sh.dtype, name="moe_combine")]
    if cfg.shared_expert_intermediate_size:
        sffn = -(-cfg.shared_expert_intermediate_size // sh.tp)
        out += [ops.matmul(tokens, 2 * sffn, h, sh.dtype, name="shared_fc1"),
                ops.elementwise(tokens * sffn, "swiglu", 2, 1, sh.dtype, name="shared_act"),
                ops.matmul(tokens, h, sffn, sh.dtype, name="shared_fc2")]
    return out


def layer_forward_ops(cfg: LLMConfig, sh: LayerShape) -> tuple[list[Op], list[Op]]:
    """(all forward ops of one layer, the core-attention ops among them)."""
    h, tp = cfg.hidden_size, sh.tp
    tokens = sh.batch * sh.seq // sh.cp
    # with sequence parallelism the norms, dropouts and residuals see tokens / tp
    local = tokens // tp if sh.sequence_parallel else tokens
    q = cfg.num_heads // tp * cfg.head_dim
    kv = max(cfg.num_kv_heads // tp, 1) * cfg.head_dim
    core = _core_attention(cfg, sh)
    fwd = [_norm(cfg, local, h, sh.dtype), ops.matmul(tokens, q + 2 * kv, h, sh.dtype,
                                                      name="qkv")]
    if cfg.rotary:
        fwd.append(ops.elementwise(tokens * (q + kv), "rope", 1, 1, sh.dtype, name="rope"))
    fwd += core
    fwd += [ops.matmul(tokens, h, q, sh.dtype, name="attention_out"),
            _residual(cfg, local * h, sh.dtype), _norm(cfg, local, h, sh.dtype)]
    fwd += _mlp(cfg, tokens, sh)
    fwd.append(_residual(cfg, local * h, sh.dtype))
    return fwd, core


def backward_ops(op: Op) -> list[Op]:
    """dgrad and wgrad GEMMs for a GEMM; the fused backward kernel for attention; one
    memory pass reading the saved input and dY for the rest (Korthikanti et al. §4)."""
    if isinstance(op, ops.Matmul):
        return [ops.matmul(op.m, op.k, op.n, op.dtype, op.batch),
                ops.matmul(op.k, op.n, op.m, op.dtype, op.batch)]
    if isinstance(op, ops.Attention):
        return [ops.attention(op.batch, op.q_len, op.kv_len, op.heads, op.kv_heads,
                              op.head_dim, op.dtype, causal=op.causal, backward=True)]
    if isinstance(op, ops.Elementwise):
        return [ops.elementwise(op.numel, "mul", op.inputs + 1, op.inputs, op.dtype)]
    numel = op.rows * op.cols  # softmax and norms: read y (or x) and dY, write dX
    return [ops.elementwise(numel, "mul", 2, 1, op.dtype)]


def _total(ops_list: list[Op], chip: ChipSpec, eff: Efficiency) -> tuple[float, float]:
    seconds = flops = 0.0
    for op in ops_list:
        est = estimate(op, chip, eff)
        seconds += est.seconds
        flops += op.flops
    return seconds, flops


@functools.lru_cache(maxsize=8192)
def layer_cost(cfg: LLMConfig, sh: LayerShape, chip: ChipSpec, eff: Efficiency) -> PassCost:
    fwd, core = layer_forward_ops(cfg, sh)
    bwd = [b for op in fwd for b in backward_ops(op)]
    fwd_s, fwd_flops = _total(fwd, chip, eff)
    bwd_s, bwd_flops = _total(bwd, chip, eff)
    core_s, core_flops = _total(core, chip, eff)
    # flash attention's backward already recomputes the scores: selective recompute is free
    sel_s, sel_flops = (0.0, 0.0) if attention_style(cfg) == "flash" else (core_s, core_flops)
    return PassCost(fwd_s, bwd_s, sel_s, fwd_flops, bwd_flops, sel_flops, core_s)


@dataclass(frozen=True)
class EdgeCost:
    """The embedding (first stage) and the output layer with the loss (last stage)."""

    embed_fwd_s: float
    embed_bwd_s: float
    head_fwd_s: float
    head_bwd_s: float
    head_flops: float  # forward + backward


@functools.lru_cache(maxsize=4096)
def edge_cost(cfg: LLMConfig, sh: LayerShape, chip: ChipSpec, eff: Efficiency) -> EdgeCost:
    h = cfg.hidden_size
    tokens = sh.batch * sh.seq // sh.cp
    local = tokens // sh.tp if sh.sequence_parallel else tokens
    vocab = -(-cfg.vocab_size // sh.tp)
    # word (+ position) embedding gather and add; vocab-parallel, so partial rows
    embed = [ops.embedding_bag(vocab, h, tokens, 1, 1, sh.dtype),
             ops.elementwise(local * h, "dropout", 2, 1, sh.dtype)]
    # final norm, logits GEMM, vocab-parallel cross entropy over fp32 logits
    head = [_norm(cfg, local, h, sh.dtype), ops.matmul(tokens, vocab, h, sh.dtype),
            ops.softmax(tokens, vocab, "fp32")]
    e_fwd, _ = _total(embed, chip, eff)
    e_bwd, _ = _total([ops.elementwise(tokens * h, "add", 2, 1, sh.dtype)], chip, eff)
    h_fwd, hf = _total(head, chip, eff)
    h_bwd, hb = _total([b for op in head for b in backward_ops(op)], chip, eff)
    return EdgeCost(e_fwd, e_bwd, h_fwd, h_bwd, hf + hb)


@functools.lru_cache(maxsize=4096)
def optimizer_seconds(params: int, chip: ChipSpec, eff: Efficiency) -> float:
    """The mixed-precision optimizer step over ``params`` local parameters, memory-bound,
    as Megatron-LM's optimizer runs it (megatron/optimizer/optimizer.py): unscale the fp32
    main gradients and check them for inf/NaN (read and write 4 B), the gradient norm for
    clipping (read 4 B), fused Adam (read weight, grad, m, v; write weight, m, v: 28 B),
    then copy the fp32 weights to the 2-byte model weights (read 4 B, write 2 B)."""
    if params <= 0:
        return 0.0
    passes = [ops.elementwise(params, "mul", 1, 1, "fp32"),
              ops.reduce(max(1, params // 4096), 4096, "sum", "fp32"),
              ops.elementwise(params, "adamw", 4, 3, "fp32"),
              # 4 B read, 2 B written: as two 2-byte reads and one 2-byte write
              ops.elementwise(params, "cast", 2, 1, "bf16")]
    return sum(estimate(op, chip, eff).seconds for op in passes)


__all__: list[str] = []
