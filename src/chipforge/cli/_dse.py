"""``chipforge dse run | pareto``: design-space exploration (docs/dse.md).

Bad space or constraint files fail with one ``error:`` line (exit 2) before any work.
A run killed at any point resumes when the same command is run again on the same --out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from chipforge.cli._output import JsonOption, err, print_json, print_table, say
from chipforge.errors import ChipforgeError

dse_app = typer.Typer(no_args_is_help=True, help="Design-space exploration: search chip "
                      "designs, store every point, write the Pareto front.")
console = Console()


@dse_app.command("run")
def run_cmd(
    space: Annotated[Path, typer.Argument(help="design-space YAML")],
    out: Annotated[Path, typer.Option(help="run folder (rerun to resume)")],
    constraints: Annotated[Path | None, typer.Option(help="constraints/objectives YAML")] = None,
    trials: Annotated[int | None, typer.Option(help="distinct points to evaluate "
                                               "(default: the whole grid, or 200)")] = None,
    sampler: Annotated[str, typer.Option(help="nsga2, tpe or grid")] = "nsga2",
    workers: Annotated[int, typer.Option(help="parallel worker processes")] = 2,
    ray: Annotated[bool, typer.Option("--ray", help="evaluate on Ray (RAY_ADDRESS, else "
                                      "a local Ray)")] = False,
    seed: Annotated[int, typer.Option(help="sampler seed")] = 0,
    scenario: Annotated[str | None, typer.Option(
        help="a legal scenario (chipforge legal): the verdict and supply become constraints "
        "(replaces the constraints file's scenario)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Search the space; results go to OUT/results.sqlite as they come in."""
    from chipforge.dse import load_problem, run_dse

    if workers < 1:
        raise ChipforgeError(f"--workers: got {workers!r}; expected at least 1")
    problem = load_problem(space, constraints, scenario)
    columns = (TextColumn("[bold]dse[/]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("points"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    # the bar is on stderr, and only on a terminal: stdout holds the summary alone
    with Progress(*columns, console=err, disable=bool(os.environ.get("CHIPFORGE_NO_BAR"))
                  or not err.is_terminal) as bar:
        task = bar.add_task("dse", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = run_dse(problem, out, trials=trials, sampler=sampler, workers=workers,
                          use_ray=ray, seed=seed, progress=report)
    if as_json:
        print_json({"out": str(summary.out), "evaluated": summary.evaluated,
                    "budget": summary.budget, "new": summary.new,
                    "feasible": summary.feasible, "pareto": summary.pareto,
                    "failed": summary.failed, "first_error": summary.first_error or None,
                    "pareto_csv": str(summary.out / "pareto.csv"),
                    "pareto_png": str(summary.out / "pareto.png")})
        return
    say(f"{summary.evaluated} of {summary.budget} points stored ({summary.new} new), "
        f"{summary.feasible} feasible, {summary.pareto} on the Pareto front")
    if summary.failed:
        say(f"[yellow]{summary.failed} points failed to evaluate[/] (stored with the "
            f"error; first: {summary.first_error})")
    say(f"results: {summary.out / 'pareto.csv'}, {summary.out / 'pareto.png'}")


@dse_app.command("show")
def show_cmd(
    out: Annotated[Path, typer.Argument(help="a run folder")],
    as_json: JsonOption = False,
) -> None:
    """Summary of a run folder: points stored, feasible, failed, the front's size and the
    best point for each objective."""
    doc = _show_doc(out)
    if as_json:
        print_json(doc)
        return
    table = Table(title=f"{out}: dse run")
    for col in ("", "value", "point"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for key in ("points", "feasible", "infeasible", "failed", "pareto"):
        table.add_row(key, str(doc[key]), "")
    for o in doc["objectives"]:
        best = doc["best"].get(o["name"])
        table.add_row(f"best {o['name']} ({o['direction'][:3]})",
                      "-" if best is None else f"{best['value']:.4g}",
                      "" if best is None else f"{best['hash'][:10]} {_params_text(best)}")
    print_table(table)
    if doc["first_error"]:
        say(f"first error: {doc['first_error']}")


def _params_text(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(point["params"].items()))


def _show_doc(out: Path) -> dict:
    """What ``dse show`` prints: counts over every stored point, and per objective the
    best feasible point (the stored values; ties go to the earliest trial)."""
    from chipforge.dse import OBJECTIVES, Store, front_of

    objectives, front = front_of(out)  # checks the folder and reads the run's objectives
    store = Store(Path(out) / "results.sqlite")
    try:
        rows = store.rows()
    finally:
        store.close()
    failed = [r for r in rows if r.objective_values is None]
    feasible = [r for r in rows if r.feasible and r.objective_values is not None]
    directions = [OBJECTIVES[o].direction if o in OBJECTIVES else "maximize"
                  for o in objectives]
    best = {}
    for i, (name, direction) in enumerate(zip(objectives, directions)):
        if feasible:
            sign = -1 if direction == "maximize" else 1
            r = min(feasible, key=lambda r: (sign * r.objective_values[i], r.trial))
            best[name] = {"value": r.objective_values[i], "hash": r.hash, "trial": r.trial,
                          "params": r.params}
    return {"out": str(out),
            "objectives": [{"name": o, "direction": d} for o, d in zip(objectives, directions)],
            "points": len(rows), "feasible": len(feasible),
            "infeasible": len(rows) - len(feasible) - len(failed), "failed": len(failed),
            "first_error": failed[0].metrics.get("error") if failed else None,
            "pareto": len(front), "best": best}


@dse_app.command("pareto")
def pareto_cmd(
    out: Annotated[Path, typer.Argument(help="a run folder")],
    as_json: JsonOption = False,
) -> None:
    """The Pareto front of a run folder (feasible, non-dominated points): a table of the
    objectives and of the design parameters that vary along the front, best first."""
    from chipforge.dse import OBJECTIVES, front_of

    objectives, front = front_of(out)
    first = OBJECTIVES[objectives[0]].direction if objectives[0] in OBJECTIVES else "maximize"
    front = sorted(front, key=lambda r: r.objective_values[0], reverse=first == "maximize")
    if as_json:  # the full stored data of each point on the front
        print_json([{"hash": r.hash, "trial": r.trial, "params": r.params,
                     **dict(zip(objectives, r.objective_values)), "metrics": r.metrics}
                    for r in front])
        return
    print_table(_pareto_table(out, objectives, front))


def _pareto_table(out: Path, objectives: list[str], front: list) -> Table:
    """Objectives (with their direction) and the parameters that differ along the front;
    the parameters every point shares go in the caption."""
    from chipforge.dse import OBJECTIVES

    names = sorted({k for r in front for k in r.params})
    varying = [k for k in names if len({repr(r.params.get(k)) for r in front}) > 1]
    fixed = [f"{k}={front[0].params.get(k)}" for k in names if k not in varying]
    caption = f"same on every point: {', '.join(fixed)}" if fixed and front else None
    table = Table(title=f"{out}: Pareto front, {len(front)} points (best {objectives[0]} "
                  "first)", caption=caption)
    table.add_column("hash")
    for o in objectives:
        arrow = {"maximize": " (max)", "minimize": " (min)"}.get(
            OBJECTIVES[o].direction if o in OBJECTIVES else "", "")
        table.add_column(o + arrow, justify="right")
    for k in varying:
        table.add_column(k, justify="right")
    for r in front:
        table.add_row(r.hash[:10], *(f"{v:.4g}" for v in r.objective_values),
                      *(str(r.params.get(k, "-")) for k in varying))
    return table
