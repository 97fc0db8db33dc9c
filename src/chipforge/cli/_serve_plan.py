"""``chipforge serve-plan``: the best deployments of an LLM on a chip within a latency SLO,
the fleet a request rate needs, and GPU fleets bought with the same capital (docs/cli.md,
docs/cluster.md)."""

from __future__ import annotations

import math
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
    print_json,
    print_table,
    progress_bar,
    say,
)
from chipforge.errors import ChipforgeError

# the GPU fleets compared on an equal budget: the China-market Hopper the buyer bought in
# 2024, the best Hopper and Blackwell (their export verdicts are shown alongside)
COMPARE = "h20,h100-sxm,b200"


def serve_plan_cmd(
    model: Annotated[str, typer.Option(help="model config name or config.json path")],
    chip: Annotated[str, typer.Option(help="chip name or spec file (its default system)")],
    rate: Annotated[float, typer.Option(help="requests per second to serve")],
    slo_ttft: Annotated[float, typer.Option("--slo-ttft", help="time to first token SLO, "
                                            "s")] = 2.0,
    slo_tpot: Annotated[float, typer.Option("--slo-tpot", help="time per output token SLO, "
                                            "s")] = 0.05,
    percentile: Annotated[float, typer.Option(help="the percentile the SLO holds at")] = 90,
    input_len: Annotated[int, typer.Option("--input-len", help="prompt tokens")] = 1024,
    output_len: Annotated[int, typer.Option("--output-len", help="generated tokens")] = 256,
    dtype: Annotated[str | None, typer.Option(help="serving dtype (default: the chip's "
                                              "narrowest matrix dtype)")] = None,
    requests: Annotated[int, typer.Option(help="requests per simulation")] = 600,
    tp: Annotated[str | None, typer.Option(help="tensor-parallel sizes to try on every "
                                           "chip, comma-separated (default: each chip's three "
                                           "smallest that hold the model)")] = None,
    max_seqs: Annotated[str, typer.Option("--max-seqs", help="running-sequence caps to try, "
                                          "comma-separated")] = "64,256",
    ratios: Annotated[str, typer.Option(help="prefill:decode replica ratios to try, comma-"
                                        "separated ('' for colocated only)")] = "1:1,1:2,2:1",
    top: Annotated[int, typer.Option(help="deployments to show")] = 5,
    compare: CompareOption = COMPARE,
    scenario: CompareScenarioOption = None,
    ray: Annotated[bool, typer.Option("--ray", help="simulate the deployments on Ray")] = False,
    workers: Annotated[int, typer.Option(help="local worker processes")] = 1,
    store: Annotated[Path | None, typer.Option(help="folder of a resumable results store "
                                               "(serve_plan.jsonl)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Search tensor parallelism, batch caps and prefill/decode disaggregation for the most
    tokens/s per chip within the SLO; size the fleet for RATE and price it."""
    from chipforge.cluster import compare_serving_on_budget, serve_plan
    from chipforge.legal import DEFAULT_SCENARIO

    if workers < 1:
        raise ChipforgeError(f"--workers: got {workers!r}; expected at least 1")
    if top < 1:
        raise ChipforgeError(f"--top: got {top!r}; expected at least 1")
    if store is not None and store.exists() and not store.is_dir():
        raise ChipforgeError(f"--store: {str(store)!r} is a file; expected a folder")
    search: dict[str, Any] = {"use_ray": ray, "workers": workers,
                              "max_seqs": _ints("--max-seqs", max_seqs),
                              "ratios": _ratios(ratios),
                              "tps": None if tp is None else _ints("--tp", tp)}
    result = serve_plan(model, chip, rate=rate, slo_ttft_s=slo_ttft, slo_tpot_s=slo_tpot,
                        percentile=percentile, input_len=input_len, output_len=output_len,
                        dtype=dtype, n_requests=requests, progress="serve-plan",
                        store=None if store is None else store / "serve_plan.jsonl", **search)
    names = comma_list(compare)
    with progress_bar("equal budget", len(names)) as advance:
        rows = compare_serving_on_budget(result, names, scenario=scenario or DEFAULT_SCENARIO,
                                         progress=lambda done, total: advance(names[done - 1]),
                                         **search)
    doc = _doc(result, rows, scenario or DEFAULT_SCENARIO, top)
    if as_json:
        print_json(doc)
        return
    _print(doc)


def _ints(option: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ChipforgeError(f"{option}: got {text!r}; expected positive integers, comma-"
                             "separated (e.g. 1,2,4)")
    return values


def _ratios(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        left, _, right = part.partition(":")
        if not (left.isdigit() and right.isdigit() and int(left) > 0 and int(right) > 0):
            raise ChipforgeError(f"--ratios: got {part!r}; expected prefill:decode replica "
                                 "counts such as 1:2")
        out.append((int(left), int(right)))
    return tuple(out)


def _deployment(d: Any) -> dict[str, Any]:
    return {"deployment": d.label, "tp": d.tp, "max_seqs": d.max_seqs,
            "max_batch_tokens": d.max_batch_tokens, "prefill_replicas": d.prefill_replicas,
            "decode_replicas": d.decode_replicas, "chips_per_unit": d.chips_per_unit,
            "feasible": d.feasible, "max_rate_per_unit": d.max_rate_per_unit,
            "max_rate_per_chip": d.max_rate_per_chip,
            "ttft_s": {"p50": d.ttft_p50_s, "slo_percentile": d.ttft_s, "p99": d.ttft_p99_s},
            "tpot_s": {"p50": d.tpot_p50_s, "slo_percentile": d.tpot_s, "p99": d.tpot_p99_s},
            "tokens_per_s_per_chip": d.tokens_per_s_per_chip,
            "usd_per_m_tokens": d.usd_per_m_tokens}


def _doc(result: Any, rows: list, scenario: str, top: int) -> dict[str, Any]:
    return {
        "model": result.model, "chip": result.chip, "system": result.system,
        "dtype": result.dtype, "rate": result.rate,
        "slo": {"ttft_s": result.slo_ttft_s, "tpot_s": result.slo_tpot_s,
                "percentile": result.percentile},
        "input_len": result.input_len, "output_len": result.output_len,
        "n_requests": result.n_requests, "best": _deployment(result.best),
        "units": result.units, "chips": result.chips,
        "tokens_per_s_per_chip": result.tokens_per_s_per_chip,
        "usd_per_m_tokens": result.usd_per_m_tokens,
        "max_rate_per_chip": result.max_rate_per_chip,
        "price_per_chip_usd": result.price_per_chip_usd,
        "power_per_chip_w": result.power_per_chip_w,
        "fleet_capex_usd": result.fleet_capex_usd, "cost_basis": result.cost_basis,
        "deployments": [_deployment(d) for d in result.alternatives[:top]],
        "searched": len(result.alternatives),
        "comparison_basis": "each chip's default system bought with the same capital "
                            f"(fleet_capex_usd), the same traffic and SLO; export verdicts "
                            f"under scenario {scenario!r}",
        "comparison": [{"chip": r.chip, "verdict": r.verdict, "chips": r.chips,
                        "rate_served": r.rate_served, "chips_for_rate": r.chips_for_rate,
                        "tokens_per_s_per_chip": r.tokens_per_s_per_chip,
                        "usd_per_m_tokens": r.usd_per_m_tokens, "deployment": r.deployment,
                        "error": r.error} for r in rows]}


def _usd(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"${value:,.3f}"


def _print(doc: dict[str, Any]) -> None:
    slo = doc["slo"]
    say(f"{doc['model']} on {doc['chip']} ({doc['system']}, {doc['dtype']}): "
        f"{doc['rate']:g} requests/s of {doc['input_len']} in / {doc['output_len']} out "
        f"tokens within p{slo['percentile']:g} TTFT <= {fmt_s(slo['ttft_s'])} and TPOT <= "
        f"{fmt_s(slo['tpot_s'])}; {doc['searched']} deployments searched")
    p = f"p{slo['percentile']:g}"
    table = Table(title="best deployments (most tokens/s per chip within the SLO first)")
    for col in ("#", "deployment", "chips", "req/s", f"TTFT p50/{p}/p99",
                f"TPOT p50/{p}/p99", "tok/s/chip", "$/M tok"):
        table.add_column(col, justify="left" if col == "deployment" else "right")
    for i, d in enumerate(doc["deployments"], 1):
        if not d["feasible"]:
            table.add_row(str(i), d["deployment"], str(d["chips_per_unit"]), "misses the SLO",
                          _triple(d["ttft_s"]), _triple(d["tpot_s"]), "-", "-")
            continue
        table.add_row(str(i), d["deployment"], str(d["chips_per_unit"]),
                      f"{d['max_rate_per_unit']:.3g}", _triple(d["ttft_s"]),
                      _triple(d["tpot_s"]), f"{d['tokens_per_s_per_chip']:,.0f}",
                      _usd(d["usd_per_m_tokens"]))
    print_table(table)
    say(f"fleet for {doc['rate']:g} req/s: {doc['units']} x ({doc['best']['deployment']}) = "
        f"{doc['chips']:,} chips, ${doc['fleet_capex_usd'] / 1e6:,.2f}M capital, "
        f"{_usd(doc['usd_per_m_tokens'])} per million output tokens")
    if doc["comparison"]:
        _print_comparison(doc)
    say(f"cost: {doc['cost_basis']}")


def _triple(values: dict[str, float]) -> str:
    return " / ".join(fmt_s(values[k]) for k in ("p50", "slo_percentile", "p99"))


def _print_comparison(doc: dict[str, Any]) -> None:
    table = Table(title=f"the same capital (${doc['fleet_capex_usd'] / 1e6:,.2f}M) on GPU "
                  "fleets", caption=doc["comparison_basis"])
    for col in ("chip", "export", "chips", "req/s served", "chips for rate", "tok/s/chip",
                "$/M tok", "deployment"):
        table.add_column(col, justify="left" if col in ("chip", "export", "deployment")
                         else "right")
    for r in doc["comparison"]:
        head = [r["chip"], r["verdict"] or "unknown"]
        if r["error"] is not None:
            table.add_row(*head, "-", "-", "-", "-", "-", f"cannot serve: {r['error']}")
            continue
        table.add_row(*head, f"{r['chips']:,}", f"{r['rate_served']:.3g}",
                      f"{r['chips_for_rate']:,}", f"{r['tokens_per_s_per_chip']:,.0f}",
                      _usd(r["usd_per_m_tokens"]), r["deployment"])
    print_table(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the chipforge app."""
    app.command("serve-plan")(serve_plan_cmd)
