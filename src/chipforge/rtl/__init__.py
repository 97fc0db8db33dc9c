"""The matrix engine in Amaranth HDL, checked bit- and cycle-exactly against the simulator.

One :class:`MatrixCore` is an instruction queue (ready/valid), a controller executing the
ISA's ``MM_LW`` / ``MM_MUL`` / ``MM_OS`` with exactly their ISA cycle costs (and MM_OS's
R-cycle completion latency), a banked operand SRAM with two row read ports, a rows x cols
weight-stationary :class:`SystolicArray` of :class:`ProcessingElement` with input skew
and output de-skew, a rows x cols output-stationary :class:`OsArray` whose PEs accumulate
in place and drain through shadow registers (:class:`OsUnit` feeds and drains it), and an
accumulator SRAM that adds or overwrites. Dtypes: int8 (-> int32, wrapping) and bf16 /
fp8_e4m3 / fp8_e5m2 (-> fp32: exact sums rounded once, as
``chipforge.numerics.matmul_acc``). See docs/rtl.md.

Everything but :func:`report_summary` and the formats needs the ``rtl`` extra (Amaranth);
those names load on first use.
"""

from __future__ import annotations

import importlib

from chipforge.rtl._formats import (
    DTYPES,
    FORMATS,
    MxFormat,
    RtlError,
    banks_for,
    check_dims,
    fmt_of,
)
from chipforge.rtl._summary import area_estimate, report_summary

# the recorded synthesis table (pure data, no Amaranth): the node its areas are at, and
# one dict per synthesized design (design, dtype, rows, cols, cells, ..., placed_um2)
from chipforge.rtl._synth_data import NODE as SYNTH_NODE
from chipforge.rtl._synth_data import RESULTS as SYNTH_RESULTS

_LAZY = {
    "CoreConfig": "_config", "payload": "_config",
    "MatrixCore": "_core", "SystolicArray": "_array", "ProcessingElement": "_pe",
    "OsArray": "_os_array", "OsProcessingElement": "_os_array", "OsUnit": "_os_unit",
    "RotatingBanks": "_sram", "RoundF32": "_float", "AddF32": "_float",
    "run_verify": "_verify", "VerifyReport": "_verify",
    "export_verilog": "_export", "verilog_text": "_export", "instr_fields": "_export",
    "synthesize": "_synth", "synth_table": "_synth", "node_density": "_synth",
    "save": "_synth", "SynthResult": "_synth",
    "run_gemm": "_gemm", "GemmRun": "_gemm",
}

__all__ = ["DTYPES", "FORMATS", "SYNTH_NODE", "SYNTH_RESULTS", "MxFormat", "RtlError",
           "area_estimate", "banks_for", "check_dims", "fmt_of", "report_summary", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"chipforge.rtl.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'chipforge.rtl' has no attribute {name!r}")
