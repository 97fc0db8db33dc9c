"""What a workload keeps in device memory: weights, KV cache, activations, gradients and
optimizer state, per chip of a tensor- / pipeline-parallel split.

Each workload builder leaves a memory model in its graph's ``meta["memory"]``;
:func:`memory_footprint` asks it for one split, :func:`fit_split` for the smallest split
whose chips each hold their share in ``usable_fraction`` of their memory. The performance
engine (``chipforge.perf.estimate``) and the serving sizing (``chipforge.cost``) both use
these, so a table and a TCO never disagree on how many chips a model needs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from chipforge import ops
from chipforge.errors import WorkloadError
from chipforge.ops import Graph, Op
from chipforge.workloads._hf_config import LLMConfig

# source: vLLM's default gpu_memory_utilization is 0.9 (engine arguments docs): the rest
# holds the runtime's workspace, CUDA context and fragmentation; applied to every chip alike.
USABLE_MEMORY_FRACTION = 0.9
# assumption: the largest group a model is split over, about one scale-up domain (an
# NVL72 rack holds 72 GPUs); past it a split is reported as not fitting
MAX_CHIPS = 64
# assumption: tensor parallelism stays inside one 8-chip NVLink domain when training, as
# Megatron-LM does (Narayanan et al. 2021, arXiv:2104.04473, Sec. 3.3); pipeline stages span
# the rest. Inference splits are tensor-parallel only, up to MAX_CHIPS.
MAX_TRAIN_TP = 8
FP32_BYTES = 4
# fp32 state per parameter beyond the gradient: master copy (below fp32) + optimizer buffers
# (torch.optim: AdamW keeps exp_avg and exp_avg_sq, SGD-momentum one buffer, Adagrad one sum)
OPTIMIZER_STATES = {"adamw": 2, "sgd": 0, "momentum": 1, "adagrad": 1}


@dataclass(frozen=True)
class MemoryFootprint:
    """Bytes one chip holds, by part, under the split ``tp`` x ``pp`` (``chips`` in all).

    ``split`` names the split ("1 chip", "tp=4", "tp=8 x pp=2", "tables over 2 chips"),
    ``basis`` says what was assumed.
    """

    weights_bytes: float = 0.0
    kv_cache_bytes: float = 0.0
    activations_bytes: float = 0.0
    gradients_bytes: float = 0.0
    optimizer_bytes: float = 0.0
    tp: int = 1
    pp: int = 1
    chips: int = 1
    split: str = "1 chip"
    basis: str = ""

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.kv_cache_bytes + self.activations_bytes
                + self.gradients_bytes + self.optimizer_bytes)

    def parts(self) -> dict[str, float]:
        return {"weights_bytes": self.weights_bytes, "kv_cache_bytes": self.kv_cache_bytes,
                "activations_bytes": self.activations_bytes,
                "gradients_bytes": self.gradients_bytes,
                "optimizer_bytes": self.optimizer_bytes}

    def fits(self, capacity_bytes: float,
             usable_fraction: float = USABLE_MEMORY_FRACTION) -> bool:
        return self.total_bytes <= capacity_bytes * usable_fraction


class MemoryModel:
    """A workload's memory, as a function of the split. Subclasses set the rules."""

    def footprint(self, tp: int = 1, pp: int = 1) -> MemoryFootprint:
        raise NotImplementedError

    def splits(self, max_chips: int = MAX_CHIPS) -> Iterator[tuple[int, int]]:
        """Candidate ``(tp, pp)`` splits, fewest chips first."""
        raise NotImplementedError

    def reshard(self, tp: int, pp: int = 1) -> Graph | None:
        """The per-chip graph of that split, or None when the split's graph is not modelled."""
        return None

    def own_split(self) -> tuple[int, int]:
        """The split the graph itself was built for."""
        return 1, 1


def _powers_of_two(limit: int) -> Iterator[int]:
    n = 1
    while n <= limit:
        yield n
        n *= 2


@dataclass(frozen=True)
class LLMMemory(MemoryModel):
    """A decoder-only LLM (``phase`` "prefill", "decode" or "train").

    - weights: every parameter in ``dtype``; expert weights split ``tp·ep`` ways, the rest
      ``tp`` ways (Megatron-LM), layers ``pp`` ways.
    - KV cache (inference): 2 x layers x KV heads x head_dim x tokens x batch x itemsize;
      KV heads split ``tp`` ways until each chip has one, then replicated (as ``llm_decode``
      shards them); capped by the sliding window.
    - activations, inference: the transient peak, the larger of one layer's live tensors
      (residual, QKV, SwiGLU's gate, up and product: ``tokens x (h + qkv/tp + 3 ffn/tp)``)
      and the fp32 logits of the sampled positions plus the residual.
    - activations, training (no recomputation; FlashAttention, so no score matrix): what
      autograd saves per token and layer, in ``dtype``: the two norms' inputs, the QKV and
      gate-up inputs (4h), Q, K, V and the attention output ((2·heads + 2·kv_heads)·head_dim),
      the SwiGLU input and the down-projection input (3·ffn); outside the layers the
      embedding output, final-norm and LM-head inputs (3h) and the logits in ``dtype`` plus
      fp32 for the loss. One micro-batch's worth, divided by ``tp`` (sequence parallelism,
      Korthikanti et al. 2022, arXiv:2205.05198); under 1F1B the first pipeline stage holds
      ``pp`` micro-batches of ``L/pp`` layers, i.e. the same whole-model amount (ibid. 4.2.3).
    The graphs of other splits come from the builders' subclass (``_llm.LLMGraphMemory``).

    - gradients: one per parameter in ``dtype``; optimizer: fp32 master weights (below fp32)
      and the optimizer's fp32 state, 12 bytes/param for mixed-precision AdamW (ZeRO,
      Rajbhandari et al. 2020, arXiv:1910.02054, Sec. 3.1). Both split like the weights.
    """

    cfg: LLMConfig
    phase: str
    batch: int
    length: int  # decode: context_len; prefill/train: seq_len
    dtype: str
    tp: int = 1
    ep: int = 1
    logits: str = "last"
    optimizer: str = "adamw"

    @property
    def _itemsize(self) -> float:
        return ops.dtype_bytes(self.dtype)

    def _expert_params(self) -> int:
        cfg = self.cfg
        return cfg.moe_layers * cfg.num_experts * cfg.mlp_params(cfg.moe_intermediate_size)

    def _ffn_width(self) -> int:
        """The widest MLP a token passes through (dense, or its routed experts + shared)."""
        cfg = self.cfg
        moe = (cfg.experts_per_token * cfg.moe_intermediate_size
               + cfg.shared_expert_intermediate_size) if cfg.moe_layers else 0
        return max(cfg.intermediate_size if cfg.dense_layers else 0, moe)

    def _kv_len(self) -> int:
        return min(self.length, self.cfg.sliding_window or self.length)

    def footprint(self, tp: int = 1, pp: int = 1) -> MemoryFootprint:
        cfg, p = self.cfg, self._itemsize
        experts = self._expert_params()
        params_per_chip = ((cfg.param_count() - experts) / tp + experts / (tp * self.ep)) / pp
        kv = 0.0
        if self.phase != "train":
            kv_heads = max(cfg.num_kv_heads // tp, 1)
            kv = (self.batch * self._kv_len() * 2 * cfg.num_layers * kv_heads * cfg.head_dim
                  * p / pp)
        train = self.phase == "train"
        acts = self._train_activations(tp) if train else self._inference_activations(tp)
        grads = params_per_chip * p if train else 0.0
        states = OPTIMIZER_STATES[self.optimizer] + (self.dtype != "fp32")
        optim = params_per_chip * FP32_BYTES * states if train else 0.0
        split = "1 chip" if tp * pp == 1 else (f"tp={tp}" if pp == 1 else f"tp={tp} x pp={pp}")
        return MemoryFootprint(params_per_chip * p, kv, acts, grads, optim, tp, pp, tp * pp,
                               split, self._basis())

    def _basis(self) -> str:
        if self.phase == "train":
            return (f"{self.dtype} weights and gradients, fp32 master weights and "
                    f"{self.optimizer} state, activations of one micro-batch of "
                    f"{self.batch} x {self.length} tokens kept for the backward pass")
        return (f"{self.dtype} weights, KV cache of batch {self.batch} x "
                f"{self._kv_len()} tokens, transient activations")

    def _inference_activations(self, tp: int) -> float:
        cfg, p = self.cfg, self._itemsize
        h, hd = cfg.hidden_size, cfg.head_dim
        tokens = self.batch * (1 if self.phase == "decode" else self.length)
        qkv = (cfg.num_heads + 2 * cfg.num_kv_heads) * hd / tp
        layer = tokens * (h + qkv + 3 * self._ffn_width() / tp) * p
        sampled = tokens if self.logits == "all" else self.batch
        logits = sampled * math.ceil(cfg.vocab_size / tp) * FP32_BYTES + tokens * h * p
        return max(layer, logits)

    def _train_activations(self, tp: int) -> float:
        cfg, p = self.cfg, self._itemsize
        h, hd = cfg.hidden_size, cfg.head_dim
        per_layer = (4 * h + (2 * cfg.num_heads + 2 * cfg.num_kv_heads) * hd
                     + 3 * self._ffn_width())
        per_token = cfg.num_layers * per_layer * p + 3 * h * p + cfg.vocab_size * (p + 4)
        return self.batch * self.length * per_token / tp

    def splits(self, max_chips: int = MAX_CHIPS) -> Iterator[tuple[int, int]]:
        if self.phase != "train":
            for tp in _powers_of_two(max_chips):
                if tp >= self.tp and self._tp_ok(tp):
                    yield tp, 1
            return
        pairs = [(tp, pp) for tp in _powers_of_two(min(MAX_TRAIN_TP, max_chips))
                 for pp in range(1, self.cfg.num_layers + 1)
                 if self._tp_ok(tp) and self.cfg.num_layers % pp == 0 and tp * pp <= max_chips]
        yield from sorted(pairs, key=lambda s: (s[0] * s[1], -s[0]))

    def own_split(self) -> tuple[int, int]:
        return self.tp, 1

    def _tp_ok(self, tp: int) -> bool:
        """The rules ``llm_decode`` enforces on a tensor-parallel size (``Shard.of``)."""
        cfg = self.cfg
        return cfg.num_heads % tp == 0 and (cfg.num_kv_heads < tp or cfg.num_kv_heads % tp == 0)

@dataclass(frozen=True)
class SplitMemory(MemoryModel):
    """A workload whose whole-model parts ``whole`` divide over ``n`` chips only in the
    fields ``divided`` (DLRM: the embedding tables, table-wise model parallelism; CNNs and
    ViTs: the activations, data parallelism over the batch); the rest is replicated."""

    whole: MemoryFootprint
    divided: tuple[str, ...]
    how: str  # "tables" or "batch"

    def footprint(self, tp: int = 1, pp: int = 1) -> MemoryFootprint:
        n = tp * pp
        parts = {k: v / n if k in self.divided else v for k, v in self.whole.parts().items()}
        split = "1 chip" if n == 1 else f"{self.how} over {n} chips"
        return dataclasses.replace(self.whole, **parts, tp=n, pp=1, chips=n, split=split)

    def splits(self, max_chips: int = MAX_CHIPS) -> Iterator[tuple[int, int]]:
        for n in _powers_of_two(max_chips):
            yield n, 1


@dataclass(frozen=True)
class TableMemory(SplitMemory):
    """DLRM: ``table_bytes`` of the weights (and their optimizer state) shard over chips."""

    table_bytes: float = 0.0
    table_state_bytes: float = 0.0

    def footprint(self, tp: int = 1, pp: int = 1) -> MemoryFootprint:
        n = tp * pp
        w = self.whole
        return dataclasses.replace(
            w, weights_bytes=w.weights_bytes - self.table_bytes + self.table_bytes / n,
            optimizer_bytes=w.optimizer_bytes - self.table_state_bytes
            + self.table_state_bytes / n, tp=n, pp=1, chips=n,
            split="1 chip" if n == 1 else f"tables over {n} chips")


def output_bytes(op: Op) -> float:
    """Bytes of an op's output tensor(s): what the next op reads and autograd may save."""
    size = op.itemsize
    if isinstance(op, ops.Matmul):
        return op.batch * op.m * op.n * size
    if isinstance(op, ops.Conv2d):
        return op.batch * op.out_ch * op.out_h * op.out_w * size
    if isinstance(op, ops.Attention):
        return op.batch * op.q_len * op.heads * op.head_dim * size
    if isinstance(op, ops.Elementwise):
        return op.numel * op.outputs * size
    if isinstance(op, ops.Reduce):
        return op.rows * size
    if isinstance(op, ops.EmbeddingBag):
        return op.tables * op.batch * op.dim * size
    if isinstance(op, ops.Collective):
        return 0.0
    return op.rows * op.cols * size  # softmax, layernorm, rmsnorm: same shape out


def forward_activations(fwd: Sequence[tuple[Op, int]], train: bool) -> float:
    """Training: every forward output, saved for the backward pass (an upper bound on what
    autograd keeps). Inference: the transient peak, assumed to be an op's input and output
    alive together, 2 x the largest output."""
    outs = [output_bytes(op) * (n if train else 1) for op, n in fwd]
    if not outs:
        return 0.0
    return sum(outs) if train else 2 * max(outs)


def training_state_bytes(params: float, dtype: str, optimizer: str) -> tuple[float, float]:
    """(gradient bytes, optimizer bytes) of ``params`` trained in ``dtype`` (fp32 master
    weights below fp32, plus the optimizer's fp32 buffers)."""
    states = OPTIMIZER_STATES[optimizer] + (dtype != "fp32")
    return params * ops.dtype_bytes(dtype), params * FP32_BYTES * states


def memory_model(graph: Graph) -> MemoryModel | None:
    """The memory model a workload builder left in ``graph.meta``, or None (a graph built by
    hand or captured from PyTorch)."""
    model = graph.meta.get("memory")
    return model if isinstance(model, MemoryModel) else None


def memory_footprint(graph: Graph, tp: int | None = None,
                     pp: int | None = None) -> MemoryFootprint:
    """Bytes per chip of ``graph``'s workload split ``tp`` x ``pp`` ways (by default the
    split the graph was built for: ``llm_decode(..., tp=8)`` holds an eighth).

    Raises :class:`WorkloadError` for a graph without a memory model.
    """
    model = memory_model(graph)
    if model is None:
        raise WorkloadError(f"graph {graph.name!r} carries no memory model; expected a graph "
                            "from a chipforge.workloads builder")
    own_tp, own_pp = model.own_split()
    return model.footprint(own_tp if tp is None else tp, own_pp if pp is None else pp)


def fit_split(graph: Graph, capacity_bytes: float, *,
              usable_fraction: float = USABLE_MEMORY_FRACTION,
              max_chips: int = MAX_CHIPS) -> MemoryFootprint | None:
    """The footprint of the smallest split of ``graph`` (fewest chips, then the widest
    tensor-parallel group) whose chips each hold their share in ``usable_fraction`` x
    ``capacity_bytes``; None when no split of at most ``max_chips`` chips does."""
    model = memory_model(graph)
    if model is None:
        return None
    for tp, pp in model.splits(max_chips):
        found = model.footprint(tp, pp)
        if found.fits(capacity_bytes, usable_fraction):
            return found
    return None
