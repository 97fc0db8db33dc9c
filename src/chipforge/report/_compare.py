"""The workload suite estimated on a set of chips: the data behind ``compare`` and the report."""

from __future__ import annotations

from chipforge.arch import load_chip
from chipforge.errors import ChipforgeError
from chipforge.ops import Graph
from chipforge.perf import DEFAULT, Efficiency, Estimate, estimate
from chipforge.workloads import USABLE_MEMORY_FRACTION, workload_suite


def assumptions(dtype: str | None, parallel: str | int | None,
                calibration: str = "default (shipped)") -> dict:
    """The one set of assumptions every cell of a comparison shares, in words."""
    split = {"auto": "the smallest split that fits each chip's memory: LLM prefill and "
                     "decode tensor-parallel (tp, power of two, collectives included, time "
                     "per chip of the group); splits of other workloads are not modelled, so "
                     "a workload that does not fit one chip has no number",
             None: "none: one chip; a workload that does not fit has no number"}
    return {
        "dtype": (f"{dtype} for every workload (training rows stay bf16 under int8)"
                  if dtype else "bf16 for every workload (the suite's default)"),
        "parallelism": split.get(parallel, f"tp={parallel} for LLM prefill and decode"),
        "memory": ("weights, KV cache, activations, gradients and optimizer state per chip "
                   f"within {USABLE_MEMORY_FRACTION:.0%} of the chip's memory "
                   "(chipforge.workloads memory model)"),
        "batch": "as each row states; per cell under 'batch'",
        "throughput": "items per second of the whole group ('throughput'), and per chip "
                      "('throughput_per_chip')",
        "calibration": f"efficiency parameters: {calibration}",
    }


def _batch(graph: Graph) -> int | None:
    meta = graph.meta
    return meta.get("batch", meta.get("global_batch"))


def _cell(est: Estimate, graph: Graph, spec_name: str) -> dict:
    cell = {"chip": spec_name, "dtype": str(graph.meta.get("dtype", "")),
            "batch": _batch(graph), "fits": est.fits, "parallelism": est.parallelism,
            "tp": est.tp, "pp": est.pp, "chips": est.chips, "needs_chips": est.needs_chips,
            "memory_bytes": est.memory_bytes, "note": est.note}
    if est.memory is not None:
        cell["memory"] = est.memory.parts()
    if not est.fits:
        return cell  # no time, throughput or energy for a configuration that cannot run
    cell.update({
        "seconds": est.seconds, "throughput": est.items_per_s,
        "throughput_per_chip": est.items_per_s_per_chip, "unit": est.item_unit,
        "utilization": est.utilization, "bound": est.bound, "energy_j": est.energy_j,
        "flops": est.flops, "hbm_bytes": est.hbm_bytes,
    })
    return cell


def compare_suite(chips: list[str], dtype: str | None = None,
                  parallel: str | int | None = "auto", eff: Efficiency = DEFAULT,
                  calibration: str = "default (shipped)") -> dict:
    """``{"chips", "assumptions", "rows": [{"workload", "phase", "cells": [...]}]}`` in SI
    units, every cell estimated with ``chipforge.perf.estimate(..., parallel=parallel)``.

    Every cell states its ``dtype``, ``batch``, ``parallelism`` (``tp``, ``pp``, ``chips``),
    ``fits``, ``needs_chips``, ``memory_bytes`` (per chip, parts in ``memory``) and
    ``note``. A cell that fits adds ``seconds`` (one step on one chip of the group),
    ``throughput`` (the group's items/s), ``throughput_per_chip``, ``unit``,
    ``utilization``, ``bound``, ``energy_j`` (one chip), ``flops`` and ``hbm_bytes``
    (one chip); one that does not fit has none of these. A cell that cannot be estimated
    (say, a dtype the chip lacks) carries ``error``. ``eff``: the efficiency parameters
    (a calibration profile's), named by ``calibration`` in the assumptions.
    """
    specs = [load_chip(c) for c in chips]
    rows = []
    for wl in workload_suite(dtype):
        cells = []
        for spec in specs:
            try:
                est = estimate(wl.graph, spec, eff, parallel=parallel)
            except ChipforgeError as exc:
                cells.append({"chip": spec.name, "error": str(exc)})
                continue
            cells.append(_cell(est, wl.graph, spec.name))
        rows.append({"workload": wl.name, "phase": wl.phase, "description": wl.description,
                     "cells": cells})
    return {"chips": [s.name for s in specs],
            "assumptions": assumptions(dtype, parallel, calibration), "rows": rows}
