"""``chipforge fleet-plan [DEMAND.yaml]``: the cheapest fleet, in $ and MW, that meets a year's
demand under each legal scenario, with a table per workload and the fleet of bought and
owned chips only beside it (docs/cli.md, docs/cluster.md "The fleet plan")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from chipforge.cli._output import JsonOption, print_json, print_table, say
from chipforge.errors import ChipforgeError

# today's rules (H20 under licence, H200 case by case) and the hypothetical full ban
DEFAULT_SCENARIOS = ("tsmc-2026", "full-ban")


def fleet_plan_cmd(
    demand: Annotated[Path | None, typer.Argument(
        help="demand YAML (default: the shipped chipforge/cluster/data/demand.yaml)")] = None,
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", help="legal scenario (repeatable; default: "
        f"{', '.join(DEFAULT_SCENARIOS)})")] = None,
    power_cap_mw: Annotated[float | None, typer.Option(
        "--power-cap-mw", help="facility power cap of the whole fleet, MW (PUE included)")]
    = None,
    ray: Annotated[bool, typer.Option("--ray", help="run the planners on Ray")] = False,
    workers: Annotated[int, typer.Option(help="local worker processes for the planners")] = 1,
    store: Annotated[Path | None, typer.Option(help="folder of a resumable store of the "
                                               "planners' results (fleet_plan.jsonl)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Buy GPUs the scenario allows, build forge-t1/forge-i1 (NRE, lead time), use the chips
    owned, or a mix: the cheapest fleet meeting every workload (an exact MILP, HiGHS)."""
    from chipforge.cluster import PlannerCoefficients, fleet_plan, load_demand
    from chipforge.legal import scenario as named_scenario

    if power_cap_mw is not None and not power_cap_mw > 0:
        raise ChipforgeError(f"--power-cap-mw: got {power_cap_mw!r}; expected a positive "
                             "number of MW")
    if workers < 1:
        raise ChipforgeError(f"--workers: got {workers!r}; expected at least 1")
    if store is not None and store.exists() and not store.is_dir():
        raise ChipforgeError(f"--store: {str(store)!r} is a file; expected a folder")
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
    names = list(scenario or DEFAULT_SCENARIOS)
    for name in names:
        named_scenario(name)  # an unknown name is one error before any work
    if demand is None:
        typer.echo("fleet-plan: no demand file given; using the shipped default "
                   "(chipforge/cluster/data/demand.yaml)", err=True)
    d = load_demand(demand)
    # one set of planner results for every scenario; the planners show a progress bar
    planners = PlannerCoefficients(None if store is None else store / "fleet_plan.jsonl",
                                   workers, ray, "planners")
    results: list[dict[str, Any]] = []
    for name in names:
        try:
            plan = fleet_plan(d, name, power_cap_mw=power_cap_mw, provider=planners)
            results.append(plan.to_dict())
        except ChipforgeError as exc:  # one scenario's infeasible demand is its result
            results.append({"scenario": name, "demand": d.name, "infeasible": str(exc)})
    if as_json:
        print_json({"demand": d.name, "power_cap_mw": power_cap_mw, "plans": results})
        return
    for doc in results:
        _print(doc)


def _usd(x: float) -> str:
    return f"${x / 1e9:,.2f}B" if abs(x) >= 1e8 else f"${x / 1e6:,.1f}M"


def _print(doc: dict[str, Any]) -> None:
    say(f"[bold]scenario {escape(doc['scenario'])}[/] (demand {escape(doc['demand'])})")
    if "infeasible" in doc:
        say(f"  infeasible: {escape(doc['infeasible'])}")
        return
    _options(doc)
    table = Table(title=f"fleet under {doc['scenario']}")
    for col in ("workload", "demand", "option", "chips", "capex", "energy/yr", "MW", "util"):
        table.add_column(col, justify="left" if col in ("workload", "demand", "option")
                         else "right")
    for r in doc["rows"]:
        table.add_row(escape(r["workload"]), escape(r["demand"]), escape(r["option"]),
                      f"{r['chips']:,}", _usd(r["capex_usd"]), _usd(r["energy_usd"]),
                      f"{r['mw']:,.1f}", f"{r['utilization']:.0%}")
    print_table(table)
    _totals("fleet", doc)
    for note in doc["notes"]:
        say(f"  note: {escape(note)}")
    if doc.get("buy_only"):
        _totals("bought and owned chips only", doc["buy_only"])
        if doc["nre_paid"]:
            say(f"  building saves {_usd(doc['buy_only']['total_usd'] - doc['total_usd'])} "
                "over the year")
        else:
            say("  no build option pays: the cheapest fleet buys or uses owned chips only")
    elif doc.get("buy_only_error"):
        say(f"  bought and owned chips only: infeasible: {escape(doc['buy_only_error'])}")
    else:
        say("  no build option is allowed: the fleet is bought and owned chips only")


def _options(doc: dict[str, Any]) -> None:
    for v in doc["options"]:
        mark = "allowed" if v["allowed"] else "excluded"
        kind = "" if v["kind"] == "owned" else f" ({v['kind']})"
        say(f"  option {escape(v['name'])}{kind}: {mark}: {escape(v['reason'])}")


def _totals(label: str, doc: dict[str, Any]) -> None:
    chips = ", ".join(f"{n} {c:,}" for n, c in doc["chips"].items())
    nre = f" (NRE: {', '.join(doc['nre_paid'])})" if doc["nre_paid"] else ""
    say(f"  {label}: total {_usd(doc['total_usd'])} = capex {_usd(doc['capex_usd'])} + NRE "
        f"{_usd(doc['nre_usd'])}{nre} + energy {_usd(doc['energy_usd'])}; "
        f"{doc['mw']:,.1f} MW; chips: {chips}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the chipforge app."""
    app.command("fleet-plan")(fleet_plan_cmd)
