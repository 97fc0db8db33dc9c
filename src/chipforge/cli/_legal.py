"""``chipforge legal CHIP``: every export rule checked for buying or fabricating a chip, with
the quantity, threshold, margin and citation, then the verdict (docs/legal.md).

Not legal advice.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from chipforge.arch import load_chip
from chipforge.cli._output import JsonOption, print_json, print_table, say
from chipforge.errors import ChipforgeError
from chipforge.legal import (
    DEFAULT_SCENARIO,
    LegalReport,
    check,
    check_scenario,
    format_quantity,
    supply_problems,
)
from chipforge.legal import scenario as named_scenario


def legal_cmd(
    chip: Annotated[str, typer.Argument(help="catalog name or spec path")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help=f"date of the export, YYYY-MM-DD [default: {DEFAULT_SCENARIO}'s]")] = None,
    buyer: Annotated[str | None, typer.Option(help="china-hq, us or row [default: "
                                              f"{DEFAULT_SCENARIO}'s]")] = None,
    fab: Annotated[str | None, typer.Option(help="tsmc, samsung, intel or smic [default: "
                                            f"{DEFAULT_SCENARIO}'s]")] = None,
    approved_designer: Annotated[bool, typer.Option(
        "--approved-designer", help="take the approved-IC-designer exception")] = False,
    scenario: Annotated[str | None, typer.Option(help="a named scenario (fixes date, buyer, "
                                                 "fab and exception)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a chip against the export rules in force on a date. Not legal advice."""
    spec = load_chip(chip)
    if scenario is not None:
        given = [f for f, v in (("--as-of", as_of), ("--buyer", buyer), ("--fab", fab),
                                ("--approved-designer", approved_designer or None)) if v]
        if given:
            raise ChipforgeError(f"--scenario {scenario} fixes the date, buyer, fab and "
                                 f"exception; drop {', '.join(given)}")
        report = check_scenario(spec, scenario)
    else:
        default = named_scenario(DEFAULT_SCENARIO)  # what a question without one assumes
        report = check(spec, as_of or default.as_of, buyer or default.buyer,
                       fab or default.fab, approved_designer)
    supply = supply_problems(spec, scenario) if scenario is not None else []
    if as_json:
        print_json({**report.to_dict(), "supply_problems": supply})
        return
    _print(report)
    for problem in supply:  # not a rule: what the scenario's fab and suppliers cannot give
        say(f"supply ({scenario}): {problem}")


def _print(report: LegalReport) -> None:
    what = "buying" if report.path == "purchase" else f"fabricating at {report.fab}"
    scen = f", scenario {report.scenario}" if report.scenario else ""
    table = Table(title=f"{report.chip}: {what} for a {report.buyer} buyer on "
                        f"{report.as_of.isoformat()}{scen}"
                        f"{', approved designer' if report.approved_designer else ''}")
    for col in ("rule", "provision", "quantity", "value", "threshold", "margin", "binds",
                "outcome", "citation"):
        table.add_column(col, justify="right" if col in ("value", "margin") else "left")
    for c in report.checks:
        cells = (c.rule_id, c.provision, c.quantity, format_quantity(c.value),
                 c.threshold if c.applies else f"n/a: {c.reason}",
                 "-" if c.margin is None else f"{c.margin:+.1%}",
                 "yes" if c.binds else "no", c.outcome, c.citation or "assumption")
        table.add_row(*(escape(cell) for cell in cells))
    print_table(table)
    if report.transistor_source:
        say(f"transistor count: {format_quantity(report.quantities.get('transistors'))} "
            f"({report.transistor_source})")
    say(f"verdict: {report.verdict}")
    say(report.notice)
