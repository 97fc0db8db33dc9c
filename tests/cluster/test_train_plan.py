"""The training-plan search and its report: the pruned search against an exhaustive
enumeration, budgets to chip counts, days/energy/$ against hand derivations, and the errors."""

from __future__ import annotations

import math

import pytest

from chipforge.cluster import (
    Parallelism,
    StepEstimate,
    TrainJob,
    chips_for_budget,
    compare_on_budget,
    goodput,
    search_plans,
    system,
    train_plan,
    train_sweep,
)
from chipforge.cost import TcoAssumptions
from chipforge.errors import ChipforgeError, ClusterError
from chipforge.workloads import load_llm_config

YEAR_S = 365.25 * 86_400


def _per_token(e) -> float:
    return e.step_time_s / e.extras["global_batch_tokens"]


@pytest.fixture(scope="module")
def small():
    """Megatron's 18B GPT on 16 A100s: memory-tight, so ZeRO and all three recompute
    levels take part in the optimum."""
    job = TrainJob(load_llm_config("megatron-gpt-18b"), 1e12, 2048, 64)
    sys = system("a100-sxm", 16)
    return job, sys, search_plans(job, sys, top=10_000), search_plans(
        job, sys, top=10_000, exhaustive=True)


@pytest.fixture(scope="module")
def result():
    """Llama-3.1-8B on 16 H100s, priced."""
    return train_plan("llama-3.1-8b", "h100-sxm", count=16, tokens=1e11, seq_len=2048,
                      global_batch_tokens=2048 * 64, top=3)


def test_the_pruned_search_finds_the_exhaustive_optimum(small):
    _, _, pruned, everything = small
    assert pruned.evaluated < everything.evaluated / 2  # the staircase prunes
    assert _per_token(pruned.plans[0]) == pytest.approx(_per_token(everything.plans[0]),
                                                        rel=1e-12)
    # the optimum needs a memory saver: the pruning is tested where it bites
    best = pruned.plans[0].plan
    assert best.recompute != "none" or best.zero > 1


def test_every_ranked_plan_fits_and_runs_best_first(small):
    _, sys, pruned, _ = small
    plans = pruned.plans
    assert plans and all(e.fits for e in plans)
    assert all(e.memory_bytes <= e.memory_capacity_bytes for e in plans)
    assert [_per_token(e) for e in plans] == sorted(_per_token(e) for e in plans)
    assert list(pruned) == plans and pruned[0] is plans[0] and len(pruned) == len(plans)
    # at most 1% of the chips idle (spares): here 16 chips leave none idle
    assert all(e.plan.chips == sys.chips for e in plans)


def test_the_store_resumes_without_evaluating_again(small, tmp_path):
    job, sys, pruned, _ = small
    store = tmp_path / "plans.jsonl"
    first = search_plans(job, sys, store=store)
    stored = store.read_text()
    again = search_plans(job, sys, store=store)
    assert store.read_text() == stored  # every group came from the store
    assert [e.plan for e in again.plans] == [e.plan for e in first.plans]
    assert again.plans[0].step_time_s == pruned.plans[0].step_time_s


def test_a_budget_buys_whole_nodes():
    price = system("h100-sxm", 800).price_per_chip_usd
    # 803.2 chips' worth of capital buys 100 nodes of 8
    assert chips_for_budget("h100-sxm", budget_usd=803.2 * price) == 800
    count = chips_for_budget("h100-sxm", budget_mw=1.0)
    pue = TcoAssumptions().pue

    def facility_w(n: int) -> float:
        return n * system("h100-sxm", n).power_per_chip_w * pue

    assert count % 8 == 0 and facility_w(count) <= 1e6 < facility_w(count + 8)
    both = chips_for_budget("h100-sxm", budget_usd=803.2 * price, budget_mw=1.0)
    assert both == min(800, count)


def test_days_energy_and_dollars_follow_from_the_step(result):
    p, sys, a = result.plan, result.system, TcoAssumptions()
    g = goodput(sys.chip, 16, load_llm_config("llama-3.1-8b").param_count() * 14.0)
    wall_s = 1e11 / (p.step.extras["global_batch_tokens"] / p.step_time_s) / g.fraction
    assert p.goodput == g.fraction
    assert p.days == pytest.approx(wall_s / 86_400, rel=1e-12)
    assert p.chip_hours == pytest.approx(16 * wall_s / 3600, rel=1e-12)
    assert p.energy_j == pytest.approx(16 * sys.power_per_chip_w * a.pue * wall_s, rel=1e-12)
    capital = 16 * sys.price_per_chip_usd * wall_s / (a.lifetime_years * YEAR_S)
    energy = p.energy_j / 3.6e6 * a.usd_per_kwh
    assert p.cost_usd == pytest.approx(capital + energy, rel=1e-12)
    assert p.mw == pytest.approx(16 * sys.power_per_chip_w * a.pue / 1e6)
    assert 0 < p.mfu <= p.hfu < 1


def test_an_equal_budget_fleet_gets_the_same_capital(result):
    capital = 16 * result.system.price_per_chip_usd
    same, h20 = compare_on_budget(result, ["h100-sxm", "h20"], scenario="tsmc-2026")
    # the chip itself, bought with its own fleet's capital, is the same fleet and plan
    assert same.chips == 16 and same.plan.parallelism == result.plan.parallelism
    assert same.plan.days == pytest.approx(result.plan.days, rel=1e-12)
    assert h20.chips == chips_for_budget("h20", budget_usd=capital)
    assert h20.chips * system("h20", h20.chips).price_per_chip_usd <= capital
    assert h20.plan is not None and h20.plan.fits and h20.error is None
    assert h20.verdict in ("uncontrolled", "licence required", "presumed controlled",
                           "prohibited")


def test_a_budget_at_a_switch_tier_buys_the_most_whole_nodes():
    """Price per chip grows with the fabric's tiers; the count is the largest whole-node
    count whose own system fits the budget."""
    budget = 16_384 * system("h100-sxm", 16_384).price_per_chip_usd
    count = chips_for_budget("h100-sxm", budget_usd=budget)
    assert count == 16_384
    bigger = count + 8
    assert bigger * system("h100-sxm", bigger).price_per_chip_usd > budget


def test_nothing_fits_names_the_model_chip_count_and_smallest_need():
    with pytest.raises(ClusterError) as info:
        train_plan("megatron-gpt-18b", "h100-sxm", count=1, tokens=1e12, seq_len=2048,
                   global_batch_tokens=2048 * 64)
    text = str(info.value)
    assert text.startswith("model 'megatron-gpt-18b' on 1 x h100-sxm: no plan fits in "
                           "memory; the smallest need is ")
    need = float(text.split("the smallest need is ")[1].split(" GB")[0])
    # independent floor: ZeRO cannot shard on one chip, so the bf16 weights, fp32 main
    # grads and fp32 Adam state (2 + 4 + 12 bytes a parameter) all stay
    assert need >= 18 * load_llm_config("megatron-gpt-18b").param_count() / 1e9
    assert "against 72.0 GB usable; expected more chips" in text


@pytest.mark.parametrize(("kwargs", "pinned"), [
    ({"count": 16, "budget_usd": 1e6},
     "count=16 with a budget; expected a chip count or a budget, not both"),
    ({"count": 0}, "count: 0; expected a positive number of chips"),
    ({"budget_usd": -5.0}, "budget_usd: -5.0; expected a positive number"),
    ({}, "chip 'h100-sxm': no count; expected count, budget_usd, budget_mw or a System"),
    ({"budget_usd": 1000.0}, "budget: budget_usd=1000.0, budget_mw=None buys no h100-sxm"),
])
def test_bad_input_is_one_clear_error(kwargs, pinned):
    with pytest.raises(ClusterError) as info:
        train_plan("llama-3.1-8b", "h100-sxm", tokens=1e12, **kwargs)
    assert str(info.value).startswith(pinned)


def test_an_unknown_model_is_refused_before_any_search():
    with pytest.raises(ChipforgeError, match=r"unknown model 'llama-9'; expected a config"):
        train_plan("llama-9", "h100-sxm", count=8, tokens=1e12)


def test_a_plan_is_a_parallelism_with_every_chip_used(result):
    for p in result.plans:
        assert isinstance(p.parallelism, Parallelism) and p.parallelism.chips == 16
        assert p.memory_bytes == pytest.approx(math.fsum(p.memory.values()))
        doc = p.as_dict()
        assert doc["plan"] == p.parallelism.describe() and doc["fits"] is True


def test_a_sweep_over_counts_says_where_nothing_fits_and_resumes(tmp_path):
    store = tmp_path / "sweep.jsonl"
    args = {"tokens": 1e11, "seq_len": 2048, "global_batch_tokens": 2048 * 64}
    one, sixteen = train_sweep("megatron-gpt-18b", "a100-sxm", [1, 16], store=store, **args)
    assert one.plan is None and "no plan fits in memory" in one.error
    assert sixteen.error is None and sixteen.plan["chips"] == 16 and sixteen.plan["fits"]
    stored = store.read_text()
    again = train_sweep("megatron-gpt-18b", "a100-sxm", [1, 16], store=store, **args)
    assert store.read_text() == stored and again[1].plan == sixteen.plan


def _deep_pipelines_only(job, system, plan) -> StepEstimate:
    """A stand-in step model: every plan takes 1 s; only 20 or more stages fit."""
    return StepEstimate(plan, 1.0, 1.0, {}, 1.0, 1.0, 0.5, 0.5, {}, 0.0, 1.0, plan.pp >= 20,
                        plan.chips, extras={"global_batch_tokens": job.global_batch_tokens})


def test_an_awkward_count_may_leave_up_to_one_percent_idle():
    """536 = 8 x 67 chips: no layout with 20+ of Llama-3.1-8B's 32 layers as stages uses
    them all. By hand, 536 mod (tp*cp*pp) <= 5.36 for pp in 20..32 only at tp*cp = 1,
    pp = 28 (536 = 28 x 19 + 4): dp 19 on 532 chips, 4 idle; dp 19 x 4 micro-batches is
    the requested 76 sequences."""
    job = TrainJob(load_llm_config("llama-3.1-8b"), 1e11, 4096, 76)
    found = search_plans(job, system("h100-sxm", 536), evaluate=_deep_pipelines_only)
    assert found.plans and all(e.fits for e in found.plans)
    assert {(e.plan.tp, e.plan.cp, e.plan.pp, e.plan.dp) for e in found.plans} == {
        (1, 1, 28, 19)}
