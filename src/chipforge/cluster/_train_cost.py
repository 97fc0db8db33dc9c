"""Pricing a training plan: goodput, days, chip-hours, energy and dollars; and the chip
count a budget buys (docs/cluster.md, "Plan search, goodput and cost")."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from chipforge.arch import ChipSpec
from chipforge.cluster._goodput import CHECKPOINT_BYTES_PER_PARAM, FailureModel, Goodput, goodput
from chipforge.cluster._system import MAX_CHIPS, System, system
from chipforge.cluster._train_job import Parallelism, StepEstimate, TrainJob
from chipforge.cost import TcoAssumptions
from chipforge.errors import ClusterError

SECONDS_PER_YEAR = 365.25 * 86_400.0  # Julian year, as chipforge.cost amortizes
JOULES_PER_KWH = 3.6e6
JOULES_PER_MWH = 3.6e9


@dataclass(frozen=True)
class TrainPlan:
    """One plan priced for the whole run on ``chips`` chips (``step`` runs on
    ``chips_used`` of them)."""

    model: str
    chip: str
    chips: int
    step: StepEstimate
    tokens: float
    failures: Goodput
    days: float  # wall clock, failures and restarts included
    chip_hours: float  # chips x wall hours
    energy_j: float  # facility energy (PUE included) over the wall time
    cost_parts: dict[str, float]
    mw: float  # facility power of the system (PUE included)

    @property
    def parallelism(self) -> Parallelism:
        return self.step.plan

    @property
    def chips_used(self) -> int:
        """Chips the plan runs on; the rest of ``chips`` idle as spares (still paid)."""
        return self.step.chips

    @property
    def step_time_s(self) -> float:
        return self.step.step_time_s

    @property
    def mfu(self) -> float:
        return self.step.mfu

    @property
    def hfu(self) -> float:
        return self.step.hfu

    @property
    def memory(self) -> dict[str, float]:
        return self.step.memory

    @property
    def memory_bytes(self) -> float:
        return self.step.memory_bytes

    @property
    def fits(self) -> bool:
        return self.step.fits

    @property
    def tokens_per_s(self) -> float:
        return self.step.tokens_per_s

    @property
    def goodput(self) -> float:
        return self.failures.fraction

    @property
    def energy_mwh(self) -> float:
        return self.energy_j / JOULES_PER_MWH

    @property
    def cost_usd(self) -> float:
        return sum(self.cost_parts.values())

    def as_dict(self) -> dict[str, Any]:
        """Every figure in SI units (what ``chipforge train-plan --json`` prints)."""
        e = self.step
        return {"plan": e.plan.describe(), "parallelism": asdict(e.plan), "chips": self.chips,
                "chips_used": self.chips_used, "fits": e.fits,
                "step_time_s": e.step_time_s, "tokens_per_s": e.tokens_per_s,
                "global_batch_tokens": e.extras.get("global_batch_tokens"),
                "mfu": e.mfu, "hfu": e.hfu, "memory_bytes": e.memory_bytes,
                "memory": dict(e.memory), "memory_capacity_bytes": e.memory_capacity_bytes,
                "step_breakdown_s": dict(e.breakdown), "goodput": self.goodput,
                "mtbf_s": self.failures.mtbf_s,
                "checkpoint_interval_s": self.failures.checkpoint_interval_s,
                "checkpoint_write_s": self.failures.checkpoint_write_s,
                "restart_s": self.failures.restart_s, "days": self.days,
                "chip_hours": self.chip_hours, "energy_mwh": self.energy_mwh,
                "cost_usd": self.cost_usd, "cost_parts_usd": dict(self.cost_parts),
                "mw": self.mw}


def system_of(chip: str | ChipSpec | System, chips: int) -> System:
    if isinstance(chip, System):
        return system(chip.chip, chips, preset=chip.name)
    return system(chip, chips)


def chips_for_budget(chip: str | ChipSpec | System, *, budget_usd: float | None = None,
                     budget_mw: float | None = None,
                     tco: TcoAssumptions | None = None) -> int:
    """Whole nodes of the chip's system that the budget buys: capital at the system's price
    per chip, and/or facility power at its power per chip times the PUE; the tighter wins."""
    a = tco or TcoAssumptions()
    for name, value in (("budget_usd", budget_usd), ("budget_mw", budget_mw)):
        if value is not None and (not _finite(value) or value <= 0):
            raise ClusterError(f"{name}: {value!r}; expected a positive number")
    if budget_usd is None and budget_mw is None:
        raise ClusterError("chips_for_budget: expected budget_usd or budget_mw")
    reference = system_of(chip, 1)  # no network yet: the lowest price and power per chip
    most = min(_affordable(reference, budget_usd, budget_mw, a), MAX_CHIPS)
    if most >= 1:
        node = system_of(chip, most).chips_per_node
        # price and power per chip only grow with the count (more switch tiers), so the
        # affordable whole-node counts are a prefix: bisect for its end
        low, high = 0, most // node
        while low < high:
            mid = (low + high + 1) // 2
            if _affordable(system_of(chip, mid * node), budget_usd, budget_mw, a) >= mid * node:
                low = mid
            else:
                high = mid - 1
        if low:
            return low * node  # (less than a node's worth: node == most, one partial node)
    raise ClusterError(f"budget: budget_usd={budget_usd!r}, budget_mw={budget_mw!r} buys "
                       f"no {reference.chip.name} (one costs ${reference.price_per_chip_usd:,.0f}"
                       f" with its host share and draws {reference.power_per_chip_w * a.pue:,.0f}"
                       " W with PUE); expected a larger budget")


def _affordable(sys: System, budget_usd: float | None, budget_mw: float | None,
                a: TcoAssumptions) -> int:
    counts = []  # (1 + 1e-12): a budget of exactly n chips' price buys n despite rounding
    if budget_usd is not None:
        counts.append(math.floor(budget_usd / sys.price_per_chip_usd * (1 + 1e-12)))
    if budget_mw is not None:
        counts.append(math.floor(budget_mw * 1e6 / (sys.power_per_chip_w * a.pue) * (1 + 1e-12)))
    return min(counts)


def price_plan(step: StepEstimate, job: TrainJob, sys: System, *,
               tco: TcoAssumptions | None = None,
               failures: FailureModel | None = None) -> TrainPlan:
    """Days, chip-hours, energy and $ of training ``job.tokens`` with ``step``'s plan."""
    a = tco or TcoAssumptions()
    ckpt = job.model.param_count() * CHECKPOINT_BYTES_PER_PARAM
    # the job spans the chips its plan uses; idle ones (spares) do not stop it, but are paid
    good = goodput(sys.chip, step.chips, ckpt, failures)
    useful_s = job.tokens / step.tokens_per_s
    wall_s = useful_s / good.fraction
    facility_w = sys.chips * sys.power_per_chip_w * a.pue
    energy_j = facility_w * wall_s
    # assumption: the system is bought for a lifetime of runs, so a run pays the share of
    # its capital its wall time is of the lifetime (TcoAssumptions.lifetime_years); the
    # utilization factor is not applied: the failures it stands for are in the goodput
    capital = sys.chips * sys.price_per_chip_usd * wall_s / (a.lifetime_years * SECONDS_PER_YEAR)
    parts = {"capital (amortized)": capital, "energy": energy_j * a.usd_per_kwh / JOULES_PER_KWH}
    return TrainPlan(job.model.name, sys.chip.name, sys.chips, step, job.tokens, good,
                     wall_s / 86_400.0, sys.chips * wall_s / 3600.0, energy_j, parts,
                     facility_w / 1e6)


def assumption_notes(tco: TcoAssumptions | None) -> dict[str, str]:
    a = tco or TcoAssumptions()
    return {"capital": f"system price per chip x chips x wall time / {a.lifetime_years:g}-year "
                       "life (chipforge.cost TcoAssumptions.lifetime_years)",
            "energy": f"system power per chip x chips x wall time x PUE {a.pue:g} at "
                      f"${a.usd_per_kwh:g}/kWh (TcoAssumptions)",
            "goodput": "Llama 3 interruption rates per chip and per HBM byte, Daly's "
                       "checkpoint interval"}


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


__all__ = ["TrainPlan", "chips_for_budget", "price_plan"]
