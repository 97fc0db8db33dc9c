"""The fleet plan: the cheapest fleet, in $ and MW, that meets a year's demand (pre-training
runs by their deadlines, LLM serving at its peak within the SLO, recommendation training and
inference) under a legal scenario, from the options it allows: buy GPUs, build our chips
(NRE, lead time), use the chips already owned, or a mix (docs/cluster.md, "The fleet plan").

``fleet_plan`` asks the planners for each workload's capacity per chip on each option,
solves the MILP of ``_fleet_milp`` and, for comparison, the same demand with only the
bought and owned options.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chipforge.cluster._fleet_coef import (
    Coefficient,
    PlannerCoefficients,
    Provider,
    plannable_chips,
    prefetch,
)
from chipforge.cluster._fleet_demand import (
    Demand,
    PretrainingRun,
    RecsysInference,
    RecsysTraining,
    ServingTraffic,
    load_demand,
)
from chipforge.cluster._fleet_inputs import (
    OptionVerdict,
    build_options,
    licence_path,
    option_verdicts,
)
from chipforge.cluster._fleet_milp import solve
from chipforge.cluster._fleet_model import (
    DeadlineWorkload,
    Economics,
    Option,
    RateWorkload,
    Solution,
)
from chipforge.errors import ClusterError
from chipforge.legal import DEFAULT_SCENARIO

FleetOption = Option
solve_fleet = solve
MAX_RESOLVES = 3  # re-solves when a training pool leaves the bracket its chip-hours were at
BRACKET = 2.0  # a run's chip-hours hold for pools of chips/BRACKET .. chips*BRACKET


@dataclass(frozen=True)
class FleetRow:
    """One workload's share of the fleet on one option."""
    workload: str
    kind: str
    demand: str
    option: str
    chips: int  # for a pre-training run: the pool it is time-sliced on
    capex_usd: float
    energy_usd: float
    mw: float
    utilization: float


@dataclass(frozen=True)
class FleetPlan:
    scenario: str
    demand: str
    rows: tuple[FleetRow, ...]
    options: tuple[OptionVerdict, ...]
    chips: dict[str, int]
    nre_paid: tuple[str, ...]
    capex_usd: float
    nre_usd: float
    energy_usd: float
    mw: float
    power_cap_mw: float | None
    mip_gap: float = 0.0  # HiGHS's relative optimality gap: 0 is a proven optimum
    buy_only: FleetPlan | None = None
    buy_only_error: str | None = None  # why no fleet of bought and owned chips meets it
    notes: tuple[str, ...] = field(default_factory=tuple)  # options a planner refused

    @property
    def total_usd(self) -> float:
        return self.capex_usd + self.nre_usd + self.energy_usd

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["total_usd"] = self.total_usd
        if self.buy_only is not None:
            doc["buy_only"] = self.buy_only.to_dict()
        return doc


def _kind(work: Any) -> str:
    return {ServingTraffic: "serving", PretrainingRun: "pretraining",
            RecsysTraining: "recsys-training", RecsysInference: "recsys-inference"}[type(work)]


def _demand_text(work: Any) -> str:
    if isinstance(work, ServingTraffic):
        return f"{work.peak_rate_per_s:,.0f} req/s peak ({work.model})"
    if isinstance(work, PretrainingRun):
        return f"{work.tokens:.3g} tokens by day {work.deadline_days:g} ({work.model})"
    if isinstance(work, RecsysTraining):
        return f"{work.samples_per_day:.3g} samples/day"
    return f"{work.qps_peak:,.0f} qps peak, p99 {work.p99_s * 1e3:g} ms"


def _rate_workload(work: Any, options: list[Option], provider: Provider) -> RateWorkload:
    per_chip, why = {}, {}
    for opt in options:
        c = provider(work, opt, None)
        if c.value is not None and c.value > 0:
            per_chip[opt.name] = c.value
        else:
            why[opt.name] = c.why_not or "no capacity"
    if isinstance(work, ServingTraffic):
        return RateWorkload(work.name, "serving", work.peak_rate_per_s, "req/s",
                            1.0 / work.peak_over_mean, per_chip, work.start_day, why)
    if isinstance(work, RecsysInference):
        return RateWorkload(work.name, "recsys-inference", work.qps_peak, "qps",
                            work.mean_to_peak, per_chip, work.start_day, why)
    return RateWorkload(work.name, "recsys-training", work.samples_per_day / 86_400.0,
                        "samples/s", 1.0, per_chip, work.start_day, why)


def _run(work: PretrainingRun, options: list[Option], provider: Provider,
         hints: dict[tuple[str, str], int]) -> DeadlineWorkload:
    hours, least, why = {}, {}, {}
    for opt in options:
        c: Coefficient = provider(work, opt, hints.get((work.name, opt.name)))
        if c.value is not None and c.value > 0:
            hours[opt.name] = c.value
            hints[work.name, opt.name] = c.chips
            least[opt.name] = max(1, int(c.chips / BRACKET))
        else:
            why[opt.name] = c.why_not or "no plan"
    return DeadlineWorkload(work.name, work.deadline_days, hours, least, why)


def _economics(demand: Demand) -> Economics:
    e = demand.economics
    return Economics() if e is None else Economics(e.usd_per_kwh, e.pue, e.idle_fraction)


def _solve(demand: Demand, options: list[Option], provider: Provider,
           power_cap_mw: float | None) -> tuple[Solution, list]:
    hints: dict[tuple[str, str], int] = {}
    prefetch(provider, demand.workloads, options, hints)
    rates = [_rate_workload(w, options, provider) for w in demand.workloads
             if not isinstance(w, PretrainingRun)]
    eco = _economics(demand)
    for _ in range(MAX_RESOLVES + 1):
        prefetch(provider, demand.pretraining, options, hints)
        runs = [_run(w, options, provider, hints) for w in demand.pretraining]
        sol = solve(options, rates, runs, economics=eco, power_cap_mw=power_cap_mw)
        moved = _out_of_bracket(sol, runs, options, hints)
        if not moved:
            break
        hints.update(moved)
    return sol, [*rates, *runs]


def _out_of_bracket(sol: Solution, runs: list[DeadlineWorkload], options: list[Option],
                    hints: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Runs whose pool is more than BRACKET times the size their chip-hours were taken at,
    with the plannable size to re-plan them at."""
    per_node = {o.name: o.chips_per_node for o in options}
    moved = {}
    for a in sol.allocations:
        at = hints.get((a.workload, a.option))
        if at and any(r.name == a.workload for r in runs) and a.chips > at * BRACKET:
            moved[a.workload, a.option] = plannable_chips(a.chips, per_node[a.option])
    return moved


def _plan(demand: Demand, scenario: str, verdicts: list[OptionVerdict], options: list[Option],
          provider: Provider, power_cap_mw: float | None) -> FleetPlan:
    sol, planned = _solve(demand, options, provider, power_cap_mw)
    works = {w.name: w for w in demand.workloads}
    # what the planners refused, so no option is silently missing from a workload's choice
    notes = tuple(f"{w.name} cannot use {option}: {why}" for w in planned
                  for option, why in w.why_not.items())
    rows = tuple(FleetRow(a.workload, _kind(works[a.workload]), _demand_text(works[a.workload]),
                          a.option, a.chips, a.capex_usd, a.energy_usd, a.mw, a.utilization)
                 for a in sol.allocations)
    return FleetPlan(scenario, demand.name, rows, tuple(verdicts),
                     {k: v for k, v in sol.chips.items() if v}, sol.nre_paid, sol.capex_usd,
                     sol.nre_usd, sol.energy_usd, sol.mw, power_cap_mw, sol.mip_gap,
                     notes=notes)


def fleet_plan(demand: Demand | str | Path | None = None, scenario: str = DEFAULT_SCENARIO, *,
               power_cap_mw: float | None = None, provider: Provider | None = None,
               compare_buy_only: bool = True, store: Path | None = None, workers: int = 1,
               use_ray: bool = False, progress: str | None = None) -> FleetPlan:
    """The cheapest fleet meeting ``demand`` (a Demand, a YAML path, or None: the shipped
    default) under the legal ``scenario``; with ``compare_buy_only``, also the fleet of only
    bought and owned chips. A demand no allowed fleet meets is a ClusterError naming the
    workload.

    ``provider(workload, option, chips_hint)`` gives the coefficients (default: the
    planners, run as tasks on ``workers`` local processes or Ray, kept in ``store``, a
    JSON-lines file a rerun reads back)."""
    if power_cap_mw is not None and not power_cap_mw > 0:
        raise ClusterError(f"power cap {power_cap_mw!r} MW; expected a positive number")
    d = demand if isinstance(demand, Demand) else load_demand(demand)
    provider = provider or PlannerCoefficients(store, workers, use_ray, progress)
    verdicts = option_verdicts(d, scenario)
    options = build_options(d, verdicts)
    if not options:
        raise ClusterError(f"scenario {scenario!r}: no option is allowed ("
                           + "; ".join(f"{v.name}: {v.reason}" for v in verdicts) + ")")
    best = _plan(d, scenario, verdicts, options, provider, power_cap_mw)
    if not compare_buy_only or all(o.kind != "build" for o in options):
        return best
    bought = [o for o in options if o.kind != "build"]
    try:
        only = _plan(d, scenario, verdicts, bought, provider, power_cap_mw) if bought else None
        error = None if bought else "no option to buy is allowed in this scenario"
    except ClusterError as exc:
        only, error = None, str(exc)
    return FleetPlan(**{**best.__dict__, "buy_only": only, "buy_only_error": error})


__all__ = ["Coefficient", "DeadlineWorkload", "Demand", "Economics", "FleetOption", "FleetPlan",
           "FleetRow", "OptionVerdict", "PlannerCoefficients", "RateWorkload", "fleet_plan",
           "licence_path", "load_demand", "solve_fleet"]
