"""The report's cluster section (issue 15): time to train and MFU versus chip count, the
TTFT/TPOT distributions of each chip's best serving deployment at the SLO, and the fleet's
cost per legal scenario. Every figure comes from chipforge.cluster; a chip that cannot run
a workload shows why instead of a number."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from chipforge.cluster import (
    SERVE_SYSTEM_CHIPS,
    Deployment,
    LengthDist,
    Scheduler,
    Traffic,
    replica_cost,
    serve_plan,
    simulate,
    system,
    train_sweep,
)
from chipforge.errors import ChipforgeError
from chipforge.report._plots import cdf_plot, scaling_plot, stacked_bars

# assumption: the platform's frontier-scale pre-training run of the suite's 70B model on
# 15 T tokens (Llama 3.1 70B's token count, Meta's model card); 8k context, 16 M-token batch
TRAIN_MODEL, TRAIN_TOKENS = "llama-3.1-70b", 15e12
TRAIN_COUNTS = (1024, 4096, 16384)
# assumption: a chat mix of 1,024 prompt and 256 output tokens, served within issue 15's SLO
SERVE_MODEL, INPUT_LEN, OUTPUT_LEN = "llama-3.1-70b", 1024, 256
SLO_TTFT_S, SLO_TPOT_S, SLO_PERCENTILE = 2.0, 0.05, 90
SERVE_REQUESTS = 200  # per tried rate in the deployment search
CDF_REQUESTS = 2000  # the distribution shown: the best deployment at its highest SLO rate
FLEET_FILE = "fleet_plans.json"  # written by scripts/gen_fleet_plan.py


def _training(chips: list[str], out: Path) -> dict[str, Any]:
    rows, curves = [], {}
    for chip in chips:
        points = train_sweep(TRAIN_MODEL, chip, TRAIN_COUNTS, tokens=TRAIN_TOKENS)
        ok = [(p.chips, p.plan) for p in points if p.plan is not None]
        curves[chip] = [(n, plan["days"], plan["mfu"]) for n, plan in ok]
        for p in points:
            rows.append({"chip": chip, "chips": p.chips, "plan": p.plan, "error": p.error})
    png = scaling_plot(curves, out / "cluster-train-scaling.png",
                       title=f"{TRAIN_MODEL} on {TRAIN_TOKENS / 1e12:g} T tokens")
    return {"rows": rows, "png": png.name, "model": TRAIN_MODEL, "tokens": TRAIN_TOKENS}


def _serve_one(chip: str) -> dict[str, Any]:
    # serve_plan's search, in the chip's default system and serving dtype, over the two
    # smallest tensor-parallel groups that hold the model
    plan = serve_plan(SERVE_MODEL, chip, rate=1.0, slo_ttft_s=SLO_TTFT_S,
                      slo_tpot_s=SLO_TPOT_S, percentile=SLO_PERCENTILE, input_len=INPUT_LEN,
                      output_len=OUTPUT_LEN, n_requests=SERVE_REQUESTS, tp_sizes=2,
                      max_seqs=(256,), ratios=())
    best, dtype = plan.best, plan.dtype
    # the plan's system (plan.system is its name): the chip's default preset
    fleet = system(chip, SERVE_SYSTEM_CHIPS)
    deployment = Deployment(replica_cost(SERVE_MODEL, fleet, tp=best.tp, dtype=dtype),
                            scheduler=Scheduler(best.max_batch_tokens, best.max_seqs))
    result = simulate(deployment, Traffic(best.max_rate_per_unit, CDF_REQUESTS,
                                          LengthDist.fixed(INPUT_LEN),
                                          LengthDist.fixed(OUTPUT_LEN)))
    return {"chip": chip, "dtype": dtype, "best": best, "result": result, "error": None}


def _serving(chips: list[str], out: Path) -> dict[str, Any]:
    rows = []
    for chip in chips:
        try:
            rows.append(_serve_one(chip))
        except ChipforgeError as exc:
            rows.append({"chip": chip, "error": str(exc)})
    ok = [r for r in rows if r["error"] is None]
    ttft = cdf_plot({r["chip"]: r["result"].cdf("ttft_s") for r in ok}, SLO_TTFT_S,
                    "time to first token (s)", out / "cluster-ttft-cdf.png")
    tpot = cdf_plot({r["chip"]: r["result"].cdf("tpot_s") for r in ok}, SLO_TPOT_S,
                    "time per output token (s)", out / "cluster-tpot-cdf.png")
    return {"rows": rows, "ttft_png": ttft.name, "tpot_png": tpot.name, "model": SERVE_MODEL,
            "input_len": INPUT_LEN, "output_len": OUTPUT_LEN, "slo_ttft_s": SLO_TTFT_S,
            "slo_tpot_s": SLO_TPOT_S, "percentile": SLO_PERCENTILE}


def fleet_plans(path: Path | None = None) -> dict[str, Any]:
    """A fleet-plan document: ``path`` (``chipforge fleet-plan --json`` output), else the
    shipped plan of the default demand (scripts/gen_fleet_plan.py), marked stale when the
    shipped demand file has changed since it was generated."""
    if path is not None:
        doc = json.loads(Path(path).read_text())
        return {**doc, "source": str(path), "stale": False}
    doc = json.loads(resources.files("chipforge.report").joinpath(FLEET_FILE).read_text())
    demand = resources.files("chipforge.cluster").joinpath("data/demand.yaml").read_bytes()
    stale = hashlib.sha256(demand).hexdigest() != doc["demand_sha256"]
    return {**doc, "source": f"{doc['generated_by']} at {doc['commit']} on {doc['date']}",
            "stale": stale}


def _fleet(out: Path, path: Path | None) -> dict[str, Any]:
    doc = fleet_plans(path)
    costs = {}
    for plan in doc["plans"]:
        costs[plan["scenario"]] = {"capital": plan["capex_usd"], "NRE": plan["nre_usd"],
                                   "energy (a year)": plan["energy_usd"]}
        gpu = plan.get("buy_only")
        if gpu is not None and gpu["total_usd"] != plan["total_usd"]:
            costs[f"{plan['scenario']}, bought only"] = {
                "capital": gpu["capex_usd"], "NRE": 0.0, "energy (a year)": gpu["energy_usd"]}
    png = stacked_bars(costs, "$", "fleet cost per legal scenario", out / "cluster-fleet.png")
    return {**doc, "png": png.name}


def cluster_section(chips: list[str], out: Path, fleet: Path | None = None) -> dict[str, Any]:
    """Training scaling and serving latency distributions for ``chips``; the fleet plan of
    ``fleet`` (a ``chipforge fleet-plan --json`` document) or of the shipped demand."""
    return {"training": _training(chips, out), "serving": _serving(chips, out),
            "fleet": _fleet(out, fleet)}
