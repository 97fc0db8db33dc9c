"""``python -m chipforge.cost``: predicted area, unit cost and 3A090 tier of every catalog
chip, the figures docs/silicon.md records."""

from __future__ import annotations

from chipforge.arch import catalog_names, load_chip
from chipforge.cost import die_area, export_class, unit_cost
from chipforge.errors import ChipforgeError


def main() -> None:
    print(f"{'chip':10} {'node':4} {'given':>6} {'model':>6} {'err':>6} | "
          f"{'matrix':>6} {'vector':>6} {'sram':>5} {'noc':>5} {'memphy':>6} {'serdes':>6} "
          f"{'io':>4} | {'DPW':>4} {'yield':>5} {'die$':>5} {'mem$':>5} {'pkg$':>5} "
          f"{'unit$':>6} | {'TPP':>6} {'PD':>5} tier")
    for name in catalog_names():
        chip = load_chip(name)
        try:
            area, cost, ex = die_area(chip), unit_cost(chip), export_class(chip)
        except ChipforgeError as exc:
            print(f"{name:10} {exc}")
            continue
        given = chip.die_area_mm2
        err = f"{area.total_mm2 / given - 1:+.1%}" if given else "-"
        p, c = area.parts, cost.parts
        print(f"{name:10} {area.node:4} {given or 0:6.0f} {area.total_mm2:6.0f} {err:>6} | "
              f"{p['matrix']:6.0f} {p['vector']:6.0f} {p['sram']:5.0f} {p['noc_control']:5.0f} "
              f"{p['memory_phy']:6.0f} {p['serdes']:6.0f} {p['host_io']:4.0f} | "
              f"{cost.dies_per_wafer:4d} {cost.die_yield:5.2f} {c['die']:5.0f} "
              f"{c['memory']:5.0f} {c['packaging']:5.0f} {cost.total_usd:6.0f} | "
              f"{ex.tpp:6.0f} {ex.pd:5.2f} {ex.tier}")


if __name__ == "__main__":
    main()
