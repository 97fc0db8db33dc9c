"""One LLM training step of a parallel plan on a system: ``evaluate_plan``.

The step as Megatron-LM runs it (Narayanan et al. 2021, arXiv 2104.04473; Korthikanti et al.
2022, arXiv 2205.05198), with the terms Calculon (Isaev et al., SC'23) accounts for:

- each pipeline stage runs ``m`` micro-batches forward and backward; per micro-batch and
  layer, the compute of ``chipforge.cluster._train_ops`` plus the tensor-parallel
  collectives, which 2021-22 Megatron does not overlap with compute (2 all-reduces forward
  and 2 backward; with sequence parallelism 2 all-gathers and 2 reduce-scatters each way,
  the backward's re-gather of the LayerNorm output overlapped with the dgrad GEMM,
  Korthikanti §4.2.2); the context-parallel K/V ring exchange and the MoE all-to-alls;
- recompute: selective re-runs core attention, full re-runs the whole forward (its
  collectives included) before each backward;
- the pipeline: the slowest stage sets the steady state; the fill and drain add
  ``(p - 1) / v`` micro-batch times (1F1B, v = 1; interleaved, Narayanan §2.2.2), and
  each micro-batch sends its activations and gradients across ``2 v`` stage boundaries
  (Megatron's scatter/gather: each tensor-parallel rank sends 1/t of the tensor);
- data parallelism: the gradient all-reduce (ZeRO-1/2: reduce-scatter of gradients plus
  all-gather of updated weights; ZeRO-3/FSDP: also the weight all-gathers before each
  layer's forward and backward, prefetched behind the previous layer's compute), exposed
  in full when ``overlap_grad_reduce`` is off (Megatron 2021-22), otherwise only what
  outlasts the last micro-batch's backward; the tied-embedding gradient all-reduce
  between the first and last stage;
- the optimizer: Adam over the local shard, memory-bound, priced by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipforge.cluster import _collectives
from chipforge.cluster._system import System
from chipforge.cluster._train_job import Parallelism, StepEstimate, TrainJob
from chipforge.cluster._train_memory import (
    MAIN_GRAD_BYTES,
    WEIGHT_BYTES,
    plan_memory,
    stage_loads,
    stage_params,
)
from chipforge.cluster._train_ops import (
    LayerShape,
    PassCost,
    edge_cost,
    in_training_loop,
    layer_cost,
    optimizer_seconds,
)
from chipforge.errors import ClusterError
from chipforge.machine import DEFAULT, Efficiency
from chipforge.workloads import USABLE_MEMORY_FRACTION, LLMConfig

ITEMSIZE = 2  # bf16/fp16 activations and collectives


def _comm(system: System, kind: str, nbytes: float, group: int, stride: int) -> float:
    if group <= 1 or nbytes <= 0:
        return 0.0
    return _collectives.collective_time(system, kind, nbytes, group, stride,
                                        itemsize=ITEMSIZE).seconds


@dataclass(frozen=True)
class LayerComm:
    """Exposed communication seconds of one layer for one micro-batch on one rank."""

    tp_fwd: float
    tp_bwd: float
    cp_fwd: float
    cp_bwd: float
    ep_fwd: float
    ep_bwd: float


def check_plan(job: TrainJob, system: System, par: Parallelism) -> int:
    """Raise ClusterError for a plan that cannot run; return micro-batches per step."""
    for value, kind, what in ((job, TrainJob, "a TrainJob"), (par, Parallelism, "a Parallelism"),
                              (system, System, "a System (chipforge.cluster.system)")):
        if not isinstance(value, kind):
            raise ClusterError(f"evaluate_plan: got {type(value).__name__} {value!r:.60}; "
                               f"expected {what}")
    cfg = job.model
    name = cfg.name or "the model"
    if par.chips != system.chips:
        raise ClusterError(f"plan {par.describe()} uses tp*pp*dp*cp={par.chips} chips; "
                           f"expected the system's {system.chips}")
    if cfg.num_heads % par.tp:
        raise ClusterError(f"tp={par.tp} does not divide num_heads={cfg.num_heads} of "
                           f"{name}; expected a divisor of the head count")
    if cfg.num_kv_heads >= par.tp and cfg.num_kv_heads % par.tp:
        raise ClusterError(f"tp={par.tp} does not divide num_kv_heads={cfg.num_kv_heads} of "
                           f"{name}; expected a divisor or a multiple of it")
    if par.pp > cfg.num_layers:
        raise ClusterError(f"pp={par.pp} exceeds num_layers={cfg.num_layers} of {name}; "
                           "expected at most one stage per layer")
    if par.pp * par.virtual_stages > cfg.num_layers:
        raise ClusterError(f"interleaved schedule: pp*virtual_stages={par.pp} x "
                           f"{par.virtual_stages} exceeds num_layers={cfg.num_layers} of "
                           f"{name}; expected at least one layer per model chunk")
    if par.ep > 1 and not cfg.is_moe:
        raise ClusterError(f"ep={par.ep} for the dense model {name}; expected ep=1")
    if job.seq_len % (2 * par.cp if par.cp > 1 else 1):
        raise ClusterError(f"cp={par.cp}: seq_len={job.seq_len} is not divisible by 2*cp; "
                           "expected a multiple (load-balanced causal split)")
    if par.sequence_parallel and (par.micro_batch * job.seq_len // par.cp) % par.tp:
        raise ClusterError(f"sequence parallelism: {job.seq_len // par.cp} tokens per rank "
                           f"do not split over tp={par.tp}; expected a multiple")
    replica = par.dp * par.micro_batch
    if job.global_batch_seqs % replica:
        raise ClusterError(f"global_batch_seqs={job.global_batch_seqs} is not divisible by "
                           f"dp*micro_batch={par.dp}x{par.micro_batch}; expected a multiple")
    micro = job.global_batch_seqs // replica
    if par.schedule == "interleaved" and par.pp > 1 and micro % par.pp:
        raise ClusterError(f"interleaved schedule: {micro} micro-batches per step is not a "
                           f"multiple of pp={par.pp}; expected a multiple (Megatron-LM's rule)")
    return micro


def layer_comm(cfg: LLMConfig, par: Parallelism, seq: int, system: System,
               cost: PassCost) -> LayerComm:
    tokens = par.micro_batch * seq // par.cp
    act_bytes = tokens * cfg.hidden_size * ITEMSIZE
    tp = 0.0
    if par.sequence_parallel:
        tp = 2 * (_comm(system, "all_gather", act_bytes, par.tp, 1)
                  + _comm(system, "reduce_scatter", act_bytes, par.tp, 1))
    else:
        tp = 2 * _comm(system, "all_reduce", act_bytes, par.tp, 1)
    cp_f = cp_b = 0.0
    if par.cp > 1:  # ring attention: cp - 1 hops of this rank's K and V, behind the kernel
        kv = max(cfg.num_kv_heads // par.tp, 1) * cfg.head_dim
        hop = _comm(system, "send_recv", 2 * tokens * kv * ITEMSIZE, 2, par.tp)
        cp_f = max(0.0, (par.cp - 1) * hop - cost.attention_fwd_s)
        cp_b = max(0.0, 2 * (par.cp - 1) * hop - 2 * cost.attention_fwd_s)  # + dK, dV
    ep = 0.0
    if par.ep > 1:  # dispatch and combine, each way; averaged over dense and MoE layers
        a2a = _comm(system, "all_to_all", tokens * cfg.experts_per_token * cfg.hidden_size
                    * ITEMSIZE, par.ep, par.tp)
        ep = 2 * a2a * cfg.moe_layers / cfg.num_layers
    return LayerComm(tp, tp, cp_f, cp_b, ep, ep)


def _stage_times(job: TrainJob, par: Parallelism, system: System, eff: Efficiency
                 ) -> tuple[list[dict[str, float]], PassCost]:
    """Per stage, the seconds of one micro-batch's forward and backward by cause."""
    cfg, chip = job.model, system.chip
    shape = LayerShape(par.micro_batch, job.seq_len, par.tp, par.cp, par.ep,
                       par.sequence_parallel, job.dtype)
    cost = layer_cost(cfg, shape, chip, eff)
    comm = layer_comm(cfg, par, job.seq_len, system, cost)
    edge = edge_cost(cfg, shape, chip, eff)
    recompute = {"none": 0.0, "selective": cost.recompute_selective_s,
                 "full": cost.fwd_s + comm.tp_fwd + comm.cp_fwd + comm.ep_fwd}[par.recompute]
    stages = []
    for load in stage_loads(cfg.num_layers, par.pp):
        n = load.layers
        stages.append({
            "compute_fwd": n * cost.fwd_s + edge.embed_fwd_s * load.first
            + edge.head_fwd_s * load.last,
            "compute_bwd": n * cost.bwd_s + edge.embed_bwd_s * load.first
            + edge.head_bwd_s * load.last,
            "compute_recompute": n * recompute,
            "tp_comm": n * (comm.tp_fwd + comm.tp_bwd),
            "cp_comm": n * (comm.cp_fwd + comm.cp_bwd),
            "ep_all_to_all": n * (comm.ep_fwd + comm.ep_bwd)})
    return stages, cost


def _dp_exposed(job: TrainJob, par: Parallelism, system: System, last_bwd_s: float,
                micro: int, layer_fwd_bwd_s: float) -> tuple[float, float]:
    """(exposed data-parallel seconds, exposed tied-embedding sync seconds)."""
    cfg = job.model
    loads = stage_loads(cfg.num_layers, par.pp)
    params = max(stage_params(cfg, s, par.pp, par.ep) for s in loads) / par.tp
    group, stride = par.dp * par.cp, par.tp
    grads = params * grad_reduce_bytes(job.dtype)
    if par.zero == 0:
        sync = _comm(system, "all_reduce", grads, group, stride)
    else:  # reduce-scatter the gradients, all-gather the updated weights
        sync = (_comm(system, "reduce_scatter", grads, group, stride)
                + _comm(system, "all_gather", params * WEIGHT_BYTES, group, stride))
    gather = 0.0
    if par.zero == 3:  # weights gathered before each layer's forward and backward
        per_layer = params / max(loads[0].layers, 1) * WEIGHT_BYTES
        ag = _comm(system, "all_gather", per_layer, group, stride)
        gather = micro * loads[0].layers * max(0.0, 2 * ag - layer_fwd_bwd_s)
    exposed = max(0.0, sync - last_bwd_s) if par.overlap_grad_reduce else sync
    embed = 0.0
    if par.pp > 1 and cfg.tie_word_embeddings:
        embed = _comm(system, "all_reduce", cfg.embedding_params / par.tp * MAIN_GRAD_BYTES,
                      2, par.tp * par.cp * par.dp)  # stages on different nodes
    return exposed + gather, embed


def grad_reduce_bytes(dtype: str) -> int:
    """Bytes per gradient in the data-parallel reduction. source: Megatron-LM
    megatron/arguments.py: --accumulate-allreduce-grads-in-fp32 is opt-in and forced on for
    bf16; fp16 runs reduce the fp16 gradient buffer."""
    return MAIN_GRAD_BYTES if dtype == "bf16" else 2


def model_flops_per_step(job: TrainJob) -> float:
    """6 x active matmul parameters per token + attention, as Korthikanti et al. (eq. in §6:
    72 B s l h^2 (1 + s/(6h) + V/(12 h l)) for GPT) count them: the full s x s scores."""
    cfg, tokens = job.model, job.global_batch_tokens
    h, q, kv = cfg.hidden_size, cfg.q_dim, cfg.kv_dim
    mats = 3 if cfg.mlp_gated else 2
    mlp = (cfg.dense_layers * mats * h * cfg.intermediate_size
           + cfg.moe_layers * (cfg.experts_per_token * mats * h * cfg.moe_intermediate_size
                               + mats * h * cfg.shared_expert_intermediate_size
                               + h * cfg.num_experts))
    linear = cfg.num_layers * (h * (q + 2 * kv) + q * h) + mlp + h * cfg.vocab_size
    attention = cfg.num_layers * 2 * job.seq_len * q  # QK^T and PV, per token
    return 3 * 2 * tokens * (linear + attention)


def evaluate_plan(job: TrainJob, system: System, par: Parallelism,
                  eff: Efficiency = DEFAULT) -> StepEstimate:
    """The step time, exposed time by cause, MFU, HFU and memory per chip of ``par``."""
    micro = check_plan(job, system, par)
    eff = in_training_loop(eff)
    stages, cost = _stage_times(job, par, system, eff)
    per_mb = [sum(s.values()) for s in stages]
    slow = stages[per_mb.index(max(per_mb))]
    p2p = 0.0
    if par.pp > 1:
        nbytes = par.micro_batch * job.seq_len // par.cp * job.model.hidden_size * ITEMSIZE
        p2p = 2 * par.virtual_stages * _comm(system, "send_recv", nbytes / par.tp, 2,
                                             par.tp * par.cp * par.dp)
    fill = (par.pp - 1) / par.virtual_stages
    breakdown = {k: micro * v for k, v in slow.items()}
    breakdown["pp_p2p"] = micro * p2p
    breakdown["pp_bubble"] = fill * (sum(per_mb) / len(per_mb) + p2p)
    last_bwd = slow["compute_bwd"] + slow["compute_recompute"] + slow["tp_comm"] / 2
    layer_fb = cost.fwd_s + cost.bwd_s
    dp, embed = _dp_exposed(job, par, system, last_bwd, micro, layer_fb)
    breakdown["dp_comm"] = dp
    breakdown["embedding_sync"] = embed
    local = max(stage_params(job.model, s, par.pp, par.ep)
                for s in stage_loads(job.model.num_layers, par.pp)) / par.tp
    shard = par.dp * par.cp if par.zero >= 1 else 1
    breakdown["optimizer"] = optimizer_seconds(round(local / shard), system.chip, eff)
    step = sum(breakdown.values())
    return _result(job, system, par, micro, step, breakdown, cost)


def _result(job: TrainJob, system: System, par: Parallelism, micro: int, step: float,
            breakdown: dict[str, float], cost: PassCost) -> StepEstimate:
    cfg, chip = job.model, system.chip
    model = model_flops_per_step(job)
    ranks = par.tp * par.cp  # the ranks one layer's work is split over
    layer_mb = cfg.num_layers * micro * par.dp * ranks
    extra = {"none": 0.0, "selective": cost.selective_flops, "full": cost.fwd_flops}
    hardware = model + layer_mb * extra[par.recompute]
    peak = par.chips * chip.peak_flops(job.dtype) * step
    memory = plan_memory(cfg, par, job.seq_len, micro)
    total = sum(memory.values())
    usable = chip.memory.capacity_bytes * USABLE_MEMORY_FRACTION
    fits = total <= usable
    gb = 1e9
    note = (f"{total / gb:.1f} GB per chip within {usable / gb:.1f} GB usable" if fits else
            f"does not fit: {total / gb:.1f} GB per chip > {usable / gb:.1f} GB usable "
            f"({USABLE_MEMORY_FRACTION:.0%} of {chip.name}'s memory); the time is as if "
            "memory were unbounded")
    compute = sum(v for k, v in breakdown.items() if k.startswith("compute"))
    return StepEstimate(
        plan=par, step_time_s=step, compute_s=compute, breakdown=breakdown,
        model_flops=model, hardware_flops=hardware, mfu=model / peak, hfu=hardware / peak,
        memory=memory, memory_bytes=total, memory_capacity_bytes=usable, fits=fits,
        chips=par.chips, note=note,
        extras={"global_batch_tokens": float(job.global_batch_tokens),
                "microbatches": float(micro)})


__all__ = ["evaluate_plan", "model_flops_per_step"]
