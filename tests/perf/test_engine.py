"""The performance engine against physics and hand-derived values."""

from __future__ import annotations

import math

import pytest

from chipforge import load_chip
from chipforge.arch import catalog_names
from chipforge.ops import GraphBuilder, attention, elementwise, matmul, rmsnorm
from chipforge.perf import BOUNDS, DEFAULT, estimate, search_matmul
from chipforge.perf._engine import _estimate_op
from chipforge.perf._matmul import _search_gpu, _search_systolic, matrix_unit
from chipforge.perf.systolic import systolic_compute_cycles

CHIPS = catalog_names()


@pytest.mark.parametrize("chip", CHIPS)
def test_big_gemm_is_compute_bound_and_never_beats_peak(chip):
    spec = load_chip(chip)
    op = matmul(8192, 8192, 8192, "bf16")
    est = estimate(op, spec)
    assert est.flops == 2 * 8192**3
    # physics: no chip runs faster than its datasheet peak
    assert est.seconds >= op.flops / spec.peak_flops("bf16")
    assert 0.5 < est.utilization <= 1.0
    assert est.bound in ("compute", "memory")


@pytest.mark.parametrize("chip", CHIPS)
def test_gemv_is_memory_bound_and_never_beats_bandwidth(chip):
    spec = load_chip(chip)
    op = matmul(1, 16384, 16384, "bf16")  # 512 MiB of weights: no on-chip buffer holds it
    est = estimate(op, spec)
    weights_bytes = 16384 * 16384 * 2
    assert est.hbm_bytes >= weights_bytes
    assert est.seconds >= weights_bytes / spec.memory.bandwidth_bytes_per_s
    if spec.cores.matrix_units[0].kind == "tensor_core":
        assert est.bound == "memory"
    # a systolic array may instead be bound by reloading its weights: R cycles per
    # R x C tile that serves a single row (the fold model), which is also "compute"


def test_tiny_op_is_overhead_bound():
    est = estimate(matmul(16, 16, 16), "h100-sxm")
    assert est.bound == "overhead"
    fixed = DEFAULT.launch_overhead_s + DEFAULT.pipeline_latency_s
    assert fixed < est.seconds < 1.02 * fixed


def test_graph_estimate_is_sum_of_ops_with_counts():
    ops = [(matmul(4096, 4096, 4096), 3), (rmsnorm(4096, 4096), 2),
           (attention(2, 1024, 1024, 32, 8, 128), 1), (elementwise(1 << 20, "silu"), 5)]
    b = GraphBuilder("g")
    for op, n in ops:
        b.add(op, n)
    graph = b.build(items=4096, item_unit="tokens")
    total = estimate(graph, "forge-t1")
    parts = [estimate(op, "forge-t1") for op, _ in ops]
    counts = [n for _, n in ops]
    assert total.seconds == pytest.approx(sum(p.seconds * n for p, n in zip(parts, counts)))
    assert total.flops == pytest.approx(sum(op.flops * n for op, n in ops))
    assert total.energy_j == pytest.approx(sum(p.energy_j * n for p, n in zip(parts, counts)))
    assert [p.count for p in total.breakdown] == [n for _, n in ops]
    assert total.bound in BOUNDS
    assert sum(total.bound_s) == pytest.approx(total.seconds)


def test_identical_ops_are_evaluated_once():
    _estimate_op.cache_clear()
    spec = load_chip("h100-sxm")
    b = GraphBuilder("repeats")
    for _ in range(10):
        b.add(matmul(1024, 1024, 1024, name="same shape, other label"))
    estimate(b.build(), spec)
    info = _estimate_op.cache_info()
    assert info.misses == 1 and info.hits == 9


@pytest.mark.parametrize("chip,shape", [("a100-sxm", (300, 5000, 700)),
                                        ("forge-t1", (1000, 3000, 2000)),
                                        ("forge-i1", (64, 8192, 8192))])
def test_search_returns_the_best_candidate(chip, shape):
    spec = load_chip(chip)
    m, n, k = shape
    mu = matrix_unit(spec, "bf16")
    gen = _search_gpu if mu.kind == "tensor_core" else _search_systolic
    candidates = list(gen(spec, mu, m, n, k, 1, "bf16", 2.0, DEFAULT))
    best = search_matmul(spec, m, n, k, 1, "bf16", 2.0, DEFAULT)
    assert len(candidates) > 3
    assert best.time_s(spec, DEFAULT) == min(c.time_s(spec, DEFAULT) for c in candidates)


def test_systolic_compute_time_follows_the_scalesim_fold_model():
    """One core of forge-i1 busy: the compute time is the SCALE-Sim-matched fold count."""
    spec = load_chip("forge-i1")
    mu = spec.cores.matrix_units[0]
    m, n, k = 4096, 128 * spec.cores.count, 4096  # n splits evenly, one array-width per core
    cost = search_matmul(spec, m, n, k, 1, "int8", 1.0, DEFAULT)
    hz = spec.clock_hz * DEFAULT.clock_fraction
    expected = min(systolic_compute_cycles(df, mu.rows, mu.cols, m, 128, k)
                   for df in mu.dataflows) / hz
    assert "systolic" in cost.mapping
    assert cost.compute_s <= expected * 1.0001  # the search may also split m instead


def test_fp8_runs_twice_as_fast_as_bf16_on_forge_t1_when_compute_bound():
    bf16 = estimate(matmul(8192, 8192, 8192, "bf16"), "forge-t1")
    fp8 = estimate(matmul(8192, 8192, 8192, "fp8_e4m3"), "forge-t1")
    assert bf16.bound == "compute"
    assert 1.6 < bf16.seconds / fp8.seconds <= 2.0


def test_average_power_of_a_dense_gemm_is_near_tdp():
    """First-order energy: a saturating GEMM draws on the order of the TDP (A100: 400 W;
    nvidia-smi shows 300-400 W under cuBLAS GEMMs), not 10x more or less."""
    spec = load_chip("a100-sxm")
    est = estimate(matmul(8192, 8192, 8192), spec)
    assert 0.3 * spec.tdp_w < est.avg_power_w < 1.2 * spec.tdp_w


def test_unsupported_dtype_is_a_clear_error():
    from chipforge.errors import ChipforgeError

    with pytest.raises(ChipforgeError, match=r"chip 'a100-sxm' has no matrix unit for dtype "
                                             r"'fp8_e4m3'; it supports tf32, bf16, fp16, int8"):
        estimate(matmul(128, 128, 128, "fp8_e4m3"), "a100-sxm")


def test_h200_big_gemm_matches_the_measured_figure():
    """Held out (nothing is fitted on Hopper): an 8192^3 bf16 GEMM ran at ~788 TFLOP/s on an
    H200 through PyTorch (shared/notes, measured on the lent device machine)."""
    est = estimate(matmul(8192, 8192, 8192), "h200-sxm")
    assert math.isclose(est.achieved_flops, 788e12, rel_tol=0.10)
