"""ECCN 3A090 quantities: total processing performance (TPP) and performance density (PD).

15 CFR 774 Supp. 1, ECCN 3A090 (October 2023 rule, kept since): TPP = 2 x MacTOPS x bit
length of the operation, the maximum over data types (dense); PD = TPP / applicable die
area in mm2 (the logic dies). The thresholds and the tier they give are
``chipforge.legal``'s (rules as dated data, docs/legal.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from chipforge.arch import BITS, ChipSpec
from chipforge.cost._area import die_area


@dataclass(frozen=True)
class ExportClass:
    tpp: float
    pd: float
    dtype: str  # the dtype that gives the maximum TPP
    die_area_mm2: float  # the logic die area PD was computed with
    die_area_source: str  # "spec" (die_area given) or "predicted" (chipforge.cost.die_area)


def tpp_by_dtype(chip: ChipSpec) -> dict[str, float]:
    """TPP of each supported dtype: 2 x dense MacTOPS (whole chip) x bit length."""
    return {d: 2.0 * chip.macs_per_cycle(d) * chip.clock_hz / 1e12 * BITS[d]
            for d in chip.supported_dtypes}


def export_class(chip: ChipSpec) -> ExportClass:
    """TPP and PD. PD uses the spec's die_area when given, else the predicted logic die
    area. The tier: ``chipforge.legal.export_tier``."""
    by_dtype = tpp_by_dtype(chip)
    dtype = max(by_dtype, key=by_dtype.__getitem__)
    tpp = by_dtype[dtype]
    if chip.die_area_mm2 is not None:
        area, where = chip.die_area_mm2, "spec"
    else:
        area, where = die_area(chip).logic_mm2, "predicted"
    pd = tpp / area
    return ExportClass(tpp=tpp, pd=pd, dtype=dtype,
                       die_area_mm2=area, die_area_source=where)
