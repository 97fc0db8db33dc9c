"""``chipforge train-plan``: the best parallel layouts to pre-train an LLM on a system, and
GPU fleets bought with the same capital (docs/cli.md, docs/cluster.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chipforge.cli._output import (
    CompareOption,
    CompareScenarioOption,
    JsonOption,
    comma_list,
    fmt_s,
    fmt_si,
    print_json,
    print_table,
    progress_bar,
    say,
)
from chipforge.errors import ChipforgeError

# the GPU fleets each plan is compared with on an equal budget: the best Hopper, the
# China-market Hopper the buyer could buy in 2024, and Blackwell
COMPARE = "h100-sxm,h20,b200"


def train_plan_cmd(
    model: Annotated[str, typer.Option(help="model config name or config.json path")],
    chip: Annotated[str, typer.Option(help="chip name or spec file (its default system)")],
    tokens: Annotated[float, typer.Option(help="training tokens, e.g. 15e12")],
    count: Annotated[int | None, typer.Option(help="number of chips")] = None,
    seq_len: Annotated[int, typer.Option("--seq-len", help="sequence length")] = 8192,
    batch_tokens: Annotated[float, typer.Option("--batch-tokens", help="global batch in "
                                                "tokens")] = 16e6,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="capital budget: "
                                                     "buys whole nodes")] = None,
    budget_mw: Annotated[float | None, typer.Option("--budget-mw", help="facility power "
                                                    "budget (PUE included)")] = None,
    top: Annotated[int, typer.Option(help="plans to show")] = 5,
    compare: CompareOption = COMPARE,
    scenario: CompareScenarioOption = None,
    ray: Annotated[bool, typer.Option("--ray", help="evaluate the plans on Ray")] = False,
    workers: Annotated[int, typer.Option(help="local worker processes")] = 1,
    store: Annotated[Path | None, typer.Option(help="folder of a resumable results store "
                                               "(train_plan.jsonl)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Search TP, PP (1F1B, interleaved), DP with ZeRO 1/2/3, CP, EP and recompute for the
    fastest plan that fits; report step time, MFU, memory, goodput, days, energy and $."""
    from chipforge.arch import load_chip
    from chipforge.cluster import compare_on_budget, train_plan
    from chipforge.legal import DEFAULT_SCENARIO

    if workers < 1:
        raise ChipforgeError(f"--workers: got {workers!r}; expected at least 1")
    if top < 1:
        raise ChipforgeError(f"--top: got {top!r}; expected at least 1")
    if store is not None and store.exists() and not store.is_dir():
        raise ChipforgeError(f"--store: {str(store)!r} is a file; expected a folder")
    names = comma_list(compare)
    for name in names:  # a typo in --compare fails before the search, not after it
        try:
            load_chip(name)
        except ChipforgeError as exc:
            raise ChipforgeError(f"--compare: {exc}") from None
    search: dict[str, Any] = {"use_ray": ray, "workers": workers}
    with progress_bar("train-plan", None) as advance:
        result = train_plan(model, chip, count=count, budget_usd=budget_usd,
                            budget_mw=budget_mw, tokens=tokens, seq_len=seq_len,
                            global_batch_tokens=batch_tokens, top=top,
                            progress=lambda done, total: advance(f"{done}/{total} shapes"),
                            store=None if store is None else store / "train_plan.jsonl",
                            **search)
    with progress_bar("equal budget", len(names)) as advance:
        rows = compare_on_budget(result, names, scenario=scenario or DEFAULT_SCENARIO,
                                 progress=lambda done, total: advance(names[done - 1]),
                                 **search)
    doc = _doc(result, rows, scenario or DEFAULT_SCENARIO)
    if as_json:
        print_json(doc)
        return
    _print(doc)


def _doc(result: Any, rows: list, scenario: str) -> dict[str, Any]:
    sys, job = result.system, result.job
    return {
        "model": job.model.name, "chip": sys.chip.name, "chips": sys.chips,
        "system": sys.name, "tokens": job.tokens, "seq_len": job.seq_len,
        "global_batch_tokens": job.global_batch_tokens, "evaluated": result.evaluated,
        "search_s": result.search_s, "tp_beyond_scale_up": result.tp_beyond_scale_up,
        "capital_usd": sys.chips * sys.price_per_chip_usd, "assumptions": result.assumptions,
        "plans": [p.as_dict() for p in result.plans],
        "comparison_basis": "each chip's default system bought with the same capital "
                            f"(capital_usd), export verdicts under scenario {scenario!r}",
        "comparison": [{"chip": r.chip, "chips": r.chips, "verdict": r.verdict,
                        "plan": None if r.plan is None else r.plan.as_dict(),
                        "error": r.error} for r in rows]}


def _print(doc: dict[str, Any]) -> None:
    say(f"{doc['model']} on {doc['chips']:,} x {doc['chip']} ({doc['system']}): "
        f"{doc['tokens']:.3g} tokens, seq {doc['seq_len']}, batch "
        f"{doc['global_batch_tokens']:,} tokens; {doc['evaluated']:,} plans evaluated in "
        f"{doc['search_s']:.1f} s")
    if doc["tp_beyond_scale_up"]:
        say("[yellow]nothing fit with TP inside the scale-up domain; TP spans nodes[/]")
    table = Table(title="best plans (fastest that fit in memory first)")
    for col in ("#", "plan", "step", "MFU", "HFU", "mem/chip", "goodput", "days",
                "chip-hours", "energy", "cost"):
        table.add_column(col, justify="left" if col == "plan" else "right")
    for i, p in enumerate(doc["plans"], 1):
        table.add_row(str(i), *_plan_cells(p))
    print_table(table)
    best = doc["plans"][0]
    parts = Table(title=f"memory per chip of the best plan ({best['plan']})")
    parts.add_column("part")
    parts.add_column("GB", justify="right")
    for part, nbytes in best["memory"].items():
        parts.add_row(part, f"{nbytes / 1e9:.1f}")
    parts.add_row("total / usable", f"{best['memory_bytes'] / 1e9:.1f} / "
                  f"{best['memory_capacity_bytes'] / 1e9:.1f}")
    print_table(parts)
    if doc["comparison"]:
        _print_comparison(doc)
    say("cost: " + "; ".join(f"{k}: {v}" for k, v in doc["assumptions"].items()))


def _plan_cells(p: dict[str, Any]) -> list[str]:
    idle = p["chips"] - p["chips_used"]
    return [p["plan"] + (f" (+{idle} idle)" if idle else ""), fmt_s(p["step_time_s"]),
            f"{p['mfu']:.1%}", f"{p['hfu']:.1%}",
            f"{p['memory_bytes'] / 1e9:.1f} GB", f"{p['goodput']:.1%}", f"{p['days']:.1f}",
            fmt_si(p["chip_hours"], "h"), fmt_si(p["energy_mwh"] * 1e6, "Wh"),
            "$" + fmt_si(p["cost_usd"], "")]


def _print_comparison(doc: dict[str, Any]) -> None:
    table = Table(title=f"the same capital (${fmt_si(doc['capital_usd'], '')}) on GPU fleets",
                  caption=doc["comparison_basis"])
    for col in ("chip", "chips", "export", "plan", "step", "MFU", "HFU", "mem/chip",
                "goodput", "days", "chip-hours", "energy", "cost"):
        table.add_column(col, justify="left" if col in ("chip", "plan", "export") else "right")
    for r in doc["comparison"]:
        head = [r["chip"], f"{r['chips']:,}", r["verdict"] or "unknown"]
        if r["plan"] is None:
            table.add_row(*head, f"no plan: {r['error']}", *[""] * 9)
        else:
            table.add_row(*head, *_plan_cells(r["plan"]))
    print_table(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the chipforge app."""
    app.command("train-plan")(train_plan_cmd)
