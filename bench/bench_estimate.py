"""Speed of the performance engine on a full Llama-3.1-70B training step.

    .venv/bin/python bench/bench_estimate.py [--chip forge-t1]

Targets (issue 2): under 2 s cold (empty estimate cache, graph built from the config) and
under 100 ms warm (cache filled by a previous estimate), on one core. Prints the measured
times and their ratio to the target; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# one core, as the target says: keep BLAS from spreading over both
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from chipforge.arch import load_chip  # noqa: E402
from chipforge.perf import _engine, _matmul, estimate  # noqa: E402
from chipforge.workloads import llm_train_step, load_llm_config  # noqa: E402

COLD_TARGET_S, WARM_TARGET_S = 2.0, 0.100


def clear_caches() -> None:
    _engine._estimate_op.cache_clear()
    cache_clear = getattr(_matmul.search_matmul, "cache_clear", None)
    if cache_clear:
        cache_clear()


def run(chip_name: str) -> tuple[float, float, int]:
    chip = load_chip(chip_name)
    clear_caches()
    t0 = time.perf_counter()
    graph = llm_train_step(load_llm_config("llama-3.1-70b"), 1024, 4096)
    est = estimate(graph, chip)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph = llm_train_step(load_llm_config("llama-3.1-70b"), 1024, 4096)
    estimate(graph, chip)
    warm = time.perf_counter() - t0
    print(f"{chip_name}: step {est.seconds:.1f} s estimated, {len(graph)} graph nodes")
    return cold, warm, len(graph)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chip", action="append", help="chip(s) to time")
    chips = parser.parse_args().chip or ["forge-t1", "h100-sxm"]
    ok = True
    for chip in chips:
        cold, warm, _ = run(chip)
        print(f"  cold {cold * 1e3:8.1f} ms  target {COLD_TARGET_S * 1e3:.0f} ms  "
              f"ratio {cold / COLD_TARGET_S:.3f}")
        print(f"  warm {warm * 1e3:8.1f} ms  target {WARM_TARGET_S * 1e3:.0f} ms  "
              f"ratio {warm / WARM_TARGET_S:.3f}")
        ok &= cold < COLD_TARGET_S and warm < WARM_TARGET_S
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
