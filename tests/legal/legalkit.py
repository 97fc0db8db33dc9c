"""Shared helpers for the chipforge.legal tests: constructed chips and fixed measures."""

from __future__ import annotations

from collections.abc import Callable

from chipforge.arch import ChipSpec, derive_chip, load_chip
from chipforge.legal import Measured


def fixed(tpp: float = 1000.0, pd: float = 1.0, transistors: float | None = 10e9,
          density: float | None = 1.0) -> Callable[[ChipSpec], Measured]:
    """A measure that gives the same constructed figures for any chip."""
    return lambda chip: Measured(tpp=tpp, pd=pd, transistors=transistors,
                                 transistor_source="published",
                                 memory_bw_density_gb_s_mm2=density)


def own_chip(**changes: object) -> ChipSpec:
    """forge-i1 (vendor chipforge, HBM3e, N5) with ``changes`` (YAML keys) merged in."""
    base = load_chip("forge-i1")
    return derive_chip(base, dict(changes)) if changes else base
