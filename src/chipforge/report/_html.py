"""``chipforge report``: an HTML page with the comparison table and PNG plots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.progress import Progress

from chipforge.arch import load_chip
from chipforge.report._compare import compare_suite
from chipforge.report._compiled import compiled_section
from chipforge.report._plots import roofline, workload_bars
from chipforge.report._silicon import silicon_section


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def write_report(out: Path, chips: list[str], designs: Path | None = Path("designs")) -> Path:
    """Write ``out/index.html`` and its PNGs; returns the HTML path. ``designs``: a folder
    of reference DSE runs (``<name>/pareto.png``) whose Pareto plots the page shows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Progress(transient=True) as progress:
        task = progress.add_task("estimating the workload suite", total=5 + len(chips))
        data = compare_suite(chips)
        progress.advance(task)
        rooflines = []
        for name in data["chips"]:
            points = []
            for row in data["rows"]:
                cell = next(c for c in row["cells"] if c["chip"] == name)
                if "error" not in cell and cell["hbm_bytes"] > 0:
                    points.append((row["workload"], cell["flops"] / cell["hbm_bytes"],
                                   cell["flops"] / cell["seconds"]))
            png = roofline(load_chip(name), points, out / f"roofline-{_slug(name)}.png")
            rooflines.append({"chip": name, "png": png.name})
            progress.advance(task)
        bars = []
        for row in data["rows"]:
            values = {c["chip"]: c["throughput"] for c in row["cells"] if "error" not in c}
            unit = next((c["unit"] for c in row["cells"] if "error" not in c), "items")
            png = workload_bars(row["workload"], unit, values,
                                out / f"bars-{_slug(row['workload'])}.png")
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
    env = Environment(loader=PackageLoader("chipforge.report", "templates"),
                      autoescape=select_autoescape())
    html = env.get_template("index.html").render(
        data=data, rooflines=rooflines, bars=bars, compiled=compiled, rtl=rtl, silicon=silicon,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    path = out / "index.html"
    path.write_text(html)
    return path
