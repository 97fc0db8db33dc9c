"""Workload power, leakage and the TDP throttle, against hand-derived and published values."""

from __future__ import annotations

import pytest

from chipforge.arch import PROCESS_NODES, load_chip
from chipforge.cost._area import die_area
from chipforge.cost._power import (
    LEAKAGE_W_PER_MM2,
    MIN_CLOCK_FRACTION,
    THROTTLE_TOLERANCE,
    leakage_power_w,
    power_at_clock,
    workload_power,
)
from chipforge.errors import ChipforgeError
from chipforge.ops import elementwise, matmul
from chipforge.perf import DEFAULT, estimate
from chipforge.workloads import llm_decode, load_llm_config

# a bf16 add of 2^28 elements, two inputs and one output: 1.6 GB, far above half the
# H100's 50 MB L2, so it streams from HBM; one flop per element on the vector lanes
NUMEL = 2**28
ADD = elementwise(NUMEL, "add", inputs=2, outputs=1)
ADD_BYTES = 3 * 2 * NUMEL


def _h100_add_by_hand(clock_fraction: float) -> float:
    """Average power of ADD on an H100 at clock_fraction x 1.83 GHz, from the constants.

    Time: the slower of the vector lanes (132 SMs x 128 lanes x f x the sustained clock
    fraction) and HBM (3.35 TB/s x the achievable fraction), plus one launch (the shipped
    parameters, chipforge.perf.DEFAULT): HBM-bound at any clock.
    Core energy at 4N (scale 0.105): 4.6 pJ x 8 (datapath) per op and
    1.25 pJ per local-SRAM byte, x (V/V0)^2 with V/V0 = max(f/f0, 0.6). HBM3: 3.4 pJ/bit,
    unscaled. Leakage: 0.08 W/mm2 (4N) x modelled die area x V/V0.
    """
    volts = max(clock_fraction, 0.6)
    vector_s = NUMEL / (132 * 128 * 1.83e9 * clock_fraction * DEFAULT.clock_fraction)
    seconds = (max(vector_s, ADD_BYTES / (3.35e12 * DEFAULT.dram_efficiency))
               + DEFAULT.launch_overhead_s)
    core_j = (NUMEL * 4.6 * 0.105 * 8 + ADD_BYTES * 1.25 * 0.105) * 1e-12
    hbm_j = ADD_BYTES * 8 * 3.4e-12
    leakage_w = 0.08 * die_area(load_chip("h100-sxm")).total_mm2 * volts
    return (core_j * volts**2 + hbm_j) / seconds + leakage_w


def test_power_of_a_streaming_add_matches_the_hand_derivation():
    report = workload_power("h100-sxm", ADD)
    assert report.estimate.seconds == pytest.approx(
        ADD_BYTES / (3.35e12 * DEFAULT.dram_efficiency) + DEFAULT.launch_overhead_s, rel=1e-9)
    assert report.avg_power_w == pytest.approx(_h100_add_by_hand(1.0), rel=1e-9)
    assert report.offchip_w == pytest.approx(ADD_BYTES * 8 * 3.4e-12 / report.estimate.seconds,
                                             rel=1e-9)
    assert not report.throttled and report.clock_hz == report.nominal_clock_hz == 1.83e9


@pytest.mark.parametrize("fraction", [0.8, 0.5])
def test_dvfs_scales_core_energy_with_v_squared_and_leakage_with_v(fraction):
    """0.8: V tracks f; 0.5: below the 0.6 Vmin floor, V stays at 0.6 V0."""
    report = power_at_clock("h100-sxm", ADD, fraction * 1.83e9)
    assert report.avg_power_w == pytest.approx(_h100_add_by_hand(fraction), rel=1e-9)


def test_leakage_is_node_density_times_modelled_die_area():
    for name, node in [("a100-sxm", "N7"), ("forge-t1", "N3"), ("b200", "4NP")]:
        chip = load_chip(name)
        assert leakage_power_w(chip) == pytest.approx(
            LEAKAGE_W_PER_MM2[node] * die_area(chip).total_mm2, rel=1e-12)


def test_leakage_table_covers_every_process_node_a_spec_may_name():
    assert set(LEAKAGE_W_PER_MM2) == set(PROCESS_NODES)


def test_no_static_power_is_counted_twice():
    """perf's flat 20%-of-TDP term is replaced, not added: power = perf's average power
    minus 0.2 x TDP plus leakage."""
    chip = load_chip("h100-sxm")
    op = matmul(4096, 4096, 4096)
    report = workload_power(chip, op)
    perf_w = estimate(op, chip).avg_power_w
    assert report.avg_power_w == pytest.approx(
        perf_w - 0.2 * 700 + leakage_power_w(chip), rel=1e-9)


@pytest.mark.parametrize("chip,dtype", [("b200", "bf16"), ("b200", "fp8_e4m3")])
def test_a_gemm_above_tdp_throttles_to_the_highest_clock_that_fits(chip, dtype):
    """B200 under a saturating GEMM exceeds its 1,000 W at the rated clock (as the
    unthrottled engine says), so it must slow down to exactly its TDP."""
    spec = load_chip(chip)
    op = matmul(16384, 16384, 16384, dtype)
    nominal = power_at_clock(spec, op, spec.clock_hz)
    assert nominal.avg_power_w > spec.tdp_w
    report = workload_power(spec, op)
    assert report.throttled and report.clock_hz < spec.clock_hz
    assert spec.tdp_w * (1 - THROTTLE_TOLERANCE) <= report.avg_power_w <= spec.tdp_w
    assert report.within_tdp
    above = power_at_clock(spec, op, report.clock_hz * 1.005)
    assert above.avg_power_w > spec.tdp_w
    # the throttled estimate is the engine's at the slower clock
    assert report.estimate.seconds >= nominal.estimate.seconds


@pytest.mark.parametrize("chip,work", [
    ("b200", matmul(8192, 8192, 8192)),
    ("h100-sxm", llm_decode(load_llm_config("llama-3.1-8b"), batch=32, context_len=2048)),
])
def test_power_rises_with_the_clock(chip, work):
    spec = load_chip(chip)
    powers = [power_at_clock(spec, work, k / 10 * spec.clock_hz).avg_power_w
              for k in range(2, 11)]
    assert all(b > a for a, b in zip(powers, powers[1:]))


def test_memory_bound_decode_on_h100_is_not_throttled():
    """Decode streams weights and KV cache: H100 serving draws well under its 700 W."""
    graph = llm_decode(load_llm_config("llama-3.1-8b"), batch=32, context_len=2048)
    report = workload_power("h100-sxm", graph)
    assert report.estimate.bound == "memory"
    assert not report.throttled and report.clock_hz == 1.83e9
    assert report.avg_power_w < 700


def test_a100_dense_gemm_draws_what_nvidia_smi_shows():
    """Published: an A100 SXM under cuBLAS bf16 GEMMs draws 300-400 W (its 400 W cap) in
    nvidia-smi; the model must land in that band without throttling below it."""
    report = workload_power("a100-sxm", matmul(8192, 8192, 8192))
    assert 300 <= report.avg_power_w <= 400


def test_h200_gemm_throughput_at_its_running_clock_matches_the_measurement():
    """Measured on an H200 here (shared notes): an 8192^3 bf16 GEMM ran at ~788 TFLOP/s
    through PyTorch. Whatever clock the throttle picks must keep the prediction near it."""
    report = workload_power("h200-sxm", matmul(8192, 8192, 8192))
    assert report.estimate.achieved_flops / 1e12 == pytest.approx(788, rel=0.05)


def test_a_workload_that_cannot_fit_tdp_reports_it_at_the_lowest_clock():
    """A 1 W TDP is below the leakage alone: the floor clock, flagged outside TDP."""
    from chipforge.arch import derive_chip

    tiny = derive_chip(load_chip("h100-sxm"), {"tdp": 1.0})
    report = workload_power(tiny, matmul(4096, 4096, 4096))
    assert report.throttled and not report.within_tdp
    assert report.clock_hz == pytest.approx(MIN_CLOCK_FRACTION * 1.83e9)


def test_a_clock_outside_the_dvfs_range_is_a_clear_error():
    with pytest.raises(ChipforgeError, match=r"^clock_hz: 2000000000\.0 is outside the DVFS "
                                             r"range of chip 'h100-sxm'; expected 2\.745e\+08 "
                                             r"to 1\.83e\+09 Hz$"):
        power_at_clock("h100-sxm", ADD, 2.0e9)


def test_throttle_search_survives_two_clocks_too_close_for_a_slope():
    # regression (found by the DSE): f0/f1 - f0/f2 rounding to 0 divided by zero
    import math

    from chipforge.cost._power import _propose, power_at_clock

    chip = load_chip("b200")
    op = matmul(4096, 4096, 4096, "bf16")
    f1 = 0.9 * chip.clock_hz
    f2 = math.nextafter(f1, 0.0)
    points = [power_at_clock(chip, op, f1), power_at_clock(chip, op, f2)]
    assert chip.clock_hz / f1 == chip.clock_hz / f2  # the degenerate case itself
    f = _propose(points, chip.tdp_w, 0.5 * chip.clock_hz, chip.clock_hz)
    assert 0.5 * chip.clock_hz <= f <= chip.clock_hz
