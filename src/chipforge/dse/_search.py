"""Where the next points come from: a full grid, or an Optuna study (NSGA-II or TPE).

Both hand out points in batches and take results back in the order they were asked
(never in completion order), so a seeded run is reproducible whatever the worker count.
On resume the stored results are replayed into a fresh in-memory study; Optuna's own
storage (and its RUNNING-trial state) is never relied on.
"""

from __future__ import annotations

import warnings
from typing import Any

from chipforge.dse._design import Dimension, canonical, grid_points, point_hash
from chipforge.dse._evaluate import Evaluation
from chipforge.dse._store import Row

SAMPLERS = ("nsga2", "tpe", "grid")


class GridSearch:
    """Every point of a discrete space in a fixed order; a stored point is skipped."""

    def __init__(self, dims: list[Dimension], where: str) -> None:
        self._points = grid_points(dims, where)
        self._next = 0

    def replay(self, rows: list[Row]) -> None:
        done = {r.hash for r in rows}
        self._todo = [(i, p) for i, p in enumerate(self._points) if point_hash(p) not in done]

    def ask(self, n: int) -> list[tuple[int, dict[str, Any], Any]]:
        batch, self._todo = self._todo[:n], self._todo[n:]
        return [(i, p, None) for i, p in batch]

    def tell(self, handle: Any, ev: Evaluation | Row) -> None:
        pass

    def system_attrs(self, handle: Any) -> dict[str, Any]:
        return {}


class OptunaSearch:
    """An in-memory Optuna study, rebuilt from the stored rows on every start."""

    def __init__(self, dims: list[Dimension], directions: list[str], sampler: str, seed: int,
                 population: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # constraints_func is marked experimental; its interface has been stable since 3.0
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self._optuna = optuna
        self._dists = {d.name: d.distribution() for d in dims}
        self.study = optuna.create_study(directions=directions,
                                         sampler=_sampler(sampler, seed, population))
        self._asked = 0

    def replay(self, rows: list[Row]) -> None:
        from optuna.trial import TrialState, create_trial

        for row in rows:
            ok = row.objective_values is not None
            self.study.add_trial(create_trial(
                state=TrialState.COMPLETE if ok else TrialState.FAIL,
                values=row.objective_values, params=row.params, distributions=self._dists,
                user_attrs={"constraint_values": row.constraint_values},
                system_attrs={**row.system_attrs, "constraints": row.constraint_values}))
        self._asked = max((r.trial for r in rows), default=-1) + 1

    def ask(self, n: int) -> list[tuple[int, dict[str, Any], Any]]:
        out = []
        for _ in range(n):
            trial = self.study.ask(self._dists)
            out.append((self._asked, canonical(trial.params), trial))
            self._asked += 1
        return out

    def system_attrs(self, trial: Any) -> dict[str, Any]:
        """What the sampler recorded at ask time (NSGA-II's generation), to replay."""
        frozen = self.study.get_trials(deepcopy=False)[trial.number]
        return dict(frozen.system_attrs)

    def tell(self, trial: Any, ev: Evaluation | Row) -> None:
        if ev.objective_values is None:
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
            return
        trial.set_user_attr("constraint_values", ev.constraint_values)
        self.study.tell(trial, ev.objective_values)


def _constraints(frozen: Any) -> list[float]:
    return frozen.user_attrs.get("constraint_values", [1.0])


def _sampler(kind: str, seed: int, population: int) -> Any:
    import optuna

    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed,
                                             constraints_func=_constraints)
    return optuna.samplers.TPESampler(seed=seed, constraints_func=_constraints,
                                      multivariate=True)


def make_search(kind: str, dims: list[Dimension], directions: list[str], seed: int,
                population: int, where: str):
    if kind == "grid":
        return GridSearch(dims, where)
    return OptunaSearch(dims, directions, kind, seed, population)
