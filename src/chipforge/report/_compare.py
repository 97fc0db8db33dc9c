"""The workload suite estimated on a set of chips: the data behind ``compare`` and the report."""

from __future__ import annotations

from chipforge.arch import load_chip
from chipforge.errors import ChipforgeError
from chipforge.perf import estimate
from chipforge.workloads import workload_suite


def compare_suite(chips: list[str], dtype: str | None = None) -> dict:
    """``{"chips": [...], "rows": [{"workload", "phase", "cells": [...]}]}`` in SI units.

    A cell that cannot be estimated (say, a dtype the chip lacks) carries ``error``.
    """
    specs = [load_chip(c) for c in chips]
    rows = []
    for wl in workload_suite(dtype):
        cells = []
        for spec in specs:
            try:
                est = estimate(wl.graph, spec)
            except ChipforgeError as exc:
                cells.append({"chip": spec.name, "error": str(exc)})
                continue
            cells.append({
                "chip": spec.name, "seconds": est.seconds,
                "throughput": wl.graph.items / est.seconds, "unit": wl.graph.item_unit,
                "utilization": est.utilization, "bound": est.bound, "energy_j": est.energy_j,
                "flops": est.flops, "hbm_bytes": est.hbm_bytes,
            })
        rows.append({"workload": wl.name, "phase": wl.phase, "description": wl.description,
                     "cells": cells})
    return {"chips": [s.name for s in specs], "rows": rows}
