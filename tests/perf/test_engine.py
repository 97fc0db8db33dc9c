"""The performance engine against physics and hand-derived values."""

from __future__ import annotations

import math

import pytest

from chipforge import load_chip
from chipforge.arch import catalog_names
from chipforge.machine import DRAM_LATENCY_S
from chipforge.ops import GraphBuilder, attention, elementwise, matmul, rmsnorm
from chipforge.perf import BOUNDS, DEFAULT, estimate, search_matmul
from chipforge.perf._engine import _estimate_op
from chipforge.perf._matmul import GPU_TMA_STAGES, _search_gpu, _search_systolic, matrix_unit
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
    # one round of CTAs (its prologue and epilogue are in the kernel's fixed cost) and one
    # k slice, bound by the pipeline's latency: a DRAM latency over the TMA stages
    fixed = DEFAULT.launch_overhead_s + DRAM_LATENCY_S / GPU_TMA_STAGES
    assert est.seconds == pytest.approx(fixed, rel=0.01)


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
    """When one SRAM tile covers a worker's GEMM, its array cycles are SCALE-Sim's fold
    count (plus the 1 SCALE-Sim drops by reporting a 0-based index)."""
    spec = load_chip("forge-i1")
    mu = spec.cores.matrix_units[0]
    m, n, k = 256, 128 * spec.cores.count, 128  # one array-width of n per array
    cost = search_matmul(spec, m, n, k, 1, "int8", 1.0, DEFAULT)
    hz = spec.clock_hz * DEFAULT.clock_fraction
    assert cost.tile[0] >= m / cost.partition[1]  # one m tile per worker
    expected = systolic_compute_cycles(cost.dataflow, mu.rows, mu.cols,
                                       math.ceil(m / cost.partition[1]),
                                       math.ceil(n / cost.partition[2]), k) + 1
    assert cost.compute_s * hz == pytest.approx(expected)


def test_tiled_cycles_pay_fill_and_drain_per_tile():
    """Hand-derived: ws, 128x128 array, m=1024 in 4 tiles of 256, n=k=128:
    1 fold x (4 x (2*128 + 128 - 2) + 1024) = 2552 cycles, vs 1406 untiled."""
    from chipforge.perf._matmul import SramTile, tiled_systolic_cycles

    tile = SramTile(256, 128, 128, "k", 1, 4, 0.0, 0.0)
    assert tiled_systolic_cycles("ws", 128, 128, 1024, 128, 128, tile) == 2552
    assert systolic_compute_cycles("ws", 128, 128, 1024, 128, 128) + 1 == 2 * 128 + 128 + 1022


def test_fp8_runs_twice_as_fast_as_bf16_on_forge_t1():
    """fp8 packs 2 MACs per PE per cycle (catalog) and moves half the bytes."""
    bf16 = estimate(matmul(4096, 4096, 4096, "bf16"), "forge-t1")
    fp8 = estimate(matmul(4096, 4096, 4096, "fp8_e4m3"), "forge-t1")
    assert 1.8 < bf16.seconds / fp8.seconds <= 2.05


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


def test_tile_end_count_equals_the_step_by_step_count():
    """The buffer chain counts the steps that end an output tile in closed form (a 70B
    step on forge-t1 has GEMMs of millions of steps: the loop took 20 s); oracle: the
    step-by-step count."""
    from chipforge.perf._kernel_model import _count_tile_ends

    for steps in (3, 4, 7, 64, 1001, 4096):
        for k_tiles in (1, 2, 3, 5, 8, 33):
            sources = range((steps - 1) % 2, steps - 2, 2)
            brute = sum(1 for j in sources if j % k_tiles == k_tiles - 1)
            assert _count_tile_ends(sources, k_tiles) == brute, (steps, k_tiles)
