"""Each workload's coefficient on each option, from the planners: requests/s per chip within
the SLO (serve_plan), chip-hours of a pre-training run at a chip count (train_plan), samples/s
per chip (dlrm_train_plan) and queries/s per chip within the p99 bound (dlrm_inference_plan).

The planners take seconds to minutes each, so the coefficients are computed as independent
tasks (``run_tasks``: in this process, local processes or Ray), remembered for the session,
and with a store appended to a JSON-lines file that a rerun reads back.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipforge.arch import load_chip
from chipforge.cluster._fleet_demand import (
    PretrainingRun,
    RecsysInference,
    RecsysTraining,
    ServingTraffic,
)
from chipforge.cluster._fleet_model import HOURS_PER_DAY, Option
from chipforge.cluster._models import resolve_model
from chipforge.cluster._runner import run_tasks
from chipforge.errors import ChipforgeError, ClusterError

# assumption: a large-scale run's MFU, only to pick the first chip count a run is planned at
# (Llama 3 405B reached 38-43% on 16k H100s, Llama 3 paper, 2024); the plan at that count
# then gives the chip-hours, and the fleet MILP re-plans if its pool leaves the bracket
FIRST_GUESS_MFU = 0.35
# assumption: the global batch of DLRM training, MLPerf DLRM-DCNv2's 64k-sample class of
# batches (submissions use 55,296-65,536)
RECSYS_GLOBAL_BATCH = 65_536
RECSYS_FIRST_CHIPS = 64  # the first size a recsys training plan is tried at
_KINDS = {"serving": ServingTraffic, "pretraining": PretrainingRun,
          "recsys-training": RecsysTraining, "recsys-inference": RecsysInference}


@dataclass(frozen=True)
class Coefficient:
    """A workload on one option: ``value`` (units/s per chip for a rate workload, chip-hours
    for a run on ``chips`` chips), or ``why_not`` when it cannot run there."""
    value: float | None
    chips: int = 1  # the chip count the value was computed at
    why_not: str | None = None


Provider = Callable[[Any, Option, int | None], Coefficient]


def _kind(work: Any) -> str:
    return next(k for k, cls in _KINDS.items() if isinstance(work, cls))


# the fields a planner's answer depends on (not the name, the source or the start day; the
# serving rate only sizes serve_plan's fleet, not its rate per chip)
_PLANNED = {"serving": {"model", "input_len", "output_len", "slo"},
            "pretraining": {"model", "tokens", "seq_len", "global_batch_tokens",
                            "deadline_days"},
            "recsys-training": {"model", "samples_per_day"},
            "recsys-inference": {"model", "qps_peak", "items_per_query", "p99_s"}}


def task_key(work: Any, chip: str, hint: int, per_node: int) -> str:
    kind = _kind(work)
    body = work.model_dump_json(include=_PLANNED[kind])
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    return f"{kind}:{work.model}:{chip}:{hint}:{per_node}:{digest}"


def coefficient_task(arg: tuple[str, str, str, int, int]) -> dict:
    """One coefficient as a JSON-able dict (run_tasks' task function)."""
    kind, body, chip, hint, per_node = arg
    work = _KINDS[kind].model_validate_json(body)
    try:
        c = _compute(work, chip, hint, per_node)
    except ChipforgeError as exc:  # does not fit, misses the SLO, ...: the option cannot
        c = Coefficient(None, hint or 1, str(exc))
    return {"value": c.value, "chips": c.chips, "why_not": c.why_not}


class PlannerCoefficients:
    """The planners' coefficients, computed in batches (``prefetch``) and remembered."""

    def __init__(self, store: Path | None = None, workers: int = 1, use_ray: bool = False,
                 progress: str | None = None) -> None:
        self.store, self.workers, self.use_ray, self.progress = store, workers, use_ray, \
            progress
        self._memo: dict[str, Coefficient] = {}

    def prefetch(self, needs: Iterable[tuple[Any, Option, int | None]]) -> None:
        tasks: dict[str, tuple] = {}
        for work, opt, hint in needs:
            key = task_key(work, opt.chip, hint or 0, opt.chips_per_node)
            if key not in self._memo:
                tasks[key] = (_kind(work), work.model_dump_json(), opt.chip, hint or 0,
                              opt.chips_per_node)
        if not tasks:
            return
        done = run_tasks(coefficient_task, list(tasks.items()), store=self.store,
                         use_ray=self.use_ray, workers=self.workers, progress=self.progress)
        for key, d in done.items():
            self._memo[key] = Coefficient(d["value"], int(d["chips"]), d["why_not"])

    def __call__(self, work: Any, option: Option, hint: int | None) -> Coefficient:
        key = task_key(work, option.chip, hint or 0, option.chips_per_node)
        if key not in self._memo:
            self.prefetch([(work, option, hint)])
        return self._memo[key]


def prefetch(provider: Provider, works: Sequence[Any], options: Sequence[Option],
             hints: dict[tuple[str, str], int]) -> None:
    """Compute every (workload, option) coefficient at once where the provider batches."""
    batch = getattr(provider, "prefetch", None)
    if batch is not None:
        batch([(w, o, hints.get((w.name, o.name))) for w in works for o in options])


def _compute(work: Any, chip: str, hint: int, per_node: int) -> Coefficient:
    if isinstance(work, ServingTraffic):
        return _serving(work, chip)
    if isinstance(work, PretrainingRun):
        return _pretraining(work, chip, hint, per_node)
    if isinstance(work, RecsysInference):
        return _recsys_inference(work, chip)
    return _recsys_training(work, chip, per_node)


def _serving(work: ServingTraffic, chip: str) -> Coefficient:
    from chipforge.cluster._serve import serve_plan

    plan = serve_plan(work.model, chip, rate=work.peak_rate_per_s, slo_ttft_s=work.slo.ttft_s,
                      slo_tpot_s=work.slo.tpot_s, percentile=work.slo.percentile,
                      input_len=work.input_len, output_len=work.output_len)
    return Coefficient(float(plan.max_rate_per_chip), int(plan.best.chips_per_unit))


def _pretraining(work: PretrainingRun, chip: str, hint: int, per_node: int) -> Coefficient:
    from chipforge.cluster._train import train_plan

    chips = hint or first_guess_chips(work, chip, per_node)
    result = train_plan(work.model, chip, count=chips, tokens=work.tokens, seq_len=work.seq_len,
                        global_batch_tokens=work.global_batch_tokens)
    return Coefficient(float(result.plan.chip_hours), chips)


def first_guess_chips(work: PretrainingRun, chip: str, per_node: int) -> int:
    """Whole nodes that would finish the run by its deadline at FIRST_GUESS_MFU."""
    cfg = resolve_model(work.model)
    # source: Kaplan et al. 2020, training compute C = 6 N D (N active parameters)
    flops = 6.0 * cfg.active_param_count() * work.tokens
    peak = load_chip(chip).peak_flops("bf16")
    chips = flops / (peak * FIRST_GUESS_MFU * work.deadline_days * HOURS_PER_DAY * 3600)
    return plannable_chips(chips, per_node)


def plannable_chips(chips: float, per_node: int) -> int:
    """The smallest count >= ``chips`` of whole nodes times 2**k or 3 x 2**k: a count that
    splits into tensor, pipeline and data parallel groups (an arbitrary count such as 27,256
    leaves no layout that keeps the global batch)."""
    nodes = max(1, math.ceil(chips / per_node))
    power = 1 << max(0, (nodes - 1).bit_length())  # the power of two >= nodes
    return per_node * min(power, 3 * power // 4 if 3 * power // 4 >= nodes else power)


def _recsys_inference(work: RecsysInference, chip: str) -> Coefficient:
    from chipforge.cluster._recsys import dlrm_inference_plan

    plan = dlrm_inference_plan(_dlrm_model(work.model), chip, qps=work.qps_peak,
                               p99_s=work.p99_s, items_per_query=work.items_per_query)
    return Coefficient(work.qps_peak / int(plan.chips), int(plan.chips))


def _recsys_training(work: RecsysTraining, chip: str, per_node: int) -> Coefficient:
    """Samples/s per chip at the size that meets the demand (planned twice: at a first size,
    then at the whole nodes its rate says the demand needs)."""
    from chipforge.cluster._recsys import dlrm_train_plan

    model = _dlrm_model(work.model)
    need = work.samples_per_day / 86_400.0
    chips = per_node * max(1, math.ceil(RECSYS_FIRST_CHIPS / per_node))
    for _ in range(2):
        plan = dlrm_train_plan(model, chip, global_batch=RECSYS_GLOBAL_BATCH, chips=chips)
        per_chip = float(plan.samples_per_s) / int(plan.chips)
        chips = per_node * max(1, math.ceil(need / per_chip / per_node))
    return Coefficient(per_chip, int(plan.chips))


def _dlrm_model(model: dict[str, Any]) -> Any:
    from chipforge.cluster._recsys import dlrm_spec

    spec = dict(model)
    try:
        return dlrm_spec(spec.pop("preset", "mlperf-dlrm-dcnv2"), **spec)
    except ChipforgeError as exc:
        raise ClusterError(f"recommendation model {model!r}: {exc}") from None
