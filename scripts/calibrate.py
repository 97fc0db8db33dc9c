"""Fit the shared efficiency parameters on the measured A100 and H100 data together.

    .venv/bin/python scripts/calibrate.py [--stride N]

The core fields (clock_fraction, dram_efficiency, launch_overhead_s, pipeline_latency_s)
and each harness's fixed cost per timed call are fitted on the even-numbered rows of the
GEMM, attention and MoE tables of both chips (every ``stride``-th even row, default 8,
to keep the fit to minutes; every table counts alike in the loss); link_efficiency,
link_latency_s and the nccl-tests harnesses' costs on the even rows of both NCCL tables.
The odd rows and the LLMCompass tables are held out. The procedure and loss are ``chipforge.perf``'s
(``fit_groups``; ``chipforge calibrate`` runs the same fit on a user's own CSV files).
Paste the printed values into ``src/chipforge/machine/_efficiency.py`` and
``src/chipforge/perf/_harness.py``; ``make validation`` then reports the held-out error.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from chipforge.arch import load_chip
from chipforge.perf import (
    CORE_FIELDS,
    DEFAULT,
    HARNESS_PREFIX,
    HARNESSES,
    LINK_FIELDS,
    Efficiency,
    fit_groups,
)
from chipforge.perf import validation as v

CORE_TABLES = ("gemm_bf16", "h100_gemm_bf16", "h100_gemm_fp8", "context_attention",
               "generation_attention", "h100_context_attention",
               "h100_generation_attention", "h100_moe")
LINK_TABLES = ("nccl", "h100_nccl")
FITTED_HARNESSES = ("trtllm-1.0.0", "trtllm-1.3")
NCCL_HARNESSES = ("nccl-tests-2.27.3", "nccl-tests-2.29.2")


def _groups(names: tuple[str, ...], stride: int):
    folder = v.validation_dir()  # data/validation/, or $CHIPFORGE_VALIDATION_DIR
    return [(load_chip(v.TABLES[n].chip), v.TABLES[n].samples(folder)[::2][::stride])
            for n in names if n in v.TABLES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=8,
                        help="use every N-th even row of each table (default 8)")
    args = parser.parse_args()
    try:
        core, link = _groups(CORE_TABLES, args.stride), _groups(LINK_TABLES, 1)
    except v.ValidationDataError as exc:
        sys.exit(f"error: {exc}")

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    overheads = {h: HARNESSES[h].call_overhead_s or 1e-6 for h in FITTED_HARNESSES}
    names = (*CORE_FIELDS, *(HARNESS_PREFIX + h for h in FITTED_HARNESSES))
    eff, overheads = fit_groups(core, DEFAULT, names, overheads, rounds=4, log=log)
    nccl = {h: HARNESSES[h].call_overhead_s or 1e-6 for h in NCCL_HARNESSES}
    eff, nccl = fit_groups(link, eff, (*LINK_FIELDS, *(HARNESS_PREFIX + h for h in NCCL_HARNESSES)),
                           nccl, rounds=4, log=log)
    overheads.update(nccl)
    print("# src/chipforge/machine/_efficiency.py")
    for f in fields(Efficiency):
        print(f"{f.name} = {getattr(eff, f.name):.4g}")
    print("# src/chipforge/perf/_harness.py: call_overhead_s")
    for name, value in overheads.items():
        print(f"{name} = {value:.4g}")


if __name__ == "__main__":
    main()
