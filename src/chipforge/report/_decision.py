"""The report's answer: which chip wins each workload, by how much per $ and per W, under
which assumptions, and why (what limits it, and the export rule that limits each design).

Everything here is derived from ``compare_suite``'s cells, the engine's per-op records
(``_bounds``), ``cost.chip_capex_usd`` and ``cost.export_class``; nothing is typed in.
"""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.cost import chip_capex_usd, export_class
from chipforge.errors import ChipforgeError
from chipforge.legal import (
    NOT_CONTROLLED,
    classify_3a090,
    default_as_of,
    explain_3a090,
    interconnect_gb_s,
    tier_limits,
)
from chipforge.perf import DEFAULT, Efficiency, estimate
from chipforge.report._bounds import bound_split, limiter
from chipforge.report._format import eng
from chipforge.workloads import Workload

# the bought chips every result is compared with: the H20 is the best GPU that ships
# without a licence, the H100 the usual licensed one (docs/designs.md)
BASELINES = (("h20", "H20"), ("h100-sxm", "H100"))
# what the winners are chosen by: throughput per chip (a split's group is not "faster"
# for using more chips), per $1k of capital cost, per W
METRICS = ("per_chip", "per_kusd", "per_w")
# chips whose vendor is this are our designs (cost.chip_capex_usd prices them the same way)
OWN_VENDOR = "chipforge"
# designs.md: both uncontrolled searches keep PD x 1.1 under 3.2 (area-model error)
PD_MARGIN = 0.1


def decision(data: dict, workloads: dict[str, Workload], specs: dict[str, ChipSpec],
             eff: Efficiency = DEFAULT) -> dict:
    """The summary, the per-cell table with ratio columns, and the export reasoning;
    ``eff``: the efficiency parameters ``data`` was estimated with."""
    capex = {name: _capex(spec) for name, spec in specs.items()}
    rows = []
    for row in data["rows"]:
        wl = workloads[row["workload"]]
        cells = [_cell(c, wl, specs[c["chip"]], capex[c["chip"]], eff) for c in row["cells"]]
        _add_ratios(cells)
        rows.append({"workload": row["workload"], "description": row["description"],
                     "phase": row["phase"], "dtype": wl.dtype, "cells": cells,
                     "winners": _winners(cells)})
    return {"rows": rows, "headline": _headline(rows),
            "baselines": [label for name, label in BASELINES if name in specs],
            "missing_baselines": [label for name, label in BASELINES if name not in specs],
            "assumptions": _assumptions(data, workloads, capex),
            "export": [export_row(spec) for spec in specs.values()]}


def _capex(spec: ChipSpec) -> float | None:
    try:
        return chip_capex_usd(spec)
    except ChipforgeError:
        return None  # no price: per-$ cells say "-" and the assumptions say why


def _chips_in(cell: dict) -> int:
    """Chips one estimate occupies (a tensor/pipeline split counts every chip)."""
    chips = cell.get("chips")
    return chips if isinstance(chips, int) and chips > 0 else 1


def _setting(cell: dict, wl: Workload) -> str:
    """The cell's dtype, split and batch in words."""
    words = [cell.get("dtype") or wl.dtype, cell.get("parallelism") or "1 chip"]
    if cell.get("batch") is not None:
        words.append(f"batch {cell['batch']}")
    if cell.get("memory_bytes") and cell.get("fits", True) is not False:
        words.append(f"{eng(cell['memory_bytes'], 'B')} a chip")
    return ", ".join(words)


def _cell(cell: dict, wl: Workload, spec: ChipSpec, capex: float | None,
          eff: Efficiency = DEFAULT) -> dict:
    out = {"chip": spec.name, "ok": False, "note": "", "setting": _setting(cell, wl)}
    if "error" in cell:
        out["note"] = cell["error"]
        return out
    if cell.get("fits", True) is False:
        # never a number for a configuration that cannot run: the engine's note says why
        note = cell.get("note") or "the chip's memory"
        out["note"] = note if note.startswith("does not fit") else "does not fit: " + note
        return out
    chips = _chips_in(cell)
    est = estimate(wl.graph, spec, eff)
    # energy_j and seconds are one chip's step; the group's power is chips times that
    power_w = cell["energy_j"] / cell["seconds"] if cell["seconds"] else 0.0
    split = bound_split(wl.graph, spec, est)
    total = sum(split.values()) or 1.0
    lim = limiter(wl.graph, spec, cell["bound"], est)
    out.update({
        "ok": True, "chips": chips, "seconds": cell["seconds"],
        "throughput": cell["throughput"], "per_chip": cell["throughput"] / chips,
        "unit": cell["unit"],
        "utilization": cell["utilization"], "energy_j": cell["energy_j"], "power_w": power_w,
        "engine_bound": cell["bound"], "limiter": lim,
        "split": ", ".join(f"{k} {v / total:.0%}" for k, v in
                           sorted(split.items(), key=lambda kv: -kv[1]) if v / total >= 0.01),
        "split_top": f"{split.get(lim, 0.0) / total:.0%}",
        "memory_bytes": cell.get("memory_bytes"), "flops": cell["flops"],
        "hbm_bytes": cell["hbm_bytes"],
        # items/s per $1,000 of the group's chip capital cost, and items per joule
        # (= items/s per W of the group's average power)
        "per_kusd": cell["throughput"] / (chips * capex) * 1e3 if capex else None,
        "per_w": cell["throughput"] / (chips * power_w) if power_w else None,
    })
    return out


def _add_ratios(cells: list[dict]) -> None:
    """``vs[label][metric]``: this cell's throughput per chip, per $ and per W over the
    baseline's."""
    by_chip = {c["chip"]: c for c in cells}
    for cell in cells:
        cell["vs"] = {}
        if not cell["ok"]:
            continue
        for name, label in BASELINES:
            base = by_chip.get(name)
            cell["vs"][label] = {m: (cell[m] / base[m] if base and base["ok"] and base.get(m)
                                     and cell.get(m) is not None else None)
                                 for m in METRICS}


def _winners(cells: list[dict]) -> dict:
    """Per metric: the best chip that fits, its margin over the runner-up, its limiter and
    its ratios to the baselines; and our best design per $ against the baselines."""
    ok = [c for c in cells if c["ok"]]
    out = {}
    for metric in METRICS:
        ranked = sorted((c for c in ok if c.get(metric)), key=lambda c: -c[metric])
        if not ranked:
            out[metric] = None
            continue
        best = ranked[0]
        margin = best[metric] / ranked[1][metric] if len(ranked) > 1 else None
        out[metric] = {"chip": best["chip"], "value": best[metric], "margin": margin,
                       "runner_up": ranked[1]["chip"] if len(ranked) > 1 else None,
                       "limiter": best["limiter"], "vs": best["vs"]}
    ours = [c for c in ok if c["chip"].startswith("forge") and c.get("per_kusd")]
    out["ours"] = max(ours, key=lambda c: c["per_kusd"]) if ours else None
    return out


def _headline(rows: list[dict]) -> list[str]:
    """The table in sentences: who wins how many workloads, and where our designs stand
    per $ against each baseline (only workloads where both have a number)."""
    lines = []
    for metric, words in (("per_chip", "Fastest per chip"), ("per_kusd", "Best per $"),
                          ("per_w", "Best per W")):
        wins: dict[str, int] = {}
        for row in rows:
            if row["winners"][metric]:
                chip = row["winners"][metric]["chip"]
                wins[chip] = wins.get(chip, 0) + 1
        ranked = sorted(wins.items(), key=lambda kv: -kv[1])
        lines.append(f"{words}: " + ", ".join(f"{c} on {n} of {len(rows)}" for c, n in ranked)
                     + "." if ranked else f"{words}: no chip fits any workload.")
    for _name, label in BASELINES:
        ratios = [row["winners"]["ours"]["vs"][label]["per_kusd"] for row in rows
                  if row["winners"]["ours"] and row["winners"]["ours"]["vs"].get(label)
                  and row["winners"]["ours"]["vs"][label]["per_kusd"] is not None]
        if ratios:
            ahead = sum(r > 1 for r in ratios)
            lines.append(f"Our best design per $ beats the {label} on {ahead} of {len(ratios)} "
                         f"workloads where both run ({min(ratios):.2g}× to "
                         f"{max(ratios):.2g}× its items/s per $).")
    return lines


def _assumptions(data: dict, workloads: dict[str, Workload], capex: dict) -> list[str]:
    """One set for every suite table on the page: the comparison's own words where it
    states them, then what the report adds (per $, per W)."""
    stated = data.get("assumptions") or {}
    lines = [f"{key}: {text}." for key, text in stated.items()]
    if not stated:
        dtypes = sorted({workloads[r["workload"]].dtype for r in data["rows"]})
        lines = [f"dtype: {', '.join(dtypes)} for every workload.",
                 "parallelism: none, one chip per estimate.",
                 "memory: not checked by this comparison: read a row whose model exceeds a "
                 "chip's memory as throughput per chip-equivalent, not as a deployment.",
                 "batch: as each workload states."]
    priced = ", ".join(f"{n} ${v:,.0f}" for n, v in capex.items() if v)
    lines.append(f"per $: throughput per $1,000 of the chips' capital cost ({priced}; GPUs "
                 "at purchase price, our designs at unit cost + NRE / volume + board, "
                 "cost.TcoAssumptions); a split over n chips costs n chips.")
    lines.append("per W: throughput over the average power of the chips that run it, i.e. "
                 "items per joule (the engine's energy model; no host, no cooling).")
    missing = [n for n, v in capex.items() if not v]
    if missing:
        lines.append(f"no price for {', '.join(missing)}: their per-$ cells are '-'.")
    return lines


def export_row(spec: ChipSpec) -> dict:
    """TPP, PD, tier and the sentence that says which clause of 3A090 decides it, under the
    rules in force on the default scenario's date (chipforge.legal)."""
    exp = export_class(spec)
    links = interconnect_gb_s(spec)
    tier = classify_3a090(exp.tpp, exp.pd, default_as_of(), links)
    own = spec.vendor == OWN_VENDOR
    return {"chip": spec.name, "tpp": exp.tpp, "pd": exp.pd, "tier": tier,
            "dtype": exp.dtype, "area_mm2": exp.die_area_mm2, "area_source": exp.die_area_source,
            "own": own, "clause": explain_3a090(exp.tpp, exp.pd, None, links),
            "limit": _design_limit(exp.tpp, exp.pd, tier) if own else
            f"bought: {tier}" + ("" if tier == NOT_CONTROLLED else
                                 ", its export needs a licence")}


def _design_limit(tpp: float, pd: float, tier: str) -> str:
    """What the rule leaves an uncontrolled design of ours, or what its tier costs."""
    if tier != NOT_CONTROLLED:
        return f"our design in {tier}: it needs an export licence this platform will not get"
    limits = dict(tier_limits(tpp, pd))
    parts = []
    if "tpp" in limits:
        t = limits["tpp"]
        parts.append(f"TPP must stay < {t:g} ({t - tpp:,.0f} left, {1 - tpp / t:.1%})")
    if "pd" in limits:
        parts.append(f"PD < {limits['pd']:g}; the design searches keep PD ≤ "
                     f"{limits['pd'] / (1 + PD_MARGIN):.2f} (a {PD_MARGIN:.0%} margin for "
                     f"die-area model error), this design has {pd:.2f}")
    if "pd" not in limits:  # below the lowest TPP threshold no clause tests PD
        return " and ".join(parts) + ": no 3A090 clause applies below it, whatever the PD."
    return (" and ".join(parts) + ". So compute is capped near the H20's and the die is "
            "padded with SRAM to lower PD (docs/designs.md).")
