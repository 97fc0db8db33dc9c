"""The DLRM training step on a system: the planner's sharding, the slowest chip's embedding
traffic, the data-parallel dense part, the all-to-alls and the gradient all-reduce."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chipforge import ops
from chipforge.arch import ChipSpec
from chipforge.cluster._collectives import collective_time
from chipforge.cluster._recsys_model import (
    FP32_BYTES,
    INDEX_BYTES,
    DLRMSpec,
    activation_bytes,
    dense_seconds,
    gather_bytes_per_s,
    resolve_spec,
    unique_rows,
)
from chipforge.cluster._recsys_shard import SHARDING_KINDS, PlanInputs, ShardingPlan, plan_sharding
from chipforge.cluster._system import System
from chipforge.cluster._system import system as make_system
from chipforge.errors import ClusterError

# source: TorchRec planner, HeuristicalStorageReservation(percentage=0.15): 15% of HBM is
# kept for activations, workspaces and the allocator; tables get the rest
STORAGE_RESERVATION = 0.15
# bytes per dense parameter in training: fp32 master weight, fp32 gradient, fp32 Adagrad
# state and the 16-bit compute copy (mixed precision)
DENSE_TRAIN_BYTES_PER_PARAM = 3 * FP32_BYTES + 2


@dataclass(frozen=True)
class DLRMStep:
    """One step's time on a system, the slowest chip's embedding work included.

    ``ids_all_to_all_s`` overlaps the dense compute (TorchRec's TrainPipelineSparseDist and
    HugeCTR's inter-iteration overlap send the next batch's ids during this one) and the
    gradient all-reduce overlaps the embedding backward; only what sticks out counts."""

    step_s: float
    embedding_forward_s: float
    embedding_backward_s: float
    dense_forward_s: float
    dense_backward_s: float
    ids_all_to_all_s: float
    pooled_all_to_all_s: float
    gradient_all_to_all_s: float
    node_collective_s: float  # table-row-wise partial sums inside the node, both passes
    all_reduce_s: float
    replica_sync_s: float  # embedding replicas' touched rows, when the tables are replicated
    exposed_s: float  # the overlapped communication that did not hide
    ids_bytes: float  # the busiest chip's all-to-all bytes (sent or received) of ids
    pooled_bytes: float  # ... of pooled vectors (the gradients move the same back)


@dataclass(frozen=True)
class DLRMTrainPlan:
    """A DLRM training configuration on ``chips`` chips: the sharding (over each group of
    ``chips // replicas`` chips when the tables are replicated), the step time with its
    breakdown, throughput and the largest per-chip memory (tables, their optimizer state
    and the replicated dense training state)."""

    model: DLRMSpec
    system: str
    chip: str
    chips: int
    global_batch: int
    sharding: ShardingPlan
    step: DLRMStep
    eval_step_s: float  # forward only, same batch (MLPerf evaluates in between)
    memory_per_chip_bytes: float
    memory_capacity_bytes: float
    replicas: int = 1  # copies of the sharded tables (each over chips // replicas chips)

    @property
    def step_time_s(self) -> float:
        return self.step.step_s

    @property
    def samples_per_s(self) -> float:
        return self.global_batch / self.step.step_s


def _system(chip: str | ChipSpec | System, chips: int | None) -> System:
    if isinstance(chip, System):
        if chips is not None and chips != chip.chips:
            raise ClusterError(f"chips={chips!r} but the system has {chip.chips}; expected "
                               "one or the other")
        return chip
    if chips is None or not isinstance(chips, int) or isinstance(chips, bool) or chips < 1:
        raise ClusterError(f"chips={chips!r}; expected a positive int with a chip name")
    return make_system(chip, chips)


def _batch(global_batch: object, world: int) -> int:
    if not isinstance(global_batch, int) or isinstance(global_batch, bool) or global_batch < 1:
        raise ClusterError(f"global_batch={global_batch!r}; expected a positive int")
    if global_batch < world:
        raise ClusterError(f"global_batch={global_batch!r} leaves some of the {world} chips "
                           "without a sample; expected at least one sample per chip")
    return global_batch


def _a2a_s(sys: System, nbytes: float) -> float:
    return collective_time(sys, "all_to_all", nbytes, sys.chips).seconds if nbytes > 0 else 0.0


def _all_reduce_s(sys: System, nbytes: float) -> float:
    return collective_time(sys, "all_reduce", nbytes, sys.chips).seconds if nbytes > 0 else 0.0


def _bandwidths(sys: System) -> tuple[float, float, float]:
    """Bytes per second per chip of a large all-to-all, all-reduce and in-node
    reduce-scatter, for the planner's estimators."""
    if sys.chips == 1:
        return math.inf, math.inf, math.inf
    probe = 256e6
    node_bw = math.inf
    if 1 < sys.chips_per_node < sys.chips:
        node_s = collective_time(sys, "reduce_scatter", probe, sys.chips_per_node).seconds
        node_bw = probe / node_s
    return (probe / _a2a_s(sys, probe),
            probe * 2 * (sys.chips - 1) / sys.chips / _all_reduce_s(sys, probe), node_bw)


def _a2a_bytes(spec: DLRMSpec, plan: ShardingPlan, batch: int) -> tuple[float, float, float]:
    """(ids, pooled, node) bytes of the busiest chip: sent or received in the two
    all-to-alls, and the input of the in-node reduce-scatter of table-row-wise partial sums.

    Each chip sends its local ids of every table to the table's shards and receives the ids
    its shards serve; shards send pooled vectors for the whole batch (row-wise shards their
    partial sums; table-row-wise shards 1/local of the node-reduced sums) and each chip
    receives its local samples' vectors of every table."""
    n, local = plan.world, batch / plan.world
    wire = ops.dtype_bytes(spec.dtype)
    id_send = out_recv = 0.0  # the same on every chip
    id_recv, out_send, node = np.zeros(n), np.zeros(n), np.zeros(n)
    for opt, ranks in zip(plan.options, plan.ranks, strict=True):
        if opt.kind == "data_parallel":
            continue
        hot, dim, shard = spec.pooling[opt.table], spec.embedding_dim, opt.shard
        copies = opt.count if opt.kind == "column_wise" else 1
        id_send += local * hot * INDEX_BYTES * copies
        out_recv += batch * dim if opt.kind == "row_wise" else local * dim
        idx = list(ranks)
        np.add.at(id_recv, idx, shard.lookups * INDEX_BYTES)
        if opt.kind == "table_row_wise":
            np.add.at(node, idx, batch * shard.cols)
            np.add.at(out_send, idx, batch * shard.cols / opt.count)
        else:
            np.add.at(out_send, idx, batch * shard.cols)
    ids = max(id_send, float(id_recv.max()))
    pooled = max(out_recv, float(out_send.max())) * wire
    return ids, pooled, float(node.max()) * wire


def dlrm_step(spec: DLRMSpec, sys: System, plan: ShardingPlan, batch: int,
              train: bool = True, world: System | None = None) -> DLRMStep:
    """The step time of ``plan`` on ``sys`` for ``batch`` samples (forward only unless
    ``train``). With ``world`` (a larger system made of ``world.chips // sys.chips``
    replicas of ``sys``, each sharding the tables alike on its share of the batch), the
    dense gradients are all-reduced over the whole world and each shard's touched rows over
    its replicas."""
    full = world or sys
    replicas = full.chips // sys.chips
    bw = gather_bytes_per_s(sys.chip)
    emb_f = float(plan.forward_bytes().max()) / bw
    emb_b = float(plan.backward_bytes().max()) / bw if train else 0.0
    # an uneven split: the chips with one sample more set the pace
    dense_f, dense_b = dense_seconds(spec, sys.chip, math.ceil(batch / sys.chips), train)
    ids_bytes, pooled_bytes, node_bytes = _a2a_bytes(spec, plan, batch)
    ids_s, pooled_s = _a2a_s(sys, ids_bytes), _a2a_s(sys, pooled_bytes)
    grad_s = pooled_s if train else 0.0
    node_s = 0.0
    if node_bytes > 0:  # reduce-scatter forward; the gradients' all-gather backward
        node_s = collective_time(sys, "reduce_scatter", node_bytes, sys.chips_per_node).seconds
        if train:
            node_s += collective_time(sys, "all_gather", node_bytes,
                                      sys.chips_per_node).seconds
    reduce_s = 0.0
    if train:
        dp_rows = sum(spec.table_rows[t] for t, k in enumerate(plan.kinds)
                      if k == "data_parallel")
        reduce_s = (_all_reduce_s(full, spec.dense_params * ops.dtype_bytes(spec.dtype))
                    + _all_reduce_s(full, dp_rows * spec.embedding_dim * FP32_BYTES))
    sync_s = _replica_sync_s(plan, full, sys.chips, replicas) if train else 0.0
    exposed = max(0.0, ids_s - dense_f - dense_b) + max(0.0, reduce_s - emb_b)
    total = emb_f + emb_b + dense_f + dense_b + pooled_s + grad_s + node_s + sync_s + exposed
    return DLRMStep(total, emb_f, emb_b, dense_f, dense_b, ids_s, pooled_s, grad_s, node_s,
                    reduce_s, sync_s, exposed, ids_bytes, pooled_bytes)


def _replica_sync_s(plan: ShardingPlan, full: System, group: int, replicas: int) -> float:
    """The all-reduce of each shard's touched-row gradients over its ``replicas`` copies
    (ranks ``group`` apart), after the embedding backward.
    assumption: a dense all-reduce of the fp32 rows the replicas touch together (their
    union, uniform ids), the index exchange neglected; TorchRec's 2D parallelism
    (DMPCollection) syncs the replicated shards with all-reduces of this kind."""
    if replicas <= 1:
        return 0.0
    per_chip = plan.per_rank(
        lambda s: 0.0 if s.kind == "data_parallel"
        else unique_rows(s.rows, s.lookups * replicas) * s.cols * FP32_BYTES)
    nbytes = float(per_chip.max())
    if nbytes <= 0:
        return 0.0
    return collective_time(full, "all_reduce", nbytes, replicas, stride=group).seconds


def _fixed_kinds(spec: DLRMSpec, sharding: Sequence[str | None] | None
                 ) -> tuple[str | None, ...] | None:
    if sharding is None:
        return None
    if isinstance(sharding, str) or len(sharding) != spec.tables:
        raise ClusterError(f"sharding={sharding!r}; expected one kind (or None) per table, "
                           f"{spec.tables} in all")
    for t, kind in enumerate(sharding):
        if kind is not None and kind not in SHARDING_KINDS:
            raise ClusterError(f"sharding[{t}]={kind!r}; expected one of {SHARDING_KINDS} "
                               "or None")
    return tuple(sharding)


def _inputs(spec: DLRMSpec, sys: System, batch: int, train: bool,
            sharding: Sequence[str | None] | None = None) -> PlanInputs:
    capacity = sys.chip.memory.capacity_bytes
    dense_state = spec.dense_params * (DENSE_TRAIN_BYTES_PER_PARAM if train
                                       else ops.dtype_bytes(spec.dtype))
    budget = capacity * (1 - STORAGE_RESERVATION) - dense_state
    activations = activation_bytes(spec, batch / sys.chips, train)
    if activations > capacity * STORAGE_RESERVATION:
        raise ClusterError(
            f"a batch of {batch!r} samples over {sys.chips} chips needs "
            f"{activations / 1e9:.3g} GB of activations per chip, more than the "
            f"{capacity * STORAGE_RESERVATION / 1e9:.3g} GB kept for them on "
            f"{sys.chip.name!r}; expected a smaller batch or more chips")
    if budget <= 0:
        raise ClusterError(f"the dense layers' {dense_state / 1e9:.3g} GB leave no room for "
                           f"tables on {sys.chip.name!r} ({capacity / 1e9:.3g} GB); expected "
                           "a chip with more memory")
    a2a_bw, reduce_bw, node_bw = _bandwidths(sys)
    return PlanInputs(spec, sys.chips, batch, budget, gather_bytes_per_s(sys.chip), a2a_bw,
                      reduce_bw, train, _fixed_kinds(spec, sharding), sys.chips_per_node,
                      node_bw)


def plan_for(spec: DLRMSpec, sys: System, batch: int, train: bool,
             sharding: Sequence[str | None] | None = None) -> tuple[ShardingPlan, float]:
    """The planner's sharding for ``batch`` and the per-chip memory it needs."""
    inputs = _inputs(spec, sys, batch, train, sharding)
    plan = plan_sharding(inputs, lambda p: dlrm_step(spec, sys, p, batch, train).step_s)
    dense_state = (sys.chip.memory.capacity_bytes * (1 - STORAGE_RESERVATION)
                   - inputs.storage_budget_bytes)
    return plan, float(plan.storage_bytes().max()) + dense_state


def dlrm_train_plan(model: str | DLRMSpec, chip: str | ChipSpec | System, *,
                    global_batch: int, chips: int | None = None,
                    sharding: Sequence[str | None] | None = None,
                    replicas: int | None = None) -> DLRMTrainPlan:
    """Plan DLRM training of ``model`` on a system (or ``chips`` of ``chip`` in its default
    system): the planner's sharding, the step time and breakdown, samples/s and memory.
    ``sharding`` optionally fixes each table's kind (one of ``table_wise``, ``column_wise``,
    ``row_wise``, ``table_row_wise``, ``data_parallel``, or None to let the planner choose).
    Groups of half, a quarter, … of the chips (down to one node) that each hold a full copy
    of the tables are compared too (``replicas`` > 1), their touched rows synced per step;
    ``replicas`` pins the number of copies (TorchRec's DMPCollection sharding group).

    ClusterError when a table fits no chip or the tables fit no placement."""
    spec = resolve_spec(model)
    sys = _system(chip, chips)
    batch = _batch(global_batch, sys.chips)
    best: DLRMTrainPlan | None = None
    failure: ClusterError | None = None
    groups = _group_systems(sys)
    if replicas is not None:
        groups = [g for g in groups if g.chips * replicas == sys.chips]
        if not groups:
            raise ClusterError(f"replicas={replicas!r}; expected a power of two that leaves "
                               f"at least one node ({sys.chips_per_node} chips) of the "
                               f"{sys.chips} per copy")
    for group in groups:
        group_batch = math.ceil(batch / (sys.chips // group.chips))
        try:
            plan, memory = plan_for(spec, group, group_batch, train=True, sharding=sharding)
        except ClusterError as exc:  # the tables need a larger group
            failure = failure or exc
            continue
        step = dlrm_step(spec, group, plan, group_batch, train=True, world=sys)
        if best is None or step.step_s < best.step.step_s:
            eval_step = dlrm_step(spec, group, plan, group_batch, train=False).step_s
            best = DLRMTrainPlan(spec, sys.name, sys.chip.name, sys.chips, batch, plan, step,
                                 eval_step, memory, sys.chip.memory.capacity_bytes,
                                 sys.chips // group.chips)
    if best is None:
        assert failure is not None
        raise failure
    return best


def _group_systems(sys: System) -> list[System]:
    """The whole system, then halves down to one node: the candidate groups that each hold
    a full copy of the tables (2D sparse parallelism) when the world is large."""
    groups = [sys]
    size = sys.chips // 2
    while size >= max(sys.chips_per_node, 1) and sys.chips % size == 0:
        try:
            groups.append(make_system(sys.chip, size, preset=sys.name))
        except ClusterError:
            break  # a system not built from a preset: no sub-systems to compare
        size //= 2
    return groups
