"""Silicon economics: die area, unit cost and the ECCN 3A090 quantities (docs/silicon.md).

``die_area(chip)`` predicts the die area by component from the spec plus shared physical
parameters; ``unit_cost(chip)`` prices the packaged part; ``export_class(chip)`` computes
TPP and performance density (the tier is chipforge.legal's). All three are pure Python
and cached.
``workload_power(chip, graph)`` gives average power with leakage and throttles the clock to
the TDP; ``serving_tco`` / ``training_tco`` give $ per million tokens and $ per run;
``serving_dtype`` and ``tensor_parallel_size`` say how a chip serves an LLM.
``transistor_count(chip)`` gives the packaged chip's transistor count (published, else
modelled by ``modelled_transistors``).
"""

from chipforge.cost._area import AreaBreakdown, die_area
from chipforge.cost._export import ExportClass, export_class
from chipforge.cost._memory import (
    HBM_DENSITY_THRESHOLD_GB_PER_S_PER_MM2,
    MEMORY_TECHS,
    MemoryDensity,
    MemoryTech,
    memory_bandwidth_density,
    memory_bandwidth_density_of,
    memory_tech,
)
from chipforge.cost._memory_supply import (
    DOMESTIC_MEMORY,
    MemorySupply,
    available_as_of,
    domestic_memory,
    domestic_suppliers,
)
from chipforge.cost._nodes import CostError
from chipforge.cost._power import PowerReport, leakage_power_w, power_at_clock, workload_power
from chipforge.cost._serving import (
    MAX_TENSOR_PARALLEL,
    SERVING_DTYPES,
    USABLE_MEMORY_FRACTION,
    serving_bytes_per_chip,
    serving_dtype,
    tensor_parallel_size,
)
from chipforge.cost._tco import (
    PURCHASE_PRICE_RANGES_USD,
    TcoAssumptions,
    TcoResult,
    chip_capex_usd,
    llm_serving_tco,
    llm_training_tco,
    serving_tco,
    training_tco,
)
from chipforge.cost._transistors import (
    TransistorBreakdown,
    TransistorCount,
    modelled_transistors,
    transistor_count,
)
from chipforge.cost._unit_cost import CostBreakdown, unit_cost

__all__ = ["HBM_DENSITY_THRESHOLD_GB_PER_S_PER_MM2", "MEMORY_TECHS", "MemoryDensity",
           "MemoryTech", "memory_bandwidth_density", "memory_bandwidth_density_of",
           "memory_tech", "DOMESTIC_MEMORY", "MemorySupply", "available_as_of",
           "domestic_memory", "domestic_suppliers",
           "MAX_TENSOR_PARALLEL", "PURCHASE_PRICE_RANGES_USD", "SERVING_DTYPES",
           "USABLE_MEMORY_FRACTION", "AreaBreakdown",
           "CostBreakdown", "CostError", "ExportClass", "PowerReport", "TcoAssumptions",
           "TcoResult", "chip_capex_usd", "die_area", "export_class",
           "leakage_power_w", "llm_serving_tco", "llm_training_tco", "power_at_clock",
           "serving_bytes_per_chip", "serving_dtype", "serving_tco", "tensor_parallel_size",
           "training_tco", "unit_cost", "workload_power"]
__all__ += ["TransistorBreakdown", "TransistorCount", "modelled_transistors",
            "transistor_count"]
