"""forge-i1 and forge-t1 in the catalog are the design points their DSE runs chose.

Each chosen point is read from the run's checked-in ``pareto.csv``. The catalog chip must
be exactly the chip the search evaluated (re-derived with the catalog chip as the space's
base, so the search reproduces), its metrics must reproduce the stored ones (a golden
test: a change to the models moves them, and the searches must then be rerun, see
designs/*/README.md), and it must be the point the selection rule in docs/designs.md picks.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from chipforge.arch import load_chip
from chipforge.dse import chip_metrics, design_chip, dimensions, load_problem, point_hash
from chipforge.dse._evaluate import EvalContext

DESIGNS = Path(__file__).resolve().parents[2] / "designs"

# chip -> (space, constraints, run folder, hash of the chosen point, legal scenario)
CHOSEN = {
    "forge-i1": ("forge-i1/space-tsmc-local.yaml", "forge-i1/constraints-tsmc.yaml",
                 "forge-i1/run-tsmc-2026-local", "af49b227e51ae3a2", "tsmc-2026"),
    # issue 15: forge-t1 is chosen at fleet level ($ and days to pre-train on a $1 B fleet)
    "forge-t1": ("forge-t1/space-tsmc-cluster.yaml", "forge-t1/constraints-tsmc-cluster.yaml",
                 "forge-t1/run-tsmc-2026-cluster", "8f35b25204285897", "tsmc-2026"),
}


def _front(run: str) -> list[dict[str, str]]:
    with open(DESIGNS / run / "pareto.csv", newline="") as f:
        return list(csv.DictReader(f))


def _point(problem: Any, row: dict[str, str]) -> dict[str, Any]:
    """The typed design point of a CSV row: the grid value whose text matches the cell."""
    point = {}
    for dim in dimensions(problem.space):
        cell = row[dim.name]
        matches = [v for v in dim.grid_values(dim.name) if str(v) == cell
                   or (not isinstance(v, str) and float(v) == float(cell))]
        assert len(matches) == 1, f"{dim.name}: {cell!r} is not one grid value"
        point[dim.name] = matches[0]
    return point


def _chosen(chip: str) -> tuple[Any, dict[str, Any], dict[str, str]]:
    space, constraints, run, digest, scenario = CHOSEN[chip]
    problem = load_problem(DESIGNS / space, DESIGNS / constraints, scenario)
    row = next(r for r in _front(run) if r["hash"] == digest)
    return problem, _point(problem, row), row


@pytest.mark.parametrize("chip", sorted(CHOSEN))
def test_catalog_chip_is_the_chosen_point(chip):
    problem, point, row = _chosen(chip)
    assert point_hash(point)[:16] == row["hash"]
    catalog = load_chip(chip)
    derived = design_chip(problem.space, catalog, point)
    want, got = _flat(catalog.model_dump()), _flat(derived.model_dump())
    for key in ("name", "description"):
        want.pop(key), got.pop(key)
    assert got.keys() == want.keys()
    for key, value in want.items():
        # floats to 1e-12: 6 stacks x 670 GB/s is 4.0199999e12 in binary, the YAML 4.02 TB/s
        assert got[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float)
                            else value), key


def _flat(tree: Any, path: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{path}.{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{path}[{i}]").items()}
    return {path.lstrip("."): tree}


@pytest.mark.parametrize("chip", sorted(CHOSEN))
def test_chosen_point_metrics_reproduce(chip):
    problem, _, row = _chosen(chip)
    groups = EvalContext(problem).groups
    metrics = chip_metrics(load_chip(chip), problem, groups)
    assert row["feasible"] == "1" and row["violations"] == ""
    # objectives are stored in full, other metrics to 6 significant digits
    tolerances = {**dict.fromkeys(problem.settings.objectives, 1e-9),
                  **dict.fromkeys(["die_area_mm2", "unit_cost_usd", "tpp", "pd"], 1e-5)}
    for name, rel in tolerances.items():
        assert metrics[name] == pytest.approx(float(row[name]), rel=rel), (
            f"{chip} {name}: the models moved since the DSE run; rerun it (designs/{chip})")
    assert metrics["export_tier"] == "not controlled"
    # the catalog chips are the tsmc-2026 choices: legal to make there (docs/legal.md)
    assert (metrics["legal_verdict"], metrics["supply_problems"]) == ("uncontrolled", "")


@pytest.mark.parametrize("chip", sorted(CHOSEN))
def test_chosen_point_is_the_lowest_cost_point_on_the_front(chip):
    # the selection rule of docs/designs.md: the feasible point with the lowest $ per
    # million tokens (the first objective)
    problem, _, row = _chosen(chip)
    first = problem.settings.objectives[0]
    front = [r for r in _front(CHOSEN[chip][2]) if r["feasible"] == "1"]
    assert float(row[first]) == min(float(r[first]) for r in front)
