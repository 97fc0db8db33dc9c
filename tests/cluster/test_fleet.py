"""The fleet plan: the MILP against brute force and hand-derived costs, NRE, lead times, the
power cap, infeasible demand, the demand schema, and one end-to-end plan."""

from __future__ import annotations

import itertools
import math

import pytest

from chipforge.cluster import (
    Coefficient,
    DeadlineWorkload,
    Economics,
    FleetOption,
    RateWorkload,
    load_demand,
    solve_fleet,
    system,
)
from chipforge.cluster._fleet_demand import demand_from
from chipforge.errors import ClusterError

FREE_POWER = Economics(usd_per_kwh=0.0)  # costs are then capex + NRE only


def _gpu(**kw) -> FleetOption:
    return FleetOption(**{"name": "gpu", "kind": "buy", "chip": "h20", "chips_per_node": 2,
                          "capex_per_chip_usd": 10.0, "power_per_chip_w": 100.0, **kw})


def _ours(**kw) -> FleetOption:
    return FleetOption(**{"name": "ours", "kind": "build", "chip": "forge-i1",
                          "chips_per_node": 1, "capex_per_chip_usd": 3.0,
                          "power_per_chip_w": 50.0, "nre_usd": 20.0, **kw})


def _chat(demand=7.0, start_day=0.0, **per_chip) -> RateWorkload:
    return RateWorkload("chat", "serving", demand, "req/s", 0.5,
                        per_chip or {"gpu": 1.0, "ours": 1.5}, start_day=start_day)


def _brute_force(options, rates, runs, most=12) -> float:
    """Every node count up to ``most`` per (workload, option), every run placement and pool
    size: the least capex + NRE of a fleet that meets each rate at its start and each run by
    its deadline (one pool per option, runs back to back in deadline order). The rate part
    and the training part meet only in which options pay their NRE, so each is enumerated
    once per set of options used."""
    def node_cost(o, nodes):
        return nodes * options[o].chips_per_node * options[o].capex_per_chip_usd

    rate_best: dict[frozenset, float] = {}
    for counts in itertools.product(range(most + 1), repeat=len(rates) * len(options)):
        nodes = {(w, o): counts[w * len(options) + o]
                 for w in range(len(rates)) for o in range(len(options))}
        if any(sum(nodes[w, o] * opt.chips_per_node * r.per_chip.get(opt.name, 0.0)
                   for o, opt in enumerate(options) if opt.arrival_day <= r.start_day)
               < r.demand for w, r in enumerate(rates)):
            continue
        used = frozenset(o for (_, o), n in nodes.items() if n)
        cost = sum(node_cost(o, n) for (_, o), n in nodes.items())
        rate_best[used] = min(rate_best.get(used, math.inf), cost)
    run_best: dict[frozenset, float] = {}
    for placement in itertools.product(range(len(options)), repeat=len(runs)):
        for pools in itertools.product(range(most + 1), repeat=len(options)):
            if _runs_fit(options, runs, placement, pools):
                used = frozenset(o for o, n in enumerate(pools) if n)
                cost = sum(node_cost(o, n) for o, n in enumerate(pools))
                run_best[used] = min(run_best.get(used, math.inf), cost)
    return min(rc + pc + sum(options[o].nre_usd for o in ru | pu)
               for ru, rc in rate_best.items() for pu, pc in run_best.items())


def _runs_fit(options, runs, placement, pools) -> bool:
    for o, opt in enumerate(options):
        mine = sorted((runs[r] for r in range(len(runs)) if placement[r] == o),
                      key=lambda run: run.deadline_days)
        chips, start, done = pools[o] * opt.chips_per_node, max(0.0, opt.arrival_day), 0.0
        for run in mine:
            if opt.name not in run.chip_hours or chips < run.min_chips[opt.name]:
                return False
            done += run.chip_hours[opt.name] / (chips * 24)  # days of the whole pool
            if start + done > run.deadline_days + 1e-9:
                return False
    return True


def test_milp_matches_brute_force_on_a_small_case():
    options = [_gpu(), _ours(arrival_day=100.0)]
    rates = [_chat(7.0), RateWorkload("late", "serving", 9.0, "req/s", 0.5,
                                      {"gpu": 1.0, "ours": 1.5}, start_day=120.0)]
    runs = [DeadlineWorkload("pt", 200.0, {"gpu": 24 * 200 * 3.0, "ours": 24 * 90 * 5.0},
                             {"gpu": 2, "ours": 4})]
    plan = solve_fleet(options, rates, runs, economics=FREE_POWER)
    assert plan.total_usd == pytest.approx(_brute_force(options, rates, runs))
    # by hand: chat on 4 gpu nodes (80); late on 6 of ours (18); pt on 5 of ours from day
    # 100 (15: 4.5 chips for 100 days); NRE 20 once
    assert plan.total_usd == pytest.approx(133.0)
    assert plan.nre_paid == ("ours",) and plan.chips == {"gpu": 8, "ours": 11}
    assert plan.mip_gap == pytest.approx(0.0, abs=1e-6)  # HiGHS proved it optimal


def test_milp_two_runs_share_a_pool_by_deadline():
    options = [_gpu(), _ours(nre_usd=1000.0)]
    runs = [DeadlineWorkload("a", 50.0, {"gpu": 24 * 50 * 2.0}, {"gpu": 2}),
            DeadlineWorkload("b", 100.0, {"gpu": 24 * 50 * 2.0}, {"gpu": 2})]
    plan = solve_fleet(options, (), runs, economics=FREE_POWER)
    # back to back: a on 2 chips for 50 days, then b; one 2-chip node, no build
    assert plan.chips == {"gpu": 2, "ours": 0}
    assert plan.total_usd == pytest.approx(_brute_force(options, [], runs)) == 20.0


def test_nre_is_paid_once_and_only_if_the_option_is_used():
    rates = [_chat(12.0), RateWorkload("feed", "recsys-inference", 12.0, "qps", 0.6,
                                       {"gpu": 1.0, "ours": 1.0})]
    cheap = solve_fleet([_gpu(), _ours(nre_usd=20.0)], rates, economics=FREE_POWER)
    # ours: 8 + 12 chips at $3 + one NRE of 20 = 80, against 6 + 6 gpu nodes = 240
    assert cheap.nre_paid == ("ours",) and cheap.nre_usd == 20.0
    assert cheap.total_usd == pytest.approx(80.0)
    dear = solve_fleet([_gpu(), _ours(nre_usd=500.0)], rates, economics=FREE_POWER)
    assert dear.nre_paid == () and dear.nre_usd == 0.0 and dear.chips["ours"] == 0
    assert dear.total_usd == pytest.approx(240.0)


def test_a_build_option_serves_nothing_before_its_lead_time():
    late = solve_fleet([_gpu(), _ours(arrival_day=30.0)], [_chat(7.0)], economics=FREE_POWER)
    assert late.chips["ours"] == 0  # the traffic starts on day 0
    on_time = solve_fleet([_gpu(), _ours(arrival_day=30.0)], [_chat(7.0, start_day=30.0)],
                          economics=FREE_POWER)
    assert on_time.chips == {"gpu": 0, "ours": 5}
    run = DeadlineWorkload("pt", 20.0, {"ours": 24.0}, {"ours": 1})
    with pytest.raises(ClusterError, match=r"'pt'.*ours: arrives on day 30"):
        solve_fleet([_gpu(), _ours(arrival_day=30.0)], (), [run], economics=FREE_POWER)


def test_power_cap_moves_the_fleet_and_an_impossible_cap_names_the_workload():
    hungry = _gpu(capex_per_chip_usd=1.0, power_per_chip_w=1e6)  # 1 MW a chip, 1.2 with PUE
    frugal = _ours(kind="buy", nre_usd=0.0, capex_per_chip_usd=5.0, power_per_chip_w=1e5)
    rates = [_chat(4.0, gpu=1.0, ours=1.0)]
    free = solve_fleet([hungry, frugal], rates, economics=FREE_POWER)
    assert free.chips == {"gpu": 4, "ours": 0} and free.mw == pytest.approx(4.8)
    capped = solve_fleet([hungry, frugal], rates, economics=FREE_POWER, power_cap_mw=2.7)
    # 2 gpu nodes would be 4.8 MW; one (2.4 MW) and 2 of ours (0.24 MW) fit in 2.7
    assert capped.chips == {"gpu": 2, "ours": 2} and capped.mw == pytest.approx(2.64)
    with pytest.raises(ClusterError, match=r"workload 'chat' cannot be met within.*0.1 MW"):
        solve_fleet([hungry, frugal], rates, economics=FREE_POWER, power_cap_mw=0.1)


def test_energy_over_the_year_by_hand():
    eco = Economics(usd_per_kwh=0.1, pue=1.5, idle_fraction=0.2, horizon_days=10.0)
    plan = solve_fleet([_gpu(capex_per_chip_usd=0.0)], [_chat(2.0, gpu=1.0)], economics=eco)
    # 2 chips x 100 W x 1.5 PUE x 240 h x (0.2 + 0.8 x 0.5 load) x $0.1/kWh
    assert plan.energy_usd == pytest.approx(2 * 0.1 * 1.5 * 240 * 0.6 * 0.1)


def test_supply_limit_and_unservable_workload_are_named():
    with pytest.raises(ClusterError, match=r"'chat' cannot be met within gpu at most 4 chips"):
        solve_fleet([_gpu(max_chips=4)], [_chat(7.0, gpu=1.0)], economics=FREE_POWER)
    with pytest.raises(ClusterError, match=r"workload 'chat' cannot be met by any option"):
        solve_fleet([_gpu()], [_chat(7.0, ours=1.0)], economics=FREE_POWER)


def test_owned_chips_cost_no_capex_and_cap_the_count():
    owned = _gpu(name="old", kind="owned", capex_per_chip_usd=0.0, max_chips=4)
    plan = solve_fleet([owned, _gpu()], [_chat(7.0, old=1.0, gpu=1.0)], economics=FREE_POWER)
    assert plan.chips == {"old": 4, "gpu": 4} and plan.total_usd == pytest.approx(40.0)


# ---- demand files ---------------------------------------------------------------------------

_MINIMAL = {"name": "t", "options": {"buy": [{"chip": "h20", "source": "assumption: test"}]},
            "serving": [{"name": "chat", "model": "llama-3.1-8b", "mean_rate_per_s": 10,
                         "peak_to_mean": 2, "input_len": 100, "output_len": 10,
                         "source": "assumption: test"}]}


def test_demand_schema_errors_name_file_field_and_value():
    assert demand_from(_MINIMAL, "d.yaml").serving[0].peak_rate_per_s == 20
    bad = {**_MINIMAL, "serving": [{**_MINIMAL["serving"][0], "mean_rate_per_s": -3}]}
    with pytest.raises(ClusterError, match=r"^d.yaml: serving\[0\].mean_rate_per_s: .*"
                                           r"greater than 0 \(got -3\)$"):
        demand_from(bad, "d.yaml")
    no_source = {**_MINIMAL, "options": {"buy": [{"chip": "h20"}]}}
    with pytest.raises(ClusterError, match=r"options.buy\[0\].source: missing required field"):
        demand_from(no_source, "d.yaml")
    both = {**_MINIMAL, "serving": [{**_MINIMAL["serving"][0], "hourly_profile": [1] * 24}]}
    with pytest.raises(ClusterError, match="exactly one of peak_to_mean and hourly_profile"):
        demand_from(both, "d.yaml")
    with pytest.raises(ClusterError, match=r"d.yaml: typo: unknown field \(value 1\)"):
        demand_from({**_MINIMAL, "typo": 1}, "d.yaml")
    with pytest.raises(ClusterError, match="repeated: chat"):
        demand_from({**_MINIMAL, "serving": _MINIMAL["serving"] * 2}, "d.yaml")


def test_hourly_profile_gives_the_peak():
    profile = [1.0] * 12 + [3.0] * 12  # mean 2, peak 3
    d = demand_from({**_MINIMAL, "serving": [{**{k: v for k, v in _MINIMAL["serving"][0].items()
                                                   if k != "peak_to_mean"},
                                              "hourly_profile": profile}]}, "d.yaml")
    assert d.serving[0].peak_rate_per_s == pytest.approx(15.0)


def test_missing_demand_file_is_one_error(tmp_path):
    with pytest.raises(ClusterError, match=r"nope.yaml: cannot read demand file"):
        load_demand(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ClusterError, match="bad.yaml: YAML syntax error"):
        load_demand(bad)


def test_the_default_demand_loads_with_every_entry_sourced():
    d = load_demand()
    assert d.pretraining and d.serving and d.recsys_training and d.recsys_inference
    entries = [*d.workloads, *d.options.buy, *d.options.build, *d.options.owned]
    assert all(e.source.startswith(("source:", "assumption:")) for e in entries)


# ---- options, legal scenarios and the planners ------------------------------------------

def test_legal_scenarios_decide_the_options():
    """chipforge.legal's verdicts: H20 under a granted licence and H200 case by case are
    buyable today; H100's licence is under a presumption of denial; Huawei's Ascend is a
    domestic purchase (no export); a full ban leaves Ascend and the chips owned, our N3/N4
    designs being beyond SMIC's nodes."""
    from chipforge.cluster._fleet_inputs import option_verdicts

    today = {v.name: v for v in option_verdicts(load_demand(), "tsmc-2026")}
    assert today["h20"].allowed and today["h200-sxm"].allowed
    assert not today["h100-sxm"].allowed and "presumption of denial" in today["h100-sxm"].reason
    assert today["forge-t1"].allowed and today["h20 (owned)"].allowed
    ban = {v.name: v for v in option_verdicts(load_demand(), "full-ban")}
    assert [n for n, v in ban.items() if v.allowed] == ["ascend-910c", "h20 (owned)"]
    # uncontrolled, but the catalog's N3 design cannot be made at SMIC
    assert ban["forge-t1"].verdict == "uncontrolled"
    assert ban["forge-t1"].reason == ("cannot be made under full-ban: SMIC does not run N3: it "
                                      "offers SMIC-N+2")
    assert today["ascend-910c"].verdict == ban["ascend-910c"].verdict == "uncontrolled"


def test_build_options_pay_unit_cost_not_amortized_nre():
    """A build option's capex per chip is its system's price with the chip at unit cost +
    board (chipforge.cost), the NRE left to the MILP's binary; an owned chip costs nothing."""
    from chipforge.cluster import system
    from chipforge.cluster._fleet_inputs import build_options, option_verdicts
    from chipforge.cost import TcoAssumptions, chip_capex_usd

    d = load_demand()
    opts = {o.name: o for o in build_options(d, option_verdicts(d, "tsmc-2026"))}
    t1 = system("forge-t1", 16_384)
    amortized = TcoAssumptions().nre_usd / TcoAssumptions().volume_units
    assert opts["forge-t1"].capex_per_chip_usd == pytest.approx(
        t1.price_per_chip_usd - amortized)
    assert chip_capex_usd("forge-t1") - amortized == pytest.approx(
        chip_capex_usd("forge-t1", TcoAssumptions(nre_usd=0.0)))
    assert opts["forge-t1"].nre_usd == 590e6 and opts["forge-t1"].chips_per_node == 1024
    # demand year starts 12 months after the decision: an 18-month build arrives mid-year
    assert opts["forge-t1"].arrival_day == pytest.approx(365.25 / 2)
    assert opts["h20 (owned)"].capex_per_chip_usd == 0 and opts["h20 (owned)"].max_chips == 200_000


def test_serving_coefficient_is_serve_plans_rate_per_chip(monkeypatch):
    import chipforge.cluster._serve as serve
    from chipforge.cluster._fleet_coef import coefficient_task

    seen = {}

    class Plan:
        max_rate_per_chip = 3.5

        class best:  # noqa: N801 - mimics ServePlanResult.best
            chips_per_unit = 4

    def fake_serve_plan(model, chip, **kw):
        seen.update(kw, model=model, chip=chip)
        return Plan()

    monkeypatch.setattr(serve, "serve_plan", fake_serve_plan)
    work = load_demand().serving[0]
    out = coefficient_task(("serving", work.model_dump_json(), "h20", 0, 8))
    assert out == {"value": 3.5, "chips": 4, "why_not": None}
    assert seen["slo_ttft_s"] == work.slo.ttft_s and seen["percentile"] == work.slo.percentile
    assert seen["rate"] == pytest.approx(work.mean_rate_per_s * work.peak_to_mean)


def test_end_to_end_with_the_real_planners_on_a_small_demand():
    """A pre-training run (train_plan) and a ranking service (dlrm_inference_plan) on 16
    owned H20s and H20s to buy: the owned chips are used before any is bought, and every
    workload gets the capacity its planner says it needs."""
    from chipforge.cluster import fleet_plan
    from chipforge.cluster._fleet_coef import coefficient_task

    d = demand_from({
        "name": "small",
        "options": {"buy": [{"chip": "h20", "source": "assumption: test"}],
                    "owned": [{"chip": "h20", "chips": 16, "source": "assumption: test"}]},
        "pretraining": [{"name": "pt", "model": "megatron-gpt-1.7b", "tokens": 5e10,
                         "seq_len": 2048, "global_batch_tokens": 2**20, "deadline_days": 20,
                         "source": "assumption: test"}],
        "recsys_inference": [{"name": "rank", "model": {"preset": "mlperf-dlrm-dcnv2"},
                              "qps_peak": 4000, "items_per_query": 100, "mean_to_peak": 0.6,
                              "p99_s": 0.05, "source": "assumption: test"}],
    }, "small")
    plan = fleet_plan(d, "tsmc-2026")
    run = coefficient_task(("pretraining", d.pretraining[0].model_dump_json(), "h20", 0, 8))
    rank = coefficient_task(("recsys-inference", d.recsys_inference[0].model_dump_json(),
                             "h20", 0, 8))
    pool = math.ceil(run["value"] / (20 * 24) / 8) * 8  # chip-hours over 20 days, whole nodes
    serve = math.ceil(4000 / rank["value"] / 8) * 8  # queries/s over the rate per chip
    assert sum(plan.chips.values()) == pool + serve
    assert plan.chips["h20 (owned)"] == min(16, pool + serve)
    assert plan.capex_usd == pytest.approx(
        plan.chips.get("h20", 0) * system("h20", 16_384).price_per_chip_usd)
    assert plan.nre_paid == () and plan.buy_only is None  # no build option: nothing to compare


def test_a_run_is_replanned_when_its_pool_leaves_the_bracket():
    """The first plan (8 chips) needs 2,400 chip-hours; a 10-day deadline needs 10 chips,
    inside the bracket (4..16): kept. A 2-day deadline needs 50 chips: re-planned at the
    plannable size above the pool (64), where this fake planner's scaling loss makes the run
    cost 3,000 chip-hours, 63 chips over 2 days: 64 (8 nodes)."""
    from chipforge.cluster import fleet_plan

    asked = []

    def planner(work, option, hint):
        asked.append(hint)
        chips = hint or 8
        return Coefficient(2400.0 if chips <= 16 else 3000.0, chips)

    def demand(days):
        return demand_from({
            "name": "d", "options": {"buy": [{"chip": "h20", "source": "assumption: t"}]},
            "pretraining": [{"name": "pt", "model": "llama-3.1-8b", "tokens": 1e9,
                             "deadline_days": days, "source": "assumption: t"}]}, "d")

    kept = fleet_plan(demand(10), "tsmc-2026", provider=planner)
    assert asked == [None] and kept.chips == {"h20": 16}  # 10 chips -> 2 nodes
    asked.clear()
    moved = fleet_plan(demand(2), "tsmc-2026", provider=planner)
    assert asked == [None, 64] and moved.chips == {"h20": 64}
