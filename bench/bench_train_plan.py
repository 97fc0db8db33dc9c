"""Speed of the training-plan search on the issue's case.

    .venv/bin/python bench/bench_train_plan.py [--model llama-3.1-405b] [--chip h100-sxm]
        [--count 16384] [--tokens 15e12] [--seq-len 8192] [--batch-tokens 16e6]

Target (issue 15 §7): the plan search for Llama-3.1-405B on 16,384 H100s (15T tokens, seq
8192, a 16M-token batch) in < 30 s on one core. Runs ``train_plan`` once in this process
(one core: no workers, no Ray) and prints the wall time, the plans evaluated, the plans
per second and the best plan. The machine is shared, so one run's figure is what it
measured then; exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target says

from chipforge.cluster import train_plan  # noqa: E402

TARGET_S = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llama-3.1-405b")
    parser.add_argument("--chip", default="h100-sxm")
    parser.add_argument("--count", type=int, default=16_384)
    parser.add_argument("--tokens", type=float, default=15e12)
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--batch-tokens", type=float, default=16e6)
    args = parser.parse_args()
    start = time.perf_counter()
    result = train_plan(args.model, args.chip, count=args.count, tokens=args.tokens,
                        seq_len=args.seq_len, global_batch_tokens=args.batch_tokens)
    wall_s = time.perf_counter() - start
    best = result.plan
    print(f"train-plan {args.model} on {args.count:,} x {args.chip}: {wall_s:.1f} s wall "
          f"(search {result.search_s:.1f} s), {result.evaluated:,} plans evaluated = "
          f"{result.evaluated / result.search_s:,.0f} plans/s (target < {TARGET_S:.0f} s; "
          f"{wall_s / TARGET_S:.2f}x of it)")
    print(f"best: {best.parallelism.describe()}: step {best.step_time_s:.2f} s, MFU "
          f"{best.mfu:.1%}, {best.memory_bytes / 1e9:.1f} GB/chip, goodput {best.goodput:.1%}, "
          f"{best.days:.1f} days")
    return 0 if wall_s < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
