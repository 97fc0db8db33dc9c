"""The report's limiter: the engine's "memory" resolved to DRAM or the shared buffer (L2),
checked against the roofline that the report draws."""

import pytest

from chipforge.arch import load_chip
from chipforge.machine import DEFAULT
from chipforge.ops import Graph, Matmul
from chipforge.perf import estimate
from chipforge.report._bounds import DRAM, bound_split, limiter
from chipforge.workloads import get_workload

H100 = load_chip("h100-sxm")


def _graph(op):
    return Graph("one", [(op, 1)])


def test_an_h100_gemm_whose_tiles_reread_l2_is_l2_bound_not_dram_bound():
    """512 x 4096 x 1024 bf16: A, B and C (13.6 MB) fit the L2, so DRAM moves them once
    (4.9 us at the engine's DRAM efficiency), but the 128x128 tiles re-read A once per n
    tile and B once per 2x1 cluster: 1 MiB x 32 + 8 MiB x 2 + 4 MiB = 52 MiB from L2 at
    the SMs' read rate (7.5 us), longer than the math (5.2 us) or the DRAM."""
    op = Matmul(m=512, n=4096, k=1024, dtype="bf16")
    est = estimate(op, H100)
    assert est.bound == "memory"
    dram_s = est.hbm_bytes / (H100.memory.bandwidth_bytes_per_s * DEFAULT.dram_efficiency)
    assert est.hbm_bytes == (512 * 1024 + 1024 * 4096 + 512 * 4096) * 2
    assert dram_s < est.seconds / 2  # DRAM cannot be what sets the time
    graph = _graph(op)
    assert limiter(graph, H100, est.bound, estimate(graph, H100)) == "L2"


def test_a_square_h100_gemm_is_compute_bound_with_tma_multicast():
    """4096^3 bf16 was "memory" (L2) while every CTA read its own panels; a 2-CTA cluster
    reads one operand once for both, which leaves the math as the limit."""
    op = Matmul(m=4096, n=4096, k=4096, dtype="bf16")
    est = estimate(op, H100)
    assert "cluster" in est.mapping and est.bound == "compute"
    assert limiter(_graph(op), H100, est.bound, estimate(_graph(op), H100)) == "compute"


def test_a_gemv_left_of_the_ridge_is_dram_bound():
    op = Matmul(m=1, n=4096, k=4096, dtype="bf16")
    est = estimate(op, H100)
    assert est.bound == "memory"
    assert est.flops / est.hbm_bytes < 2  # ~1 FLOP per byte: far left of the ridge
    graph = _graph(op)
    assert limiter(graph, H100, est.bound, estimate(graph, H100)) == DRAM


@pytest.mark.parametrize("chip", ["h100-sxm", "forge-i1"])
def test_the_split_adds_up_to_the_estimate(chip):
    spec = load_chip(chip)
    graph = get_workload("vit-b16-inference").graph
    est = estimate(graph, spec)
    split = bound_split(graph, spec, est)
    assert sum(split.values()) == pytest.approx(est.seconds, rel=1e-9)
    # the engine's own compute and overhead seconds are kept as they are
    assert split.get("compute", 0.0) == pytest.approx(est.bound_s[0], rel=1e-9)
    assert split.get("overhead", 0.0) == pytest.approx(est.bound_s[2], rel=1e-9)
