"""The report's silicon section: area, unit cost, export class, TCO and the DSE fronts.

Serving and training settings are stated once here (``SERVING``, ``TRAINING``) so the
numbers in the page can be reproduced with ``chipforge.cost.llm_serving_tco`` /
``llm_training_tco``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from chipforge.arch import load_chip
from chipforge.cost import (
    die_area,
    export_class,
    llm_serving_tco,
    llm_training_tco,
    serving_dtype,
    unit_cost,
)
from chipforge.errors import ChipforgeError
from chipforge.workloads import load_llm_config

# LLM decode at batch 64 and a 4,096-token context: a common serving point
SERVING = (("Llama-3.1-70B", 64, 4096), ("Llama-3.1-8B", 64, 4096))
# Llama 3.1 was pre-trained on ~15T tokens (Meta, "The Llama 3 Herd of Models", 2024);
# global batch 1,024 x 4,096 tokens as in bench_estimate
TRAINING = ("Llama-3.1-70B", 15e12, 1024, 4096)


def chip_silicon(name: str) -> dict:
    """Area and cost parts, export metrics and TCO of one chip (errors kept per cell)."""
    chip = load_chip(name)
    area, cost, exp = die_area(chip), unit_cost(chip), export_class(chip)
    row = {"chip": name, "area": area, "cost": cost, "export": exp,
           "die_area_spec": chip.die_area_mm2, "serving": [], "training": None}
    # every chip gets a serving row: one that runs none of the serving dtypes is priced in
    # the first dtype it supports
    dtype = serving_dtype(chip) or chip.supported_dtypes[0]
    for model, batch, ctx in SERVING:
        try:
            res = llm_serving_tco(chip, load_llm_config(model), batch, ctx, dtype)
            row["serving"].append({"model": model, "dtype": dtype, "chips": res.chips,
                                   "usd_per_mtok": res.usd_per_million_tokens,
                                   "tokens_per_s": res.tokens_per_s})
        except ChipforgeError as exc:
            row["serving"].append({"model": model, "dtype": dtype, "error": str(exc)})
    model, tokens, gbs, seq = TRAINING
    try:
        res = llm_training_tco(chip, load_llm_config(model), tokens, gbs, seq, "bf16")
        row["training"] = {"model": model, "usd_per_run": res.usd_per_run}
    except ChipforgeError as exc:
        row["training"] = {"model": model, "error": str(exc)}
    return row


def silicon_section(chips: list[str], out: Path, designs: Path | None) -> dict:
    """The data for the template, plus PNGs written to ``out``: area and cost breakdown
    bars, and the Pareto plot of each reference design run found under ``designs``."""
    from chipforge.report._plots import stacked_bars

    rows = [chip_silicon(c) for c in chips]
    area_png = stacked_bars({r["chip"]: r["area"].parts for r in rows}, "die area (mm²)",
                            "Die area by component (predicted)", out / "silicon-area.png")
    cost_png = stacked_bars({r["chip"]: r["cost"].parts for r in rows}, "unit cost ($)",
                            "Unit cost by component (modelled)", out / "silicon-cost.png")
    return {"rows": rows, "area_png": area_png.name, "cost_png": cost_png.name,
            "serving": SERVING, "training": TRAINING, "fronts": _fronts(out, designs)}


def _fronts(out: Path, designs: Path | None) -> list[dict]:
    """Each ``designs/<name>/pareto.png`` (a checked-in DSE result), copied beside the page."""
    if designs is None or not designs.is_dir():
        return []
    fronts = []
    for png in sorted(designs.glob("*/pareto.png")):
        target = out / f"pareto-{png.parent.name}.png"
        shutil.copyfile(png, target)
        fronts.append({"design": png.parent.name, "png": target.name})
    return fronts
