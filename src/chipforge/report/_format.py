"""Numbers as the report prints them: engineering notation with SI prefixes and units."""

from __future__ import annotations

import math

# SI prefixes by power of 1000 (BIPM SI brochure, 9th ed., table 7)
_PREFIXES = {-5: "f", -4: "p", -3: "n", -2: "µ", -1: "m", 0: "", 1: "k", 2: "M", 3: "G",
             4: "T", 5: "P", 6: "E"}

_SI_UNITS = {"s", "J", "W", "B", "FLOP", "Hz", "m", "g", "V", "A"}


def eng(value: float | None, unit: str = "", digits: int = 3) -> str:
    """``eng(4.68e5 * 1e-3, "s") == "468 s"``, ``eng(2240, "tokens/s") == "2.24 k tokens/s"``:
    ``digits`` significant figures, an exponent that is a multiple of 3 as an SI prefix."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0:
        return f"0 {unit}".strip()
    if value < 0:
        return "-" + eng(-value, unit, digits)
    si = unit.split("/")[0] in _SI_UNITS
    if not si and value < 1:  # no milli-tokens: a counted thing below one is plain
        return f"{value:.{digits}g} {unit}".strip()
    power = math.floor(math.log10(value) / 3)
    power = max(min(power, max(_PREFIXES)), min(_PREFIXES))
    mant = value / 1000.0 ** power
    text = f"{mant:.{digits}g}"
    if float(text) >= 1000 and power < max(_PREFIXES):  # 999.7 rounds up to the next prefix
        power += 1
        text = f"{mant / 1000:.{digits}g}"
    if "e" in text:  # below the smallest prefix: keep plain scientific notation
        text = f"{mant:.{digits - 1}e}"
    prefix = _PREFIXES[power]
    # SI units take the prefix (2.4 kJ); counted things read better apart (2.2 k tokens/s)
    glue = "" if si or not prefix else " "
    return f"{text} {prefix}{glue}{unit}".strip()


def ratio(value: float | None) -> str:
    """A ratio to a baseline chip: ``1.4×``, ``0.23×``."""
    if value is None or not math.isfinite(value):
        return "-"
    if value >= 10:
        return f"{value:.0f}×"
    return f"{value:.1f}×" if value >= 1 else f"{value:.2g}×"
