"""Goodput under failures: Daly's interval and useful fraction against a direct numerical
optimum and a Monte Carlo run of the same failure process, and the Llama 3 figures."""

from __future__ import annotations

import math
import random

import pytest
from scipy.optimize import minimize_scalar

from chipforge.arch import load_chip
from chipforge.cluster import FailureModel, daly_interval_s, goodput, useful_fraction
from chipforge.errors import ClusterError


def test_daly_interval_is_youngs_to_first_order_and_the_mtbf_when_writes_are_slow():
    # d << M: Young's sqrt(2 d M) = sqrt(2 * 10 * 1e6) = 4472.1 s, Daly's corrections
    # (+ sqrt(d/2M)/3 of it, - d) stay below 1%
    assert daly_interval_s(10.0, 1e6) == pytest.approx(4472.1, rel=0.01)
    assert daly_interval_s(500.0, 200.0) == 200.0  # d >= 2M: checkpoint every M


@pytest.mark.parametrize(("write_s", "restart_s", "mtbf_s"),
                         [(3.0, 600.0, 11_000.0), (60.0, 300.0, 3_600.0), (5.0, 60.0, 1e5)])
def test_daly_interval_maximises_the_useful_fraction(write_s, restart_s, mtbf_s):
    """Daly's closed form against a numerical maximum of his own wall-time model."""
    best = minimize_scalar(lambda tau: -useful_fraction(tau, write_s, restart_s, mtbf_s),
                           bounds=(1e-3, 10 * mtbf_s), method="bounded",
                           options={"xatol": 1e-6})
    tau = daly_interval_s(write_s, mtbf_s)
    assert tau == pytest.approx(best.x, rel=0.02)
    assert useful_fraction(tau, write_s, restart_s, mtbf_s) == pytest.approx(-best.fun,
                                                                             rel=1e-4)


def test_useful_fraction_matches_the_first_order_budget():
    # 1 - d/tau - (tau/2 + R)/M with tau=300, d=3, R=600, M=1e6: 1 - 0.01 - 0.00075
    assert useful_fraction(300.0, 3.0, 600.0, 1e6) == pytest.approx(0.98925, abs=2e-4)


def _simulated_fraction(tau: float, d: float, r: float, m: float, segments: int) -> float:
    """Run the failure process: each segment needs tau + d failure-free seconds; a failure
    loses the segment and costs a restart of r seconds, which a failure also interrupts."""
    rng = random.Random(7)
    wall = 0.0
    for _ in range(segments):
        while (t := rng.expovariate(1 / m)) < tau + d:
            wall += t
            while (t := rng.expovariate(1 / m)) < r:
                wall += t
            wall += r
        wall += tau + d
    return segments * tau / wall


def test_useful_fraction_matches_a_monte_carlo_of_the_failure_process():
    tau, d, r, m = 400.0, 20.0, 300.0, 2_000.0  # failures often, so the sample is small
    assert useful_fraction(tau, d, r, m) == pytest.approx(
        _simulated_fraction(tau, d, r, m, 20_000), rel=0.02)


def test_the_h100_rates_give_back_the_llama3_snapshot_and_its_90_percent():
    """Dubey et al. 2024 Sec. 3.3.4: 419 unexpected and 47 planned interruptions in 54 days
    on 16,384 H100s, and 'higher than 90% effective training time' (a hold-out)."""
    h100 = load_chip("h100-sxm")
    g = goodput(h100, 16_384, 405e9 * 14)
    snapshot_s = 54 * 86_400
    assert snapshot_s / g.mtbf_s == pytest.approx(419, rel=1e-9)
    assert snapshot_s / g.planned_interval_s == pytest.approx(47, rel=1e-9)
    assert 0.90 < g.fraction < 0.97


def test_memory_capacity_raises_the_failure_rate_and_scale_lowers_goodput():
    h100, h200 = load_chip("h100-sxm"), load_chip("h200-sxm")
    f = FailureModel()
    # the HBM share (72 of 419) scales with capacity: 141 GB fails more than 80 GB
    ratio = f.failures_per_s(h200) / f.failures_per_s(h100)
    assert ratio == pytest.approx((347 + 72 * 141 / 80) / 419, rel=1e-3)
    small, large = (goodput(h100, n, 70e9 * 14).fraction for n in (1024, 32_768))
    assert small > large


def test_no_failures_leaves_only_the_checkpoint_writes():
    quiet = FailureModel(chip_failures_per_s=0.0, memory_failures_per_byte_s=0.0,
                         planned_stops_per_s=0.0)
    g = goodput(load_chip("h100-sxm"), 8, 1e12, quiet)
    assert g.fraction == 1.0 and math.isinf(g.mtbf_s)


@pytest.mark.parametrize(("kwargs", "pinned"), [
    ({"chips": 0, "checkpoint_bytes": 1e9}, "goodput: chips=0; expected a positive int"),
    ({"chips": 8, "checkpoint_bytes": -1.0},
     "goodput: checkpoint_bytes=-1.0; expected a positive number of bytes"),
])
def test_bad_input_is_one_clear_error(kwargs, pinned):
    with pytest.raises(ClusterError) as info:
        goodput(load_chip("h100-sxm"), **kwargs)
    assert str(info.value) == pinned


def test_a_negative_rate_is_refused():
    with pytest.raises(ClusterError, match=r"relaunch_s=-1\.0; expected a non-negative"):
        FailureModel(relaunch_s=-1.0)
