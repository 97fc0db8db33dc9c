"""``chipforge.rtl.report_summary``: the RTL facts the report shows, in a few seconds.

It verifies a batch of random instructions on the RTL against the simulator, runs one
multi-fold GEMM through the controller next to SCALE-Sim v3's count, and reads the area
from the recorded synthesis table (:mod:`chipforge.rtl._synth_data`; Yosys is not run).
Without Amaranth installed it returns ``{"available": False, "reason": ...}``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from chipforge.rtl._formats import check_dims, fmt_of


def area_estimate(dtype: str, rows: int, cols: int) -> dict:
    """Synthesized area of a rows x cols array from the recorded table: the entry itself,
    or a least-squares fit a*n^2 + b*n (+ c with three or more sizes) over the recorded
    square sizes, at n = sqrt(R*C), marked ``estimated``."""
    from chipforge.rtl._synth_data import NODE, RESULTS, SOURCE

    runs = [r for r in RESULTS if r["dtype"] == dtype and r["design"] != "pe"]
    hit = next((r for r in runs if (r["rows"], r["cols"]) == (rows, cols)), None)
    out = {"node": NODE, "area_source": SOURCE}
    if hit:
        return out | {"cells": hit["cells"], "flip_flops": hit["flip_flops"],
                      "placed_um2": hit["placed_um2"], "estimated": False}
    if len(runs) < 2:
        return out | {"placed_um2": None, "estimated": True}
    n = np.array([r["rows"] for r in runs], float)
    basis = [n**2, n] + ([np.ones_like(n)] if len(runs) >= 3 else [])
    coef = np.linalg.lstsq(np.stack(basis, 1), [r["placed_um2"] for r in runs], rcond=None)[0]
    size = (rows * cols) ** 0.5
    value = float(np.dot(coef, [size**2, size, 1][:len(basis)]))
    return out | {"placed_um2": round(value, 1), "estimated": True}


@lru_cache(maxsize=8)
def report_summary(rows: int = 8, cols: int = 8, dtype: str = "int8", count: int = 200,
                   seed: int = 0, chip_rows: int = 128, chip_cols: int = 128) -> dict:
    """Verified instruction count, mismatches, cycle agreement, a GEMM against SCALE-Sim,
    the synthesized area of the rows x cols array, and the area extrapolated to the chip's
    chip_rows x chip_cols array (cached per arguments)."""
    check_dims(rows, cols)
    fmt_of(dtype)
    try:
        import amaranth  # noqa: F401
    except ImportError:
        return {"available": False, "reason": "Amaranth is not installed "
                "(pip install 'chipforge[rtl]')"}
    from chipforge.rtl._config import CoreConfig
    from chipforge.rtl._gemm import run_gemm
    from chipforge.rtl._verify import run_verify

    rep = run_verify(CoreConfig(rows, cols, dtype), count, seed)
    gemm = run_gemm(rows, cols, 2 * rows + 3, cols + 3, rows + 5, seed)
    return {
        "available": True,
        "array": f"{rows}x{cols}",
        "dtype": dtype,
        "instructions": ["MM_LW", "MM_MUL"],
        "verified_instructions": len(rep.results),
        "mismatches": rep.mismatches,
        "cycle_differences": rep.cycle_errors,
        "cycles_agree": rep.cycle_errors == 0,
        "rtl_cycles": rep.total_rtl_cycles,
        "model_cycles": sum(r.model_cycles for r in rep.results),
        "gemm": {"m": gemm.m, "n": gemm.n, "k": gemm.k, "folds": gemm.folds,
                 "rtl_cycles": gemm.rtl_cycles, "model_cycles": gemm.model_cycles,
                 "scalesim_cycles": gemm.scalesim_cycles, "exact": gemm.exact},
        "area": area_estimate(dtype, rows, cols),
        "chip_array": {"array": f"{chip_rows}x{chip_cols}"}
        | area_estimate(dtype, chip_rows, chip_cols),
    }
