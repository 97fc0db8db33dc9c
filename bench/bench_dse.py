"""Speed of the design-space exploration on the serving workload mix.

    .venv/bin/python bench/bench_dse.py [--trials 600] [--workers 2] [--sampler nsga2]

Target (issue 5 §6): at least 1,000 design points evaluated per minute on this 2-core
machine, on the serving mix (Llama-3.1-70B and -8B decode, designs/examples/). Runs one
fresh DSE in a temporary folder (every point evaluated, stored, told to the sampler) and
prints the measured points per minute, plus the mean evaluation time per point in the
workers. The machine is shared, so one run's figure is what it measured then; exits 1 if
the target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the workers are the parallelism

from chipforge.dse import Store, load_problem, run_dse  # noqa: E402

TARGET_POINTS_PER_MIN = 1000.0
EXAMPLES = Path(__file__).resolve().parent.parent / "designs" / "examples"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sampler", default="nsga2", choices=("nsga2", "tpe", "grid"))
    args = parser.parse_args()
    problem = load_problem(EXAMPLES / "inference-space.yaml",
                           EXAMPLES / "inference-constraints.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run_dse(problem, Path(tmp), trials=args.trials, sampler=args.sampler,
                          workers=args.workers, seed=0)
        wall_s = time.perf_counter() - start
        store = Store(Path(tmp) / "results.sqlite")
        eval_s = [r.eval_s for r in store.rows()]
        store.close()
    rate = summary.new / wall_s * 60
    mean_ms = 1e3 * sum(eval_s) / len(eval_s)
    print(f"dse {args.sampler}, {args.workers} workers: {summary.new} points in {wall_s:.1f} s "
          f"= {rate:,.0f} points/min (target >= {TARGET_POINTS_PER_MIN:,.0f}; "
          f"{rate / TARGET_POINTS_PER_MIN:.2f}x); mean evaluation {mean_ms:.1f} ms/point in a "
          f"worker; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    return 0 if rate >= TARGET_POINTS_PER_MIN else 1


if __name__ == "__main__":
    sys.exit(main())
