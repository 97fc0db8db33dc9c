"""The fleet optimizer: the cheapest set of nodes that meets every workload, as a mixed-integer
linear program solved by HiGHS (``scipy.optimize.milp``).

Inputs are plain coefficients, so the program can be checked against hand-made cases; the
planners that produce them (serving, training, recommendation) are chipforge.cluster._fleet's.

Variables (all per option ``o``, nodes of ``chips_per_node`` chips):

- ``n[w, o]`` integer: nodes serving rate workload ``w`` (LLM serving, recommendation
  inference or training at a sustained rate), sized for its peak;
- ``t[o]`` integer: nodes of the training pool of option ``o``, time-sliced between the
  pre-training runs assigned to it;
- ``a[r, o]`` binary: run ``r`` is trained on option ``o`` (exactly one);
- ``y[o]`` binary, build options only: the option's NRE is paid.

Constraints:

- rate: ``sum_o per_chip[w, o] * chips_per_node[o] * n[w, o] >= demand[w]`` over the
  options available by the day the workload starts (an option arrives after its lead time);
- deadlines (earliest-deadline-first on one pool; Horn 1974, exact for preemptive jobs): for every
  deadline ``d`` and option ``o``, the chip-hours of the runs assigned to ``o`` that are due
  by ``d`` fit in ``t[o] * chips_per_node * 24 * (d - arrival[o])``; a run also needs the
  pool to hold at least its smallest memory-fitting chip count;
- NRE: ``sum_w n[w, o] + t[o] <= M[o] * y[o]`` (nodes only if the NRE is paid);
- supply: an option's total nodes are at most its ``max_chips`` (owned chips: what is owned);
- power (optional): the fleet's facility power (IT power x PUE) is at most the cap.

Objective: capex of the nodes bought or built + NRE paid + the year's energy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from chipforge.cluster._fleet_model import (
    HOURS_PER_DAY,
    JOULES_PER_KWH,
    OPTION_KINDS,
    Allocation,
    DeadlineWorkload,
    Economics,
    Option,
    RateWorkload,
    Solution,
)
from chipforge.errors import ClusterError


class _Layout:
    """Column indices of the variables."""

    def __init__(self, options: Sequence[Option], rates: Sequence[RateWorkload],
                 runs: Sequence[DeadlineWorkload]) -> None:
        self.n: dict[tuple[int, int], int] = {}
        self.t: dict[int, int] = {}
        self.a: dict[tuple[int, int], int] = {}
        self.y: dict[int, int] = {}
        col = 0
        for w in range(len(rates)):
            for o in range(len(options)):
                self.n[w, o], col = col, col + 1
        if runs:
            for o in range(len(options)):
                self.t[o], col = col, col + 1
        for r in range(len(runs)):
            for o in range(len(options)):
                self.a[r, o], col = col, col + 1
        for o, opt in enumerate(options):
            if opt.kind == "build":
                self.y[o], col = col, col + 1
        self.size = col

    def nodes_of(self, o: int) -> list[int]:
        cols = [c for (_, oo), c in self.n.items() if oo == o]
        return cols + ([self.t[o]] if o in self.t else [])


def _per_chip(workload: RateWorkload, opt: Option) -> float:
    value = workload.per_chip.get(opt.name, 0.0)
    return value if value and value > 0 and math.isfinite(value) else 0.0


def _usable(opt: Option, day: float) -> bool:
    return opt.arrival_day <= day


def _hours_owned(opt: Option, eco: Economics) -> float:
    """Hours of the demand year the option's nodes exist (and draw at least idle power)."""
    return max(0.0, eco.horizon_days - max(0.0, opt.arrival_day)) * HOURS_PER_DAY


def _energy_usd_per_chip_hour(opt: Option, eco: Economics) -> float:
    return opt.power_per_chip_w * eco.pue * 3600.0 / JOULES_PER_KWH * eco.usd_per_kwh


def _node_bound(options: Sequence[Option], rates: Sequence[RateWorkload],
                runs: Sequence[DeadlineWorkload], o: int) -> int:
    """Nodes of option ``o`` no optimum exceeds: each workload alone on it, summed."""
    opt, cpn = options[o], options[o].chips_per_node
    total = 0
    for w in rates:
        rate = _per_chip(w, opt)
        if rate > 0 and _usable(opt, w.start_day):
            total += math.ceil(w.demand / (rate * cpn))
    for r in runs:
        hours = (r.deadline_days - max(0.0, opt.arrival_day)) * HOURS_PER_DAY
        if r.chip_hours.get(opt.name) and hours > 0:
            total += max(math.ceil(r.chip_hours[opt.name] / (hours * cpn)),
                         math.ceil(r.min_chips.get(opt.name, 1) / cpn))
    if opt.max_chips is not None:
        total = min(total, opt.max_chips // cpn)
    return total


def _run_allowed(run: DeadlineWorkload, opt: Option) -> bool:
    hours = run.chip_hours.get(opt.name)
    return bool(hours) and hours > 0 and math.isfinite(hours) and \
        run.deadline_days > max(0.0, opt.arrival_day)


def _costs(options: Sequence[Option], rates: Sequence[RateWorkload],
           runs: Sequence[DeadlineWorkload], eco: Economics, lay: _Layout) -> np.ndarray:
    c = np.zeros(lay.size)
    for (w, o), col in lay.n.items():
        opt = options[o]
        busy = eco.idle_fraction + (1 - eco.idle_fraction) * rates[w].load_factor
        c[col] = opt.chips_per_node * (opt.capex_per_chip_usd + busy * _hours_owned(opt, eco)
                                       * _energy_usd_per_chip_hour(opt, eco))
    for o, col in lay.t.items():  # the pool idles when no run uses it...
        opt = options[o]
        c[col] = opt.chips_per_node * (opt.capex_per_chip_usd + eco.idle_fraction
                                       * _hours_owned(opt, eco)
                                       * _energy_usd_per_chip_hour(opt, eco))
    for (r, o), col in lay.a.items():  # ...and draws the rest of full power while training
        opt = options[o]
        if _run_allowed(runs[r], opt):
            c[col] = (1 - eco.idle_fraction) * runs[r].chip_hours[opt.name] * \
                _energy_usd_per_chip_hour(opt, eco)
    for o, col in lay.y.items():
        c[col] = options[o].nre_usd
    return c


def _constraints(options: Sequence[Option], rates: Sequence[RateWorkload],
                 runs: Sequence[DeadlineWorkload], eco: Economics, lay: _Layout,
                 power_cap_mw: float | None) -> list[LinearConstraint]:
    rows: list[tuple[np.ndarray, float, float]] = []

    def row() -> np.ndarray:
        return np.zeros(lay.size)

    for w, work in enumerate(rates):  # capacity at the peak from the day it starts
        a = row()
        for o, opt in enumerate(options):
            if _usable(opt, work.start_day):
                a[lay.n[w, o]] = _per_chip(work, opt) * opt.chips_per_node
        rows.append((a, work.demand, np.inf))
    for r in range(len(runs)):  # every run on exactly one option
        a = row()
        for o in range(len(options)):
            a[lay.a[r, o]] = 1.0
        rows.append((a, 1.0, 1.0))
    for o, opt in enumerate(options):
        if runs:
            rows.extend(_deadline_rows(runs, opt, o, lay, row))
        bound = _node_bound(options, rates, runs, o)
        if o in lay.y:  # nodes only with the NRE paid
            a = row()
            a[lay.nodes_of(o)] = 1.0
            a[lay.y[o]] = -max(bound, 1)
            rows.append((a, -np.inf, 0.0))
        if opt.max_chips is not None:
            a = row()
            a[lay.nodes_of(o)] = 1.0
            rows.append((a, -np.inf, opt.max_chips // opt.chips_per_node))
    if power_cap_mw is not None:
        a = row()
        for o, opt in enumerate(options):
            a[lay.nodes_of(o)] = opt.chips_per_node * opt.power_per_chip_w * eco.pue / 1e6
        rows.append((a, -np.inf, power_cap_mw))
    if not rows:
        return []
    matrix = np.array([r[0] for r in rows])
    return [LinearConstraint(matrix, np.array([r[1] for r in rows]),
                             np.array([r[2] for r in rows]))]


def _deadline_rows(runs: Sequence[DeadlineWorkload], opt: Option, o: int, lay: _Layout,
                   row) -> list[tuple[np.ndarray, float, float]]:
    rows = []
    start = max(0.0, opt.arrival_day)
    for deadline in sorted({r.deadline_days for r in runs}):
        if deadline <= start:
            continue
        a = row()
        for r, run in enumerate(runs):
            if run.deadline_days <= deadline and _run_allowed(run, opt):
                a[lay.a[r, o]] = run.chip_hours[opt.name]
        a[lay.t[o]] = -opt.chips_per_node * HOURS_PER_DAY * (deadline - start)
        rows.append((a, -np.inf, 0.0))
    for r, run in enumerate(runs):  # the pool holds the run's smallest fitting size
        a = row()
        a[lay.a[r, o]] = float(run.min_chips.get(opt.name, 1))
        a[lay.t[o]] = -float(opt.chips_per_node)
        rows.append((a, -np.inf, 0.0))
    return rows


def _bounds(options: Sequence[Option], rates: Sequence[RateWorkload],
            runs: Sequence[DeadlineWorkload], lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = np.zeros(lay.size), np.full(lay.size, np.inf)
    for (w, o), col in lay.n.items():
        if _per_chip(rates[w], options[o]) <= 0 or not _usable(options[o], rates[w].start_day):
            upper[col] = 0.0
    for (r, o), col in lay.a.items():
        upper[col] = 1.0 if _run_allowed(runs[r], options[o]) else 0.0
    for col in lay.y.values():
        upper[col] = 1.0
    return lower, upper


def _check_inputs(options: Sequence[Option], rates: Sequence[RateWorkload],
                  runs: Sequence[DeadlineWorkload], eco: Economics) -> None:
    names = [o.name for o in options]
    if len(set(names)) != len(names):
        raise ClusterError(f"fleet options {names!r}: expected unique names")
    for opt in options:
        if opt.kind not in OPTION_KINDS:
            raise ClusterError(f"fleet option {opt.name!r}: kind {opt.kind!r}; expected one "
                               f"of {', '.join(OPTION_KINDS)}")
        if opt.chips_per_node < 1 or opt.capex_per_chip_usd < 0 or opt.power_per_chip_w < 0:
            raise ClusterError(f"fleet option {opt.name!r}: chips_per_node "
                               f"{opt.chips_per_node!r}, capex {opt.capex_per_chip_usd!r}, "
                               f"power {opt.power_per_chip_w!r}; expected >= 1, >= 0, >= 0")
    for work in rates:
        if not (work.demand > 0 and math.isfinite(work.demand)):
            raise ClusterError(f"workload {work.name!r}: demand {work.demand!r}; expected a "
                               "positive rate")
        if not 0 <= work.load_factor <= 1:
            raise ClusterError(f"workload {work.name!r}: load_factor {work.load_factor!r}; "
                               "expected a fraction in [0, 1]")
    for run in runs:
        if not 0 < run.deadline_days <= eco.horizon_days:
            raise ClusterError(f"workload {run.name!r}: deadline_days {run.deadline_days!r}; "
                               f"expected a day in (0, {eco.horizon_days:g}]")


def solve(options: Sequence[Option], rates: Sequence[RateWorkload] = (),
          runs: Sequence[DeadlineWorkload] = (), *, economics: Economics | None = None,
          power_cap_mw: float | None = None, time_limit_s: float = 30.0) -> Solution:
    """The cheapest fleet meeting every workload; a workload no fleet can meet is a
    ClusterError naming it (and why each option cannot, where the planner said)."""
    eco = economics or Economics()
    _check_inputs(options, rates, runs, eco)
    for work in [*rates, *runs]:
        _check_alone(work, options, power_cap_mw, eco)
    result = _milp(options, rates, runs, eco, power_cap_mw, time_limit_s)
    if result is None:
        raise ClusterError(_blame(options, rates, runs, eco, power_cap_mw, time_limit_s))
    return result


def _milp(options, rates, runs, eco, power_cap_mw, time_limit_s) -> Solution | None:
    lay = _Layout(options, rates, runs)
    if lay.size == 0:
        return _decode(options, rates, runs, eco, lay, np.zeros(0), 0.0)
    integrality = np.ones(lay.size)  # every variable is a count or a 0/1 choice
    res = milp(_costs(options, rates, runs, eco, lay),
               constraints=_constraints(options, rates, runs, eco, lay, power_cap_mw),
               integrality=integrality, bounds=Bounds(*_bounds(options, rates, runs, lay)),
               options={"time_limit": time_limit_s, "mip_rel_gap": 1e-6})
    if res.x is None:
        if res.status == 1:  # time limit with no feasible point
            raise ClusterError(f"fleet MILP: no feasible fleet found within {time_limit_s} s; "
                               "expected a smaller demand or fewer options")
        return None
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
    return _decode(options, rates, runs, eco, lay, np.round(res.x), gap)


def _check_alone(work, options, power_cap_mw, eco) -> None:
    """A workload that no single option can meet even alone, with reasons."""
    reasons = []
    for opt in options:
        if isinstance(work, RateWorkload):
            ok = _per_chip(work, opt) > 0 and _usable(opt, work.start_day)
            late = not _usable(opt, work.start_day)
        else:
            ok = _run_allowed(work, opt)
            late = work.deadline_days <= max(0.0, opt.arrival_day)
        if ok:
            return
        why = work.why_not.get(opt.name) or (
            f"arrives on day {opt.arrival_day:.0f}" if late else "not evaluated")
        reasons.append(f"{opt.name}: {why}")
    listed = "; ".join(reasons) if reasons else "no options"
    raise ClusterError(f"workload {work.name!r} cannot be met by any option ({listed})")


def _blame(options, rates, runs, eco, power_cap_mw, time_limit_s) -> str:
    """Add the workloads one at a time; the first that makes the fleet infeasible is named."""
    kept_rates: list[RateWorkload] = []
    kept_runs: list[DeadlineWorkload] = []
    for work in [*rates, *runs]:
        trial_rates = kept_rates + [work] if isinstance(work, RateWorkload) else kept_rates
        trial_runs = kept_runs + [work] if isinstance(work, DeadlineWorkload) else kept_runs
        if _milp(options, trial_rates, trial_runs, eco, power_cap_mw, time_limit_s) is None:
            limits = [f"{o.name} at most {o.max_chips} chips" for o in options
                      if o.max_chips is not None]
            if power_cap_mw is not None:
                limits.append(f"power cap {power_cap_mw:g} MW")
            shared = f" within {', '.join(limits)}" if limits else ""
            return (f"workload {work.name!r} cannot be met{shared} together with the "
                    f"workloads before it; expected a higher cap, more supply or less demand")
        kept_rates, kept_runs = trial_rates, trial_runs
    return "fleet MILP infeasible; expected a feasible demand"


def _decode(options, rates, runs, eco, lay, x, gap) -> Solution:
    allocs: list[Allocation] = []
    chips = {opt.name: 0 for opt in options}
    capex = energy = 0.0
    served = [0.0] * len(rates)  # each workload's capacity over all its options
    for (w, o), col in lay.n.items():
        served[w] += int(x[col]) * options[o].chips_per_node * _per_chip(rates[w], options[o])
    for (w, o), col in lay.n.items():
        nodes = int(x[col])
        if nodes == 0:
            continue
        opt, work = options[o], rates[w]
        n_chips = nodes * opt.chips_per_node
        busy = eco.idle_fraction + (1 - eco.idle_fraction) * work.load_factor
        e = n_chips * busy * _hours_owned(opt, eco) * _energy_usd_per_chip_hour(opt, eco)
        allocs.append(Allocation(work.name, opt.name, n_chips, n_chips * opt.capex_per_chip_usd,
                                 e, _mw(opt, n_chips, eco), work.demand / served[w]))
        chips[opt.name] += n_chips
        capex += n_chips * opt.capex_per_chip_usd
        energy += e
    for o, col in lay.t.items():
        nodes = int(x[col])
        if nodes:
            c, e = _pool(options[o], nodes, runs, lay, x, o, eco, allocs)
            chips[options[o].name] += nodes * options[o].chips_per_node
            capex, energy = capex + c, energy + e
    paid = tuple(options[o].name for o, col in lay.y.items() if x[col] > 0.5)
    nre = sum(o.nre_usd for o in options if o.name in paid)
    mw = sum(_mw(opt, chips[opt.name], eco) for opt in options)
    return Solution(tuple(allocs), chips, paid, capex, nre, energy, mw,
                    capex + nre + energy, gap)


def _pool(opt, nodes, runs, lay, x, o, eco, allocs) -> tuple[float, float]:
    """The training pool's cost, shared by its runs in proportion to their chip-hours."""
    n_chips = nodes * opt.chips_per_node
    mine = [r for r in range(len(runs)) if x[lay.a[r, o]] > 0.5]
    work = {r: runs[r].chip_hours[opt.name] for r in mine}
    total_work = sum(work.values())
    rate = _energy_usd_per_chip_hour(opt, eco)
    hours = _hours_owned(opt, eco)
    capex = n_chips * opt.capex_per_chip_usd
    energy = eco.idle_fraction * n_chips * hours * rate + \
        (1 - eco.idle_fraction) * total_work * rate
    last = max(runs[r].deadline_days for r in mine) if mine else 0.0
    pool_hours = n_chips * HOURS_PER_DAY * (last - max(0.0, opt.arrival_day))
    for r in mine:
        share = work[r] / total_work
        allocs.append(Allocation(runs[r].name, opt.name, n_chips, capex * share, energy * share,
                                 _mw(opt, n_chips, eco),
                                 total_work / pool_hours if pool_hours > 0 else math.nan))
    return capex, energy


def _mw(opt: Option, chips: int, eco: Economics) -> float:
    return chips * opt.power_per_chip_w * eco.pue / 1e6
