"""The serving simulator's inputs: a replica's StepCost, the Scheduler and the Deployment.

The cost of one engine iteration comes from a :class:`StepCost` (chipforge.cluster's
``replica_cost`` builds one from the single-chip engine); the simulator only schedules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from chipforge.errors import ClusterError

__all__ = ["Deployment", "Scheduler", "StepCost"]

PREEMPTIONS = ("recompute", "swap")
ROUTINGS = ("least_outstanding", "round_robin")
TTFT_AT = ("decode", "prefill")


@runtime_checkable
class StepCost(Protocol):
    """The cost model of one replica (its chips run one engine together).

    ``iteration_s``: one engine iteration computing ``prefill_tokens`` prompt tokens (chunks)
    and ``decode_seqs`` decodes. ``prefill_attn_ctx`` counts the chunks' causal (query, key)
    pairs: a chunk of c tokens after p cached tokens adds c*p + c*(c+1)/2 (n(n+1)/2 for a
    whole n-token prompt). ``decode_ctx_tokens`` is the sum over the decodes of the keys each
    attends to (its cached tokens plus the new one).
    """

    kv_capacity_tokens: int  # KV-cache tokens that fit in the replica's memory after weights
    kv_block_tokens: int  # paged-attention block size (vLLM: 16)

    def iteration_s(self, prefill_tokens: int, prefill_attn_ctx: float, decode_seqs: int,
                    decode_ctx_tokens: float) -> float: ...

    def kv_transfer_s(self, tokens: int) -> float: ...


@dataclass(frozen=True)
class Scheduler:
    """The per-replica batch scheduler (vLLM's max_num_batched_tokens and max_num_seqs).

    ``max_batch_tokens`` must be >= ``max_seqs`` so every running decode gets its token each
    iteration (vLLM's defaults, 8192 and 256, satisfy it). ``preemption="swap"`` is refused:
    vLLM V1 preempts by recompute only, and no StepCost carries a host-swap bandwidth.
    """

    max_batch_tokens: int = 8192
    max_seqs: int = 256
    chunked_prefill: bool = True
    preemption: str = "recompute"

    def __post_init__(self) -> None:
        for name in ("max_batch_tokens", "max_seqs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ClusterError(f"Scheduler.{name}={value!r}: expected an integer >= 1")
        if self.max_batch_tokens < self.max_seqs:
            raise ClusterError(
                f"Scheduler.max_batch_tokens={self.max_batch_tokens!r}: expected >= max_seqs="
                f"{self.max_seqs!r}, so each running decode gets its token every iteration")
        if not isinstance(self.chunked_prefill, bool):
            raise ClusterError(
                f"Scheduler.chunked_prefill={self.chunked_prefill!r}: expected True or False")
        if self.preemption not in PREEMPTIONS:
            raise ClusterError(
                f"Scheduler.preemption={self.preemption!r}: expected one of {PREEMPTIONS}")
        if self.preemption == "swap":
            raise ClusterError("Scheduler.preemption='swap': not modelled (vLLM V1 preempts by "
                               "recompute only); expected 'recompute'")


@dataclass(frozen=True)
class Deployment:
    """Replicas of one model. ``decode=None``: colocated replicas (each prefills and
    decodes). Otherwise ``prefill_replicas`` prefill-only and ``decode_replicas`` decode-only
    replicas; a finished prefill's KV goes, over the prefill replica's links
    (``prefill.kv_transfer_s``, one transfer at a time per replica), to the decode replica
    with the fewest outstanding requests once that replica has allocated blocks for it.

    ``routing``: arrivals go to the replica with the fewest outstanding (routed, unfinished)
    requests, lowest index on ties, or round-robin. ``ttft_at``: in a disaggregated
    deployment, the first token reaches the user from the decode replica once the KV has
    arrived ("decode", vLLM's disaggregated-prefill proxy) or straight from the prefill
    replica ("prefill", Splitwise).
    """

    prefill: StepCost
    decode: StepCost | None = None
    prefill_replicas: int = 1
    decode_replicas: int = 0
    scheduler: Scheduler = field(default_factory=Scheduler)
    routing: str = "least_outstanding"
    ttft_at: str = "decode"

    def __post_init__(self) -> None:
        _check_cost("Deployment.prefill", self.prefill)
        check_count("Deployment.prefill_replicas", self.prefill_replicas, 1)
        if self.decode is None:
            if self.decode_replicas != 0:
                raise ClusterError(f"Deployment.decode_replicas={self.decode_replicas!r}: "
                                   "expected 0 without a decode StepCost (colocated replicas)")
        else:
            _check_cost("Deployment.decode", self.decode)
            check_count("Deployment.decode_replicas", self.decode_replicas, 1)
        if not isinstance(self.scheduler, Scheduler):
            raise ClusterError(f"Deployment.scheduler={self.scheduler!r}: expected a Scheduler")
        if self.routing not in ROUTINGS:
            raise ClusterError(f"Deployment.routing={self.routing!r}: expected one of {ROUTINGS}")
        if self.ttft_at not in TTFT_AT:
            raise ClusterError(f"Deployment.ttft_at={self.ttft_at!r}: expected one of {TTFT_AT}")

    @property
    def disaggregated(self) -> bool:
        return self.decode is not None


def check_count(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ClusterError(f"{name}={value!r}: expected an integer >= {least}")


def _check_cost(name: str, cost: object) -> None:
    for attr in ("iteration_s", "kv_transfer_s"):
        if not callable(getattr(cost, attr, None)):
            raise ClusterError(f"{name}={cost!r}: expected a StepCost with a method {attr}()")
    for attr in ("kv_capacity_tokens", "kv_block_tokens"):
        value = getattr(cost, attr, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (
                not math.isfinite(value)):
            raise ClusterError(f"{name}.{attr}={value!r}: expected an integer >= 1")
