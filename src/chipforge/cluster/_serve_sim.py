"""An event-driven simulator of an LLM serving deployment (docs/cluster.md, "The simulator").

Semantics follow vLLM V1's scheduler (vllm/v1/core/sched/scheduler.py) and Sarathi-Serve
(Agrawal et al., OSDI 2024): iteration-level (continuous) batching under a token budget,
running decodes first and then prefill chunks FCFS (stall-free batching), paged KV blocks
that grow as a request decodes, and recompute preemption of the newest running request when
the cache is full. Disaggregation follows DistServe (Zhong et al., OSDI 2024) and Splitwise
(Patel et al., ISCA 2024): prefill replicas hand each request's KV to a decode replica.
The inputs are in _serve_types, the event loop in _serve_engine, the result in
_serve_metrics.
"""

from __future__ import annotations

import numpy as np

from chipforge.cluster._serve_engine import Engine
from chipforge.cluster._serve_metrics import ServeResult
from chipforge.cluster._serve_reject import rejections
from chipforge.cluster._serve_traffic import Traffic
from chipforge.cluster._serve_types import Deployment, Scheduler, StepCost, check_count
from chipforge.errors import ClusterError

__all__ = ["Deployment", "Scheduler", "StepCost", "simulate"]


def simulate(deployment: Deployment, traffic: Traffic, *,
             max_events: int | None = None) -> ServeResult:
    """Serve ``traffic`` on ``deployment`` and return every request's latencies.

    ``max_events`` bounds the engine iterations and transfers processed; a run that needs
    more stops with a ClusterError (never a partial result).
    """
    if not isinstance(deployment, Deployment):
        raise ClusterError(f"deployment={deployment!r}: expected a Deployment")
    if not isinstance(traffic, Traffic):
        raise ClusterError(f"traffic={traffic!r}: expected a Traffic")
    if max_events is not None:
        check_count("max_events", max_events, 1)
    arrival, inputs, outputs = traffic.requests()
    rejected, notes = rejections(deployment, inputs, outputs)
    engine = Engine(deployment, inputs.tolist(), outputs.tolist())
    in_system = engine.run(arrival.tolist(), rejected.tolist(), max_events)
    first, finish = np.asarray(engine.first_s), np.asarray(engine.finish_s)
    unfinished = int(((finish < 0) & ~rejected).sum())
    if unfinished:
        raise ClusterError(f"the simulation ended with {unfinished} requests unserved: a "
                           "scheduler bug; please report it with the deployment and traffic")
    served = ~rejected
    nan = np.full(len(arrival), np.nan)
    ttft = np.where(served, first - arrival, nan)
    e2e = np.where(served, finish - arrival, nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(served & (outputs > 1), (e2e - ttft) / (outputs - 1), nan)
    makespan = float(finish[served].max() - arrival.min()) if served.any() else 0.0
    iterations = max(engine.iterations, 1)
    return ServeResult(
        arrival_s=arrival, input_len=inputs, output_len=outputs, ttft_s=ttft, tpot_s=tpot,
        e2e_s=e2e, rejected=rejected, makespan_s=makespan, preemptions=engine.preemptions,
        recomputed_tokens=engine.recomputed, iterations=engine.iterations,
        mean_batch_seqs=engine.batch_seqs / iterations,
        mean_batch_tokens=engine.batch_tokens / iterations,
        mean_in_system=in_system, kv_transfers=engine.transfers, notes=notes)
