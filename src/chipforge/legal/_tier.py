"""The ECCN 3A090 tier of a chip and the clause that decides it, from data/rules.yaml.

``chipforge.cost.export_class`` measures TPP and PD; the thresholds are the rules' and live
only in the data. Not legal advice.
"""

from __future__ import annotations

import datetime as dt

from chipforge.arch import ChipSpec
from chipforge.cost import export_class
from chipforge.legal._check import (
    NOT_CONTROLLED,
    classify_3a090,
    interconnect_gb_s,
    parse_date,
    tier_rules,
)
from chipforge.legal._rules import Comparison
from chipforge.legal._scenarios import scenario

# the scenario a question without one is answered under (chip show, the report, the DSE)
DEFAULT_SCENARIO = "tsmc-2026"
_SHOWN = {"tpp": "TPP", "pd": "PD", "interconnect_gb_s": "interconnect GB/s"}


def default_as_of() -> dt.date:
    return scenario(DEFAULT_SCENARIO).as_of


def export_tier(chip: ChipSpec, as_of: dt.date | str | None = None,
                pd_margin: float = 0.0) -> str:
    """The chip's 3A090 tier on ``as_of`` (default: the default scenario's date), with PD
    checked at PD x (1 + ``pd_margin``) where the die area is a model's."""
    ex = export_class(chip)
    return classify_3a090(ex.tpp, ex.pd * (1 + pd_margin), as_of or default_as_of(),
                          interconnect_gb_s(chip))


_NEGATED = {">=": "<", ">": "≤", "<=": ">", "<": "≥"}


def _shown(c: Comparison, values: dict[str, float | None], negated: bool = False) -> str:
    x = values.get(c.quantity)
    name = _SHOWN.get(c.quantity, c.quantity)
    got = "?" if x is None else (f"{x:,.0f}" if c.quantity != "pd" else f"{x:.2f}")
    op = _NEGATED[c.op] if negated else {">=": "≥", "<=": "≤"}.get(c.op, c.op)
    return f"{name} {got} {op} {c.value:g}"


def tier_limits(tpp: float, pd: float, as_of: dt.date | str | None = None,
                interconnect: float | None = None) -> list[tuple[str, float]]:
    """For an uncontrolled (TPP, PD): each quantity's nearest threshold it must stay under,
    from the clauses of the 3A090 rules in force (e.g. [("tpp", 2400), ("pd", 3.2)] for
    forge-i1); empty for a controlled pair."""
    day = parse_date(as_of or default_as_of())
    values = {"tpp": tpp, "pd": pd, "interconnect_gb_s": interconnect}
    limits: dict[str, float] = {}
    for rule in tier_rules(day):
        for clause in rule.test:
            failed = [c for c in clause if values.get(c.quantity) is None
                      or not c.holds(float(values[c.quantity]))]
            if not failed:
                return []
            for c in failed:
                if c.op in (">=", ">"):
                    limits[c.quantity] = min(limits.get(c.quantity, c.value), c.value)
    return sorted(limits.items())


def explain_3a090(tpp: float, pd: float, as_of: dt.date | str | None = None,
                  interconnect: float | None = None) -> str:
    """Which clause of the 3A090 rules in force puts (TPP, PD) in its tier; for an
    uncontrolled pair, the comparison that fails in each clause ("not controlled: TPP
    2,386 < 4800, PD 2.88 < 5.92, TPP 2,386 < 2400, PD 2.88 < 3.2")."""
    day = parse_date(as_of or default_as_of())
    values = {"tpp": tpp, "pd": pd, "interconnect_gb_s": interconnect}
    misses = []
    for rule in tier_rules(day):
        for clause in rule.test:
            held = [c for c in clause if values.get(c.quantity) is not None
                    and c.holds(float(values[c.quantity]))]
            if len(held) == len(clause):
                return f"{rule.tier}: " + " and ".join(_shown(c, values) for c in clause)
            failed = next(c for c in clause if c not in held)
            misses.append(_shown(failed, values, negated=True))
    return f"{NOT_CONTROLLED}: " + ", ".join(dict.fromkeys(misses))
