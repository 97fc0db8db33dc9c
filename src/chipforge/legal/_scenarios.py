"""Named scenarios (data/scenarios.yaml): a date, a buyer, a fab and the exception choice."""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.legal._check import LegalReport, Measure, check
from chipforge.legal._rules import LegalError, Scenario, load_scenarios

SCENARIOS: tuple[str, ...] = tuple(load_scenarios())


def scenario(name: str) -> Scenario:
    """The scenario called ``name``; an unknown name is a LegalError listing the known."""
    found = load_scenarios().get(name)
    if found is None:
        raise LegalError(f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)} "
                         "(chipforge/legal/data/scenarios.yaml)")
    return found


def check_scenario(chip: ChipSpec, name_or_scenario: str | Scenario, *,
                   measure: Measure | None = None) -> LegalReport:
    """``check`` under a scenario's date, buyer, fab, exception and assumptions."""
    s = name_or_scenario if isinstance(name_or_scenario, Scenario) else \
        scenario(name_or_scenario)
    return check(chip, s.as_of, s.buyer, s.fab, s.approved_designer, measure=measure,
                 assumptions=s.assumptions, scenario=s.name)
