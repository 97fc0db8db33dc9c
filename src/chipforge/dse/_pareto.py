"""The Pareto front of the feasible points, as a CSV and a plot."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from chipforge.dse._store import Row


def pareto_indices(values: list[list[float]], directions: list[str]) -> list[int]:
    """Indices of the non-dominated rows (maximize/minimize per column), in input order."""
    if not values:
        return []
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    v = np.asarray(values, dtype=float) * sign  # now every column is minimized
    keep = []
    for i, row in enumerate(v):
        no_worse = np.all(v <= row, axis=1)
        better = np.any(v < row, axis=1)
        if not np.any(no_worse & better):
            keep.append(i)
    return keep


def pareto_rows(rows: list[Row], directions: list[str]) -> list[Row]:
    feasible = [r for r in rows if r.feasible and r.objective_values is not None]
    return [feasible[i] for i in pareto_indices([r.objective_values for r in feasible],
                                                directions)]


def write_csv(path: Path, rows: list[Row], objectives: list[str]) -> None:
    """One line per row: hash, params, objectives, feasibility, then every metric."""
    params = sorted({k for r in rows for k in r.params})
    metrics = sorted({k for r in rows for k in r.metrics} - set(objectives))
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["hash", "trial", *params, *objectives, "feasible", "violations", *metrics])
        for r in rows:
            values = r.objective_values or [""] * len(objectives)
            out.writerow([r.hash[:16], r.trial, *(r.params.get(p, "") for p in params),
                          *values, int(r.feasible), "; ".join(r.violations),
                          *(_cell(r.metrics.get(m, "")) for m in metrics)])


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def plot(path: Path, rows: list[Row], front: list[Row], objectives: list[str],
         references: dict[str, dict[str, Any]]) -> None:
    """Feasible points, infeasible points and the front on the first two objectives (one
    objective: against the trial number); reference chips as labelled stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    x_of = (lambda r: r.objective_values[0]) if len(objectives) > 1 else (lambda r: r.trial)
    y_i = 1 if len(objectives) > 1 else 0
    done = [r for r in rows if r.objective_values is not None]
    for group, style in (([r for r in done if not r.feasible], dict(c="0.8", s=8,
                          label="infeasible")),
                         ([r for r in done if r.feasible], dict(c="tab:blue", s=10,
                          label="feasible")),
                         (front, dict(c="tab:red", s=28, label="Pareto front"))):
        if group:
            ax.scatter([x_of(r) for r in group], [r.objective_values[y_i] for r in group],
                       **style)
    if len(objectives) == 1:  # a reference chip is a level line
        for name, m in references.items():
            if objectives[0] in m:
                ax.axhline(m[objectives[0]], color="k", lw=0.8, ls="--")
                ax.annotate(name, (0, m[objectives[0]]), xytext=(2, 3),
                            textcoords="offset points", fontsize=8)
    else:
        for name, m in references.items():
            if all(o in m for o in objectives[:2]):
                ax.scatter([m[objectives[0]]], [m[objectives[1]]], marker="*", s=160, c="k")
                ax.annotate(name, (m[objectives[0]], m[objectives[1]]), xytext=(5, 5),
                            textcoords="offset points")
    ax.set_xlabel(objectives[0] if len(objectives) > 1 else "trial")
    ax.set_ylabel(objectives[y_i])
    if ax.get_legend_handles_labels()[0]:  # no labelled points: no (warning) legend
        ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
