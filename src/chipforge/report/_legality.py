"""The report's legality section: each chip's export verdict under every named scenario
(``chipforge.legal.SCENARIOS``), with the rules that bind and their margins.

Everything comes from ``chipforge.legal.check_scenario`` with chipforge.cost's measures;
nothing is typed in. Not legal advice (docs/legal.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from chipforge.arch import ChipSpec
from chipforge.cost import export_class, transistor_count
from chipforge.errors import ChipforgeError
from chipforge.legal import (
    NOT_LEGAL_ADVICE,
    SCENARIOS,
    RuleCheck,
    check_scenario,
    format_quantity,
    scenario,
    supply_problems,
)
from chipforge.report._decision import OWN_VENDOR

LEGAL_DOC = "docs/legal.md"


def legality_section(specs: Iterable[ChipSpec]) -> dict[str, Any]:
    """One row per chip, one cell per scenario, the scenarios' settings, the notice."""
    specs = list(specs)
    return {"scenarios": [_scenario_doc(name) for name in SCENARIOS],
            "rows": [legality_row(spec) for spec in specs],
            "designs": [design_note(spec) for spec in specs if spec.vendor == OWN_VENDOR],
            "notice": NOT_LEGAL_ADVICE, "doc": LEGAL_DOC}


def design_note(spec: ChipSpec) -> str:
    """What the rules made of one of our designs: its memory and why (3A090.c binds HBM
    for this buyer), its TPP and its transistor count against the foundry rule."""
    mem = spec.memory
    why = ("HBM, which 3A090.c controls for a China-HQ buyer" if mem.kind.startswith("HBM")
           else f"{mem.kind}, not HBM: 3A090.c controls every HBM stack for this buyer")
    count = transistor_count(spec)
    return (f"{spec.name}: {why}; TPP {export_class(spec).tpp:,.0f}; "
            f"{count.total / 1e9:.1f} B transistors ({count.source}) against the foundry "
            "rule's 30 B")


def legality_row(spec: ChipSpec) -> dict[str, Any]:
    return {"chip": spec.name, "own": spec.vendor == OWN_VENDOR,
            "cells": [legality_cell(spec, name) for name in SCENARIOS]}


def legality_cell(spec: ChipSpec, name: str) -> dict[str, Any]:
    """The verdict and the binding rules of ``spec`` under scenario ``name``; a chip the
    check cannot measure gets its error instead of a verdict."""
    try:
        report = check_scenario(spec, name)
    except ChipforgeError as exc:  # LegalError, or a figure chipforge.cost cannot give
        return {"scenario": name, "verdict": None, "binding": [], "error": str(exc),
                "supply": []}
    binding = [{"rule_id": c.rule_id, "quantity": c.quantity, "value": c.value,
                "threshold": c.threshold, "margin": c.margin, "text": binding_text(c)}
               for c in report.binding]
    return {"scenario": name, "verdict": report.verdict, "binding": binding, "error": None,
            "supply": supply_problems(spec, name)}


def legality_html(section: dict[str, Any]) -> str:
    """The section alone, rendered from the template the page includes (templates/
    _legality.html), so it can be checked without writing the whole report."""
    env = Environment(loader=PackageLoader("chipforge.report", "templates"),
                      autoescape=select_autoescape())
    return env.get_template("_legality.html").render(legality=section)


def binding_text(check: RuleCheck) -> str:
    """'foundry-dd-2025: transistors 110.6e9 vs >= 30e9, +269%': the rule, its quantity's
    value against the threshold it meets and the relative margin; a rule that names
    products or vendors: 'nvidia-h20-2025-07: product in [h20]'."""
    if not isinstance(check.value, float | int):
        return f"{check.rule_id}: {check.threshold}"
    test = check.threshold
    if test.startswith(check.quantity + " "):
        test = test[len(check.quantity) + 1:]
    text = f"{check.rule_id}: {check.quantity} {format_quantity(check.value)} vs {test}"
    return text if check.margin is None else f"{text}, {check.margin:+.0%}"


def _scenario_doc(name: str) -> dict[str, Any]:
    s = scenario(name)
    return {"name": name, "as_of": s.as_of.isoformat(), "buyer": s.buyer, "fab": s.fab,
            "approved_designer": s.approved_designer}
