"""Argument checks shared by the workload builders; every failure is a one-line WorkloadError."""

from __future__ import annotations

from chipforge.arch import DTYPES
from chipforge.errors import WorkloadError


def pos_int(where: str, name: str, value: object) -> int:
    """``value`` as a positive int, or a WorkloadError naming ``where``, ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WorkloadError(f"{where}: {name}={value!r}; expected a positive integer")
    return value


def check_dtype(where: str, dtype: object, name: str = "dtype") -> str:
    if dtype not in DTYPES:
        raise WorkloadError(f"{where}: {name}={dtype!r}; expected one of {', '.join(DTYPES)}")
    return str(dtype)


def divides(where: str, name: str, value: int, by_name: str, by: int) -> int:
    """``value // by``, or a WorkloadError when ``by`` does not divide ``value``."""
    if value % by:
        raise WorkloadError(f"{where}: {name}={value} is not divisible by {by_name}={by}; "
                            f"expected a multiple of {by}")
    return value // by
