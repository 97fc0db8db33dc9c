"""Quantities with units in chip specs: ``"1.41 GHz"``, ``"40 MiB"``, ``"2039 GB/s"``.

Each dimension has a table of unit names and their factor to the SI base unit. A spec
value is either a string ``"<number> <unit>"`` or, for dimensionless fields, a bare number.
"""

from __future__ import annotations

import re

# Decimal (SI) and binary (IEC) prefixes; vendors quote memory in GB (1e9) for bandwidth and
# GiB-ish GB for capacity. We take every unit literally as written.
UNITS: dict[str, dict[str, float]] = {
    "frequency": {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "power": {"W": 1.0, "kW": 1e3, "mW": 1e-3},
    "area": {"mm2": 1.0, "mm^2": 1.0, "cm2": 100.0},
    "size": {
        "B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
        "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "TiB": 2.0**40,
    },
    "bandwidth": {
        "B/s": 1.0, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12,
        "GiB/s": 2.0**30, "Gbps": 1e9 / 8, "Tbps": 1e12 / 8,
    },
    "money": {"USD": 1.0, "$": 1.0, "kUSD": 1e3},
}

_QUANTITY = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+)\s*(\S+)\s*$")


class UnitError(ValueError):
    """A quantity string that cannot be read; the message says what was expected."""


def parse_quantity(value: object, dimension: str) -> float:
    """Return ``value`` in the SI base unit of ``dimension`` (Hz, W, mm2, bytes, bytes/s, USD)."""
    table = UNITS[dimension]
    example = {"frequency": "1.41 GHz", "power": "400 W", "area": "826 mm2", "size": "40 MiB",
               "bandwidth": "2039 GB/s", "money": "25000 USD"}[dimension]
    if isinstance(value, bool) or not isinstance(value, str):
        raise UnitError(f"expected a {dimension} with a unit, like {example!r}")
    match = _QUANTITY.match(value)
    if not match:
        raise UnitError(f"expected a {dimension} with a unit, like {example!r}")
    number, unit = float(match.group(1)), match.group(2)
    if unit not in table:
        raise UnitError(f"unknown {dimension} unit {unit!r}; expected one of {', '.join(table)}")
    return number * table[unit]
