"""Silicon economics: die area, unit cost and ECCN 3A090 export metrics (docs/silicon.md).

``die_area(chip)`` predicts the die area by component from the spec plus shared physical
parameters; ``unit_cost(chip)`` prices the packaged part; ``export_class(chip)`` computes
TPP, performance density and the 3A090 tier. All three are pure Python and cached.
"""

from chipforge.cost._area import AreaBreakdown, die_area
from chipforge.cost._export import ExportClass, export_class
from chipforge.cost._nodes import CostError
from chipforge.cost._unit_cost import CostBreakdown, unit_cost

__all__ = ["AreaBreakdown", "CostBreakdown", "CostError", "ExportClass", "die_area",
           "export_class", "unit_cost"]
