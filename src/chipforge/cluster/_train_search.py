"""The plan search: every parallel layout of a training job on a system, pruned by physics,
best first (docs/cluster.md, "Plan search, goodput and cost").

A *shape* fixes the degrees (TP, PP, CP, DP, EP), the micro-batch and the pipeline schedule.
Within a shape the memory savers are tried as a staircase: ZeRO 1 -> 2 -> 3 and recompute
none -> selective -> full each only cost time and only save memory, so once a (zero,
recompute) pair fits, no pair that is at least as high on both can be faster and none is
evaluated. TP beyond the scale-up domain is tried only when nothing fits inside it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from chipforge.cluster._runner import run_tasks
from chipforge.cluster._system import system as make_system
from chipforge.cluster._train_job import RECOMPUTE, Parallelism, StepEstimate, TrainJob
from chipforge.cluster._train_model import check_plan, evaluate_plan
from chipforge.cluster._train_ops import attention_style
from chipforge.errors import ClusterError

Evaluate = Callable[[TrainJob, Any, Parallelism], StepEstimate]
Progress = Callable[[int, int], None]

ZERO_LEVELS = (1, 2, 3)  # ZeRO-0 is left out: ZeRO-1 moves the same bytes (a reduce-
# scatter plus an all-gather is one all-reduce; Rajbhandari et al. 2020 Sec. 7) and holds less
MICRO_BATCHES = (1, 2, 4, 8)
# assumption: the global batch may move to the nearest multiple of dp x micro_batch
# sequences within 10%: loss per token is flat near the critical batch size (McCandlish et
# al. 2018), and published runs round their batch the same way (Llama 3: 16M -> 2^24 tokens)
BATCH_TOLERANCE = 0.10
# assumption: beyond 8 chunks a stage the bubble (p-1)/v is already small against the 2v
# stage crossings each micro-batch adds; larger v are kept where they split the layers evenly
MAX_V = 8
# assumption: a plan may leave up to 1% of the chips idle (they serve as hot spares, which
# Llama 3's automated recovery relies on), so a count like 32,176 = 16 x 2,011 is not
# forced into the few layouts that divide it exactly; idle chips are still paid for
IDLE_FRACTION = 0.01
# the modules whose code decides a step estimate (hashed into the store's keys)
_STEP_MODEL_MODULES = ("chipforge.cluster._train_model", "chipforge.cluster._train_ops",
                       "chipforge.cluster._train_memory", "chipforge.cluster._collective_model",
                       "chipforge.cluster._system")
MAX_CP = 16  # assumption: context parallelism beyond 16 ranks is for sequences >> 100k tokens


@dataclasses.dataclass(frozen=True)
class Shape:
    """A plan without its memory savers (ZeRO level and recompute)."""

    tp: int
    pp: int
    cp: int
    dp: int
    ep: int
    micro_batch: int
    schedule: str
    virtual_stages: int
    global_batch_seqs: int  # the batch this shape runs (a multiple of dp x micro_batch)

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    def plan(self, zero: int, recompute: str) -> Parallelism:
        return Parallelism(tp=self.tp, pp=self.pp, dp=self.dp, cp=self.cp, ep=self.ep,
                           micro_batch=self.micro_batch, schedule=self.schedule,
                           virtual_stages=self.virtual_stages, zero=zero,
                           recompute=recompute, sequence_parallel=self.tp > 1)


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Fitting plans best first (fastest step per token), then the best plan that does not
    fit (``fits`` False) when none does; with the count of plans evaluated."""

    plans: list[StepEstimate]
    evaluated: int
    smallest_memory: StepEstimate | None  # the evaluated plan with the least memory per chip
    tp_beyond_scale_up: bool  # True when nothing fit with TP inside the scale-up domain

    # a sequence of the ranked plans, as the interface's "list of StepEstimate, best first"
    def __len__(self) -> int:
        return len(self.plans)

    def __iter__(self) -> Iterator[StepEstimate]:
        return iter(self.plans)

    def __getitem__(self, index: int) -> StepEstimate:
        return self.plans[index]


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _batch_for(job: TrainJob, dp: int, micro_batch: int, pp: int, schedule: str) -> int | None:
    """The global batch (sequences) of a shape, or None when no multiple of dp x micro_batch
    lies within BATCH_TOLERANCE of the job's batch."""
    per_micro = dp * micro_batch
    micro = max(1, round(job.global_batch_seqs / per_micro))
    if schedule == "interleaved" and micro % pp:  # Megatron-LM: microbatches % pp == 0
        micro = max(pp, round(micro / pp) * pp)
    batch = micro * per_micro
    if abs(batch - job.global_batch_seqs) > BATCH_TOLERANCE * job.global_batch_seqs:
        return None
    return batch


def _schedules(layers: int, pp: int) -> Iterator[tuple[str, int]]:
    yield "1f1b", 1
    if pp > 1:  # interleaved: v model chunks per stage, at least a layer each
        per_stage = layers // pp
        even = divisors(per_stage) if layers % pp == 0 else []  # Megatron-LM's even split
        for v in sorted({*range(2, min(MAX_V, per_stage) + 1), *even} - {1}):
            yield "interleaved", v


def _cp_values(job: TrainJob) -> list[int]:
    if attention_style(job.model) != "flash":  # Megatron's CP needs the fused attention
        return [1]
    # Megatron-LM's CP cuts the sequence into 2 x cp chunks for causal load balance
    return [cp for cp in (1, 2, 4, 8, 16) if cp <= MAX_CP and job.seq_len % (2 * cp) == 0
            or cp == 1]


def scaled(system: Any, chips: int) -> Any:
    """``system`` with ``chips`` of its chips (the ones a plan uses)."""
    if chips == system.chips:
        return system
    return _scaled(system, chips)


@functools.lru_cache(maxsize=256)
def _scaled(system: Any, chips: int) -> Any:
    return make_system(system.chip, chips, preset=system.name)


def _runs(job: TrainJob, system: Any, shape: Shape) -> bool:
    """Whether the step model's own rules (``check_plan``) accept the shape."""
    try:
        check_plan(dataclasses.replace(job, global_batch_seqs=shape.global_batch_seqs),
                   scaled(system, shape.chips), shape.plan(1, "none"))
    except ClusterError:
        return False
    return True


def _pp_values(layers: int, chips: int, tp_cp: int) -> list[int]:
    """Pipeline depths that use all the chips, and those that leave at most IDLE_FRACTION
    idle where no depth within a factor of 2 uses them all (the step time varies smoothly
    with the depth, so a neighbour that wastes no chip is as good to first order)."""
    exact = [pp for pp in range(1, layers + 1) if chips % (tp_cp * pp) == 0]
    idle = [pp for pp in range(1, layers + 1) if tp_cp * pp <= chips
            and 0 < chips % (tp_cp * pp) <= IDLE_FRACTION * chips
            and not any(pp / 2 <= q <= 2 * pp for q in exact)]
    return sorted(exact + idle)


def shapes(job: TrainJob, system: Any, tp_values: Sequence[int]) -> list[Shape]:
    """Every shape on the system's chips (at most IDLE_FRACTION of them left idle) with TP
    from ``tp_values``."""
    cfg, chips = job.model, system.chips
    out = []
    for tp in tp_values:
        for cp in _cp_values(job):
            for pp in _pp_values(cfg.num_layers, chips, tp * cp):
                dp = chips // (tp * cp * pp)
                eps = [e for e in divisors(cfg.num_experts) if (dp * cp) % e == 0] \
                    if cfg.is_moe else [1]
                for mb in MICRO_BATCHES:
                    if (mb * job.seq_len // cp) % tp:  # sequence parallel splits the tokens
                        continue
                    for schedule, v in _schedules(cfg.num_layers, pp):
                        batch = _batch_for(job, dp, mb, pp, schedule)
                        if batch is None:
                            continue
                        out += [Shape(tp, pp, cp, dp, ep, mb, schedule, v, batch)
                                for ep in eps]
    return [s for s in out if _runs(job, system, s)]


def staircase(job: TrainJob, system: Any, shape: Shape, evaluate: Evaluate,
              exhaustive: bool = False) -> list[StepEstimate]:
    """The estimates of one shape: the (zero, recompute) pairs the staircase visits (every
    pair when ``exhaustive``)."""
    shaped = dataclasses.replace(job, global_batch_seqs=shape.global_batch_seqs)
    system = scaled(system, shape.chips)
    out = []
    limit = len(RECOMPUTE)
    for zero in ZERO_LEVELS:
        for level in range(len(RECOMPUTE) if exhaustive else limit):
            estimate = evaluate(shaped, system, shape.plan(zero, RECOMPUTE[level]))
            out.append(estimate)
            if estimate.fits and not exhaustive:
                limit = level  # a higher ZeRO level must fit with less recompute to win
                break
    return out


def _time_per_token(e: StepEstimate) -> float:
    return e.step_time_s / e.extras.get("global_batch_tokens", 1.0)


def rank(estimates: Sequence[StepEstimate], top: int) -> list[StepEstimate]:
    """Fitting plans, fastest per token first; the best non-fitting one alone if none fit."""
    fitting = sorted((e for e in estimates if e.fits), key=_time_per_token)
    if fitting:
        return fitting[:top]
    rest = sorted(estimates, key=lambda e: (e.memory_bytes - e.memory_capacity_bytes,
                                            _time_per_token(e)))
    return rest[:1]


def search_plans(job: TrainJob, system: Any, *, top: int = 10,
                 progress: Progress | None = None, use_ray: bool = False,
                 store: Path | None = None, workers: int = 1,
                 evaluate: Evaluate | None = None, exhaustive: bool = False) -> SearchResult:
    """The best ``top`` plans of ``job`` on ``system`` (all of its chips), best first.

    ``evaluate(job, system, plan)`` is the step model (default: the cluster's
    ``evaluate_plan``); ``exhaustive`` turns the staircase pruning off (for tests).
    With ``store`` (a JSON-lines file), ``use_ray`` or ``workers`` > 1 the shapes run
    through ``run_tasks`` (resumable, Ray or local processes).
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ClusterError(f"search_plans: top={top!r}; expected a positive int")
    evaluate = evaluate or evaluate_plan
    domain = min(system.chips_per_node, system.chips)
    kv = job.model.num_kv_heads  # Megatron: tp divides the KV heads or is a multiple of them
    heads = [t for t in divisors(job.model.num_heads)
             if t <= system.chips and (t > kv or kv % t == 0)]
    inside = [t for t in heads if t <= domain]
    found: list[StepEstimate] = []
    evaluated = 0
    beyond = False
    for tp_values in (inside, [t for t in heads if t > domain]):
        if not tp_values:
            continue
        batch = _run(job, system, shapes(job, system, tp_values), evaluate,
                     exhaustive, progress, use_ray, store, workers)
        found += batch
        evaluated += len(batch)
        if any(e.fits for e in found):
            break
        beyond = True
    if not found:
        raise ClusterError(
            f"search_plans: no parallel layout of {job.model.name or 'the model'} on "
            f"{system.chips} chips keeps the global batch {job.global_batch_seqs} sequences "
            f"within {BATCH_TOLERANCE:.0%}; expected a chip count that divides into "
            "tp x pp x cp x dp with dp x micro_batch near the batch")
    smallest = min(found, key=lambda e: e.memory_bytes)
    return SearchResult(rank(found, top), evaluated, smallest, beyond and any(
        e.fits for e in found))


def _run(job: TrainJob, system: Any, todo: list[Shape], evaluate: Evaluate,
         exhaustive: bool, progress: Progress | None, use_ray: bool, store: Path | None,
         workers: int) -> list[StepEstimate]:
    if store is None and not use_ray and workers == 1:
        out = []
        for i, shape in enumerate(todo):
            out += staircase(job, system, shape, evaluate, exhaustive)
            if progress is not None:
                progress(i + 1, len(todo))
        return out
    groups = _groups(todo)
    stamp = _job_key(job, system, evaluate, exhaustive)
    tasks = [(f"{stamp}:{key}", (job, system, group, evaluate, exhaustive))
             for key, group in groups.items()]
    results = run_tasks(_evaluate_group, tasks, store=store, use_ray=use_ray,
                        workers=workers, progress="plans" if progress else None)
    return [_from_dict(d) for key, _ in tasks for d in results[key]["estimates"]]


def _groups(todo: list[Shape]) -> dict[str, list[Shape]]:
    """Shapes by (tp, pp, cp): a few hundred tasks of a few milliseconds each."""
    groups: dict[str, list[Shape]] = {}
    for s in todo:
        groups.setdefault(f"tp{s.tp}-pp{s.pp}-cp{s.cp}", []).append(s)
    return groups


def _evaluate_group(arg: tuple) -> dict:
    job, system, group, evaluate, exhaustive = arg
    return {"estimates": [dataclasses.asdict(e) for shape in group
                          for e in staircase(job, system, shape, evaluate, exhaustive)]}


def _from_dict(d: dict) -> StepEstimate:
    return StepEstimate(**{**d, "plan": Parallelism(**d["plan"])})


def _job_key(job: TrainJob, system: Any, evaluate: Evaluate, exhaustive: bool) -> str:
    """What a stored result depends on: the job, the system and the step model, its code
    included (a store written before the model changed is not reused)."""
    digest = hashlib.sha256(repr((job, system, exhaustive)).encode())
    digest.update(getattr(evaluate, "__qualname__", repr(evaluate)).encode())
    for name in (*_STEP_MODEL_MODULES, getattr(evaluate, "__module__", "")):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


__all__ = ["SearchResult", "search_plans"]
