#!/usr/bin/env python3
"""Regenerate ``tests/perf/data/scalesim_golden.csv`` by running SCALE-Sim v3.

The golden table pins :func:`chipforge.perf.systolic.systolic_compute_cycles`
to SCALE-Sim v3 (PyPI ``scalesim==3.0.0``) on a set of GEMM shapes for the
weight-stationary (``ws``) and output-stationary (``os``) dataflows.

chipforge itself does NOT depend on SCALE-Sim. SCALE-Sim 3.0.0 crashes with
numpy 2.4, so run this script from its own virtual environment::

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 'numpy>=2.1,<2.4'
    /tmp/scalesim-venv/bin/python scripts/gen_scalesim_golden.py          # ~1 min on 2 cores
    /tmp/scalesim-venv/bin/python scripts/gen_scalesim_golden.py --jobs 4 --out other.csv

Then run ``pytest tests/perf/test_scalesim_agreement.py`` with the project's
own Python.

What is recorded
----------------
Each GEMM ``C[m,n] = A[m,k] @ B[k,n]`` is run as a one-layer topology
``Layer,M,N,K,`` with ``input_type_gemm=True`` (SCALE-Sim then uses
ifmap = M x K and filter = K x N). Columns:

* ``compute_cycles`` -- ``single_layer_sim.total_cycles``. This is
  ``double_buffered_scratchpad.get_total_compute_cycles()``, i.e. the cycle
  index of the last OFMAP write when the demand matrices produced by the
  ``systolic_compute_{ws,os}`` classes are replayed through the SRAM model.
  SCALE-Sim's own simulator prints exactly this value as "Compute cycles"
  and it is the "Total Cycles" column of COMPUTE_REPORT.csv (the other
  column, "Total Cycles (incl. prefetch)" = ``overall_cycles``, adds the DRAM
  prefetch window and is a memory-system quantity, not a compute one).
  It includes stall cycles, which is why the run uses huge SRAMs so that
  stalls are zero; ``stall_cycles`` is recorded so that this is checked.
* ``stall_cycles`` -- ``single_layer_sim.stall_cycles`` (expected 0).
* ``overall_util`` -- ``single_layer_sim.overall_util`` in percent,
  ``m*n*k*100 / (compute_cycles * rows * cols)``.

Observed quirk: ``total_cycles`` is ``max(ofmap serviced cycle)``, a 0-based
cycle index, so it is one less than the number of demand-matrix lines
(folds x per-fold cycles); see ``chipforge/perf/systolic.py``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "perf" / "data" / "scalesim_golden.csv"

# SRAMs far larger than any operand here (max 600x600 = 360 k words; SCALE-Sim
# uses 1-byte words and half of each SRAM as the active buffer), so there are
# no memory stalls and total_cycles is pure compute.
CONFIG_TEMPLATE = """\
[general]
run_name = golden_{dataflow}_{rows}x{cols}
[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 16384
FilterSramSzkB: 16384
OfmapSramSzkB: 16384
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 1024
Dataflow: {dataflow}
ReadRequestBuffer: 32
WriteRequestBuffer: 32
[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2
[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40
[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# SCALE-Sim always opens a layout file; its content is unused while custom
# layouts are off. This is layouts/conv_nets/test.csv from the SCALE-Sim repo.
_LAYOUT_HEADER = (
    "Layer name",
    *(f"{x} Intraline Factor" for x in ("IFMAP Height", "IFMAP Width", "Filter Height",
                                        "Filter Width", "Channel", "Num Filter")),
    *(f"{x} Intraline Order" for x in ("IFMAP Height", "IFMAP Width", "Channel")),
    *(f"{x} Interline Order" for x in ("IFMAP Height", "IFMAP Width", "Channel")),
    *(f"{x} Intraline Order" for x in ("Num Filter", "Channel", "Filter Height", "Filter Width")),
    *(f"{x} Interline Order" for x in ("Num Filter", "Channel", "Filter Height", "Filter Width")),
)
LAYOUT_CSV = (
    ", ".join(_LAYOUT_HEADER) + ", \n"
    "Inc5b_3x3, 2, 2, 1, 1, 16, 4,     0, 1, 2,     4, 5, 3,     3, 2, 1, 0,     4, 5, 6, 7,\n"
)

# (rows, cols) of the array -> list of (m, n, k). Chosen to cover: tiny dims
# (1, 3, 7), exact multiples, non-multiples of the array size, m much smaller
# and much larger than the array, non-square arrays, and 128x128 (including
# the 256x512x256 reference point). Sizes are kept so that every GEMM runs in
# seconds (SCALE-Sim's cost grows with folds x per-fold cycles).
SHAPES: dict[tuple[int, int], list[tuple[int, int, int]]] = {
    (8, 8): [(1, 1, 1), (3, 7, 5), (7, 3, 9), (8, 8, 8), (9, 17, 33), (64, 64, 64), (100, 20, 37),
             (600, 3, 7), (1, 600, 1)],
    (16, 16): [(1, 300, 17), (300, 1, 40), (16, 16, 16), (17, 33, 65), (200, 50, 30), (5, 100, 250),
               (597, 13, 599)],
    (32, 32): [(33, 64, 100), (600, 40, 31), (31, 95, 3), (128, 128, 128), (600, 600, 600)],
    (16, 8): [(50, 30, 20), (7, 100, 45), (600, 9, 17), (1, 64, 129), (599, 601, 3)],
    (8, 32): [(20, 70, 50), (3, 600, 9), (64, 33, 100), (129, 1, 7), (600, 64, 600)],
    (64, 4): [(10, 300, 70), (256, 7, 3)],
    (128, 128): [(256, 512, 256), (130, 300, 129), (1, 200, 600), (600, 600, 600)],
}
DATAFLOWS = ("ws", "os")
FIELDS = ["dataflow", "rows", "cols", "m", "n", "k",
          "compute_cycles", "stall_cycles", "overall_util"]


def run_one(case: tuple[str, int, int, int, int, int]) -> dict:
    """Run one GEMM through SCALE-Sim in a scratch directory and return a CSV row."""
    import contextlib
    import io

    from scalesim.scale_sim import scalesim

    dataflow, rows, cols, m, n, k = case
    with tempfile.TemporaryDirectory(prefix="scalesim_golden_") as tmp:
        cfg = os.path.join(tmp, "c.cfg")
        topo = os.path.join(tmp, "g.csv")
        layout = os.path.join(tmp, "layout.csv")
        with open(cfg, "w") as f:
            f.write(CONFIG_TEMPLATE.format(dataflow=dataflow, rows=rows, cols=cols))
        with open(topo, "w") as f:
            f.write("Layer,M,N,K,\n")  # header line, skipped by SCALE-Sim
            f.write(f"gemm,{m},{n},{k},\n")  # the trailing comma is required
        with open(layout, "w") as f:
            f.write(LAYOUT_CSV)
        t0 = time.time()
        with contextlib.redirect_stdout(io.StringIO()):
            s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                         layout=layout, input_type_gemm=True)
            s.run_scale(top_path=os.path.join(tmp, "out"))
            layer = s.runner.single_layer_sim_object_list[0]
            layer.get_compute_report_items()  # ensures total_cycles etc. are computed
        elapsed = time.time() - t0
    return {
        "dataflow": dataflow, "rows": rows, "cols": cols, "m": m, "n": n, "k": k,
        "compute_cycles": int(layer.total_cycles),
        "stall_cycles": int(layer.stall_cycles),
        "overall_util": f"{float(layer.overall_util):.4f}",
        "_seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)

    cases = [(df, r, c, m, n, k) for df in DATAFLOWS for (r, c), shapes in SHAPES.items()
             for (m, n, k) in shapes]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = []
        for row in pool.map(run_one, cases):
            print(f"{row['dataflow']} {row['rows']}x{row['cols']} m={row['m']} n={row['n']} "
                  f"k={row['k']}: {row['compute_cycles']} cycles, {row['stall_cycles']} stalls "
                  f"({row['_seconds']:.1f} s)", file=sys.stderr)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out} in {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
