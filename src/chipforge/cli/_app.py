"""Typer app: ``chipforge chips | chip show | estimate | compare | report``.

Every user error is a :class:`ChipforgeError`; it is printed as one ``error:`` line on
stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chipforge.arch import ChipSpec, catalog_names, load_chip
from chipforge.errors import ChipforgeError
from chipforge.ops import parse_op
from chipforge.perf import Estimate, estimate

# pretty exceptions off: a ChipforgeError must reach main() and become one line
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Design, estimate and compare AI chips against Nvidia GPUs.")
chip_app = typer.Typer(no_args_is_help=True, help="Inspect one chip spec.")
app.add_typer(chip_app, name="chip")
console = Console()

DEFAULT_CHIPS = "forge-t1,forge-i1,h100-sxm,h20,b200"


def _fmt(value: float, unit: str) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _fmt_s(seconds: float) -> str:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


@app.command("chips")
def chips() -> None:
    """Table of the chips in the catalog."""
    table = Table(title="chipforge catalog", caption="die: ~ = predicted by chipforge.cost "
                  "(the spec states none)")
    for col in ("chip", "vendor", "node", "clock", "bf16 dense", "fp8 dense", "int8 dense",
                "memory", "bandwidth", "TDP", "die"):
        table.add_column(col, justify="left" if col in ("chip", "vendor") else "right",
                         no_wrap=col == "chip", min_width=9 if col == "chip" else None)
    for name in catalog_names():
        c = load_chip(name)
        peak = {d: c.peak_flops(d) for d in ("bf16", "fp8_e4m3", "int8")}
        table.add_row(name, c.vendor, c.process_node, _fmt(c.clock_hz, "Hz"),
                      _fmt(peak["bf16"], "FLOP/s") if peak["bf16"] else "-",
                      _fmt(peak["fp8_e4m3"], "FLOP/s") if peak["fp8_e4m3"] else "-",
                      _fmt(peak["int8"], "OP/s") if peak["int8"] else "-",
                      f"{c.memory.capacity_bytes / 1e9:.0f} GB {c.memory.kind}",
                      _fmt(c.memory.bandwidth_bytes_per_s, "B/s"), f"{c.tdp_w:.0f} W",
                      _die(c))
    console.print(table)


def _die(chip: ChipSpec) -> str:
    if chip.die_area_mm2:
        return f"{chip.die_area_mm2:.0f} mm2"
    from chipforge.cost import CostError, die_area

    try:
        return f"~{die_area(chip).total_mm2:.0f} mm2"
    except CostError:  # a node without silicon tables
        return "-"


@chip_app.command("show")
def chip_show(name: str) -> None:
    """Every field of one chip, with the source of each number."""
    c = load_chip(name)
    table = Table(title=f"{c.name}: {c.description}", show_lines=False)
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_column("source")
    rows = [("process_node", c.process_node), ("clock", _fmt(c.clock_hz, "Hz")),
            ("tdp", f"{c.tdp_w:.0f} W"),
            ("die_area", f"{c.die_area_mm2:.0f} mm2" if c.die_area_mm2 else "-"),
            ("cores.count", str(c.cores.count)),
            ("memory.capacity", _fmt(c.memory.capacity_bytes, "B")),
            ("memory.bandwidth", _fmt(c.memory.bandwidth_bytes_per_s, "B/s")),
            ("shared_buffer.size", _fmt(c.shared_buffer.size_bytes, "B")),
            ("links", f"{c.links.count} x {_fmt(c.links.bandwidth_bytes_per_s, 'B/s')}")]
    for key, value in rows:
        table.add_row(key, value, c.sources.get(key, ""))
    for dtype in c.supported_dtypes:
        table.add_row(f"peak {dtype}", _fmt(c.peak_flops(dtype), "FLOP/s"),
                      "derived: 2 x cores x MACs/cycle x clock")
    for key, value, how in _silicon_rows(c):
        table.add_row(key, value, how)
    console.print(table)


def _silicon_rows(c: ChipSpec) -> list[tuple[str, str, str]]:
    """ECCN 3A090 metrics, predicted area and unit cost (chipforge.cost; docs/silicon.md)."""
    from chipforge.cost import die_area, export_class, unit_cost

    try:
        ex, area, cost = export_class(c), die_area(c), unit_cost(c)
    except ChipforgeError as exc:  # no area/cost tables for this node
        return [("silicon model", "-", str(exc))]
    return [
        ("TPP", f"{ex.tpp:,.0f}", f"derived: 2 x dense MacTOPS x {ex.dtype} bit length"),
        ("PD", f"{ex.pd:.2f}",
         f"derived: TPP / {ex.die_area_mm2:.0f} mm2 ({ex.die_area_source} logic die area)"),
        ("3A090 tier", ex.tier, "ECCN 3A090, Oct 2023 rule (kept Dec 2024)"),
        ("predicted die area", f"{area.total_mm2:.0f} mm2",
         f"model: {c.cores.physical} cores, {area.node} tables (docs/silicon.md)"),
        ("unit cost", f"${cost.total_usd:,.0f}",
         f"model: die ${cost.parts['die']:,.0f}, memory ${cost.parts['memory']:,.0f}, "
         f"{cost.package} ${cost.parts['packaging']:,.0f}, yield {cost.die_yield:.0%}")]


def _estimate_dict(est: Estimate) -> dict:
    return {"seconds": est.seconds, "flops": est.flops, "hbm_bytes": est.hbm_bytes,
            "energy_j": est.energy_j, "utilization": est.utilization, "bound": est.bound,
            "mapping": est.mapping}


@app.command("estimate")
def estimate_cmd(
    op: Annotated[str, typer.Option(help="e.g. 'matmul m=4096 n=4096 k=4096 dtype=bf16'")],
    chip: Annotated[str, typer.Option(help="catalog name or spec path")] = "h100-sxm",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Estimate one op on one chip."""
    spec = load_chip(chip)
    parsed = parse_op(op)
    est = estimate(parsed, spec)
    if as_json:
        print(json.dumps({"chip": spec.name, "op": parsed.describe(), **_estimate_dict(est)},
                         indent=2))
        return
    console.print(f"[bold]{parsed.describe()}[/] on [bold]{spec.name}[/]")
    console.print(f"  time {_fmt_s(est.seconds)}, {_fmt(est.achieved_flops, 'FLOP/s')}, "
                  f"utilization {est.utilization:.1%}, {est.bound}-bound")
    console.print(f"  DRAM {_fmt(est.hbm_bytes, 'B')}, energy {_fmt(est.energy_j, 'J')}")
    console.print(f"  mapping: {est.mapping}")


def _chip_list(chips: str) -> list[str]:
    return [c.strip() for c in chips.split(",") if c.strip()]


@app.command("compare")
def compare_cmd(
    chips: Annotated[str, typer.Option(help="comma-separated chips")] = DEFAULT_CHIPS,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The workload suite on each chip: time, throughput, utilization, bound, energy."""
    from chipforge.report import compare_suite

    result = compare_suite(_chip_list(chips))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title="workload suite: time | throughput | utilization | bound | energy")
    table.add_column("workload")
    for chip in result["chips"]:
        table.add_column(chip, justify="right")
    for row in result["rows"]:
        cells = []
        for cell in row["cells"]:
            if "error" in cell:
                cells.append(f"[dim]{cell['error']}[/]")
                continue
            cells.append(f"{_fmt_s(cell['seconds'])}\n{_fmt(cell['throughput'], '')}"
                         f"{cell['unit']}/s\n{cell['utilization']:.0%} {cell['bound']}\n"
                         f"{_fmt(cell['energy_j'], 'J')}")
        table.add_row(row["workload"], *cells)
    console.print(table)


@app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("out/report"),
    chips: Annotated[str, typer.Option(help="comma-separated chips")] = DEFAULT_CHIPS,
) -> None:
    """Write the HTML report with roofline and comparison plots."""
    from chipforge.report import write_report

    path = write_report(out, _chip_list(chips))
    console.print(f"report written to {path}")


from chipforge.cli._compile import compile_cmd, disasm_cmd, run_cmd  # noqa: E402

app.command("compile")(compile_cmd)
app.command("run")(run_cmd)
app.command("disasm")(disasm_cmd)

from chipforge.cli._rtl import rtl_app  # noqa: E402

app.add_typer(rtl_app, name="rtl")

from chipforge.cli._dse import dse_app  # noqa: E402

app.add_typer(dse_app, name="dse")


def main() -> None:
    """Console entry point: usage errors are click's (exit 2), user errors one line."""
    try:
        app()
    except ChipforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
