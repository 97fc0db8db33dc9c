"""``chipforge calibrate``: fit the shared efficiency parameters to a user's measurements,
write a calibration profile, and print the residuals before and after; and the
``--calibration`` option that ``estimate``, ``compare`` and ``report`` share."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chipforge.cli._output import JsonOption, print_json, print_table, say, status
from chipforge.perf import (
    DEFAULT,
    CalibrationError,
    CalibrationResult,
    Efficiency,
    calibrate,
    read_profile,
    write_profile,
)

CalibrationOption = Annotated[Path | None, typer.Option(
    "--calibration", help="a calibration profile from `chipforge calibrate` (default: the "
                          "shipped efficiency parameters)")]


def calibration_choice(path: Path | None) -> tuple[Efficiency, dict[str, Any]]:
    """The efficiency parameters to estimate with, and how to state them in the output."""
    if path is None:
        return DEFAULT, {"profile": None, "description": "default (shipped: "
                         "chipforge.machine.DEFAULT)", "efficiency": asdict(DEFAULT)}
    profile = read_profile(path)
    return profile.efficiency, {"profile": str(path), "description": profile.describe(),
                                "efficiency": asdict(profile.efficiency)}


def _residual_table(result: CalibrationResult) -> Table:
    table = Table(title=f"residuals on {result.chip}: (predicted - measured) / measured, "
                  "before -> after")
    for name in ("table", "size", "rows", "median |err|", "p90 |err|", "median signed"):
        table.add_column(name, justify="left" if name in ("table", "size") else "right")
    for t in result.tables:
        pairs = [("all", t.before.rows,
                  (t.before.median_ape, t.before.p90_ape, t.before.median_signed),
                  (t.after.median_ape, t.after.p90_ape, t.after.median_signed))]
        pairs += [(b[0], b[1], b[2:], a[2:]) for b, a in
                  zip(t.before.buckets, t.after.buckets, strict=True)]
        for i, (label, rows, before, after) in enumerate(pairs):
            table.add_row(t.table if i == 0 else "", label, str(rows),
                          f"{before[0]:.1%} -> {after[0]:.1%}",
                          f"{before[1]:.1%} -> {after[1]:.1%}",
                          f"{before[2]:+.1%} -> {after[2]:+.1%}")
    return table


def calibrate_cmd(
    chip: Annotated[str, typer.Option(help="catalog name or spec path of the measured chip")],
    out: Annotated[Path, typer.Option("-o", "--out", help="the profile to write (YAML)")],
    gemm: Annotated[Path | None, typer.Option(
        help="GEMM timings: dtype, m, n, k, latency_ms")] = None,
    attention: Annotated[Path | None, typer.Option(
        help="prefill attention timings (the context_attention.csv schema)")] = None,
    decode_attention: Annotated[Path | None, typer.Option(
        help="decode attention timings (the generation_attention.csv schema)")] = None,
    nccl: Annotated[Path | None, typer.Option(
        help="collective timings: op_name, nccl_dtype, num_gpus, elements, latency_ms")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Fit the shared efficiency parameters to your measurements (the CSV schemas of
    data/validation/) and write a calibration profile for --calibration. Rows faster than
    the chip's datasheet allows are left out and counted."""
    from chipforge.arch import load_chip

    spec = load_chip(chip)
    if not out.parent.is_dir():  # before a fit of minutes, not after
        raise CalibrationError(f"-o {out}: folder {out.parent} does not exist; expected the "
                               "path of the profile to write in an existing folder")
    with status("fitting the efficiency parameters"):
        result = calibrate(spec, gemm=gemm, attention=attention,
                           decode_attention=decode_attention, nccl=nccl)
    path = write_profile(result, out)
    if as_json:
        print_json({"profile": str(path), **result.profile()})
        return
    print_table(_residual_table(result))
    for t in result.tables:
        if t.implausible:
            say(f"{t.table}: {t.implausible} of {t.rows} rows left out as implausible "
                f"(faster than {result.chip}'s datasheet peak FLOP/s, or DRAM or L2 "
                "bandwidth, allows)")
        else:
            say(f"{t.table}: {t.rows} rows, none implausible")
    fitted = ", ".join(f"{k} {v:.4g}" for k, v in asdict(result.efficiency).items())
    say(f"fitted: {fitted}")
    say(f"profile written to {path}")
