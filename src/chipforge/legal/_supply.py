"""What a scenario lets a design of ours be made with: the fab's process nodes, and the
memory a China-HQ designer can put in the package (docs/legal.md, "Supply").

Not export rules but their consequence for a design: a node the scenario's fab does not
run cannot be built there, and HBM for a design made at a fab domestic to the buyer must
come from a domestic supplier in volume on the date (reading: ECCN 3A090.c controls HBM
exported to a China-HQ entity whoever packages it, 89 FR 96790; the foreign-fab path is
checked by the 3a090c-2024 rule instead). Memory other than HBM is not controlled and may
be imported.
"""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.cost import domestic_memory
from chipforge.legal._check import OWN_VENDOR
from chipforge.legal._rules import Scenario, load_context
from chipforge.legal._scenarios import scenario as named_scenario


def supply_problems(chip: ChipSpec, scenario: str | Scenario) -> list[str]:
    """Why ``chip`` (a design of ours) cannot be built under ``scenario``; empty when it
    can, and always empty for a vendor's product (bought, not built)."""
    s = scenario if isinstance(scenario, Scenario) else named_scenario(scenario)
    if chip.vendor.lower() != OWN_VENDOR:
        return []
    fab = load_context().fabs[s.fab]
    problems = []
    if fab.nodes is not None and chip.process_node not in fab.nodes:
        problems.append(f"{fab.name} does not run {chip.process_node}: it offers "
                        f"{', '.join(fab.nodes)}")
    kind = chip.memory.kind
    if s.buyer in fab.domestic_to and kind.startswith("HBM"):
        if kind not in {m.kind for m in domestic_memory(s.as_of)}:
            problems.append(f"{kind}: no domestic supplier in volume on {s.as_of} (foreign "
                            "HBM to a China-HQ designer is 3A090.c)")
    return problems
