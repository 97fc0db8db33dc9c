"""``chipforge dse run | pareto``: design-space exploration (docs/dse.md).

Bad space or constraint files fail with one ``error:`` line (exit 2) before any work.
A run killed at any point resumes when the same command is run again on the same --out.
"""

from __future__ import annotations

import json
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
) -> None:
    """Search the space; results go to OUT/results.sqlite as they come in."""
    from chipforge.dse import load_problem, run_dse

    if workers < 1:
        raise ChipforgeError(f"--workers: got {workers!r}; expected at least 1")
    problem = load_problem(space, constraints)
    columns = (TextColumn("[bold]dse[/]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("points"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=console, disable=bool(os.environ.get("CHIPFORGE_NO_BAR"))
                  ) as bar:
        task = bar.add_task("dse", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = run_dse(problem, out, trials=trials, sampler=sampler, workers=workers,
                          use_ray=ray, seed=seed, progress=report)
    console.print(f"{summary.evaluated} of {summary.budget} points stored ({summary.new} new), "
                  f"{summary.feasible} feasible, {summary.pareto} on the Pareto front")
    if summary.failed:
        console.print(f"[yellow]{summary.failed} points failed to evaluate[/] (stored with the "
                      f"error; first: {summary.first_error})")
    console.print(f"results: {summary.out / 'pareto.csv'}, {summary.out / 'pareto.png'}")


@dse_app.command("pareto")
def pareto_cmd(
    out: Annotated[Path, typer.Argument(help="a run folder")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Print the Pareto front of a run folder (feasible, non-dominated points)."""
    from chipforge.dse import front_of

    objectives, front = front_of(out)
    if as_json:
        print(json.dumps([{"hash": r.hash, "params": r.params,
                           **dict(zip(objectives, r.objective_values))} for r in front],
                         indent=2))
        return
    for r in front:
        values = ", ".join(f"{o}={v:.4g}" for o, v in zip(objectives, r.objective_values))
        console.print(f"{r.hash[:10]}  {values}  {r.params}")
