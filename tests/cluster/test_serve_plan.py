"""serve_plan: the best deployment of an exhaustive small search, checked against brute
force (each reported maximum rate meets the SLO and a slightly higher one does not), the
fleet and $ arithmetic by hand, and the refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chipforge.cluster import (
    Deployment,
    LengthDist,
    Scheduler,
    Traffic,
    replica_cost,
    serve_plan,
    simulate,
    system,
)
from chipforge.cost import TcoAssumptions
from chipforge.errors import ClusterError

SMALL = {"input_len": 256, "output_len": 32, "n_requests": 40, "tps": (1, 2),
         "max_seqs": (8, 32), "max_batch_tokens": (512,), "ratios": ((1, 1),)}
SLO = {"slo_ttft_s": 0.15, "slo_tpot_s": 0.02}


@pytest.fixture(scope="module")
def plan():
    return serve_plan("llama-3.1-8b", "h100-sxm", rate=100, dtype="bf16", **SLO, **SMALL)


def _meets(d, rate: float) -> bool:
    cost = replica_cost("llama-3.1-8b", system("h100-sxm", 64), tp=d.tp, dtype="bf16",
                        max_batch_tokens=d.max_batch_tokens)
    sched = Scheduler(max_batch_tokens=d.max_batch_tokens, max_seqs=d.max_seqs)
    dep = (Deployment(cost, scheduler=sched) if not d.decode_replicas else
           Deployment(cost, cost, d.prefill_replicas, d.decode_replicas, sched))
    lengths = LengthDist.fixed(256), LengthDist.fixed(32)
    # steady state: arrivals span 10 unloaded latencies (the longest of 40 requests served
    # one at a time), at least the search's 40 requests
    alone = simulate(dep, Traffic(1e-6, 40, *lengths))
    n = min(max(40, math.ceil(rate * 10 * float(alone.e2e_s.max()))), 20_000)
    result = simulate(dep, Traffic(rate, n, *lengths))
    tail = np.sort(result.ttft_s[-max(n // 4, 1):])
    return result.meets_slo(0.15, 0.02, 90) and \
        float(np.percentile(tail, 90)) <= 0.15 + 1e-12


def test_the_search_is_exhaustive_and_ranked(plan):
    # 2 tp x (2 caps x 1 budget) colocated + 2 tp x 1 ratio disaggregated
    assert len(plan.alternatives) == 6
    labels = {d.label for d in plan.alternatives}
    assert "tp=2 1P:1D, 32 seqs / 512 tokens" in labels
    feasible = [d for d in plan.alternatives if d.feasible]
    assert plan.best == max(feasible, key=lambda d: d.tokens_per_s_per_chip)
    assert plan.best.tokens_per_s_per_chip == pytest.approx(
        plan.best.max_rate_per_unit * 32 / plan.best.chips_per_unit)


def test_each_maximum_rate_is_the_edge_of_the_slo(plan):
    """Brute force on two deployments: the reported rate meets the SLO, 5% more misses."""
    for d in (plan.best, plan.alternatives[-1]):
        if not d.feasible:
            continue
        assert _meets(d, d.max_rate_per_unit)
        assert not _meets(d, d.max_rate_per_unit * 1.05)


def test_fleet_and_price_by_hand(plan):
    best = plan.best
    assert plan.units == math.ceil(100 / best.max_rate_per_unit)
    assert plan.chips == plan.units * best.chips_per_unit
    sysm = system("h100-sxm", 64)
    tco = TcoAssumptions()
    usd_per_chip_s = (sysm.price_per_chip_usd / (tco.lifetime_years * 365.25 * 86400)
                      + sysm.power_per_chip_w * tco.pue * tco.usd_per_kwh / 3.6e6)
    expected = usd_per_chip_s / (best.tokens_per_s_per_chip * tco.utilization) * 1e6
    assert plan.usd_per_m_tokens == pytest.approx(expected, rel=1e-9)
    doc = plan.to_dict()
    assert doc["chips"] == plan.chips and doc["best"]["label"] == best.label


def test_an_slo_no_deployment_meets_is_refused_with_the_best_reached():
    with pytest.raises(ClusterError) as e:
        serve_plan("llama-3.1-8b", "h100-sxm", rate=10, dtype="bf16", slo_ttft_s=0.001,
                   slo_tpot_s=0.02, **{**SMALL, "tps": (1,), "max_seqs": (8,), "ratios": ()})
    msg = str(e.value)
    assert msg.startswith("no deployment of llama-3.1-8b on h100-sxm meets p90 TTFT <= 0.001 s "
                          "and TPOT <= 20 ms (256 in / 32 out tokens): the closest, tp=1 "
                          "colocated, 8 seqs / 512 tokens, reached p90 TTFT ")
    assert msg.endswith("expected a looser SLO, shorter requests or a faster chip")


def test_a_model_that_fits_no_replica_is_refused():
    with pytest.raises(ClusterError, match="does not fit chip 'l40s'"):
        serve_plan("llama-3.1-70b", "l40s", rate=1, dtype="bf16", tps=(1,), n_requests=20)


@pytest.mark.parametrize("kwargs,words", [
    ({"rate": 0}, "rate=0"), ({"rate": 1, "percentile": 101}, "percentile=101"),
    ({"rate": 1, "input_len": 0}, "input_len=0"), ({"rate": 1, "n_requests": 5}, "n_requests=5"),
    ({"rate": 1, "slo_tpot_s": -1}, "slo_tpot_s=-1"),
])
def test_bad_arguments_name_the_field(kwargs, words):
    with pytest.raises(ClusterError, match=words):
        serve_plan("llama-3.1-8b", "h100-sxm", **kwargs)
