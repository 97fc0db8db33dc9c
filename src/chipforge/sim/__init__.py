"""The chipforge core simulator: functional (it *is* the definition of every instruction's
semantics) and timed (event-driven, with ``isa.cycles`` as the cost of each instruction).

>>> result = simulate(program, "forge-t1", {"x": x})   # doctest: +SKIP
>>> result.outputs["y"], result.cycles, result.top_ops(5)   # doctest: +SKIP
"""

from chipforge.sim._result import SimResult
from chipforge.sim._run import simulate
from chipforge.sim._semantics import SEMANTICS, Machine
from chipforge.sim._state import CoreState, SimError
from chipforge.sim._timing import UNIT_NAMES, Scheduler

__all__ = ["SEMANTICS", "UNIT_NAMES", "CoreState", "Machine", "Scheduler",
           "SimError", "SimResult", "simulate"]
