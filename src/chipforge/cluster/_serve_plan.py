"""``serve_plan``: the deployment of an LLM on a chip that serves the most output tokens per
second per chip (and per $) within a latency SLO, and how many chips a request rate needs.

Each candidate deployment (tensor-parallel size, the scheduler's sequence cap and token
budget, colocated or prefill/decode-disaggregated with a prefill:decode replica ratio) is
one *unit* of replicas. Its maximum request rate within the SLO comes from simulating
Poisson traffic: the unit's saturated throughput (all requests at once) sets the scale, a
doubling search from it brackets the edge of the SLO, and a bisection finds the highest
rate whose percentile TTFT and TPOT meet the SLO (the same seeded request stream every
time, so the comparison between rates is paired) and whose last quarter of arrivals meets
the TTFT SLO on its own (a queue that grows through the run is past capacity, however good
the percentile over all requests looks). Each rate runs long enough to reach steady state
(STEADY_LATENCIES): a short burst of requests meets any SLO at any rate.
Units scale out by replication: ``rate`` needs ``ceil(rate / max_rate_per_unit)`` units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from chipforge.cluster._serve_cost import replica_cost
from chipforge.cluster._serve_sim import Deployment, Scheduler, simulate
from chipforge.cluster._serve_traffic import LengthDist, Traffic
from chipforge.errors import ClusterError
from chipforge.workloads import LLMConfig

# the search: rates tried are in [saturated / FLOOR, CEILING x saturated]; after the
# bracket is found, STEPS halvings leave the answer within 1/2^STEPS of its width
FLOOR = 64
STEPS = 7
# the all-at-once run's rate includes its drain, when few requests are left; steady
# traffic can exceed it, so the search doubles past it up to this multiple
CEILING = 64.0
# a rate is judged on a run whose arrivals span at least this many unloaded request
# latencies: a shorter burst ends before a queue past capacity can build up, and any rate
# would seem to meet the SLO (assumption: 10 spans make the run's start and drain a small
# share, as a benchmark's warm-up and cool-down are)
STEADY_LATENCIES = 10.0
# and at most this many requests a run (bounded time and memory; ~1 s of simulation)
MAX_STEADY_REQUESTS = 20_000


@dataclass(frozen=True)
class Candidate:
    """One deployment unit: ``prefill_replicas`` (+ ``decode_replicas`` when
    disaggregated; 0 = colocated) replicas of ``tp`` chips under one scheduler setting."""

    tp: int
    max_seqs: int
    max_batch_tokens: int
    prefill_replicas: int = 1
    decode_replicas: int = 0

    @property
    def chips(self) -> int:
        return self.tp * (self.prefill_replicas + self.decode_replicas)

    @property
    def label(self) -> str:
        how = ("colocated" if not self.decode_replicas
               else f"{self.prefill_replicas}P:{self.decode_replicas}D")
        return f"tp={self.tp} {how}, {self.max_seqs} seqs / {self.max_batch_tokens} tokens"


@dataclass(frozen=True)
class Job:
    """Everything one candidate's evaluation needs (picklable, for local processes/Ray)."""

    cfg: LLMConfig
    system: Any
    dtype: str
    candidate: Candidate
    input_len: LengthDist
    output_len: LengthDist
    n_requests: int
    slo_ttft_s: float
    slo_tpot_s: float
    percentile: float
    seed: int


def deployment(job: Job) -> Deployment:
    c = job.candidate
    cost = replica_cost(job.cfg, job.system, tp=c.tp, dtype=job.dtype,
                        max_batch_tokens=c.max_batch_tokens)
    sched = Scheduler(max_batch_tokens=c.max_batch_tokens, max_seqs=c.max_seqs)
    if not c.decode_replicas:
        return Deployment(cost, prefill_replicas=c.prefill_replicas, scheduler=sched)
    return Deployment(cost, cost, prefill_replicas=c.prefill_replicas,
                      decode_replicas=c.decode_replicas, scheduler=sched)


def _run(job: Job, dep: Deployment, rate: float | None, e2e_s: float = 0.0) -> Any:
    """``rate`` requests/s for long enough to reach steady state: at least ``n_requests``,
    and at least STEADY_LATENCIES unloaded request latencies (``e2e_s``) of arrivals."""
    n = job.n_requests
    if rate is not None:
        n = min(max(n, math.ceil(rate * STEADY_LATENCIES * e2e_s)), MAX_STEADY_REQUESTS)
    return simulate(dep, Traffic(rate, n, job.input_len, job.output_len, seed=job.seed))


def _unloaded_e2e_s(job: Job, dep: Deployment) -> float:
    """The longest end-to-end latency of the job's requests served one at a time."""
    one = simulate(dep, Traffic(1e-6, min(job.n_requests, 50), job.input_len, job.output_len,
                                seed=job.seed))
    return float(np.max(one.e2e_s))


def _point(job: Job, result: Any, rate: float) -> dict:
    q = job.percentile
    return {"rate": rate, "ttft_s": result.percentile("ttft_s", q),
            "tpot_s": result.percentile("tpot_s", q),
            "ttft_p50_s": result.percentile("ttft_s", 50),
            "ttft_p99_s": result.percentile("ttft_s", 99),
            "tpot_p50_s": result.percentile("tpot_s", 50),
            "tpot_p99_s": result.percentile("tpot_s", 99),
            "output_tokens_per_s": result.output_tokens_per_s,
            "meets": result.meets_slo(job.slo_ttft_s, job.slo_tpot_s, q)
            and _keeps_up(result, job)}


def _keeps_up(result: Any, job: Job) -> bool:
    """Past its capacity a unit's queue grows through the run, and a finite run hides it
    in the percentile over all requests; the last quarter of arrivals must meet the TTFT
    SLO on their own too."""
    tail = result.ttft_s[-max(len(result.ttft_s) // 4, 1):]
    return bool(np.percentile(tail, job.percentile) <= job.slo_ttft_s)


def evaluate(job: Job) -> dict:
    """The candidate's maximum rate within the SLO and its latencies there (a JSON dict;
    ``feasible`` False with the latencies at the lowest rate tried when none meets it)."""
    dep = deployment(job)
    saturated = _run(job, dep, None)
    top = job.n_requests / saturated.makespan_s
    e2e_s = _unloaded_e2e_s(job, dep)
    low = _point(job, _run(job, dep, top / FLOOR, e2e_s), top / FLOOR)
    base = {"label": job.candidate.label, "chips": job.candidate.chips,
            "saturated_rate": top}
    if not low["meets"]:
        return {**base, "feasible": False, "max_rate": 0.0, "at": low}
    best, high = low, top
    while high < top * CEILING:  # steady traffic may beat the all-at-once rate: look past it
        point = _point(job, _run(job, dep, high, e2e_s), high)
        if not point["meets"]:
            break
        best, high = point, high * 2
    if best["rate"] >= high:
        raise ClusterError(f"{job.candidate.label}: the SLO still holds at "
                           f"{CEILING:g} x the saturated rate ({high:.3g} requests/s); "
                           "expected a rate where it fails (more requests per simulation)")
    for _ in range(STEPS):
        mid = (best["rate"] + high) / 2
        point = _point(job, _run(job, dep, mid, e2e_s), mid)
        if point["meets"]:
            best = point
        else:
            high = mid
    return {**base, "feasible": True, "max_rate": best["rate"], "at": best}


def candidates(tps: tuple[int, ...], max_seqs: tuple[int, ...],
               max_batch_tokens: tuple[int, ...],
               ratios: tuple[tuple[int, int], ...]) -> list[Candidate]:
    """Colocated: every tp x sequence cap x token budget (budgets below the cap skipped).
    Disaggregated: every tp x prefill:decode ratio at the largest cap and budget."""
    out = [Candidate(tp, s, b) for tp in tps for s in max_seqs for b in max_batch_tokens
           if b >= s]
    s, b = max(max_seqs), max(max(max_batch_tokens), max(max_seqs))
    out += [Candidate(tp, s, b, p, d) for tp in tps for p, d in ratios]
    return out


def fitting_tps(cfg: LLMConfig, system: Any, dtype: str, tps: tuple[int, ...] | None,
                limit: int = 3) -> tuple[int, ...]:
    """The given sizes, else the ``limit`` smallest powers of two whose replica holds the
    weights and a KV cache (up to 64 chips). Raises the smallest size's memory error when
    none fits."""
    if tps is not None:
        return tps
    found: list[int] = []
    first_error: ClusterError | None = None
    tp = 1
    while tp <= 64 and len(found) < limit:
        try:
            replica_cost(cfg, system, tp=tp, dtype=dtype)
            found.append(tp)
        except ClusterError as e:
            if "does not fit" not in str(e) and "tp=" not in str(e):
                raise
            first_error = first_error or e
        tp *= 2
    if not found:
        assert first_error is not None
        raise first_error
    return tuple(found)


def units_needed(rate: float, max_rate: float) -> int:
    return max(1, math.ceil(rate / max_rate - 1e-9))
