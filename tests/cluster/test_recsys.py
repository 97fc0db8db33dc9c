"""DLRM at cluster scale: hand-derived all-to-all bytes, a placement whose optimum is known,
memory refusals, the QPS -> chips arithmetic against a queue simulation, and the MLPerf
Training v3.0 DLRM-DCNv2 comparison with its measured error pinned."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from chipforge.cluster import (
    DLRMSpec,
    batched_wait_quantile_s,
    collective_time,
    dlrm_inference_plan,
    dlrm_spec,
    dlrm_train_plan,
    recsys_validation,
    recsys_validation_markdown,
    system,
)
from chipforge.errors import ClusterError


def _toy(pooling: tuple[int, ...], rows: int = 10_000_000, dim: int = 64) -> DLRMSpec:
    return DLRMSpec("toy", table_rows=(rows,) * len(pooling), pooling=pooling,
                    embedding_dim=dim, bottom_mlp=(64, dim), top_mlp=(64, 1),
                    interaction="dot", optimizer="rowwise_adagrad")


def test_table_wise_all_to_all_bytes_are_hand_derived() -> None:
    # 4 tables with 1..4 lookups, one table per chip of 4, batch B, bf16 on the wire.
    # pooled: a chip sends its table's vectors for all B samples (B·D·2) and receives its
    # B/4 samples' vectors of all 4 tables (B/4·4·D·2): both B·D·2.
    # ids: a chip sends B/4·(1+2+3+4)·8 = 20·B and receives its table's B·hot·8, at most 32·B.
    b, dim = 4096, 64
    plan = dlrm_train_plan(_toy((1, 2, 3, 4), dim=dim), "h100-sxm", chips=4, global_batch=b,
                           sharding=["table_wise"] * 4)
    assert sorted(s.rank for s in plan.sharding.shards) == [0, 1, 2, 3]
    assert plan.step.pooled_bytes == b * dim * 2
    assert plan.step.ids_bytes == 32 * b


def test_table_row_wise_bytes_are_hand_derived() -> None:
    # one table split over the 8 chips of the first of 2 nodes (16 chips): each shard
    # reduce-scatters B·D·2 bytes of partial sums inside the node, then sends its B/8 bags
    # (B/8·D·2) over the network; every chip receives its B/16 samples' vector (B/16·D·2)
    b, dim = 16 * 512, 64
    plan = dlrm_train_plan(_toy((4,), dim=dim), "h100-sxm", chips=16, global_batch=b,
                           sharding=["table_row_wise"])
    assert sorted(s.rank for s in plan.sharding.shards) == list(range(8))
    assert plan.step.pooled_bytes == b // 8 * dim * 2
    assert plan.step.node_collective_s > 0


def test_replica_sync_is_hand_derived() -> None:
    # 2 copies of one row-wise table over 8 chips each (16 chips): each shard holds R/8 rows
    # and sees B/2/8 lookups per copy; the copies together touch R/8·(1 − e^(−2·lookups·8/R))
    # of its rows, whose fp32 gradients are all-reduced between the 2 copies (8 ranks apart)
    rows, dim, b = 1_000_000, 64, 16 * 512
    sys16 = system("h100-sxm", 16)
    plan = dlrm_train_plan(_toy((1,), rows=rows, dim=dim), sys16, global_batch=b,
                           sharding=["row_wise"], replicas=2)
    assert plan.replicas == 2 and plan.sharding.world == 8
    shard_rows, lookups = rows / 8, b / 2 / 8
    touched = shard_rows * -math.expm1(-2 * lookups / shard_rows)
    expected = collective_time(sys16, "all_reduce", touched * dim * 4, 2, stride=8).seconds
    assert plan.step.replica_sync_s == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ClusterError, match="replicas=3"):
        dlrm_train_plan(_toy((1,)), sys16, global_batch=b, replicas=3)


def test_tables_that_fit_no_placement_together_are_refused() -> None:
    # each 30 GB table fits one chip's 68 GB budget, but 5 of them pinned table-wise on 2
    # chips need 150 GB of the 136 GB both hold
    spec = DLRMSpec("five", table_rows=(58_000_000,) * 5, pooling=(1,) * 5,
                    optimizer="sgd")
    with pytest.raises(ClusterError, match="fit no placement on 2 chips"):
        dlrm_train_plan(spec, "h100-sxm", chips=2, global_batch=64,
                        sharding=["table_wise"] * 5)


def test_greedy_placement_finds_the_known_optimum() -> None:
    # 8 table-wise tables with 8..1 lookups on 4 chips: the balanced optimum pairs
    # (8,1), (7,2), (6,3), (5,4): 9 lookups and 2 tables per chip, so every chip reads
    # B·9·(8 + 4·D) bytes of ids and fp32 rows and writes 2·B·D·2 bytes of pooled vectors.
    b, dim = 1024, 64
    plan = dlrm_train_plan(_toy((8, 7, 6, 5, 4, 3, 2, 1), dim=dim), "h100-sxm", chips=4,
                           global_batch=b, sharding=["table_wise"] * 8)
    per_chip = plan.sharding.forward_bytes()
    expected = b * 9 * (8 + 4 * dim) + 2 * b * dim * 2
    assert per_chip == pytest.approx((expected,) * 4, rel=1e-12)
    pairs = sorted(sorted(plan.model.pooling[s.table] for s in plan.sharding.on_rank(r))
                   for r in range(4))
    assert pairs == [[1, 8], [2, 7], [3, 6], [4, 5]]


def test_a_table_that_fits_no_chip_is_refused_clearly() -> None:
    # 400M rows x 128 fp32 = 205 GB: no 80 GB chip holds it whole
    huge = DLRMSpec("huge", table_rows=(400_000_000, 10), pooling=(1, 1))
    with pytest.raises(ClusterError, match=r"table 0 \(table_rows\[0\]=400000000.*fits no chip"):
        dlrm_train_plan(huge, "h100-sxm", chips=8, global_batch=1024,
                        sharding=["table_wise", None])
    # row-wise over 8 chips it fits (26 GB of rows and state per chip)
    plan = dlrm_train_plan(huge, "h100-sxm", chips=8, global_batch=1024)
    assert plan.sharding.kinds[0] in ("row_wise", "column_wise")
    assert plan.memory_per_chip_bytes < plan.memory_capacity_bytes
    with pytest.raises(ClusterError, match="fits no chip"):
        dlrm_train_plan(huge, "h100-sxm", chips=2, global_batch=1024)


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(ClusterError, match=r"global_batch=8 leaves some of the 16 chips"):
        dlrm_train_plan("mlperf-dlrm-dcnv2", "h100-sxm", chips=16, global_batch=8)
    with pytest.raises(ClusterError, match=r"qps=-1"):
        dlrm_inference_plan("mlperf-dlrm-dcnv2", "h100-sxm", qps=-1, p99_s=0.01)
    with pytest.raises(ClusterError, match=r"pooling has 1 entries"):
        DLRMSpec("bad", table_rows=(10, 10), pooling=(1,))
    with pytest.raises(ClusterError, match=r"sharding\[0\]='diagonal'"):
        dlrm_train_plan(_toy((1,)), "h100-sxm", chips=2, global_batch=64,
                        sharding=["diagonal"])


def _simulated_wait_p99(servers: int, qps: float, batch: int, service_s: float,
                        n: int = 60_000, seed: int = 1) -> float:
    """Kiefer-Wolfowitz recursion for batches of ``batch`` Poisson arrivals (Erlang gaps)
    served in ``service_s`` by the first free of ``servers``."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.gamma(batch, 1 / qps, n))
    free = [0.0] * servers
    waits = np.empty(n)
    for i, t in enumerate(arrivals):
        start = max(t, heapq.heappop(free))
        waits[i] = start - t
        heapq.heappush(free, start + service_s)
    return float(np.quantile(waits[n // 10:], 0.99))


@pytest.mark.parametrize(("servers", "batch", "load"), [(1, 1, 0.8), (4, 1, 0.9), (8, 4, 0.9)])
def test_queue_p99_matches_a_simulation(servers: int, batch: int, load: float) -> None:
    # the Allen-Cunneen GI/D/c tail against a direct simulation; 25% is the accuracy the
    # approximation is known for at these loads (Whitt 1993), set before running
    service = 1e-3
    qps = load * servers * batch / service
    model = batched_wait_quantile_s(servers, qps, batch, service)
    assert model == pytest.approx(_simulated_wait_p99(servers, qps, batch, service), rel=0.25)


def test_qps_to_chips_arithmetic() -> None:
    spec = dlrm_spec("mlperf-dlrm-dcnv2", emb_dtype="fp16")
    plan = dlrm_inference_plan(spec, "h100-sxm", qps=2e4, p99_s=0.05, items_per_query=64)
    # 26 tables of 204M rows x 128 fp16 = 52 GB: one H100's 68 GB budget holds them
    assert plan.chips_per_replica == 1
    point = next(p for p in plan.curve if p.batch_queries == plan.batch_queries)
    assert plan.chips == point.chips == plan.replicas * plan.chips_per_replica
    # the replicas must carry the load (utilization < 1) and one fewer would not meet p99
    offered = plan.qps / plan.batch_queries * plan.service_s
    assert plan.replicas > offered
    assert plan.utilization == pytest.approx(offered / plan.replicas)
    assert plan.p99_latency_s <= 0.05
    assert plan.samples_per_s_per_chip == pytest.approx(2e4 * 64 / plan.chips)
    assert all(p.chips is None or p.chips >= plan.chips for p in plan.curve)


def test_a100_tables_need_two_chips_per_replica() -> None:
    # 104.6 GB of fp32 tables cannot sit in one 80 GB A100 (68 GB budget): two per replica
    plan = dlrm_inference_plan("mlperf-dlrm-dcnv2", "a100-sxm", qps=1e4, p99_s=0.1,
                               items_per_query=16)
    assert plan.chips_per_replica == 2
    assert plan.chips % 2 == 0


# Measured errors of the model against MLPerf Training v3.0 DLRM-DCNv2 (pinned: a change to
# the model that moves them must update these and docs/validation.md). Single-node rows are
# the validation; the multi-node rows moved from -43%/-48% to these when the table-row-wise
# option was added (docs/cluster.md), so they are no longer a blind hold-out.
PINNED = {  # system: (training-throughput error, time-to-train error)
    "1x NVIDIA DGX H100 (8 H100-SXM)": (0.103, -0.093),
    "Dell XE9680 (8 A100-SXM-80GB)": (0.042, -0.096),
    "8x NVIDIA DGX H100 (64 H100-SXM)": (-0.066, 0.085),
    "16x NVIDIA DGX H100 (128 H100-SXM)": (-0.049, 0.139),
}


def test_mlperf_dlrm_dcnv2_errors_are_pinned() -> None:
    rows = {r["system"]: r for r in recsys_validation()}
    assert set(rows) == set(PINNED)
    for name, (throughput, ttt) in PINNED.items():
        assert rows[name]["throughput_error"] == pytest.approx(throughput, abs=0.01), name
        assert rows[name]["ttt_error"] == pytest.approx(ttt, abs=0.01), name
    # measured figures recomputed from the logs' rows: 14.48 M and 7.73 M samples/s
    assert rows["1x NVIDIA DGX H100 (8 H100-SXM)"]["measured_samples_per_s"] == \
        pytest.approx(14.48e6, rel=2e-3)
    assert rows["Dell XE9680 (8 A100-SXM-80GB)"]["measured_ttt_min"] == \
        pytest.approx(8.412, rel=1e-3)
    assert "| 1x NVIDIA DGX H100" in recsys_validation_markdown()


def test_system_argument_is_accepted() -> None:
    sys8 = system("h100-sxm", 8)
    plan = dlrm_train_plan(_toy((2, 2)), sys8, global_batch=8 * 256)
    assert plan.chips == 8 and math.isfinite(plan.samples_per_s)
