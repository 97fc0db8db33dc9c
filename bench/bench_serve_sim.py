"""Speed of the serving simulator: its scaling curve in the number of requests.

    .venv/bin/python bench/bench_serve_sim.py [--sizes 10000 30000 100000 300000]

Target (issue 15 section 7): 100,000 requests in < 30 s on one core, and an event loop
linear in the number of requests. The deployment is Llama-3.1-70B-like on 8 replicas of
8 H100s with a fixed synthetic StepCost (below); the traffic is Poisson at 70% of the
deployment's measured saturation rate, with chat-like lognormal lengths. Prints seconds and
microseconds per request for each size, the ratio of the per-request cost at the largest
size to the smallest (1.0 is perfectly linear), and the ratio of the 1e5 time to its
target; exits 1 if a target is missed. Two more 1e5 runs are timed for reference: every
request at t = 0 (the largest batches), and a 3:5 disaggregated deployment.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from chipforge.cluster import Deployment, LengthDist, Scheduler, Traffic, simulate

TARGET_S, TARGET_REQUESTS = 30.0, 100_000
# linear within 1.5x per request from 1e4 to the largest size: a quadratic loop grows 10-30x
LINEAR_RATIO = 1.5


@dataclass(frozen=True)
class SyntheticCost:
    """One replica: Llama-3.1-70B in bf16 on 8 H100-SXM (TP8), magnitudes by hand.

    base: the weights read once per iteration, 141 GB / 8 chips / 3.35 TB/s = 5.3 ms, plus
    about 3 ms of TP all-reduces and launch overhead (assumption: vLLM's TP8 decode step on
    H100 is ~10 ms at small batch). Per token: 2 * 70.6e9 FLOP / (8 * 989e12 FLOP/s * 0.6)
    = 30 us (source: H100 SXM datasheet, 989 TFLOP/s dense bf16; assumption: 60% MFU).
    Per attended key of a decode: the KV of one token, 80 layers * 8 KV heads * 128 * 2 (K,
    V) * 2 bytes = 327,680 B, read at 8 * 3.35 TB/s = 12 ns. Per causal prefill pair:
    4 * 8192 * 80 FLOP at the same rate, 0.55 ns. KV capacity: (8 * 80 GB - 141 GB) /
    327,680 B = 1.5 M tokens.
    """

    kv_capacity_tokens: int = 1_500_000
    kv_block_tokens: int = 16
    base_s: float = 8.3e-3
    per_token_s: float = 3.0e-5
    per_key_s: float = 1.2e-8
    per_pair_s: float = 5.5e-10

    def iteration_s(self, prefill_tokens: int, prefill_attn_ctx: float, decode_seqs: int,
                    decode_ctx_tokens: float) -> float:
        return (self.base_s + self.per_token_s * (prefill_tokens + decode_seqs)
                + self.per_key_s * decode_ctx_tokens + self.per_pair_s * prefill_attn_ctx)

    def kv_transfer_s(self, tokens: int) -> float:
        return 327_680 * tokens / 50e9  # assumption: 8 x 400 Gb/s NICs, 50 GB/s in all


DEPLOYMENT = Deployment(SyntheticCost(), prefill_replicas=8, scheduler=Scheduler())
DISAGGREGATED = Deployment(SyntheticCost(), SyntheticCost(), prefill_replicas=3,
                           decode_replicas=5, scheduler=Scheduler())
INPUT, OUTPUT = LengthDist.lognormal(1024, 1.0), LengthDist.lognormal(256, 1.0)


def saturation_rate() -> float:
    """Requests per second the deployment serves with every request queued at t = 0."""
    result = simulate(DEPLOYMENT, Traffic(None, 20_000, INPUT, OUTPUT, seed=1))
    return result.n_requests / result.makespan_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[10_000, 30_000, 100_000, 300_000])
    args = parser.parse_args()
    rate = 0.7 * saturation_rate()
    print(f"deployment: 8 replicas; Poisson at {rate:.1f} requests/s (70% of saturation)")
    per_request = {}
    for n in args.sizes:
        start = time.perf_counter()
        result = simulate(DEPLOYMENT, Traffic(rate, n, INPUT, OUTPUT, seed=2))
        seconds = time.perf_counter() - start
        per_request[n] = seconds / n
        p90 = result.summary()["ttft_s"]["p90"], result.summary()["tpot_s"]["p90"]
        print(f"{n:>8} requests: {seconds:7.2f} s  {1e6 * seconds / n:6.1f} us/request  "
              f"{result.iterations:>8} iterations  batch {result.mean_batch_seqs:5.1f}  "
              f"p90 TTFT {p90[0]:.3f} s  p90 TPOT {1e3 * p90[1]:.1f} ms")
    for label, deployment, rate_per_s in (
            ("max load (all at t = 0)", DEPLOYMENT, None),
            ("disaggregated 3 prefill : 5 decode", DISAGGREGATED, rate)):
        start = time.perf_counter()
        result = simulate(deployment, Traffic(rate_per_s, 100_000, INPUT, OUTPUT, seed=2))
        seconds = time.perf_counter() - start
        print(f"  100000 requests, {label}: {seconds:.2f} s, {result.iterations} iterations, "
              f"batch {result.mean_batch_seqs:.1f}, {result.preemptions} preemptions")
    ok = True
    smallest, largest = min(per_request), max(per_request)
    growth = per_request[largest] / per_request[smallest]
    print(f"per-request cost, {largest} vs {smallest} requests: {growth:.2f}x "
          f"(linear: 1.0; target <= {LINEAR_RATIO})")
    ok &= growth <= LINEAR_RATIO
    if TARGET_REQUESTS in per_request:
        ratio = per_request[TARGET_REQUESTS] * TARGET_REQUESTS / TARGET_S
        print(f"{TARGET_REQUESTS} requests: {ratio:.2f} of the {TARGET_S:.0f} s target")
        ok &= ratio <= 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
