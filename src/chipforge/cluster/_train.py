"""LLM training plans: the best parallel layout of a model on a system, with goodput, days,
chip-hours, energy and dollars (docs/cluster.md, "LLM training plans").

``train_plan`` resolves the model and the system (a chip count, or a budget in $ or MW),
searches the plans (``_train_search``) and prices the best ones (``_train_cost``): the
capital of the system amortized over the run's wall time plus the facility energy.
``compare_on_budget`` buys other chips' fleets with the same capital; ``train_sweep`` plans
one model over chip counts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chipforge.arch import ChipSpec
from chipforge.cluster._goodput import (
    FailureModel,
    Goodput,
    daly_interval_s,
    goodput,
    useful_fraction,
)
from chipforge.cluster._models import resolve_model
from chipforge.cluster._runner import run_tasks
from chipforge.cluster._system import System, purchase_verdict
from chipforge.cluster._train_cost import (
    TrainPlan,
    assumption_notes,
    chips_for_budget,
    price_plan,
    system_of,
)
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
from chipforge.workloads import LLMConfig


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
                           assumption_notes(tco))


def _with_batch(job: TrainJob, e: StepEstimate) -> TrainJob:
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
        return system_of(chip, count)
    if budgeted:
        return system_of(chip, chips_for_budget(chip, budget_usd=budget_usd,
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
        verdict = purchase_verdict(name, scenario)
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



@dataclass(frozen=True)
class SweepPoint:
    """The best plan at one chip count (``TrainPlan.as_dict()``), or why there is none."""

    chips: int
    plan: dict[str, Any] | None
    error: str | None


def _plan_at(arg: tuple) -> dict:
    cfg, chip, count, tokens, seq_len, batch_tokens, dtype = arg
    try:
        result = train_plan(cfg, chip, count=count, tokens=tokens, seq_len=seq_len,
                            global_batch_tokens=batch_tokens, dtype=dtype, top=1)
    except ClusterError as exc:  # nothing fits, or no layout: the point says so
        return {"chips": count, "plan": None, "error": str(exc)}
    return {"chips": count, "plan": result.plan.as_dict(), "error": None}


def train_sweep(model: str | LLMConfig, chip: str, counts: Sequence[int], *, tokens: float,
                seq_len: int = 8192, global_batch_tokens: float = 16e6, dtype: str = "bf16",
                use_ray: bool = False, workers: int = 1, store: Path | None = None,
                progress: str | None = None) -> list[SweepPoint]:
    """The best plan of ``model`` on ``chip``'s system at each of ``counts`` chips (time to
    train and MFU versus scale), one ``run_tasks`` task per count: local processes, Ray,
    resumable with ``store``."""
    cfg = resolve_model(model)
    if not isinstance(chip, str):
        raise ClusterError(f"train_sweep: chip={chip!r}; expected a chip name")
    if not counts or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                         for c in counts):
        raise ClusterError(f"train_sweep: counts={list(counts)!r}; expected positive ints")
    key = f"{cfg!r}|{chip}|{tokens!r}|{seq_len}|{global_batch_tokens!r}|{dtype}"
    tasks = [(f"{key}|{count}", (cfg, chip, count, tokens, seq_len, global_batch_tokens,
                                 dtype)) for count in dict.fromkeys(counts)]
    results = run_tasks(_plan_at, tasks, store=store, use_ray=use_ray, workers=workers,
                        progress=progress)
    return [SweepPoint(r["chips"], r["plan"], r["error"]) for r in results.values()]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


# the step model, its validation, the goodput model and the pricing are public here
__all__ = ["FailureModel", "FleetComparison", "Goodput", "Parallelism", "SearchResult",
           "StepEstimate", "SweepPoint", "TrainJob", "TrainPlan", "TrainPlanResult",
           "TrainRow", "chips_for_budget", "compare_on_budget", "daly_interval_s",
           "evaluate_plan", "goodput", "model_flops_per_step", "price_plan", "search_plans",
           "train_plan", "train_sweep", "training_validation", "training_validation_table",
           "useful_fraction"]
