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

from chipforge.cluster._serve_engine import run
from chipforge.cluster._serve_metrics import ServeResult
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
    return run(deployment, arrival, inputs, outputs, max_events)
