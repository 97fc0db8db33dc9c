"""The performance engine: mapping search, timing and energy per op and per graph."""

from chipforge.perf._engine import estimate
from chipforge.perf._estimate import BOUNDS, Energy, Estimate
from chipforge.perf._matmul import MatmulCost, search_matmul
from chipforge.perf._params import DEFAULT, Efficiency
from chipforge.perf.systolic import systolic_compute_cycles

__all__ = ["BOUNDS", "DEFAULT", "Efficiency", "Energy", "Estimate", "MatmulCost", "estimate",
           "search_matmul", "systolic_compute_cycles"]
