"""DLRM inference at a target QPS within a p99 latency bound.

A replica is the fewest chips whose memory holds the tables (sharded by the planner); it
serves batches of ``q`` queries in a deterministic time S(q) from the step model. A central
batcher closes a batch when ``q`` queries have arrived, so batches arrive with Erlang-q gaps
(squared coefficient of variation 1/q) and queue for the first free replica: a GI/D/c queue.
Its waiting-time tail is the Allen–Cunneen / heavy-traffic approximation (Whitt 1993,
"Approximations for the GI/G/m queue", Prod. Oper. Manag. 2(2)):
P(W > t) ≈ C(c, a)·exp(−2(c/S − λ_b)·t / (c_a² + c_s²)), with C the Erlang-C probability of
waiting, a = λ_b·S, c_s² = 0 (deterministic service). For c = 1 and c_a² = 1 its mean is the
exact M/D/1 Pollaczek–Khinchine wait. The p99 latency is bounded by the sum of the p99s of
the batch fill time, the queueing wait and S."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import gamma, poisson

from chipforge.arch import ChipSpec, load_chip
from chipforge.cluster._recsys_model import DLRMSpec, resolve_spec
from chipforge.cluster._recsys_step import dlrm_step, plan_for
from chipforge.cluster._system import system as make_system
from chipforge.errors import ChipforgeError, ClusterError

QUANTILE = 0.99
# assumption: batches of 1 to 8192 queries; beyond that the fill time alone exceeds any
# interactive p99 at the rates one replica serves
BATCH_QUERIES = tuple(2**i for i in range(14))
MAX_REPLICA_CHIPS = 1024
QUEUE_MODEL = ("batches of q queries (Erlang-q gaps) into a GI/D/c queue; p99 = fill p99 + "
               "Allen-Cunneen wait p99 + service")


@dataclass(frozen=True)
class BatchPoint:
    """Throughput at one batch size: the replica's service time and the chips it needs."""

    batch_queries: int
    service_s: float
    samples_per_s_per_chip: float  # at full utilization
    chips: int | None  # None: this batch cannot meet the p99 at any replica count
    p99_latency_s: float | None


@dataclass(frozen=True)
class DLRMServePlan:
    """The fewest chips serving ``qps`` queries of ``items_per_query`` samples within the
    p99 bound, with the batch size that achieves it and the throughput-vs-batch curve (up
    to the largest batch whose activations fit the replica's memory)."""

    model: str
    chip: str
    qps: float
    p99_target_s: float
    items_per_query: int
    chips_per_replica: int
    replicas: int
    chips: int
    batch_queries: int
    service_s: float
    p99_latency_s: float
    utilization: float
    samples_per_s_per_chip: float  # delivered at the target load
    curve: tuple[BatchPoint, ...]
    queue_model: str = QUEUE_MODEL


def erlang_c(servers: int, offered: float) -> float:
    """M/M/c probability of waiting for offered load ``offered`` = λ·S (Erlang C), from
    Erlang B = Poisson(a).pmf(c) / Poisson(a).cdf(c), which is stable for large c."""
    if offered >= servers:
        return 1.0
    blocking = poisson.pmf(servers, offered) / poisson.cdf(servers, offered)
    rho = offered / servers
    return float(blocking / (1 - rho * (1 - blocking)))


def wait_quantile_s(servers: int, batch_rate: float, service_s: float, arrival_scv: float,
                    quantile: float = QUANTILE) -> float:
    """The ``quantile`` of the queueing wait in GI/D/c (module docstring); inf if unstable."""
    offered = batch_rate * service_s
    if offered >= servers:
        return math.inf
    waits = erlang_c(servers, offered)
    if waits <= 1 - quantile:
        return 0.0
    decay = 2 * (servers / service_s - batch_rate) / arrival_scv  # c_s² = 0
    return math.log(waits / (1 - quantile)) / decay


def batched_wait_quantile_s(servers: int, qps: float, batch_queries: int, service_s: float,
                            quantile: float = QUANTILE) -> float:
    """The ``quantile`` of the queueing wait of batches of ``batch_queries`` Poisson queries
    (arriving at ``qps``) for ``servers`` replicas of deterministic ``service_s``."""
    return wait_quantile_s(servers, qps / batch_queries, service_s, 1 / batch_queries, quantile)


def fill_quantile_s(batch_queries: int, qps: float, quantile: float = QUANTILE) -> float:
    """The first query's wait for the other ``q − 1`` Poisson arrivals: Gamma(q − 1, 1/λ)."""
    if batch_queries <= 1:
        return 0.0
    return float(gamma.ppf(quantile, batch_queries - 1, scale=1 / qps))


def replicas_for(qps: float, batch_queries: int, service_s: float,
                 p99_s: float) -> tuple[int, float] | None:
    """The fewest replicas meeting ``p99_s`` and their p99 latency; None if none can."""
    base = fill_quantile_s(batch_queries, qps) + service_s
    if base > p99_s:
        return None
    rate, scv = qps / batch_queries, 1 / batch_queries

    def p99(c: int) -> float:
        return base + wait_quantile_s(c, rate, service_s, scv)

    low = max(1, math.floor(rate * service_s))  # p99(low) may already hold
    high = low
    while p99(high) > p99_s:
        high *= 2
    while low < high:  # the smallest c with p99(c) <= p99_s (p99 falls with c)
        mid = (low + high) // 2
        low, high = (mid + 1, high) if p99(mid) > p99_s else (low, mid)
    return low, p99(low)


def _replica(spec: DLRMSpec, chip: ChipSpec) -> int:
    """The fewest chips (a power of two) whose memory holds the tables for inference."""
    k = 1
    while k <= MAX_REPLICA_CHIPS:
        try:
            plan_for(spec, make_system(chip, k), k, train=False)
            return k
        except ClusterError:
            k *= 2
    raise ClusterError(f"{spec.name!r} tables ({spec.table_bytes / 1e9:.3g} GB) fit no replica "
                       f"of up to {MAX_REPLICA_CHIPS} {chip.name!r} chips; expected a smaller "
                       "model or emb_dtype")


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 \
            or not math.isfinite(value):
        raise ClusterError(f"{name}={value!r}; expected a positive finite number")
    return float(value)


def dlrm_inference_plan(model: str | DLRMSpec, chip: str | ChipSpec, *, qps: float,
                        p99_s: float, items_per_query: int = 1) -> DLRMServePlan:
    """The fewest chips of ``chip`` serving ``qps`` queries/s (each ``items_per_query``
    samples ranked) with a p99 latency of at most ``p99_s``; ClusterError if none can."""
    spec = resolve_spec(model)
    qps, p99_s = _positive("qps", qps), _positive("p99_s", p99_s)
    if isinstance(items_per_query, bool) or not isinstance(items_per_query, int) \
            or items_per_query < 1:
        raise ClusterError(f"items_per_query={items_per_query!r}; expected a positive int")
    try:
        spec_chip = chip if isinstance(chip, ChipSpec) else load_chip(chip)
    except ChipforgeError as exc:
        raise ClusterError(f"chip={chip!r}: {exc}") from None
    k = _replica(spec, spec_chip)
    sys = make_system(spec_chip, k)
    curve, best = [], None
    for q in BATCH_QUERIES:
        samples = q * items_per_query
        batch = math.ceil(samples / k) * k
        try:
            plan, _ = plan_for(spec, sys, batch, train=False)
        except ClusterError:  # this batch's activations do not fit: larger ones neither
            break
        service = dlrm_step(spec, sys, plan, batch, train=False).step_s
        fit = replicas_for(qps, q, service, p99_s)
        curve.append(BatchPoint(q, service, samples / service / k,
                                None if fit is None else fit[0] * k,
                                None if fit is None else fit[1]))
        if fit is not None and (best is None or fit[0] * k < best[0] * k):
            best = (fit[0], fit[1], q, service)
    if best is None:
        fastest = min(p.service_s for p in curve)
        raise ClusterError(f"p99_s={p99_s!r} cannot be met on {spec_chip.name!r}: one query "
                           f"alone takes {fastest:.3g} s on a {k}-chip replica; expected a "
                           "looser bound or a faster chip")
    replicas, latency, q, service = best
    chips = replicas * k
    util = qps / q * service / replicas
    return DLRMServePlan(spec.name, spec_chip.name, qps, p99_s, items_per_query, k, replicas,
                         chips, q, service, latency, util, qps * items_per_query / chips,
                         tuple(curve))
