"""Evaluate one design point: its chip, silicon figures, workload throughput and power,
the constraints it breaks, and its objective values.

Runs in worker processes (or Ray workers): everything it needs travels in one picklable
:class:`EvalContext`; workload graphs are built once per process and reused, only the chip
changes from point to point.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import time
from dataclasses import dataclass, replace
from typing import Any

from chipforge.arch import ChipSpec
from chipforge.dse._cluster import cluster_serving_metrics, cluster_training_metrics
from chipforge.dse._design import design_chip, point_hash
from chipforge.dse._objectives import OBJECTIVES, needed_groups
from chipforge.dse._problem import EXPORT_TIERS, Problem
from chipforge.dse._serving import serving_metrics, training_metrics
from chipforge.errors import ChipforgeError
from chipforge.legal import (
    OUTCOMES,
    check_scenario,
    classify_3a090,
    cost_measure,
    default_as_of,
    interconnect_gb_s,
    scenario,
    supply_problems,
)


@dataclass(frozen=True)
class EvalContext:
    """What a worker needs to evaluate a point (sent once per task; small and picklable)."""

    problem: Problem

    @functools.cached_property
    def groups(self) -> frozenset[str]:
        return needed_groups(self.problem.settings.objectives)


@dataclass(frozen=True)
class Evaluation:
    hash: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    objective_values: list[float] | None  # None when the point could not be evaluated
    violations: list[str]
    constraint_values: list[float]  # <= 0 satisfied, one per constraint
    eval_s: float

    @property
    def feasible(self) -> bool:
        return self.objective_values is not None and not self.violations


def evaluate_point(ctx: EvalContext, point: dict[str, Any]) -> Evaluation:
    """Build the point's chip and evaluate it; a ChipforgeError makes a failed evaluation."""
    start = time.perf_counter()
    try:
        chip = design_chip(ctx.problem.space, ctx.problem.base_chip, point)
        metrics = chip_metrics(chip, ctx.problem, ctx.groups)
    except ChipforgeError as exc:
        return _failed(point, str(exc), start)
    except Exception as exc:  # a bug in a model must not stop a long search; it is stored
        return _failed(point, f"internal error: {type(exc).__name__}: {exc}", start)
    violations, values = check_constraints(metrics, ctx.problem)
    objective_values = [float(metrics[name]) for name in ctx.problem.settings.objectives]
    return Evaluation(point_hash(point), point, metrics, objective_values, violations, values,
                      time.perf_counter() - start)


def _failed(point: dict[str, Any], message: str, start: float) -> Evaluation:
    return Evaluation(point_hash(point), point, {"error": message}, None, [f"error: {message}"],
                      [1.0] * len(_CONSTRAINTS), time.perf_counter() - start)


def chip_metrics(chip: ChipSpec, problem: Problem, groups: frozenset[str]) -> dict[str, Any]:
    """Every metric of one chip (a design point or a catalog chip) on the problem."""
    from chipforge.cost import die_area, export_class, unit_cost

    area, cost, export = die_area(chip), unit_cost(chip), export_class(chip)
    links_gb_s = interconnect_gb_s(chip)
    m: dict[str, Any] = _legal_metrics(chip, problem)
    m.update({
        "chip": chip.name, "die_area_mm2": area.total_mm2, "logic_area_mm2": area.logic_mm2,
        "unit_cost_usd": cost.total_usd, "tpp": export.tpp, "pd": export.pd,
        "export_tier": classify_3a090(export.tpp, export.pd, legal_date(problem), links_gb_s),
        "interconnect_gb_s": links_gb_s, "tdp_w": chip.tdp_w,
        "memory_capacity_bytes": chip.memory.capacity_bytes,
    })
    powers = []
    workloads = problem.settings.workloads
    if "serving" in groups:
        m.update(serving_metrics(chip, workloads))
        powers.append(m["serving_power_w"])
    if "training" in groups:
        m.update(training_metrics(chip, workloads))
        powers.append(m["training_power_w"])
    if "cluster_training" in groups:
        m.update(cluster_training_metrics(chip, problem.space.base, workloads.cluster))
    if "cluster_serving" in groups:
        m.update(cluster_serving_metrics(chip, problem.space.base, workloads.cluster))
    # with no workload asked for, the TDP bounds the power
    m["power_w"] = max(powers) if powers else chip.tdp_w
    for kind in ("serving", "training"):
        if kind in groups:
            m[f"{kind}_tokens_per_s_per_usd"] = m[f"{kind}_tokens_per_s"] / cost.total_usd
    return m


def _legal_metrics(chip: ChipSpec, problem: Problem) -> dict[str, Any]:
    """The verdict under the problem's scenario (none: no legal metrics) and what the
    scenario does not let the chip be built with."""
    constraints = problem.settings.constraints
    name = constraints.scenario
    if name is None:
        return {}
    measured = cost_measure(chip)
    checked = measured  # a modelled count is checked with its margin, a published one as is
    if measured.transistors is not None and measured.transistor_source != "published":
        checked = replace(measured, transistors=measured.transistors
                          * (1 + constraints.transistor_margin))
    report = check_scenario(chip, name, measure=lambda _: checked)
    return {"legal_verdict": report.verdict,
            "legal_binding": " ".join(rule.rule_id for rule in report.binding),
            "transistors": measured.transistors,
            "supply_problems": "; ".join(supply_problems(chip, name))}


_CONSTRAINTS = ("die_area", "power", "export_tier", "memory_fit", "unit_cost", "legal",
                "supply")


def check_constraints(m: dict[str, Any], problem: Problem) -> tuple[list[str], list[float]]:
    """The constraints a chip breaks (messages) and Optuna's values (<= 0 satisfied)."""
    c = problem.settings.constraints
    power_cap_w = min(m["tdp_w"], c.max_power_w or math.inf)
    checked_tier = _tier_with_margin(m, c.export_pd_margin, legal_date(problem))
    tier, allowed = EXPORT_TIERS.index(checked_tier), EXPORT_TIERS.index(c.max_export_tier)
    fits = m.get("memory_fits", True) or not c.memory_fit
    cost_cap = c.max_unit_cost_usd or math.inf
    values = [m["die_area_mm2"] - c.max_die_area_mm2, m["power_w"] - power_cap_w,
              float(tier - allowed), 0.0 if fits else 1.0,
              m["unit_cost_usd"] - cost_cap if cost_cap < math.inf else -1.0,
              _verdict_excess(m, c.max_legal_verdict), 1.0 if m.get("supply_problems") else 0.0]
    broken = []
    if values[0] > 0:
        broken.append(f"die area {m['die_area_mm2']:.0f} mm2 > {c.max_die_area_mm2:g} mm2")
    if values[1] > 1e-9 * power_cap_w:
        broken.append(f"power {m['power_w']:.0f} W > {power_cap_w:g} W")
    if values[2] > 0:
        margin = (f" (at PD {m['pd']:.2f} x {1 + c.export_pd_margin:g} margin)"
                  if c.export_pd_margin else "")
        broken.append(f"export tier {checked_tier} beyond {c.max_export_tier}{margin}")
    if values[3] > 0:
        broken.append(f"memory: {m.get('memory_note', 'the model does not fit')}")
    if values[4] > 0:
        broken.append(f"unit cost ${m['unit_cost_usd']:.0f} > ${cost_cap:g}")
    if values[5] > 0:
        broken.append(f"legal ({c.scenario}): {m['legal_verdict']} beyond "
                      f"{c.max_legal_verdict} (binding: {m['legal_binding']})")
    if values[6] > 0:
        broken.append(f"supply ({c.scenario}): {m['supply_problems']}")
    return broken, values


def _tier_with_margin(m: dict[str, Any], margin: float, as_of: dt.date) -> str:
    if not margin:
        return m["export_tier"]
    return classify_3a090(m["tpp"], m["pd"] * (1 + margin), as_of, m.get("interconnect_gb_s"))


def _verdict_excess(m: dict[str, Any], allowed: str) -> float:
    if "legal_verdict" not in m:
        return 0.0
    return float(OUTCOMES.index(m["legal_verdict"]) - OUTCOMES.index(allowed))


def legal_date(problem: Problem) -> dt.date:
    """The date the export rules are read on: the problem's scenario's, else the default
    scenario's (chipforge.legal)."""
    name = problem.settings.constraints.scenario
    return scenario(name).as_of if name else default_as_of()


def objective_directions(problem: Problem) -> list[str]:
    return [OBJECTIVES[n].direction for n in problem.settings.objectives]
