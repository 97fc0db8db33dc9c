"""``chipforge report``: an HTML page that answers the decision first (which chip wins
which workload, per $ and per W, under which assumptions, and why), then the evidence:
the comparison table with ratio columns, rooflines, bars, compiled models, RTL, silicon."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.progress import Progress

from chipforge.arch import ChipSpec, load_chip
from chipforge.perf import DEFAULT, Efficiency
from chipforge.report._cluster import cluster_section
from chipforge.report._compare import compare_suite
from chipforge.report._compiled import compiled_section
from chipforge.report._decision import OWN_VENDOR, decision
from chipforge.report._format import eng, ratio
from chipforge.report._legality import legality_section
from chipforge.report._plots import roofline, workload_bars
from chipforge.report._silicon import silicon_section
from chipforge.workloads import workload_suite


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def write_report(out: Path, chips: list[str], designs: Path | None = Path("designs"),
                 eff: Efficiency = DEFAULT, calibration: str = "default (shipped)",
                 fleet: Path | None = None) -> Path:
    """Write ``out/index.html`` and its PNGs; returns the HTML path. ``designs``: a folder
    of reference DSE runs (``<name>/pareto.png``) whose Pareto plots the page shows.
    ``eff``: the efficiency parameters of the comparison (a calibration profile's, named
    by ``calibration`` in the page's assumptions). ``fleet``: a ``chipforge fleet-plan
    --json`` document for the cluster section (default: the shipped demand's plan)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Progress(transient=True) as progress:
        task = progress.add_task("estimating the workload suite", total=6 + len(chips))
        data = compare_suite(chips, eff=eff, calibration=calibration)
        specs = {name: load_chip(name) for name in data["chips"]}
        workloads = {wl.name: wl for wl in workload_suite()}
        answer = decision(data, workloads, specs, eff)
        legality = legality_section(specs.values())
        progress.advance(task)
        rooflines = [_roofline(name, specs[name], answer, out) for name in data["chips"]]
        progress.advance(task, len(chips))
        own = frozenset(n for n, s in specs.items() if s.vendor == OWN_VENDOR)
        bars = []
        for row in answer["rows"]:
            values = {c["chip"]: c["throughput"] if c["ok"] else
                      ("does not fit" if c["note"].startswith("does not fit") else "no estimate")
                      for c in row["cells"]}
            unit = next((c["unit"] for c in row["cells"] if c["ok"]), "items")
            png = workload_bars(row["workload"], unit, values,
                                out / f"bars-{_slug(row['workload'])}.png", own)
            bars.append({"workload": row["workload"], "png": png.name})
        progress.advance(task)
        progress.update(task, description="compiling and simulating example models")
        compiled = compiled_section(out)
        progress.update(task, description="verifying and synthesizing the RTL matrix engine")
        from chipforge.rtl import report_summary

        rtl = report_summary()
        progress.advance(task)
        progress.update(task, description="silicon area, cost, export class and TCO")
        silicon = silicon_section(chips, out, designs)
        progress.advance(task)
        progress.update(task, description="training plans, serving simulations, the fleet")
        cluster = cluster_section(chips, out, fleet)
        progress.advance(task)
    env = Environment(loader=PackageLoader("chipforge.report", "templates"),
                      autoescape=select_autoescape())
    env.filters["eng"] = eng
    env.filters["ratio"] = ratio
    html = env.get_template("index.html").render(
        data=data, answer=answer, rooflines=rooflines, bars=bars, compiled=compiled, rtl=rtl,
        silicon=silicon, legality=legality, cluster=cluster, trust=_trust(calibration),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    path = out / "index.html"
    path.write_text(html)
    return path


def _trust(calibration: str) -> dict:
    """The engine's held-out error per measured chip and table (docs/validation.md), which
    holds for the shipped parameters; a user's calibration profile has its own residuals."""
    from chipforge.perf import validation

    rows = [{**s, "dtype": _dtype_of(s["table"])} for s in validation.held_out_scores()]
    return {"rows": rows, "shipped": calibration.startswith("default")}


def _dtype_of(table: str) -> str:
    return "fp8" if "fp8" in table else "fp16" if "nccl" in table else "bf16"


def _roofline(name: str, spec: ChipSpec, answer: dict, out: Path) -> dict:
    """One chip's roofline with the workloads that fit, each labelled with its limiter."""
    points, left_out = [], []
    for row in answer["rows"]:
        cell = next(c for c in row["cells"] if c["chip"] == name)
        if not cell["ok"]:
            left_out.append(row["workload"])
            continue
        if cell["hbm_bytes"] > 0:
            points.append((row["workload"], cell["flops"] / cell["hbm_bytes"],
                           cell["flops"] / cell["seconds"], cell["limiter"]))
    png = roofline(spec, points, out / f"roofline-{_slug(name)}.png")
    return {"chip": name, "png": png.name, "left_out": left_out}

