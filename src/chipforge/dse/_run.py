"""One DSE run: ask the search for points, evaluate them in parallel, store each result as
it arrives, tell the search, and write the Pareto CSV and plot at the end.

The run folder holds ``results.sqlite`` (every point), ``results.csv``, ``pareto.csv``,
``pareto.png`` and ``references.json``. Rerunning the same command on the same folder
resumes: stored points are replayed, never re-evaluated, and the run stops at the budget.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chipforge.arch import load_chip
from chipforge.dse._design import dimensions, point_hash, space_size
from chipforge.dse._errors import DseError
from chipforge.dse._evaluate import EvalContext, Evaluation, chip_metrics, objective_directions
from chipforge.dse._execute import make_executor, require_ray
from chipforge.dse._pareto import pareto_rows, plot, write_csv
from chipforge.dse._problem import Problem
from chipforge.dse._search import SAMPLERS, make_search
from chipforge.dse._store import DB_NAME, Row, Store

# the sampler is asked for this many points at a time; results are told back per batch
BATCH = 32
# give up when this many batches in a row hold only points already evaluated
MAX_DUPLICATE_BATCHES = 20


@dataclass(frozen=True)
class RunSummary:
    out: Path
    evaluated: int  # rows in the database at the end
    new: int  # evaluated by this invocation
    feasible: int
    pareto: int
    budget: int
    failed: int = 0  # points whose evaluation raised (stored with the error)
    first_error: str = ""


def problem_fingerprint(problem: Problem, sampler: str, seed: int, batch: int) -> str:
    text = json.dumps({"space": problem.space.model_dump(mode="json"),
                       "settings": problem.settings.model_dump(mode="json"),
                       "base": problem.base_chip.model_dump_json(), "sampler": sampler,
                       "seed": seed, "batch": batch}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_dse(problem: Problem, out: Path, *, trials: int | None = None, sampler: str = "nsga2",
            workers: int = 2, use_ray: bool = False, seed: int = 0, batch: int = BATCH,
            progress: Callable[[int, int], None] | None = None) -> RunSummary:
    """Run (or resume) the search until ``trials`` distinct points are stored in ``out``.

    The sampler is asked for ``batch`` points at a time and told their results in the order
    asked, so the points of a seeded run do not depend on ``workers`` or on Ray.
    """
    if sampler not in SAMPLERS:
        raise DseError(f"--sampler: got {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    if not 0 <= seed < 2**32:  # numpy's seed range, which the samplers use
        raise DseError(f"--seed: got {seed!r}; expected an integer from 0 to {2**32 - 1}")
    dims = dimensions(problem.space, problem.space_file)
    size = space_size(dims)
    search = make_search(sampler, dims, objective_directions(problem), seed, batch,
                         problem.space_file)
    budget = _budget(trials, sampler, size)
    if use_ray:
        require_ray()
    out = Path(out)
    store = Store(out / DB_NAME, exclusive=True)
    try:
        store.check_problem(problem_fingerprint(problem, sampler, seed, batch), json.dumps(
            {"objectives": problem.settings.objectives,
             "directions": objective_directions(problem), "sampler": sampler, "seed": seed}))
        rows = store.rows()
        search.replay(rows)
        new = _search_loop(store, search, budget, batch,
                           make_executor_lazily(problem, workers, use_ray), progress)
        rows = store.rows()
    finally:
        store.close()
    front = write_outputs(out, rows, problem)
    errors = [r.metrics["error"] for r in rows if r.objective_values is None]
    if rows and len(errors) == len(rows):  # nothing to compare: a broken space, not a result
        raise DseError(f"{out}: all {len(rows)} points failed to evaluate, so there is no "
                       f"result (each is stored with its error); first: {errors[0]}")
    return RunSummary(out, len(rows), new, sum(r.feasible for r in rows), len(front), budget,
                      len(errors), errors[0] if errors else "")


def _budget(trials: int | None, sampler: str, size: int | None) -> int:
    if trials is not None and trials <= 0:
        raise DseError(f"--trials: got {trials!r}; expected a positive number of points")
    if trials is None:
        if size is None:
            raise DseError("--trials: needed for a space with a continuous range (no step); "
                           "expected a number of points")
        return size if sampler == "grid" else min(size, 200)
    return min(trials, size) if size is not None else trials


def make_executor_lazily(problem: Problem, workers: int, use_ray: bool) -> Callable[[], Any]:
    return lambda: make_executor(EvalContext(problem), workers, use_ray)


def _search_loop(store: Store, search: Any, budget: int, batch: int,
                 new_executor: Callable[[], Any],
                 progress: Callable[[int, int], None] | None) -> int:
    known: dict[str, Row | Evaluation] = {r.hash: r for r in store.rows()}
    count, new, idle = len(known), 0, 0
    if progress:
        progress(count, budget)
    if count >= budget:
        return 0
    executor = new_executor()
    try:
        while count < budget and idle < MAX_DUPLICATE_BATCHES:
            asked = search.ask(min(batch, budget - count))
            if not asked:
                break  # a grid with nothing left
            fresh = _fresh(asked, known)
            attrs = {i: search.system_attrs(asked[i][2]) for i in fresh}
            for j, ev in executor.run([asked[i][1] for i in fresh]):
                i = fresh[j]
                store.add(_row(asked[i][0], ev, attrs[i]))
                known[ev.hash] = ev
                count, new = count + 1, new + 1
                if progress:
                    progress(count, budget)
            for _, point, handle in asked:
                search.tell(handle, known[point_hash(point)])
            idle = 0 if fresh else idle + 1
    finally:
        executor.close()
    return new


def _fresh(asked: list, known: dict[str, Any]) -> list[int]:
    """Indices of the asked points not stored yet (each distinct point once)."""
    seen, fresh = set(known), []
    for i, (_, point, _) in enumerate(asked):
        h = point_hash(point)
        if h not in seen:
            seen.add(h)
            fresh.append(i)
    return fresh


def _row(trial: int, ev: Evaluation, system_attrs: dict[str, Any]) -> Row:
    return Row(ev.hash, trial, ev.params, ev.metrics, ev.objective_values, ev.feasible,
               ev.violations, ev.constraint_values, system_attrs, ev.eval_s)


def reference_metrics(problem: Problem) -> dict[str, dict[str, Any]]:
    """The problem's reference chips (catalog names) through the same evaluation."""
    from chipforge.dse._evaluate import check_constraints
    from chipforge.dse._objectives import needed_groups

    groups = needed_groups(problem.settings.objectives)
    out = {}
    for name in problem.settings.references:
        m = chip_metrics(load_chip(name), problem, groups)
        m["violations"] = check_constraints(m, problem)[0]
        out[name] = m
    return out


def write_outputs(out: Path, rows: list[Row], problem: Problem) -> list[Row]:
    objectives = problem.settings.objectives
    front = pareto_rows(rows, objective_directions(problem))
    refs = reference_metrics(problem)
    (out / "references.json").write_text(json.dumps(refs, indent=2, sort_keys=True))
    write_csv(out / "results.csv", rows, objectives)
    write_csv(out / "pareto.csv", front, objectives)
    plot(out / "pareto.png", rows, front, objectives, refs)
    return front
