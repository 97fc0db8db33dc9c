"""Fit the shared efficiency parameters on the measured A100 data and print the result.

    .venv/bin/python scripts/calibrate.py

Fits clock_fraction, dram_efficiency, launch_overhead_s and pipeline_latency_s on the
even-numbered rows of the GEMM table (the odd rows, and every attention, vector-op and
GPT-3 layer row, are held out), and link_efficiency and link_latency_s on the even rows of
the NCCL table. The loss is the median absolute percentage error (the issue's target),
plus a tenth of the mean absolute log error to break ties toward a smaller tail.
Paste the printed values into ``src/chipforge/machine/_efficiency.py``; ``docs/validation.md``
then reports the held-out error.
"""

from __future__ import annotations

import math
import sys
from dataclasses import fields, replace

from chipforge.arch import load_chip
from chipforge.perf import DEFAULT, Efficiency, estimate
from chipforge.perf import validation as v

CORE = ("clock_fraction", "dram_efficiency", "launch_overhead_s", "pipeline_latency_s")
LINK = ("link_efficiency", "link_latency_s")
BOUNDS = {"clock_fraction": (0.5, 1.0), "dram_efficiency": (0.4, 1.0),
          "link_efficiency": (0.3, 1.0)}


def loss(samples: list[v.Sample], chip, eff: Efficiency) -> float:
    """Median absolute percentage error, plus a tenth of the mean absolute log error so
    that ties between medians are broken toward a smaller tail."""
    logs = [math.log(estimate(s.op, chip, eff).seconds / s.measured_s) for s in samples]
    ape = sorted(abs(math.expm1(x)) for x in logs)
    return ape[len(ape) // 2] + 0.1 * sum(abs(x) for x in logs) / len(logs)


def fit(samples, chip, eff: Efficiency, names: tuple[str, ...], rounds: int = 6) -> Efficiency:
    best = loss(samples, chip, eff)
    step = 1.1
    for _ in range(rounds):
        for name in names:
            improved = True
            while improved:
                improved = False
                for factor in (step, 1 / step):
                    value = getattr(eff, name) * factor
                    low, high = BOUNDS.get(name, (0.0, math.inf))
                    if not low <= value <= high:
                        continue
                    trial = replace(eff, **{name: value})
                    current = loss(samples, chip, trial)
                    if current < best:
                        best, eff, improved = current, trial, True
                        break
        step = math.sqrt(step)
        print(f"loss {best:.4f}  {eff}", file=sys.stderr)
    return eff


def main() -> None:
    try:
        folder = v.validation_dir()  # data/validation/, or $CHIPFORGE_VALIDATION_DIR
    except v.ValidationDataError as exc:
        sys.exit(f"error: {exc}")
    chip = load_chip("a100-sxm")
    a100 = folder / "a100"
    train = v.gemm_bf16(a100)[::2]
    eff = fit(train, chip, DEFAULT, CORE)
    eff = fit(v.nccl(a100)[::2], chip, eff, LINK)
    for f in fields(Efficiency):
        print(f"{f.name} = {getattr(eff, f.name):.4g}")


if __name__ == "__main__":
    main()
