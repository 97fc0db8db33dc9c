"""Typer app: ``chipforge chips | chip show | cost | estimate | compare | report`` and the
subcommand groups of the other ``cli`` modules.

Every user error is a :class:`ChipforgeError`; it is printed as one ``error:`` line on
stderr with exit status 2, never as a traceback. Output conventions (``--json``, tables that
never truncate when piped, progress on stderr) live in ``cli._output``.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from chipforge.arch import ChipSpec, catalog_names, load_chip
from chipforge.cli._calibrate import CalibrationOption, calibrate_cmd, calibration_choice
from chipforge.cli._output import (
    JsonOption,
    comma_list,
    fmt_s,
    fmt_si,
    print_json,
    print_table,
    say,
)
from chipforge.errors import ChipforgeError
from chipforge.legal import default_as_of
from chipforge.ops import parse_op
from chipforge.perf import Estimate, estimate


def _version_callback(value: bool) -> None:
    if value:
        print(f"chipforge {_version()}")
        raise typer.Exit()


def _version() -> str:
    try:
        return metadata.version("chipforge")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return sys.modules["chipforge"].__version__


# pretty exceptions off: a ChipforgeError must reach main() and become one line
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Design, estimate and compare AI chips against Nvidia GPUs.")
chip_app = typer.Typer(no_args_is_help=True, help="Inspect one chip spec.")
app.add_typer(chip_app, name="chip")
console = Console()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback,
                                          is_eager=True, help="print the version and exit")]
    = False,
) -> None:
    """Design, estimate and compare AI chips against Nvidia GPUs."""


DEFAULT_CHIPS = "forge-t1,forge-i1,h100-sxm,h20,b200"
# the dtypes of the catalog table's peak columns: (JSON key, table header, dtype, unit)
PEAK_COLUMNS = (("bf16_dense_flops", "bf16 dense", "bf16", "FLOP/s"),
                ("fp8_dense_flops", "fp8 dense", "fp8_e4m3", "FLOP/s"),
                ("int8_dense_ops", "int8 dense", "int8", "OP/s"))


def _chip_row(name: str) -> dict[str, Any]:
    """One catalog row in SI units (what both the table and ``--json`` show)."""
    c = load_chip(name)
    area, predicted = _die_area(c)
    row: dict[str, Any] = {"chip": name, "vendor": c.vendor, "node": c.process_node,
                           "clock_hz": c.clock_hz}
    for key, _, dtype, _ in PEAK_COLUMNS:
        row[key] = c.peak_flops(dtype) or None  # None: no matrix rate in this dtype
    row.update(memory_bytes=c.memory.capacity_bytes, memory_kind=c.memory.kind,
               memory_bandwidth_bytes_per_s=c.memory.bandwidth_bytes_per_s, tdp_w=c.tdp_w,
               die_area_mm2=area, die_area_predicted=predicted)
    return row


@app.command("chips")
def chips(as_json: JsonOption = False) -> None:
    """Table of the chips in the catalog."""
    rows = [_chip_row(name) for name in catalog_names()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="chipforge catalog", caption="die: ~ = predicted by chipforge.cost "
                  "(the spec states none)")
    for col in ("chip", "vendor", "node", "clock", *(h for _, h, _, _ in PEAK_COLUMNS),
                "memory", "bandwidth", "TDP", "die"):
        table.add_column(col, justify="left" if col in ("chip", "vendor") else "right",
                         no_wrap=col == "chip", min_width=9 if col == "chip" else None)
    for r in rows:
        die = "-" if r["die_area_mm2"] is None else \
            f"{'~' if r['die_area_predicted'] else ''}{r['die_area_mm2']:.0f} mm2"
        table.add_row(r["chip"], r["vendor"], r["node"], fmt_si(r["clock_hz"], "Hz"),
                      *(fmt_si(r[key], unit) for key, _, _, unit in PEAK_COLUMNS),
                      f"{r['memory_bytes'] / 1e9:.0f} GB {r['memory_kind']}",
                      fmt_si(r["memory_bandwidth_bytes_per_s"], "B/s"), f"{r['tdp_w']:.0f} W",
                      die)
    print_table(table)


def _die_area(chip: ChipSpec) -> tuple[float | None, bool]:
    """(die area mm2, predicted?): the spec's, else chipforge.cost's, else (None, False)."""
    if chip.die_area_mm2:
        return chip.die_area_mm2, False
    from chipforge.cost import CostError, die_area

    try:
        return die_area(chip).total_mm2, True
    except CostError:  # a node without silicon tables
        return None, False


def _chip_doc(c: ChipSpec) -> dict[str, Any]:
    """Every field ``chip show`` prints, in SI units, with its source."""
    doc: dict[str, Any] = {
        "name": c.name, "vendor": c.vendor, "description": c.description,
        "process_node": c.process_node, "clock_hz": c.clock_hz, "tdp_w": c.tdp_w,
        "die_area_mm2": c.die_area_mm2 or None, "cores": c.cores.count,
        "memory_capacity_bytes": c.memory.capacity_bytes,
        "memory_bandwidth_bytes_per_s": c.memory.bandwidth_bytes_per_s,
        "shared_buffer_bytes": c.shared_buffer.size_bytes,
        "links": {"count": c.links.count, "bandwidth_bytes_per_s":
                  c.links.bandwidth_bytes_per_s},
        "peak_flops": {d: c.peak_flops(d) for d in c.supported_dtypes},
        "silicon": _silicon(c), "legal": _legal(c), "sources": dict(c.sources)}
    return doc


def _legal(c: ChipSpec) -> dict[str, Any]:
    """The export verdict under the default scenario (chipforge.legal; docs/legal.md), or
    the error of a chip the check cannot measure."""
    from chipforge.legal import DEFAULT_SCENARIO, NOT_LEGAL_ADVICE, check_scenario

    doc: dict[str, Any] = {"scenario": DEFAULT_SCENARIO, "notice": NOT_LEGAL_ADVICE}
    try:
        report = check_scenario(c, DEFAULT_SCENARIO)
    except ChipforgeError as exc:  # LegalError, or a figure cost cannot give
        return {**doc, "verdict": None, "binding": [], "error": str(exc)}
    return {**doc, "verdict": report.verdict,
            "binding": [check.rule_id for check in report.binding]}


def _silicon(c: ChipSpec) -> dict[str, Any]:
    """ECCN 3A090 metrics, predicted area and unit cost (chipforge.cost; docs/silicon.md)."""
    from chipforge.cost import die_area, export_class, unit_cost
    from chipforge.legal import export_tier

    try:
        ex, area, cost = export_class(c), die_area(c), unit_cost(c)
    except ChipforgeError as exc:  # no area/cost tables for this node
        return {"error": str(exc)}
    return {"tpp": ex.tpp, "pd": ex.pd, "tier": export_tier(c), "tpp_dtype": ex.dtype,
            "pd_die_area_mm2": ex.die_area_mm2, "pd_die_area_source": ex.die_area_source,
            "predicted_die_area_mm2": area.total_mm2, "area_node": area.node,
            "physical_cores": c.cores.physical, "unit_cost_usd": cost.total_usd,
            "cost_parts_usd": dict(cost.parts), "package": cost.package,
            "die_yield": cost.die_yield, **_transistor_doc(c)}


def _transistor_doc(c: ChipSpec) -> dict[str, Any]:
    """The packaged transistor count and its source (published / modelled)."""
    from chipforge.cost import transistor_count

    count = transistor_count(c)
    return {"transistors": count.total, "transistors_source": count.source,
            "modelled_transistors": count.modelled.total,
            "modelled_transistor_parts": dict(count.modelled.components)}


@chip_app.command("show")
def chip_show(name: str, as_json: JsonOption = False) -> None:
    """Every field of one chip, with the source of each number."""
    c = load_chip(name)
    doc = _chip_doc(c)
    if as_json:
        print_json(doc)
        return
    table = Table(title=f"{c.name}: {c.description}", show_lines=False)
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_column("source")
    rows = [("process_node", c.process_node), ("clock", fmt_si(c.clock_hz, "Hz")),
            ("tdp", f"{c.tdp_w:.0f} W"),
            ("die_area", f"{c.die_area_mm2:.0f} mm2" if c.die_area_mm2 else "-"),
            ("cores.count", str(c.cores.count)),
            ("memory.capacity", fmt_si(c.memory.capacity_bytes, "B")),
            ("memory.bandwidth", fmt_si(c.memory.bandwidth_bytes_per_s, "B/s")),
            ("shared_buffer.size", fmt_si(c.shared_buffer.size_bytes, "B")),
            ("links", f"{c.links.count} x {fmt_si(c.links.bandwidth_bytes_per_s, 'B/s')}")]
    for key, value in rows:
        table.add_row(key, value, c.sources.get(key, ""))
    for dtype, peak in doc["peak_flops"].items():
        table.add_row(f"peak {dtype}", fmt_si(peak, "FLOP/s"),
                      "derived: 2 x cores x MACs/cycle x clock")
    for key, value, how in _silicon_rows(c, doc["silicon"]):
        table.add_row(key, value, how)
    table.add_row(*_legal_row(c, doc["legal"]))
    print_table(table)


def _legal_row(c: ChipSpec, legal: dict[str, Any]) -> tuple[str, str, str]:
    """``chip show``'s legal row: the verdict and the binding rules, or the error."""
    from rich.markup import escape  # error texts quote values in brackets

    key = f"legal ({legal['scenario']})"
    if "error" in legal:
        return key, "-", escape(f"error: {legal['error']}")
    rules = f"binding: {', '.join(legal['binding'])}" if legal["binding"] else "no rule binds"
    return key, legal["verdict"], f"{rules}; details: chipforge legal {c.name}"


def _silicon_rows(c: ChipSpec, s: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "error" in s:
        return [("silicon model", "-", s["error"])]
    parts = s["cost_parts_usd"]
    return [
        ("TPP", f"{s['tpp']:,.0f}", f"derived: 2 x dense MacTOPS x {s['tpp_dtype']} bit length"),
        ("PD", f"{s['pd']:.2f}", f"derived: TPP / {s['pd_die_area_mm2']:.0f} mm2 "
                                 f"({s['pd_die_area_source']} logic die area)"),
        ("3A090 tier", s["tier"], f"ECCN 3A090 in force on {default_as_of()} "
                                  "(chipforge legal)"),
        ("predicted die area", f"{s['predicted_die_area_mm2']:.0f} mm2",
         f"model: {s['physical_cores']} cores, {s['area_node']} tables (docs/silicon.md)"),
        ("unit cost", f"${s['unit_cost_usd']:,.0f}",
         f"model: die ${parts['die']:,.0f}, memory ${parts['memory']:,.0f}, "
         f"{s['package']} ${parts['packaging']:,.0f}, yield {s['die_yield']:.0%}"),
        ("transistors", f"{s['transistors'] / 1e9:,.1f} B", _transistor_how(c, s))]


def _transistor_how(c: ChipSpec, s: dict[str, Any]) -> str:
    model = f"model {s['modelled_transistors'] / 1e9:,.1f} B (docs/silicon.md)"
    if s["transistors_source"] == "published":
        return f"published ({c.sources.get('transistors', 'spec')}); {model}"
    return f"modelled from the spec, {s['physical_cores']} cores (docs/silicon.md)"


@app.command("cost")
def cost_cmd(as_json: JsonOption = False) -> None:
    """Die area, unit cost, TPP and PD of every catalog chip (docs/silicon.md).

    The same output as ``python -m chipforge.cost`` (one implementation)."""
    from chipforge.cost.__main__ import catalog_rows, render, to_json

    rows = catalog_rows()
    sys.stdout.write(to_json(rows) if as_json else render(rows))


def _estimate_dict(est: Estimate) -> dict:
    doc = {"seconds": est.seconds, "flops": est.flops, "hbm_bytes": est.hbm_bytes,
           "energy_j": est.energy_j, "utilization": est.utilization, "bound": est.bound,
           "mapping": est.mapping, "memory_bytes": est.memory_bytes, "fits": est.fits,
           "needs_chips": est.needs_chips, "note": est.note}
    if est.items:
        doc.update({"parallelism": est.parallelism, "tp": est.tp, "pp": est.pp,
                    "chips": est.chips, "items": est.items, "item_unit": est.item_unit,
                    "items_per_s": est.items_per_s,
                    "items_per_s_per_chip": est.items_per_s_per_chip})
    if est.memory is not None:
        doc["memory"] = est.memory.parts()
    return doc


PHASES = ("decode", "prefill", "train")


def _parallel_option(value: str) -> str | int | None:
    text = value.strip().lower()
    if text in ("auto", "none"):
        return None if text == "none" else "auto"
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text)
    raise ChipforgeError(f"--parallel {value!r}; expected 'auto', 'none' or a positive "
                         "tensor-parallel size")


def _model_graph(model: str, phase: str, batch: int, context: int, dtype: str) -> Any:
    """The graph of ``--model``: an LLM config name or config.json path, one phase."""
    from chipforge.workloads import llm_decode, llm_prefill, llm_train_step, load_llm_config

    if phase not in PHASES:
        raise ChipforgeError(f"--phase {phase!r}; expected one of {', '.join(PHASES)}")
    cfg = load_llm_config(model)
    if phase == "decode":
        return llm_decode(cfg, batch, context, dtype)
    if phase == "prefill":
        return llm_prefill(cfg, batch, context, dtype)
    return llm_train_step(cfg, batch, context, dtype, micro_batch=1)


@app.command("estimate")
def estimate_cmd(
    op: Annotated[str | None, typer.Option(
        help="one op, e.g. 'matmul m=4096 n=4096 k=4096 dtype=bf16'")] = None,
    model: Annotated[str | None, typer.Option(
        help="an LLM config name (e.g. llama-3.1-8b) or config.json path")] = None,
    workload: Annotated[str | None, typer.Option(
        help="a suite workload (see `compare`), e.g. llama3.1-70b-decode")] = None,
    phase: Annotated[str, typer.Option(help="with --model: decode, prefill or train "
                                            "(train: micro-batch 1)")] = "decode",
    batch: Annotated[int, typer.Option(help="with --model: sequences (train: global "
                                            "batch)")] = 1,
    context: Annotated[int, typer.Option(help="with --model: context length (decode) or "
                                              "sequence length")] = 2048,
    dtype: Annotated[str, typer.Option(help="with --model or --workload")] = "bf16",
    parallel: Annotated[str, typer.Option(
        help="auto: the smallest split that fits memory; none: one chip; N: tensor-parallel "
             "size")] = "auto",
    chip: Annotated[str, typer.Option(help="catalog name or spec path")] = "h100-sxm",
    calibration: CalibrationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Estimate one op, one LLM (--model) or one suite workload on one chip; workloads are
    checked against the chip's memory (see --parallel)."""
    given = sum(x is not None for x in (op, model, workload))
    if given != 1:  # a usage error (click's exit 2), worded as click words a missing option
        raise typer.BadParameter(
            ("Missing option '--op'." if given == 0 else "Too many of --op, --model and "
             "--workload.") + " Give exactly one of --op, --model or --workload.")
    spec = load_chip(chip)
    split = _parallel_option(parallel)
    eff, used = calibration_choice(calibration)
    if op is not None:
        parsed = parse_op(op)
        est = estimate(parsed, spec, eff)
        what = parsed.describe()
    else:
        if workload is not None:
            from chipforge.workloads import get_workload

            graph = get_workload(workload, dtype).graph
        else:
            graph = _model_graph(model, phase, batch, context, dtype)
        est = estimate(graph, spec, eff, parallel=split)
        what = graph.name
    if as_json:
        key = "op" if op is not None else "workload"
        print_json({"chip": spec.name, key: what, **_estimate_dict(est), "calibration": used})
        return
    _print_estimate(what, spec.name, est)
    console.print(f"  calibration: {used['description']}", soft_wrap=True)


def _print_estimate(what: str, chip: str, est: Estimate) -> None:
    console.print(f"[bold]{what}[/] on [bold]{chip}[/]"
                  + (f" ({est.parallelism})" if est.items else ""))
    if not est.fits:
        console.print(f"  [bold red]{est.note}[/]", soft_wrap=True)
    label = "" if est.fits else " (memory unbounded)"
    console.print(f"  time{label} {fmt_s(est.seconds)}, {fmt_si(est.achieved_flops, 'FLOP/s')},"
                  f" utilization {est.utilization:.1%}, {est.bound}-bound")
    if est.items:
        console.print(f"  throughput{label} {fmt_si(est.items_per_s, est.item_unit + '/s')}"
                      f" ({fmt_si(est.items_per_s_per_chip, est.item_unit + '/s')} per chip)")
    console.print(f"  DRAM {fmt_si(est.hbm_bytes, 'B')}, energy {fmt_si(est.energy_j, 'J')}")
    if est.mapping:
        console.print(f"  mapping: {est.mapping}")
    if not est.items:  # one op: its operands must be resident
        console.print(f"  operands {fmt_si(est.memory_bytes, 'B')}"
                      + ("" if est.fits else " (do not fit)"))
    elif est.fits:
        console.print(f"  memory: {est.note}", soft_wrap=True)


@app.command("compare")
def compare_cmd(
    chips: Annotated[str, typer.Option(help="comma-separated chips")] = DEFAULT_CHIPS,
    dtype: Annotated[str | None, typer.Option(help="dtype of every workload (default "
                                                   "bf16)")] = None,
    parallel: Annotated[str, typer.Option(
        help="auto: the smallest split that fits memory; none: one chip")] = "auto",
    calibration: CalibrationOption = None,
    as_json: JsonOption = False,
) -> None:
    """The workload suite on each chip: time, throughput, utilization, bound, energy, with
    each cell's dtype, batch and parallelism; one set of assumptions for the table."""
    from chipforge.report import compare_suite

    eff, used = calibration_choice(calibration)
    result = compare_suite(comma_list(chips), dtype, _parallel_option(parallel), eff,
                           used["description"])
    if as_json:
        print_json(result)
        return
    caption = "; ".join(f"{k}: {v}" for k, v in result["assumptions"].items())
    table = Table(title="workload suite: time | throughput | utilization bound | energy | "
                  "dtype, batch, split", caption=caption)
    table.add_column("workload")
    for chip in result["chips"]:
        table.add_column(chip, justify="right")
    for row in result["rows"]:
        table.add_row(row["workload"], *(_compare_cell(c) for c in row["cells"]))
    print_table(table)


def _compare_cell(cell: dict) -> str:
    if "error" in cell:
        return f"[dim]{cell['error']}[/]"
    setup = f"{cell['dtype']}, b{cell['batch']}, {cell['parallelism']}"
    if not cell["fits"]:
        need = (f">= {cell['needs_chips']} chips" if cell["needs_chips"]
                else "more chips than modelled")
        return f"does not fit\nneeds {need}\n{setup}"
    return (f"{fmt_s(cell['seconds'])}\n{fmt_si(cell['throughput'], '')}{cell['unit']}/s\n"
            f"{cell['utilization']:.0%} {cell['bound']}\n{fmt_si(cell['energy_j'], 'J')}\n"
            f"{setup}")


@app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("out/report"),
    chips: Annotated[str, typer.Option(help="comma-separated chips")] = DEFAULT_CHIPS,
    calibration: CalibrationOption = None,
    fleet: Annotated[Path | None, typer.Option(
        help="a `chipforge fleet-plan --json` document for the cluster section (default: "
             "the shipped default demand's plan)")] = None,
) -> None:
    """Write the HTML report with roofline and comparison plots."""
    from chipforge.report import write_report

    eff, used = calibration_choice(calibration)
    path = write_report(out, comma_list(chips), eff=eff, calibration=used["description"],
                        fleet=fleet)
    say(f"report written to {path}")


from chipforge.cli._compile import compile_cmd, disasm_cmd, run_cmd  # noqa: E402

app.command("compile")(compile_cmd)
app.command("calibrate")(calibrate_cmd)
app.command("run")(run_cmd)
app.command("disasm")(disasm_cmd)

from chipforge.cli._rtl import rtl_app  # noqa: E402

app.add_typer(rtl_app, name="rtl")

from chipforge.cli._dse import dse_app  # noqa: E402

app.add_typer(dse_app, name="dse")

from chipforge.cli._legal import legal_cmd  # noqa: E402

app.command("legal")(legal_cmd)

from chipforge.cli._ops import ops_cmd  # noqa: E402

app.command("ops")(ops_cmd)

from chipforge.cli import _fleet_plan, _serve_plan, _train_plan  # noqa: E402

for _module in (_train_plan, _serve_plan, _fleet_plan):
    _module.register(app)


def main() -> None:
    """Console entry point: usage errors are click's (exit 2), user errors one line."""
    try:
        app()
    except ChipforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
