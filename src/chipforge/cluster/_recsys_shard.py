"""The embedding sharding planner, after TorchRec's (torchrec/distributed/planner): an
enumerator lists each table's sharding options, shard estimators give each shard's time
and storage, a greedy partitioner places the shards on the least-loaded chip that has room,
and proposers pick one option per table; the plan with the shortest modelled step wins."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from chipforge import ops
from chipforge.cluster._recsys_model import (
    FP32_BYTES,
    INDEX_BYTES,
    DLRMSpec,
    shard_traffic,
)
from chipforge.errors import ClusterError

SHARDING_KINDS = ("table_wise", "column_wise", "row_wise", "table_row_wise", "data_parallel")
# assumption: column shards no narrower than 32 values (128 B of fp32), the width below
# which a TBE row read stops filling a 128-byte memory transaction
MIN_COLUMN_SHARD = 32
# assumption: local search over the options of the hottest tables only, so a plan search
# stays linear in the table count
LOCAL_SEARCH_TABLES = 8


@dataclass(frozen=True)
class PlanInputs:
    """What the estimators need: the model, the world, the global batch, the storage budget
    per chip, the chip's gather bandwidth and the all-to-all / all-reduce bandwidth per chip."""

    spec: DLRMSpec
    world: int
    global_batch: int
    storage_budget_bytes: float
    gather_bytes_per_s: float
    a2a_bytes_per_s: float
    allreduce_bytes_per_s: float
    train: bool = True
    # per table, the only sharding kind allowed (TorchRec's ParameterConstraints
    # sharding_types); None leaves the planner free
    fixed_kinds: tuple[str | None, ...] | None = None
    chips_per_node: int = 1  # the scale-up domain; table-row-wise shards stay inside one
    node_bytes_per_s: float = math.inf  # per chip, a reduce-scatter inside the node

    @property
    def local_batch(self) -> float:
        return self.global_batch / self.world


@dataclass(frozen=True)
class TableShard:
    """One shard of table ``table``: ``rows``×``cols`` on chip ``rank``."""

    table: int
    kind: str
    rank: int
    rows: int
    cols: int
    lookups: float  # per step
    bags: float  # pooled outputs per step
    storage_bytes: float
    forward_bytes: float  # HBM traffic per step
    backward_bytes: float
    perf_s: float  # the estimator's time per step (compute and its share of communication)


@dataclass(frozen=True)
class ShardingOption:
    """One way to shard a table: ``count`` identical shards (rank -1 until placed)."""

    table: int
    kind: str
    shard: TableShard
    count: int

    @property
    def perf_s(self) -> float:
        return self.shard.perf_s * self.count

    @property
    def max_shard_perf_s(self) -> float:
        return self.shard.perf_s


@dataclass(frozen=True)
class ShardingPlan:
    """Every table's sharding kind and its shards' placement, with per-chip totals."""

    world: int
    options: tuple[ShardingOption, ...]  # per table
    ranks: tuple[tuple[int, ...], ...]  # per table, the chip of each shard
    proposer: str

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(o.kind for o in self.options)

    @cached_property
    def shards(self) -> tuple[TableShard, ...]:
        return tuple(replace(o.shard, rank=r) for o, ranks in zip(self.options, self.ranks,
                                                                  strict=True) for r in ranks)

    def on_rank(self, rank: int) -> tuple[TableShard, ...]:
        return tuple(replace(o.shard, rank=rank) for o, ranks in
                     zip(self.options, self.ranks, strict=True) for r in ranks if r == rank)

    def storage_bytes(self) -> np.ndarray:
        return self.per_rank(lambda s: s.storage_bytes)

    def forward_bytes(self) -> np.ndarray:
        return self.per_rank(lambda s: s.forward_bytes)

    def backward_bytes(self) -> np.ndarray:
        return self.per_rank(lambda s: s.backward_bytes)

    def per_rank(self, key: Callable[[TableShard], float]) -> np.ndarray:
        """Per chip, the sum of ``key`` over the shards it holds."""
        out = np.zeros(self.world)
        for opt, ranks in zip(self.options, self.ranks, strict=True):
            if len(ranks) == self.world:
                out += key(opt.shard)
            else:
                np.add.at(out, list(ranks), key(opt.shard))
        return out


def _shard(p: PlanInputs, table: int, kind: str, rows: int, cols: int, lookups: float,
           bags: float, comm_bytes: float, extra_storage: float = 0.0) -> TableShard:
    spec = p.spec
    traffic = shard_traffic(spec, rows, cols, bags, lookups, p.train)
    storage = rows * (cols * ops.dtype_bytes(spec.emb_dtype)
                      + (spec.state_bytes_per_row(cols) if p.train else 0.0)) + extra_storage
    seconds = (traffic.forward_bytes + traffic.backward_bytes) / p.gather_bytes_per_s
    return TableShard(table, kind, -1, rows, cols, lookups, bags, storage,
                      traffic.forward_bytes, traffic.backward_bytes,
                      seconds + comm_bytes / p.a2a_bytes_per_s)


def enumerate_options(p: PlanInputs, table: int) -> list[ShardingOption]:
    """Every option of one table whose shards fit the per-chip storage budget.

    Communication per shard as TorchRec's perf estimator counts it: the ids in, the pooled
    vectors out (and their gradients back in training); a data-parallel table instead
    all-reduces its whole gradient."""
    spec, n, big_b = p.spec, p.world, p.global_batch
    rows, dim, hot = spec.table_rows[table], spec.embedding_dim, spec.pooling[table]
    wire = ops.dtype_bytes(spec.dtype) * (2 if p.train else 1)
    opts = [ShardingOption(table, "table_wise", _shard(
        p, table, "table_wise", rows, dim, big_b * hot, big_b,
        big_b * (hot * INDEX_BYTES + dim * wire)), 1)]
    k = 2
    while k <= n and dim // k >= MIN_COLUMN_SHARD and dim % k == 0:
        shard = _shard(p, table, "column_wise", rows, dim // k, big_b * hot, big_b,
                       big_b * (hot * INDEX_BYTES + dim // k * wire))
        opts.append(ShardingOption(table, "column_wise", shard, k))
        k *= 2
    if n > 1:
        shard = _shard(p, table, "row_wise", math.ceil(rows / n), dim, big_b * hot / n, big_b,
                       big_b * (hot / n * INDEX_BYTES + dim * wire))
        opts.append(ShardingOption(table, "row_wise", shard, n))
        local = p.chips_per_node
        if 1 < local < n:
            # rows split over one node's chips: partial sums reduce-scattered over the links,
            # then each chip sends its 1/local of the bags' vectors over the network
            shard = _shard(p, table, "table_row_wise", math.ceil(rows / local), dim,
                           big_b * hot / local, big_b,
                           big_b * (hot / local * INDEX_BYTES + dim * wire / local))
            shard = replace(shard, perf_s=shard.perf_s + big_b * dim * wire / p.node_bytes_per_s)
            opts.append(ShardingOption(table, "table_row_wise", shard, local))
        grad_bytes = rows * dim * FP32_BYTES if p.train else 0.0
        allreduce_s = 2 * (n - 1) / n * grad_bytes / p.allreduce_bytes_per_s
        replica = _shard(p, table, "data_parallel", rows, dim, p.local_batch * hot,
                         p.local_batch, 0.0, extra_storage=grad_bytes)
        if p.train:  # the whole replica is updated from the all-reduced dense gradient
            replica = replace(replica, backward_bytes=replica.backward_bytes + 2 * grad_bytes,
                              perf_s=replica.perf_s + allreduce_s
                              + 2 * grad_bytes / p.gather_bytes_per_s)
        opts.append(ShardingOption(table, "data_parallel", replica, n))
    fixed = p.fixed_kinds[table] if p.fixed_kinds else None
    return [o for o in opts if o.shard.storage_bytes <= p.storage_budget_bytes
            and (fixed is None or o.kind == fixed)]


def partition(p: PlanInputs, options: list[ShardingOption]) -> tuple[tuple[int, ...], ...] | None:
    """TorchRec's GreedyPerfPartitioner: options by descending time; row-wise and
    data-parallel shards one per chip, table-row-wise shards one per chip of the least busy
    node, each table- or column-wise shard onto the chip with the least time so far that
    has room (column shards of a table on distinct chips). Returns each option's chips (in
    the order given), or None when a shard fits nowhere."""
    perf, storage = np.zeros(p.world), np.zeros(p.world)
    budget = p.storage_budget_bytes
    placed: dict[int, tuple[int, ...]] = {}
    order = sorted(range(len(options)), key=lambda i: (-options[i].perf_s, options[i].table))
    for i in order:
        opt = options[i]
        need = opt.shard.storage_bytes
        room = storage + need <= budget
        if opt.kind in ("row_wise", "data_parallel"):
            if not room.all():
                return None
            targets = tuple(range(p.world))
        elif opt.kind == "table_row_wise":
            targets = _least_busy_node(p, perf, room)
        else:  # the least busy chips with room, distinct for a table's column shards
            free = np.flatnonzero(room)
            if len(free) < opt.count:
                return None
            pick = free[np.argsort(perf[free], kind="stable")[:opt.count]]
            targets = tuple(int(r) for r in pick)
        if not targets:
            return None
        idx = list(targets)
        perf[idx] += opt.shard.perf_s
        storage[idx] += need
        placed[i] = targets
    return tuple(placed[i] for i in range(len(options)))


def _least_busy_node(p: PlanInputs, perf: np.ndarray, room: np.ndarray) -> tuple[int, ...]:
    """The chips of the node whose busiest chip has the least time, among the nodes with
    room on every chip (ranks fill nodes in order); () if none has room."""
    local = p.chips_per_node
    nodes = p.world // local
    busiest = perf[:nodes * local].reshape(nodes, local).max(axis=1)
    fits = room[:nodes * local].reshape(nodes, local).all(axis=1)
    if not fits.any():
        return ()
    node = int(np.flatnonzero(fits)[np.argmin(busiest[fits])])
    return tuple(range(node * local, (node + 1) * local))


def _proposals(per_table: list[list[ShardingOption]]) -> dict[str, list[ShardingOption]]:
    """TorchRec-style proposers: each table's fastest option in total, its option with the
    fastest single shard (spreads hot tables), and uniform table-wise / row-wise plans."""
    def pick(key: Callable[[ShardingOption], float]) -> list[ShardingOption]:
        return [min(opts, key=key) for opts in per_table]

    def uniform(kind: str) -> list[ShardingOption]:
        return [next((o for o in opts if o.kind == kind), min(opts, key=lambda o: o.perf_s))
                for opts in per_table]

    return {"greedy_total": pick(lambda o: o.perf_s),
            "greedy_max_shard": pick(lambda o: (o.max_shard_perf_s, o.perf_s)),
            "table_wise": uniform("table_wise"), "row_wise": uniform("row_wise")}


def plan_sharding(p: PlanInputs, step_seconds: Callable[[ShardingPlan], float]) -> ShardingPlan:
    """The plan with the shortest ``step_seconds`` among the proposers' plans and a local
    search over the hottest tables' options; ClusterError when a table fits no chip."""
    per_table = [enumerate_options(p, t) for t in range(p.spec.tables)]
    for t, opts in enumerate(per_table):
        if not opts:
            rows = p.spec.table_rows[t]
            allowed = p.fixed_kinds[t] if p.fixed_kinds and p.fixed_kinds[t] else "any"
            raise ClusterError(
                f"table {t} (table_rows[{t}]={rows!r}, dim {p.spec.embedding_dim}) fits no chip "
                f"with sharding {allowed}: every shard exceeds the "
                f"{p.storage_budget_bytes / 1e9:.3g} GB per-chip budget for tables on "
                f"{p.world} chips; expected more chips, more memory per chip or a smaller table")
    best: tuple[float, ShardingPlan] | None = None
    for name, choice in _proposals(per_table).items():
        best = _better(p, choice, name, step_seconds, best)
    if best is None:
        raise ClusterError(
            f"the {p.spec.tables} tables ({p.spec.table_bytes / 1e9:.3g} GB plus optimizer "
            f"state) fit no placement on {p.world} chips of {p.storage_budget_bytes / 1e9:.3g}"
            " GB for tables; expected more chips or more memory per chip")
    hottest = sorted(range(p.spec.tables),
                     key=lambda t: -min(o.perf_s for o in per_table[t]))[:LOCAL_SEARCH_TABLES]
    for t in hottest:
        current = list(best[1].options)
        for alt in per_table[t]:
            if alt is current[t]:
                continue
            trial = [*current[:t], alt, *current[t + 1:]]
            best = _better(p, trial, best[1].proposer + "+local", step_seconds, best)
    assert best is not None
    return best[1]


def _better(p: PlanInputs, choice: list[ShardingOption], name: str,
            step_seconds: Callable[[ShardingPlan], float],
            best: tuple[float, ShardingPlan] | None) -> tuple[float, ShardingPlan] | None:
    ranks = partition(p, choice)
    if ranks is None:
        return best
    plan = ShardingPlan(p.world, tuple(choice), ranks, name)
    seconds = step_seconds(plan)
    return (seconds, plan) if best is None or seconds < best[0] else best
