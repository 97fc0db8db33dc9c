"""LLM training plans: the best parallel layout of a model on a system, with goodput, days,
chip-hours, energy and dollars (docs/cluster.md, "LLM training plans").

``train_plan`` resolves the model and the system (a chip count, or a budget in $ or MW),
searches the plans (``_train_search``), and prices the best ones: the capital of the
system amortized over the run's wall time plus the facility energy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chipforge.arch import ChipSpec
from chipforge.cluster._goodput import (
    CHECKPOINT_BYTES_PER_PARAM,
    FailureModel,
    Goodput,
    daly_interval_s,
    goodput,
    useful_fraction,
)
from chipforge.cluster._system import MAX_CHIPS, System, system
from chipforge.cluster._train_job import Parallelism, StepEstimate, TrainJob
from chipforge.cluster._train_model import evaluate_plan, model_flops_per_step
from chipforge.cluster._train_search import Evaluate, Progress, SearchResult, search_plans
from chipforge.cluster._train_validation import (
    TrainRow,
    training_validation,
    training_validation_table,
)
from chipforge.cost import TcoAssumptions
from chipforge.errors import ChipforgeError, ClusterError
from chipforge.workloads import LLMConfig, load_llm_config

SECONDS_PER_YEAR = 365.25 * 86_400.0  # Julian year, as chipforge.cost amortizes
JOULES_PER_KWH = 3.6e6
JOULES_PER_MWH = 3.6e9


@dataclass(frozen=True)
class TrainPlan:
    """One plan priced for the whole run on ``chips`` chips (``step`` uses all of them)."""

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
                "fits": e.fits, "step_time_s": e.step_time_s, "tokens_per_s": e.tokens_per_s,
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


@dataclass(frozen=True)
class TrainPlanResult:
    """The best plan, the next best ones, and how the search went."""

    plans: list[TrainPlan]
    system: System
    job: TrainJob
    evaluated: int
    search_s: float
    tp_beyond_scale_up: bool
    assumptions: dict[str, str] = field(default_factory=dict)

    @property
    def plan(self) -> TrainPlan:
        return self.plans[0]


def resolve_model(model: str | LLMConfig) -> LLMConfig:
    if isinstance(model, LLMConfig):
        return model
    if isinstance(model, str):
        return load_llm_config(model)
    raise ClusterError(f"model: {model!r}; expected a config name or an LLMConfig")


def _system_of(chip: str | ChipSpec | System, chips: int) -> System:
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
    reference = _system_of(chip, 1)  # no network yet: the lowest price and power per chip
    most = min(_affordable(reference, budget_usd, budget_mw, a), MAX_CHIPS)
    if most >= 1:
        node = _system_of(chip, most).chips_per_node
        # price and power per chip only grow with the count (more switch tiers), so the
        # affordable whole-node counts are a prefix: bisect for its end
        low, high = 0, most // node
        while low < high:
            mid = (low + high + 1) // 2
            if _affordable(_system_of(chip, mid * node), budget_usd, budget_mw, a) >= mid * node:
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
    good = goodput(sys.chip, sys.chips, ckpt, failures)
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


def train_plan(model: str | LLMConfig, chip: str | ChipSpec | System, *, count: int | None = None,
               budget_usd: float | None = None, budget_mw: float | None = None,
               tokens: float, seq_len: int = 8192, global_batch_tokens: float = 16e6,
               dtype: str = "bf16", top: int = 10, progress: Progress | None = None,
               use_ray: bool = False, store: Path | None = None, workers: int = 1,
               tco: TcoAssumptions | None = None, failures: FailureModel | None = None,
               evaluate: Evaluate | None = None) -> TrainPlanResult:
    """The best plans to train ``model`` on ``tokens`` tokens with ``chip``'s system.

    The chip count is ``count``, the System's own (a System passed as ``chip``), or what
    ``budget_usd`` / ``budget_mw`` buys. Raises ClusterError when no plan fits in memory.
    """
    import time

    cfg = resolve_model(model)
    sys = _resolve_system(chip, count, budget_usd, budget_mw, tco)
    job = _job(cfg, tokens, seq_len, global_batch_tokens, dtype)
    start = time.perf_counter()
    found = search_plans(job, sys, top=top, progress=progress, use_ray=use_ray, store=store,
                         workers=workers, evaluate=evaluate)
    elapsed = time.perf_counter() - start
    if not found.plans[0].fits:
        raise _no_fit(cfg, sys, found)
    plans = [price_plan(e, _with_batch(job, e), sys, tco=tco, failures=failures)
             for e in found.plans]
    return TrainPlanResult(plans, sys, job, found.evaluated, elapsed, found.tp_beyond_scale_up,
                           _assumption_notes(tco))


def _with_batch(job: TrainJob, e: StepEstimate) -> TrainJob:
    from dataclasses import replace

    seqs = round(e.extras.get("global_batch_tokens", job.global_batch_tokens) / job.seq_len)
    return replace(job, global_batch_seqs=seqs)


def _job(cfg: LLMConfig, tokens: float, seq_len: int, batch_tokens: float,
         dtype: str) -> TrainJob:
    if not _finite(batch_tokens) or batch_tokens < seq_len:
        raise ClusterError(f"global_batch_tokens: {batch_tokens!r}; expected at least one "
                           f"sequence of seq_len={seq_len!r} tokens")
    return TrainJob(cfg, tokens, seq_len, max(1, round(batch_tokens / seq_len)), dtype)


def _resolve_system(chip: str | ChipSpec | System, count: int | None, budget_usd: float | None,
                    budget_mw: float | None, tco: TcoAssumptions | None) -> System:
    budgeted = budget_usd is not None or budget_mw is not None
    if count is not None and budgeted:
        raise ClusterError(f"count={count!r} with a budget; expected a chip count or a "
                           "budget, not both")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ClusterError(f"count: {count!r}; expected a positive number of chips")
        return _system_of(chip, count)
    if budgeted:
        return _system_of(chip, chips_for_budget(chip, budget_usd=budget_usd,
                                                 budget_mw=budget_mw, tco=tco))
    if isinstance(chip, System):
        return chip
    raise ClusterError(f"chip {getattr(chip, 'name', chip)!r}: no count; expected count, "
                       "budget_usd, budget_mw or a System")


def _no_fit(cfg: LLMConfig, sys: System, found: SearchResult) -> ClusterError:
    need = found.smallest_memory
    assert need is not None
    return ClusterError(
        f"model {cfg.name or 'config'!r} on {sys.chips} x {sys.chip.name}: no plan fits in "
        f"memory; the smallest need is {need.memory_bytes / 1e9:.1f} GB per chip "
        f"({need.plan.describe()}) against {need.memory_capacity_bytes / 1e9:.1f} GB usable; "
        "expected more chips, chips with more memory, or a shorter sequence")


def _assumption_notes(tco: TcoAssumptions | None) -> dict[str, str]:
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


@dataclass(frozen=True)
class FleetComparison:
    """Another chip's fleet bought with the same capital: its best plan, or why none."""

    chip: str
    chips: int
    verdict: str | None  # export verdict under the scenario (chipforge.legal); None: unknown
    plan: TrainPlan | None
    error: str | None


def compare_on_budget(result: TrainPlanResult, chips: Sequence[str], *,
                      scenario: str | None = None, progress: Progress | None = None,
                      **search: Any) -> list[FleetComparison]:
    """Each of ``chips`` bought with the capital of ``result``'s system (price per chip x
    chips) and planned for the same job; a chip whose fleet fits no plan carries the error.
    ``scenario`` (a chipforge.legal scenario name) adds each chip's export verdict."""
    budget = result.system.chips * result.system.price_per_chip_usd
    job = result.job
    rows = []
    for i, name in enumerate(chips):
        verdict = _verdict(name, scenario)
        try:
            count = chips_for_budget(name, budget_usd=budget)
            other = train_plan(job.model, name, count=count, tokens=job.tokens,
                               seq_len=job.seq_len, global_batch_tokens=job.global_batch_tokens,
                               dtype=job.dtype, top=1, **search)
            rows.append(FleetComparison(name, count, verdict, other.plan, None))
        except ChipforgeError as exc:
            rows.append(FleetComparison(name, 0, verdict, None, str(exc)))
        if progress is not None:
            progress(i + 1, len(chips))
    return rows


def _verdict(chip: str, scenario: str | None) -> str | None:
    if scenario is None:
        return None
    from chipforge.arch import load_chip
    from chipforge.legal import check_scenario

    try:
        return check_scenario(load_chip(chip), scenario).verdict
    except ChipforgeError:  # a chip the rules cannot measure: say unknown, not allowed
        return None


# the step model, its validation and the goodput model are public through this module
__all__ = ["FailureModel", "FleetComparison", "Goodput", "Parallelism", "SearchResult",
           "StepEstimate", "TrainJob", "TrainPlan", "TrainPlanResult", "TrainRow",
           "chips_for_budget", "compare_on_budget", "daly_interval_s", "evaluate_plan",
           "goodput", "model_flops_per_step", "price_plan", "search_plans", "train_plan",
           "training_validation", "training_validation_table", "useful_fraction"]
