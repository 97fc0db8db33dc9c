"""The serving simulator's result: per-request latencies, throughput and SLO helpers.

TTFT = first-token time - arrival; TPOT = (e2e - TTFT) / (output_len - 1) (undefined, NaN, for
one-token outputs); e2e = finish - arrival. These are the definitions of vLLM's
benchmark_serving.py and DistServe (Zhong et al., OSDI 2024). A rejected request has NaN
latencies and fails every SLO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chipforge.errors import ClusterError

__all__ = ["ServeResult"]

METRICS = ("ttft_s", "tpot_s", "e2e_s")


@dataclass(frozen=True, eq=False)
class ServeResult:
    """One simulated run. Arrays hold one entry per request in arrival order."""

    arrival_s: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    e2e_s: np.ndarray
    rejected: np.ndarray  # bool: never served (see notes for why)
    makespan_s: float  # first arrival to last finish
    preemptions: int
    recomputed_tokens: int  # KV tokens discarded by preemption and computed again
    iterations: int
    mean_batch_seqs: float  # sequences per engine iteration, over all iterations
    mean_batch_tokens: float  # tokens (prefill chunks + decodes) per iteration
    mean_in_system: float  # time-average of requests arrived and not finished
    kv_transfers: int
    notes: tuple[str, ...]

    @property
    def n_requests(self) -> int:
        return len(self.arrival_s)

    @property
    def finished(self) -> np.ndarray:
        return ~self.rejected

    @property
    def output_tokens(self) -> int:
        return int(self.output_len[self.finished].sum())

    @property
    def input_tokens(self) -> int:
        return int(self.input_len[self.finished].sum())

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.makespan_s if self.makespan_s > 0 else 0.0

    @property
    def input_tokens_per_s(self) -> float:
        return self.input_tokens / self.makespan_s if self.makespan_s > 0 else 0.0

    def metric(self, name: str) -> np.ndarray:
        if name not in METRICS:
            raise ClusterError(f"metric={name!r}: expected one of {METRICS}")
        return getattr(self, name)

    def percentile(self, name: str, q: float) -> float:
        """The q-th percentile of a metric over the finished requests that define it (NaN if
        none does)."""
        values = self.metric(name)
        values = values[~np.isnan(values)]
        return float(np.percentile(values, q)) if values.size else float("nan")

    def summary(self, percentiles: tuple[float, ...] = (50, 90, 99)) -> dict[str, dict]:
        """{metric: {"mean": ..., "p50": ..., "p90": ..., "p99": ...}}."""
        out: dict[str, dict] = {}
        for name in METRICS:
            values = self.metric(name)
            values = values[~np.isnan(values)]
            row = {"mean": float(values.mean()) if values.size else float("nan")}
            row.update({f"p{q:g}": self.percentile(name, q) for q in percentiles})
            out[name] = row
        return out

    def cdf(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted values, cumulative fraction) of a metric for a CDF plot."""
        values = np.sort(self.metric(name)[~np.isnan(self.metric(name))])
        return values, np.arange(1, values.size + 1) / max(values.size, 1)

    def meets_slo(self, slo_ttft_s: float, slo_tpot_s: float, percentile: float = 90) -> bool:
        """The percentile TTFT and TPOT within their SLOs (the issue's "p90 TTFT <= 2 s and p90
        TPOT <= 50 ms"); never true while a request was rejected."""
        if self.rejected.any():
            return False
        ttft = self.percentile("ttft_s", percentile)
        tpot = self.percentile("tpot_s", percentile)
        return bool(ttft <= slo_ttft_s and (np.isnan(tpot) or tpot <= slo_tpot_s))

    def slo_attainment(self, slo_ttft_s: float, slo_tpot_s: float) -> float:
        """The fraction of all requests (rejected ones count as misses) meeting both SLOs."""
        return float(self._within(slo_ttft_s, slo_tpot_s).mean())

    def goodput(self, slo_ttft_s: float, slo_tpot_s: float) -> float:
        """Requests per second that met both SLOs (DistServe's goodput of one run)."""
        met = int(self._within(slo_ttft_s, slo_tpot_s).sum())
        return met / self.makespan_s if self.makespan_s > 0 else 0.0

    def _within(self, slo_ttft_s: float, slo_tpot_s: float) -> np.ndarray:
        tpot_ok = np.isnan(self.tpot_s) | (self.tpot_s <= slo_tpot_s)
        return self.finished & (self.ttft_s <= slo_ttft_s) & tpot_ok
