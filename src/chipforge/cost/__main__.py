"""``python -m chipforge.cost [--json]``: predicted area, unit cost, TPP and PD of every
catalog chip, the figures docs/silicon.md records (the 3A090 tier and every other export
rule: ``chipforge legal`` / ``chipforge chip show``, chipforge.legal).

The one implementation behind ``chipforge cost`` too (the CLI imports ``catalog_rows`` and
``render`` from here: cost sits below cli, so the CLI delegates down, not the reverse).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from chipforge.arch import catalog_names, load_chip
from chipforge.cost import die_area, export_class, unit_cost
from chipforge.errors import ChipforgeError

AREA_PARTS = ("matrix", "vector", "sram", "noc_control", "memory_phy", "serdes", "host_io")
COST_PARTS = ("die", "memory", "packaging")


def catalog_rows() -> list[dict[str, Any]]:
    """One dict per catalog chip in SI units (mm2, USD); ``error`` where the node has no
    area or cost tables."""
    rows = []
    for name in catalog_names():
        chip = load_chip(name)
        try:
            area, cost, ex = die_area(chip), unit_cost(chip), export_class(chip)
        except ChipforgeError as exc:
            rows.append({"chip": name, "error": str(exc)})
            continue
        given = chip.die_area_mm2 or None
        rows.append({
            "chip": name, "node": area.node, "given_die_area_mm2": given,
            "model_die_area_mm2": area.total_mm2,
            "model_error_fraction": area.total_mm2 / given - 1 if given else None,
            "area_mm2": {p: area.parts[p] for p in AREA_PARTS},
            "dies_per_wafer": cost.dies_per_wafer, "die_yield": cost.die_yield,
            "cost_usd": {p: cost.parts[p] for p in COST_PARTS},
            "unit_cost_usd": cost.total_usd, "tpp": ex.tpp, "pd": ex.pd})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The fixed-width text table (never truncated: plain text, no terminal width)."""
    w = max([10, *(len(r["chip"]) for r in rows)])
    lines = [f"{'chip':{w}} {'node':4} {'given':>6} {'model':>6} {'err':>6} | "
             f"{'matrix':>6} {'vector':>6} {'sram':>5} {'noc':>5} {'memphy':>6} {'serdes':>6} "
             f"{'io':>4} | {'DPW':>4} {'yield':>5} {'die$':>5} {'mem$':>5} {'pkg$':>5} "
             f"{'unit$':>6} | {'TPP':>6} {'PD':>5}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['chip']:{w}} {r['error']}")
            continue
        frac = r["model_error_fraction"]
        err = "-" if frac is None else f"{frac:+.1%}"
        p, c = r["area_mm2"], r["cost_usd"]
        lines.append(
            f"{r['chip']:{w}} {r['node']:4} {r['given_die_area_mm2'] or 0:6.0f} "
            f"{r['model_die_area_mm2']:6.0f} {err:>6} | {p['matrix']:6.0f} {p['vector']:6.0f} "
            f"{p['sram']:5.0f} {p['noc_control']:5.0f} {p['memory_phy']:6.0f} "
            f"{p['serdes']:6.0f} {p['host_io']:4.0f} | {r['dies_per_wafer']:4d} "
            f"{r['die_yield']:5.2f} {c['die']:5.0f} {c['memory']:5.0f} {c['packaging']:5.0f} "
            f"{r['unit_cost_usd']:6.0f} | {r['tpp']:6.0f} {r['pd']:5.2f}")
    return "\n".join(lines) + "\n"


def to_json(rows: list[dict[str, Any]]) -> str:
    """``rows`` as one JSON document (non-finite numbers as null)."""
    def finite(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        return None if isinstance(v, float) and not math.isfinite(v) else v
    return json.dumps([finite(r) for r in rows], indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a not in ("--json",) for a in args):
        print(f"usage: python -m chipforge.cost [--json]; got {' '.join(args)}",
              file=sys.stderr)
        return 2
    rows = catalog_rows()
    sys.stdout.write(to_json(rows) if "--json" in args else render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
