"""Unit cost of a packaged chip: logic dies, memory, packaging, test/assembly and module.

Die cost = wafer price / (dies per wafer x yield). Yield is negative binomial, with core
harvesting where the spec enables fewer cores than the die has. Sources in docs/silicon.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from chipforge.arch import ChipSpec
from chipforge.cost._area import AreaBreakdown, die_area
from chipforge.cost._memory import memory_tech
from chipforge.cost._nodes import CostError, node_table

# dies per wafer: Hennessy & Patterson, Computer Architecture: A Quantitative Approach
# (6th ed., section 1.6): pi (d/2)^2 / A - pi d / sqrt(2 A), A the die area with scribe
WAFER_DIAMETER_MM = 300.0
EDGE_EXCLUSION_MM = 3.0  # assumption: 3 mm unusable ring at the wafer edge (SEMI-typical)
SCRIBE_LINE_MM = 0.1  # assumption: 100 um scribe lines between dies (typically 60-100 um)
# negative-binomial clustering parameter alpha; assumption: 3, within the 0.3-5 range
# reported for modern fabs (Cunningham, IEEE Trans. Semicond. Manuf. 1990; alpha -> inf
# is Poisson) and the value commonly used in die-cost calculators
DEFECT_CLUSTERING_ALPHA = 3.0

# memory price, USD per GB, by kind (2023-24 contract-price estimates)
MEMORY_USD_PER_GB: dict[str, float] = {
    "HBM2e": 10.0,  # assumption: ~2/3 of HBM3, the 2021-22 level reported by TrendForce
    "HBM3": 15.0,  # H100 bill-of-materials analyses of 2023 (e.g. Tae Kim/Barron's follow-
    # ups, the widely repeated "6 x 16 GB SK hynix HBM3 at ~$15/GB"): ~$15/GB
    "HBM3e": 20.0,  # assumption: HBM3e sells at a premium of ~1/3 over HBM3 (TrendForce 2024)
    "GDDR6": 3.0,  # assumption: GDDR6 16 Gbit contract ~$3/GB in 2023 (DRAMeXchange range)
    "GDDR7": 4.5,  # assumption: GDDR7 launched at ~1.5x GDDR6 per GB (TrendForce 2024)
    "LPDDR5": 3.5,  # assumption: mobile LPDDR5 contract ~$3-4/GB (2023-24)
    "LPDDR5X": 4.0,  # assumption: LPDDR5X a ~15% premium over LPDDR5
    "DDR5": 3.0,  # assumption: server DDR5 ~$3/GB (2023-24 contract)
}

# assumption: 20% of the interposer is spacing, routing and keep-out around the dies
INTERPOSER_MARGIN = 1.2
# assumption: CoWoS-S priced at $0.40 per interposer mm2, anchored on R. Castellano's 2023
# estimate of ~$723 of CoWoS per H100 (from TSMC's CoWoS revenue share) over the ~1,850 mm2
# interposer this model gives an H100 - so this part is not independent of the H100 check
COWOS_S_USD_PER_MM2 = 0.40
# assumption: CoWoS-L (LSI bridges in an RDL interposer, needed beyond ~3.3 reticles or for
# multi-die parts, TechInsights: B200 is its first use) 25% dearer per mm2
COWOS_L_USD_PER_MM2 = 0.50
COWOS_S_MAX_MM2 = 3.3 * 858  # TSMC: CoWoS-S interposers up to ~3.3x the reticle
# assumption: organic (ABF) flip-chip substrate ~4x the die area at ~$0.025/mm2
# (a 60 x 60 mm high-layer-count substrate ~$90), for parts without HBM
ORGANIC_SUBSTRATE_AREA_RATIO = 4.0
ORGANIC_USD_PER_MM2 = 0.025
# assumption: OSAT assembly, burn-in and final test at 10% of the material cost
ASSEMBLY_TEST_FRACTION = 0.10
# assumption: module (SXM/OAM/PCIe board): ~$150 of PCB and parts plus ~$0.15 per W of TDP
# for the multiphase VRM (power stages, inductors, capacitors)
MODULE_BASE_USD = 150.0
MODULE_USD_PER_W = 0.15


@dataclass(frozen=True)
class CostBreakdown:
    """Unit cost in USD by part, with the wafer-level figures it came from."""

    parts: dict[str, float]
    total_usd: float
    dies_per_wafer: int
    die_yield: float  # fraction of dies sellable (harvesting included)
    die_area_mm2: float  # one logic die
    package: str  # "CoWoS-S", "CoWoS-L" or "organic"


def dies_per_wafer(die_mm2: float) -> int:
    """Gross dies on a 300 mm wafer (edge exclusion and scribe lines included)."""
    d = WAFER_DIAMETER_MM - 2 * EDGE_EXCLUSION_MM
    side = math.sqrt(die_mm2) + SCRIBE_LINE_MM
    area = side * side
    return max(0, math.floor(math.pi * (d / 2) ** 2 / area - math.pi * d / math.sqrt(2 * area)))


def negative_binomial_yield(area_mm2: float, defects_per_cm2: float,
                            alpha: float = DEFECT_CLUSTERING_ALPHA) -> float:
    """Y = (1 + A D0 / alpha)^-alpha, A in cm2."""
    return (1.0 + area_mm2 / 100.0 * defects_per_cm2 / alpha) ** -alpha


def harvested_yield(die_mm2: float, core_mm2: float, physical: int, needed: int,
                    defects_per_cm2: float) -> float:
    """Fraction of dies with a working uncore and at least ``needed`` of ``physical`` working
    cores. Assumption: cores fail independently, each with the negative-binomial yield of
    its own area (clustering across cores ignored); the rest of the die must be perfect."""
    cores_mm2 = min(physical * core_mm2, die_mm2)
    uncore = negative_binomial_yield(die_mm2 - cores_mm2, defects_per_cm2)
    y = negative_binomial_yield(cores_mm2 / physical, defects_per_cm2)
    at_least = sum(math.comb(physical, k) * y**k * (1 - y) ** (physical - k)
                   for k in range(needed, physical + 1))
    return uncore * at_least


def unit_cost(chip: ChipSpec) -> CostBreakdown:
    """Unit cost of one packaged chip, by part (see docs/silicon.md)."""
    return _unit_cost(chip)


@lru_cache(maxsize=4096)
def _unit_cost(chip: ChipSpec) -> CostBreakdown:
    node = node_table(chip.name, chip.process_node)
    area = die_area(chip)
    die_mm2 = (chip.die_area_mm2 or area.total_mm2) / chip.dies
    gross = dies_per_wafer(die_mm2)
    if gross == 0:
        raise CostError(f"{chip.name}: die_area {die_mm2:.0f} mm2 per die does not fit a "
                        f"300 mm wafer; expected a die under ~8,000 mm2")
    physical = -(-chip.cores.physical // chip.dies)
    needed = -(-chip.cores.count // chip.dies)
    core_mm2 = area.core_mm2 * die_mm2 / area.die_mm2  # keep the core share of a given area
    good = harvested_yield(die_mm2, core_mm2, physical, needed, node.defects_per_cm2)
    parts = {"die": chip.dies * node.wafer_usd / (gross * good),
             "memory": chip.memory.capacity_bytes / 1e9 * MEMORY_USD_PER_GB[chip.memory.kind]}
    package, parts["packaging"] = _packaging(chip, area, die_mm2)
    parts["test_assembly"] = ASSEMBLY_TEST_FRACTION * sum(parts.values())
    parts["module"] = MODULE_BASE_USD + MODULE_USD_PER_W * chip.tdp_w
    return CostBreakdown(parts=parts, total_usd=sum(parts.values()), dies_per_wafer=gross,
                         die_yield=good, die_area_mm2=die_mm2, package=package)


def _packaging(chip: ChipSpec, area: AreaBreakdown, die_mm2: float) -> tuple[str, float]:
    logic_mm2 = die_mm2 * chip.dies
    kind = chip.memory.kind
    if not kind.startswith("HBM"):
        substrate = ORGANIC_SUBSTRATE_AREA_RATIO * logic_mm2
        return "organic", substrate * ORGANIC_USD_PER_MM2
    stacks = chip.memory.physical_stacks or chip.memory.stacks
    interposer = INTERPOSER_MARGIN * (logic_mm2 + stacks * _stack_area_mm2(kind))
    if chip.dies > 1 or interposer > COWOS_S_MAX_MM2:
        return "CoWoS-L", interposer * COWOS_L_USD_PER_MM2
    return "CoWoS-S", interposer * COWOS_S_USD_PER_MM2


def _stack_area_mm2(kind: str) -> float:
    """An HBM stack's package footprint (sourced in chipforge.cost._memory)."""
    return memory_tech(kind).stack_area_mm2
