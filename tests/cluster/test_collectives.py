"""Collectives: hand-derived alpha-beta times, placement, the single-node engine, and the
published inter-node measurements (cluster/nccl_a100.csv)."""

from dataclasses import replace

import pytest

from chipforge.arch import load_chip
from chipforge.cluster import (
    NET_EFFICIENCY,
    System,
    collective_time,
    fit_net_efficiency,
    group_layout,
    nccl_validation,
    nccl_validation_markdown,
    system,
)
from chipforge.errors import ClusterError
from chipforge.machine import DEFAULT
from chipforge.ops import all_gather, all_reduce
from chipforge.perf import estimate

GIB = 2**30
# NCCL's Simple ring step over NVLink in units of its LL step (tuning.cc: 3.4 / 0.6 us)
SIMPLE_HOP_S = DEFAULT.link_latency_s * 3.4 / 0.6


def _ring_of(n: int) -> System:
    """n TPU v5e chips in one ring of their links (4 links: 2 to each neighbour)."""
    return System(name="ring", chip=load_chip("tpu-v5e"), chips=n, chips_per_node=n,
                  topology="ring", torus_dims=(n,), network=None, price_per_chip_usd=1.0,
                  power_per_chip_w=1.0, source="test")


def test_ring_all_reduce_is_the_textbook_alpha_beta():
    n, size = 8, 256 * 2**20
    # a bidirectional ring sends on 4 links of 50 GB/s each way at the link efficiency
    bandwidth = 4 * 100e9 / 2 * DEFAULT.link_efficiency
    expected = (DEFAULT.launch_overhead_s + 2 * (n - 1) * SIMPLE_HOP_S
                + 2 * (n - 1) / n * size / bandwidth)
    t = collective_time(_ring_of(n), "all_reduce", size, n)
    assert t.seconds == pytest.approx(expected, rel=1e-9)
    gather = collective_time(_ring_of(n), "all_gather", size, n)
    assert gather.seconds == pytest.approx(DEFAULT.launch_overhead_s + (n - 1) * SIMPLE_HOP_S
                                           + (n - 1) / n * size / bandwidth, rel=1e-9)


def test_torus_all_reduce_runs_one_dimension_after_the_other():
    s, size = system("tpu-v5e", 256), GIB
    per_dim = 2 * 1 * 100e9 / 2 * DEFAULT.link_efficiency  # 1 link to each of 2 neighbours
    expected = (DEFAULT.launch_overhead_s + 2 * 2 * 15 * SIMPLE_HOP_S
                + 2 * 15 / 16 * size / per_dim + 2 * 15 / 16 * size / 16 / per_dim)
    t = collective_time(s, "all_reduce", size, 256)
    assert t.seconds == pytest.approx(expected, rel=1e-9)
    # a group along the second dimension (stride 16) rings on that dimension alone
    column = collective_time(s, "all_reduce", size, 16, stride=16)
    assert column.seconds == pytest.approx(DEFAULT.launch_overhead_s + 2 * 15 * SIMPLE_HOP_S
                                           + 2 * 15 / 16 * size / per_dim, rel=1e-9)


def test_a_part_of_a_torus_dimension_is_a_line_at_half_the_rate():
    s, size = system("tpu-v5e", 256), GIB
    # 8 of 16 chips in a row: no wrap-around link, so the ring returns the other way
    line = 2 * 1 * 100e9 / 2 * DEFAULT.link_efficiency / 2
    t = collective_time(s, "all_reduce", size, 8)
    assert t.seconds == pytest.approx(DEFAULT.launch_overhead_s + 2 * 7 * SIMPLE_HOP_S
                                      + 2 * 7 / 8 * size / line, rel=1e-9)


def test_placement_follows_the_stride():
    s = system("a100-sxm", 64)
    assert group_layout(s, 8, 1) == (8, 1)
    assert group_layout(s, 4, 2) == (4, 1)
    assert group_layout(s, 16, 1) == (8, 2)
    assert group_layout(s, 4, 8) == (1, 4)
    assert group_layout(s, 8, 4) == (2, 4)


def test_a_group_in_one_node_is_the_engines_nccl_model():
    s = system("a100-sxm", 64)
    elements = 32 * 2**20
    t = collective_time(s, "all_reduce", 2 * elements, 8)
    assert t.nodes_spanned == 1
    assert t.seconds == estimate(all_reduce(elements, 8, "bf16"), s.chip).seconds
    strided = collective_time(s, "all_gather", 2 * elements, 4, stride=2)
    assert strided.seconds == estimate(all_gather(elements, 4, "bf16"), s.chip).seconds


def test_a_group_across_nodes_uses_the_network():
    s = system("a100-sxm", 16)
    # one rank per node: each rank's one HDR NIC (25 GB/s) at the network's efficiency
    t = collective_time(s, "all_reduce", GIB, 2, stride=8)
    assert t.nodes_spanned == 2
    assert t.bus_bytes_per_s == pytest.approx(25e9 * NET_EFFICIENCY, rel=0.01)
    send = collective_time(s, "send_recv", GIB, 2, stride=8)
    assert send.seconds == pytest.approx(GIB / (25e9 * NET_EFFICIENCY), rel=0.01)
    inside = collective_time(s, "send_recv", GIB, 2, stride=1)
    assert inside.seconds == pytest.approx(GIB / (300e9 * DEFAULT.link_efficiency), rel=0.01)


def test_all_to_all_across_nodes_is_bound_by_the_nics():
    s, size = system("a100-sxm", 16), GIB
    # half of each rank's bytes go to the other node over its own NIC
    t = collective_time(s, "all_to_all", size, 16)
    assert t.seconds == pytest.approx(size / 2 / (25e9 * NET_EFFICIENCY), rel=0.01)


def test_oversubscription_slows_groups_that_leave_a_leaf():
    s = system("a100-sxm", 8 * 64)
    net = replace(s.network, oversubscription=2.0)
    slim = replace(s, network=net)
    # 64 nodes: beyond a leaf of 40 x 2/3 = 26 nodes; the NIC share halves
    wide = collective_time(s, "all_reduce", GIB, 64, stride=8).bus_bytes_per_s
    assert collective_time(slim, "all_reduce", GIB, 64, stride=8).bus_bytes_per_s \
        == pytest.approx(wide / 2, rel=0.02)
    # 16 nodes stay within one leaf
    assert collective_time(slim, "all_reduce", GIB, 16, stride=8).seconds \
        == collective_time(s, "all_reduce", GIB, 16, stride=8).seconds


def test_nvls_tree_on_switches_that_reduce():
    t = collective_time(system("h100-sxm", 16), "all_reduce", GIB, 16)
    assert t.algorithm == "nvls tree"
    assert collective_time(system("h100-sxm", 16), "all_reduce", GIB, 16,
                           itemsize=1).algorithm != "nvls tree"


def test_the_fitted_network_efficiency_is_the_shipped_one():
    assert fit_net_efficiency() == pytest.approx(NET_EFFICIENCY, abs=0.001)


def test_published_inter_node_measurements():
    rows = {r.role: r for r in nccl_validation()}
    # errors as measured (modelled / measured - 1); see docs/validation.md
    assert abs(rows["fit"].error) < 0.005
    assert abs(rows["in node"].error) < 0.035  # Vidur 1 x 8, 64 MiB: -3.0%
    held = rows["held out"]  # DGX A100 2 x 8: -15.1% (the in-node chain bounds the tree)
    assert held.error == pytest.approx(-0.151, abs=0.005)
    assert held.algorithm == "tree Simple"
    assert rows["excluded"].modelled_busbw_gb_s is None
    table = nccl_validation_markdown()
    assert "| held out: DGX A100, 8 HDR NICs per node |" in table
    assert "Median absolute error over the 2 rows not fitted on: 9.0%." in table


@pytest.mark.parametrize(("args", "message"), [
    (("broadcast", 1e6, 8), "collective kind 'broadcast'; expected one of all_reduce, "
                            "all_gather, reduce_scatter, all_to_all, send_recv"),
    (("all_reduce", -1.0, 8), "nbytes: -1.0; expected a finite number of bytes >= 0"),
    (("all_reduce", float("nan"), 8), "nbytes: nan; expected a finite number"),
    (("all_reduce", 1e6, 0), "group: 0; expected a whole number >= 1"),
    (("all_reduce", 1e6, 32), "group 32 x stride 1 = 32 ranks; expected at most the "
                              "system's 16 chips"),
])
def test_bad_collective_input_is_one_clear_error(args, message):
    with pytest.raises(ClusterError) as err:
        collective_time(system("a100-sxm", 16), *args)
    assert message in str(err.value)


def test_numpy_counts_are_whole_numbers():
    import numpy as np

    s = system("a100-sxm", np.int64(16))
    assert collective_time(s, "all_reduce", np.float64(1e6), np.int64(8)).seconds \
        == collective_time(s, "all_reduce", 1e6, 8).seconds


def test_trivial_collectives_take_no_time():
    s = system("a100-sxm", 16)
    assert collective_time(s, "all_reduce", 1e9, 1).seconds == 0.0
    assert collective_time(s, "all_gather", 0, 8).seconds == 0.0
    with pytest.raises(ClusterError, match="itemsize: 3; expected one of 1, 2, 4 bytes"):
        collective_time(s, "all_reduce", 1e6, 8, itemsize=3)
