"""The checked-in spaces and constraint files load, and their grids' sizes are as written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chipforge.dse import dimensions, load_problem
from chipforge.dse._design import space_size

DESIGNS = Path(__file__).resolve().parents[2] / "designs"
PAIRS = [("examples/inference-space.yaml", "examples/inference-constraints.yaml"),
         ("forge-i1/space.yaml", "forge-i1/constraints.yaml"),
         ("forge-i1/space-refine.yaml", "forge-i1/constraints.yaml"),
         ("forge-i1/space-local.yaml", "forge-i1/constraints.yaml"),
         *(("forge-t1/space.yaml", f"forge-t1/constraints-{t}.yaml")
            for t in ("not-controlled", "3a090b", "3a090a")),
         ("forge-t1/space-local.yaml", "forge-t1/constraints-not-controlled.yaml")]


@pytest.mark.parametrize("space,constraints", PAIRS)
def test_design_files_load(space, constraints):
    problem = load_problem(DESIGNS / space, DESIGNS / constraints)
    assert problem.settings.references


def test_forge_i1_space_size():
    problem = load_problem(DESIGNS / "forge-i1/space.yaml")
    # rows 3, cols 3, cores 32, units 2, clock 13, local 4, global 7, links 3, dtypes 2,
    # TDP 4, node 4; memory: GDDR7 3x2 + LPDDR5X 2x2 + HBM3 5x2 + HBM3e 7x2 = 34
    expected = math.prod([3, 3, 32, 2, 13, 4, 7, 3, 2, 4, 4, 34])
    assert space_size(dimensions(problem.space)) == expected


def test_local_grids_are_exhaustive_and_small():
    # forge-i1: cores 9 (36..68 by 4), clock 8, global SRAM 2, memory 2 x 2, links 2, TDP 2
    i1 = load_problem(DESIGNS / "forge-i1/space-local.yaml")
    assert space_size(dimensions(i1.space)) == 9 * 8 * 2 * 4 * 2 * 2
    # forge-t1: cores 5 (4..12 by 2), arrays per tile 2, clock 5, memory 3 x 2, links 2, node 2
    t1 = load_problem(DESIGNS / "forge-t1/space-local.yaml")
    assert space_size(dimensions(t1.space)) == 5 * 2 * 5 * 6 * 2 * 2
