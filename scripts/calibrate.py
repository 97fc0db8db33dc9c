"""Fit the shared efficiency parameters on the measured A100 data and print the result.

    .venv/bin/python scripts/calibrate.py

Fits clock_fraction, dram_efficiency, launch_overhead_s and pipeline_latency_s on the
even-numbered rows of the GEMM table (the odd rows, and every attention, vector-op and
GPT-3 layer row, are held out), and link_efficiency and link_latency_s on the even rows of
the NCCL table, with ``chipforge.perf.calibrate`` (the procedure and loss are documented
there; ``chipforge calibrate`` runs the same fit on a user's own CSV files).
Paste the printed values into ``src/chipforge/machine/_efficiency.py``; ``docs/validation.md``
then reports the held-out error.
"""

from __future__ import annotations

import sys
from dataclasses import fields

from chipforge.arch import load_chip
from chipforge.perf import DEFAULT, Efficiency, calibrate
from chipforge.perf import validation as v


def main() -> None:
    try:
        folder = v.validation_dir()  # data/validation/, or $CHIPFORGE_VALIDATION_DIR
    except v.ValidationDataError as exc:
        sys.exit(f"error: {exc}")
    a100 = folder / "a100"
    result = calibrate(load_chip("a100-sxm"), gemm=v.gemm_bf16(a100)[::2],
                       nccl=v.nccl(a100)[::2], start=DEFAULT,
                       log=lambda line: print(line, file=sys.stderr))
    for f in fields(Efficiency):
        print(f"{f.name} = {getattr(result.efficiency, f.name):.4g}")


if __name__ == "__main__":
    main()
