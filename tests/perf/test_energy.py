"""The energy split an estimate carries: core, off-chip and static, against the constants."""

from __future__ import annotations

import pytest

from chipforge.arch import load_chip
from chipforge.ops import Collective, GraphBuilder, all_reduce, elementwise, matmul, rmsnorm
from chipforge.perf import Energy, estimate
from chipforge.workloads import llm_decode, load_llm_config

# a bf16 add of 2^28 elements, two inputs and one output: 1.6 GB, far above half the
# H100's 50 MB L2, so it streams from HBM; one flop per element on the vector lanes
NUMEL = 2**28
ADD = elementwise(NUMEL, "add", inputs=2, outputs=1)
ADD_BYTES = 3 * 2 * NUMEL


def test_streaming_add_splits_its_energy_as_derived_by_hand():
    """H100 (4N, node scale 0.105): core = 4.6 pJ x 8 (datapath) per vector op plus
    1.25 pJ per local-SRAM byte; off-chip = HBM3 3.4 pJ/bit; static = 0.2 x 700 W x time."""
    est = estimate(ADD, "h100-sxm")
    core_j = (NUMEL * 4.6 * 0.105 * 8 + ADD_BYTES * 1.25 * 0.105) * 1e-12
    assert est.energy.core_j == pytest.approx(core_j, rel=1e-12)
    assert est.energy.offchip_j == pytest.approx(ADD_BYTES * 8 * 3.4e-12, rel=1e-12)
    assert est.energy.static_j == pytest.approx(0.2 * 700 * est.seconds, rel=1e-12)
    assert est.energy_j == est.energy.total_j == (
        est.energy.core_j + est.energy.offchip_j + est.energy.static_j)


def test_graph_energy_parts_are_the_sums_of_the_ops_parts():
    nodes = [(matmul(4096, 4096, 4096), 3), (rmsnorm(4096, 4096), 2),
             (all_reduce(1 << 24, 8), 4), (elementwise(1 << 20, "silu"), 5)]
    b = GraphBuilder("g")
    for op, n in nodes:
        b.add(op, n)
    graph = b.build(items=4096, item_unit="tokens")
    for chip in ("forge-t1", "h100-sxm"):
        total = estimate(graph, chip)
        parts = [estimate(op, chip).energy.scaled(n) for op, n in nodes]
        for name in ("core_j", "offchip_j", "static_j"):
            assert getattr(total.energy, name) == pytest.approx(
                sum(getattr(p, name) for p in parts), rel=1e-12), (chip, name)
        assert [p.energy for p in total.breakdown] == parts
        assert total.energy_j == pytest.approx(sum(p.total_j for p in parts), rel=1e-12)


def test_offchip_part_is_dram_and_link_traffic_of_the_whole_graph():
    """What chipforge.cost treats as I/O energy: every DRAM byte the estimate counts at the
    memory's pJ/bit plus every byte the collectives put on the links at 5 pJ/bit."""
    cfg = load_llm_config("llama-3.1-70b")
    graph = llm_decode(cfg, 64, 4096, "bf16", tp=8)
    link_bytes = sum(op.wire_bytes * n for op, n in graph.nodes if isinstance(op, Collective))
    assert link_bytes > 0
    for chip, memory, pj_per_bit in (("h100-sxm", "HBM3", 3.4), ("forge-i1", "GDDR7", 6.5)):
        assert load_chip(chip).memory.kind == memory
        est = estimate(graph, chip)
        assert est.energy.offchip_j == pytest.approx(
            (est.hbm_bytes * 8 * pj_per_bit + link_bytes * 8 * 5.0) * 1e-12, rel=1e-12)


def test_energy_adds_and_scales_part_by_part():
    a, b = Energy(1.0, 2.0, 3.0), Energy(0.5, 0.25, 0.125)
    assert a + b == Energy(1.5, 2.25, 3.125)
    assert a.scaled(3) == Energy(3.0, 6.0, 9.0)
    assert a.total_j == 6.0 and Energy().total_j == 0.0
