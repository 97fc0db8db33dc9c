"""The per-scenario design table of docs/designs.md: for each legal scenario, the best legal
forge-i1 and forge-t1 of its DSE run against the NVIDIA parts, with each part's verdict,
and the H20 price sensitivity.

    .venv/bin/python scripts/scenario_table.py

Reads designs/forge-{i1,t1}/run-<scenario>[-local]/pareto.csv (the selection rule of
designs.md: the feasible point with the lowest $ per million tokens, over the scenario's
NSGA-II run and its final grid) and evaluates the NVIDIA parts on
the same problem (chipforge.dse.chip_metrics) and under the same scenario. Not legal advice.
"""

from __future__ import annotations

import csv
from pathlib import Path

from chipforge.arch import load_chip
from chipforge.cost import PURCHASE_PRICE_RANGES_USD, TcoAssumptions, chip_capex_usd
from chipforge.dse import EvalContext, chip_metrics, load_problem
from chipforge.legal import SCENARIOS, check_scenario

DESIGNS = Path(__file__).resolve().parents[1] / "designs"
KINDS = {"forge-i1": ("serving", "serving_usd_per_million_tokens"),
         "forge-t1": ("training", "training_usd_per_million_tokens")}
NVIDIA = ("h20", "h100-sxm", "b200")


def _runs(chip: str, scenario: str) -> list[tuple[Path, Path, Path]]:
    """(space, constraints, run) of each search made under a scenario: the NSGA-II run
    (run-<scenario>) and the final grid (run-<scenario>-local) where there is one."""
    kind = "tsmc" if scenario.startswith("tsmc") else "domestic"
    constraints = DESIGNS / chip / f"constraints-{kind}.yaml"
    found = []
    for suffix, space in (("", f"space-{kind}.yaml"), ("-local", f"space-{kind}-local.yaml")):
        run = DESIGNS / chip / f"run-{scenario}{suffix}"
        if (run / "pareto.csv").exists():
            found.append((DESIGNS / chip / space, constraints, run))
    return found


def best_point(runs: list[Path], objective: str) -> dict[str, str] | None:
    """The feasible point with the lowest $ per million tokens over the runs' fronts."""
    rows = []
    for run in runs:
        with open(run / "pareto.csv", newline="") as f:
            rows += [r for r in csv.DictReader(f) if r["feasible"] in ("1", "True")]
    return min(rows, key=lambda r: float(r[objective])) if rows else None


def _capital_share(chip: str, problem, usd: float) -> float:
    """$ per million tokens that the purchase price accounts for: evaluate at a doubled
    price and take the difference (chipforge.cost's TCO is affine in the price)."""
    price = chip_capex_usd(chip)
    doubled = TcoAssumptions(purchase_price_usd={chip: 2 * price})
    return _reevaluate(chip, problem, doubled) - usd


def _reevaluate(chip: str, problem, assumptions: TcoAssumptions) -> float:
    from chipforge.cost import llm_serving_tco, llm_training_tco, serving_dtype
    from chipforge.workloads import load_llm_config

    w = problem.settings.workloads
    spec = load_chip(chip)
    if "serving" in EvalContext(problem).groups:
        dtype = serving_dtype(spec, w.serving_dtypes)
        total = sum(s.weight * llm_serving_tco(spec, load_llm_config(s.model), s.batch,
                                               s.context_len, dtype, assumptions
                                               ).usd_per_million_tokens for s in w.serving)
        return total / sum(s.weight for s in w.serving)
    t = w.training
    res = llm_training_tco(spec, load_llm_config(t.model), 1e6, t.global_batch, t.seq_len,
                           t.dtype, t.micro_batch, assumptions)
    return res.usd_per_run


def rows() -> list[dict]:
    out = []
    for chip, (_, objective) in KINDS.items():
        for scenario in SCENARIOS:
            runs = _runs(chip, scenario)
            if not runs:
                continue
            space, constraints, _ = runs[0]
            problem = load_problem(space, constraints, scenario)
            best = best_point([run for *_, run in runs], objective)
            groups = EvalContext(problem).groups
            row = {"chip": chip, "scenario": scenario, "objective": objective, "best": best,
                   "nvidia": {}}
            for name in NVIDIA:
                spec = load_chip(name)
                m = chip_metrics(spec, problem, groups)
                row["nvidia"][name] = {"usd": m[objective],
                                       "verdict": check_scenario(spec, scenario).verdict}
            h20 = row["nvidia"]["h20"]
            lo, hi = PURCHASE_PRICE_RANGES_USD["h20"]
            base_price = chip_capex_usd("h20")
            per_price = _capital_share("h20", problem, _reevaluate("h20", problem, None))
            h20["range"] = tuple(h20["usd"] + per_price * (p / base_price - 1)
                                 for p in (lo, hi))
            out.append(row)
    return out


def _vs(ours: float, theirs: float) -> str:
    """Our tokens per $ over theirs: their $ per token over ours."""
    return f"{theirs / ours:.2f}x"


def markdown(table: list[dict]) -> str:
    lo, hi = PURCHASE_PRICE_RANGES_USD["h20"]
    lines = [f"| scenario | chip | best legal design | $/M tokens | tokens per $ vs H20 at "
             f"$10k (${lo / 1e3:.0f}k, ${hi / 1e3:.0f}k) | H20 verdict | vs H100 | vs B200 "
             "| H100 / B200 verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        b, n = r["best"], r["nvidia"]
        h20, h100, b200 = n["h20"], n["h100-sxm"], n["b200"]
        if b is None:
            lines.append(f"| `{r['scenario']}` | {r['chip']} | no feasible point | - | - | "
                         f"{h20['verdict']} | - | - | {h100['verdict']} / {b200['verdict']} |")
            continue
        usd = float(b[r["objective"]])
        point = (f"`{b['hash']}`: {b['cores']} cores, {b['clock_ghz']} GHz, {b['memory']}, "
                 f"{float(b['global_sram_mib']):.0f} MiB, {b['process_node']}, TPP "
                 f"{float(b['tpp']):,.0f}, {float(b['transistors']) / 1e9:.1f} B transistors")
        at_lo, at_hi = h20["range"]
        lines.append(
            f"| `{r['scenario']}` | {r['chip']} | {point} | {usd:.3f} | {_vs(usd, h20['usd'])} "
            f"({_vs(usd, at_lo)}, {_vs(usd, at_hi)}) | {h20['verdict']} | "
            f"{_vs(usd, h100['usd'])} | {_vs(usd, b200['usd'])} | {h100['verdict']} / "
            f"{b200['verdict']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(rows()))
