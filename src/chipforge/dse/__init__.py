"""Design-space exploration: search chip designs for the best trade-offs (docs/dse.md).

>>> from chipforge.dse import load_problem, run_dse
>>> problem = load_problem("designs/examples/space.yaml")          # doctest: +SKIP
>>> run_dse(problem, "out/dse", trials=200, sampler="nsga2")        # doctest: +SKIP
"""

from chipforge.dse._design import design_chip, dimensions, grid_points, point_hash
from chipforge.dse._errors import DseError
from chipforge.dse._evaluate import EvalContext, Evaluation, chip_metrics, evaluate_point
from chipforge.dse._memory import MEMORY_TECHS, MemoryTech
from chipforge.dse._objectives import OBJECTIVES, Objective
from chipforge.dse._pareto import pareto_indices
from chipforge.dse._problem import RETICLE_MM2, Problem, load_problem
from chipforge.dse._run import RunSummary, run_dse
from chipforge.dse._show import front_of
from chipforge.dse._store import Row, Store

__all__ = [
    "MEMORY_TECHS", "OBJECTIVES", "RETICLE_MM2", "DseError", "EvalContext", "Evaluation",
    "MemoryTech", "Objective", "Problem", "Row", "RunSummary", "Store", "chip_metrics",
    "design_chip", "dimensions", "evaluate_point", "front_of", "grid_points", "load_problem",
    "pareto_indices", "point_hash", "run_dse",
]
