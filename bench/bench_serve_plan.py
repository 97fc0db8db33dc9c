"""Speed of the serving step cost and of the deployment search.

    .venv/bin/python bench/bench_serve_plan.py [--requests 600] [--workers 1]

Prints, for Llama-3.1-70B at tp=4 on H100 (fp8):
- the time to build the step-cost tables (``replica_cost``);
- one table iteration against the same iteration from direct engine calls (every part at
  its exact size), and the ratio: what the tables save the event loop;
- a serve_plan search of the default knobs (15 deployments), in seconds and simulations
  per second.
The machine is shared, so one run's figures are what it measured then.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from chipforge.cluster import collective_time, replica_cost, serve_plan, system  # noqa: E402
from chipforge.cluster._serve_tables import (  # noqa: E402
    body_seconds,
    comm_seconds,
    decode_attention_seconds,
    head_seconds,
    prefill_attention_seconds,
)
from chipforge.workloads import load_llm_config  # noqa: E402

MODEL, CHIP, TP, DTYPE = "llama-3.1-70b", "h100-sxm", 4, "fp8_e4m3"


def _direct(cfg, sysm, decodes: int, context: int, prompt: int) -> float:
    tokens, seqs = decodes + prompt, decodes + 1
    return (body_seconds(cfg, sysm.chip, tokens, DTYPE, TP, 1)
            + comm_seconds(cfg, sysm, TP, 1, 1, tokens)
            + head_seconds(cfg, sysm.chip, seqs, DTYPE, TP, 1)
            + collective_time(sysm, "all_gather", seqs * cfg.vocab_size * 2, TP).seconds
            + decode_attention_seconds(cfg, sysm.chip, TP, DTYPE, DTYPE, decodes, context)
            + prefill_attention_seconds(cfg, sysm.chip, TP, DTYPE, DTYPE, 1, prompt))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    cfg, sysm = load_llm_config(MODEL), system(CHIP, 64)
    start = time.perf_counter()
    cost = replica_cost(cfg, sysm, tp=TP, dtype=DTYPE)
    print(f"replica_cost tables: {time.perf_counter() - start:.2f} s")
    shapes = [(d, 500 + 37 * d, 100 + 13 * d) for d in range(1, 200)]  # distinct sizes
    start = time.perf_counter()
    for d, c, p in shapes:
        cost.iteration_s(p, p * (p + 1) / 2, d, d * c)
    table_s = (time.perf_counter() - start) / len(shapes)
    start = time.perf_counter()
    for d, c, p in shapes:
        _direct(cfg, sysm, d, c, p)
    direct_s = (time.perf_counter() - start) / len(shapes)
    print(f"one iteration: tables {table_s * 1e6:.1f} us, direct engine calls "
          f"{direct_s * 1e3:.2f} ms ({direct_s / table_s:,.0f}x)")
    start = time.perf_counter()
    plan = serve_plan(cfg, sysm, rate=100, n_requests=args.requests, workers=args.workers)
    took = time.perf_counter() - start
    print(f"serve_plan: {len(plan.alternatives)} deployments in {took:.1f} s "
          f"({args.requests} requests per simulation); best {plan.best.label}, "
          f"{plan.tokens_per_s_per_chip:,.0f} tok/s/chip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
