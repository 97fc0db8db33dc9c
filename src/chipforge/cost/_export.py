"""ECCN 3A090 metrics: total processing performance (TPP), performance density (PD), tier.

Rule of 17 Oct 2023 (kept in Dec 2024), 15 CFR 774 Supp. 1, ECCN 3A090:
TPP = 2 x MacTOPS x bit length of the operation, the maximum over data types (dense);
PD = TPP / applicable die area in mm2 (the logic dies).
3A090.a: TPP >= 4800, or TPP >= 1600 and PD >= 5.92.
3A090.b: 2400 <= TPP < 4800 and 1.6 <= PD < 5.92, or TPP >= 1600 and 3.2 <= PD < 5.92.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipforge.arch import BITS, ChipSpec
from chipforge.cost._area import die_area

TIER_A = "3A090.a"
TIER_B = "3A090.b"
NOT_CONTROLLED = "not controlled"


@dataclass(frozen=True)
class ExportClass:
    tpp: float
    pd: float
    tier: str  # "3A090.a", "3A090.b" or "not controlled"
    dtype: str  # the dtype that gives the maximum TPP
    die_area_mm2: float  # the logic die area PD was computed with
    die_area_source: str  # "spec" (die_area given) or "predicted" (chipforge.cost.die_area)


def tpp_by_dtype(chip: ChipSpec) -> dict[str, float]:
    """TPP of each supported dtype: 2 x dense MacTOPS (whole chip) x bit length."""
    return {d: 2.0 * chip.macs_per_cycle(d) * chip.clock_hz / 1e12 * BITS[d]
            for d in chip.supported_dtypes}


def classify(tpp: float, pd: float) -> str:
    """The 3A090 tier of a (TPP, PD) pair."""
    if tpp >= 4800 or (tpp >= 1600 and pd >= 5.92):
        return TIER_A
    if (2400 <= tpp < 4800 and 1.6 <= pd < 5.92) or (tpp >= 1600 and 3.2 <= pd < 5.92):
        return TIER_B
    return NOT_CONTROLLED


def export_class(chip: ChipSpec) -> ExportClass:
    """TPP, PD and 3A090 tier. PD uses the spec's die_area when given, else the predicted
    logic die area."""
    by_dtype = tpp_by_dtype(chip)
    dtype = max(by_dtype, key=by_dtype.__getitem__)
    tpp = by_dtype[dtype]
    if chip.die_area_mm2 is not None:
        area, where = chip.die_area_mm2, "spec"
    else:
        area, where = die_area(chip).logic_mm2, "predicted"
    pd = tpp / area
    return ExportClass(tpp=tpp, pd=pd, tier=classify(tpp, pd), dtype=dtype,
                       die_area_mm2=area, die_area_source=where)
