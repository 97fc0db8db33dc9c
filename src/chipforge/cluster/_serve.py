"""Serving: the step cost of a replica, the simulator's public names, the deployment search
``serve_plan`` and the validation against TensorRT-LLM's tables (docs/cluster.md,
"Serving")."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chipforge.cluster._models import resolve_model
from chipforge.cluster._runner import run_tasks
from chipforge.cluster._serve_cost import ReplicaCost, ServingHarness, replica_cost
from chipforge.cluster._serve_metrics import ServeResult
from chipforge.cluster._serve_plan import Job, candidates, evaluate, fitting_tps, units_needed
from chipforge.cluster._serve_sim import Deployment, Scheduler, simulate
from chipforge.cluster._serve_traffic import LengthDist, Traffic
from chipforge.cluster._serve_validation import (
    ServeValidationRow,
    serving_validation,
    serving_validation_markdown,
)
from chipforge.cluster._system import purchase_verdict
from chipforge.cost import TcoAssumptions, serving_dtype
from chipforge.errors import ChipforgeError, ClusterError
from chipforge.workloads import LLMConfig

__all__ = ["SERVE_SYSTEM_CHIPS", "DeploymentScore", "Deployment", "LengthDist", "ReplicaCost",
           "Scheduler",
           "ServePlanResult", "ServeResult", "ServeValidationRow", "ServingComparison",
           "ServingHarness", "Traffic", "compare_serving_on_budget", "replica_cost",
           "serve_plan", "serving_validation", "serving_validation_markdown", "simulate"]

# assumption: a chat turn of the platform's assistant: ~1k prompt tokens (system prompt,
# history, question) and ~256 generated tokens, fixed so plans are comparable
DEFAULT_INPUT_LEN = 1024
DEFAULT_OUTPUT_LEN = 256
# the search's default knobs: vLLM's default max_num_seqs 256 and max_num_batched_tokens
# 8192 (engine arguments docs), and a smaller sequence cap; disaggregation ratios as in
# DistServe's searches (Zhong et al., OSDI 2024)
DEFAULT_MAX_SEQS = (64, 256)
DEFAULT_BATCH_TOKENS = (8192,)
DEFAULT_RATIOS = ((1, 1), (1, 2), (2, 1))
SECONDS_PER_YEAR = 365.25 * 86400
# a chip given by name serves in its default system of this many chips: room for the
# largest replicas the search tries (tensor-parallel groups, prefill and decode apart)
SERVE_SYSTEM_CHIPS = 64
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class DeploymentScore:
    """One searched deployment unit at its highest rate within the SLO. Latencies are at
    that rate (when not ``feasible``: at the lowest rate tried, a sixty-fourth of the
    saturated rate)."""

    label: str
    tp: int
    max_seqs: int
    max_batch_tokens: int
    prefill_replicas: int
    decode_replicas: int
    chips_per_unit: int
    feasible: bool
    max_rate_per_unit: float
    ttft_s: float
    tpot_s: float
    ttft_p50_s: float
    ttft_p99_s: float
    tpot_p50_s: float
    tpot_p99_s: float
    tokens_per_s_per_chip: float
    usd_per_m_tokens: float

    @property
    def max_rate_per_chip(self) -> float:
        return self.max_rate_per_unit / self.chips_per_unit


@dataclass(frozen=True)
class ServePlanResult:
    """The best deployment for ``rate`` requests/s within the SLO, the fleet it needs and
    every deployment searched (``alternatives``, best first, infeasible ones last)."""

    model: str
    chip: str
    system: str
    dtype: str
    rate: float
    slo_ttft_s: float
    slo_tpot_s: float
    percentile: float
    input_len: str
    output_len: str
    best: DeploymentScore
    units: int
    chips: int
    price_per_chip_usd: float
    power_per_chip_w: float
    cost_basis: str
    alternatives: tuple[DeploymentScore, ...]
    inputs: LengthDist
    outputs: LengthDist
    n_requests: int

    @property
    def tokens_per_s_per_chip(self) -> float:
        return self.best.tokens_per_s_per_chip

    @property
    def usd_per_m_tokens(self) -> float:
        return self.best.usd_per_m_tokens

    @property
    def max_rate_per_chip(self) -> float:
        return self.best.max_rate_per_chip

    @property
    def fleet_capex_usd(self) -> float:
        return self.chips * self.price_per_chip_usd

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(tokens_per_s_per_chip=self.tokens_per_s_per_chip,
                   usd_per_m_tokens=self.usd_per_m_tokens,
                   max_rate_per_chip=self.max_rate_per_chip,
                   fleet_capex_usd=self.fleet_capex_usd)
        return out


def _length(value: int | LengthDist, name: str) -> LengthDist:
    if isinstance(value, LengthDist):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return LengthDist.fixed(value)
    raise ClusterError(f"{name}={value!r}; expected a token count >= 1 or a LengthDist")


def _describe(dist: LengthDist) -> str:
    if dist.kind == "fixed":
        return f"{dist.value}"
    if dist.kind == "uniform":
        return f"uniform {dist.low}-{dist.high}"
    if dist.kind == "lognormal":
        return f"lognormal mean {dist.mean:g}, sigma {dist.sigma:g}"
    return dist.kind


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or (
            not np.isfinite(value)):
        raise ClusterError(f"{name}={value!r}; expected a number > 0")
    return float(value)


def _resolve(model: str | LLMConfig, chip_or_system: Any, dtype: str | None
             ) -> tuple[LLMConfig, Any, str]:
    from chipforge.cluster._system import System, system

    cfg = resolve_model(model)
    sysm = (chip_or_system if isinstance(chip_or_system, System)
            else system(chip_or_system, SERVE_SYSTEM_CHIPS))
    chosen = dtype or serving_dtype(sysm.chip)
    if chosen is None:
        raise ClusterError(f"chip {sysm.chip.name!r} has no matrix dtype to serve in; "
                           "expected a chip with fp8, int8 or bf16 matrix units")
    return cfg, sysm, chosen


def _usd_per_chip_s(sysm: Any, tco: TcoAssumptions) -> float:
    capex = sysm.price_per_chip_usd / (tco.lifetime_years * SECONDS_PER_YEAR)
    energy = sysm.power_per_chip_w * tco.pue * tco.usd_per_kwh / J_PER_KWH
    return capex + energy


def _score(row: dict, job: Job, mean_output: float, usd_per_chip_s: float,
           tco: TcoAssumptions) -> DeploymentScore:
    c, at = job.candidate, row["at"]
    tokens = row["max_rate"] * mean_output / c.chips
    usd = usd_per_chip_s / (tokens * tco.utilization) * 1e6 if tokens > 0 else float("inf")
    return DeploymentScore(c.label, c.tp, c.max_seqs, c.max_batch_tokens, c.prefill_replicas,
                           c.decode_replicas, c.chips, row["feasible"], row["max_rate"],
                           at["ttft_s"], at["tpot_s"], at["ttft_p50_s"], at["ttft_p99_s"],
                           at["tpot_p50_s"], at["tpot_p99_s"], tokens, usd)


def _key(job: Job) -> str:
    text = repr((job.cfg, job.system.name, job.system.chip.name, job.dtype, job.input_len,
                 job.output_len, job.n_requests, job.slo_ttft_s, job.slo_tpot_s,
                 job.percentile, job.seed))
    return f"{job.candidate.label} #{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _tp_sizes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ClusterError(f"tp_sizes={value!r}; expected a positive number of sizes")
    return value


def serve_plan(model: str | LLMConfig, chip_or_system: Any, *, rate: float,
               slo_ttft_s: float = 2.0, slo_tpot_s: float = 0.05, percentile: float = 90,
               input_len: int | LengthDist = DEFAULT_INPUT_LEN,
               output_len: int | LengthDist = DEFAULT_OUTPUT_LEN, dtype: str | None = None,
               n_requests: int = 600, tps: tuple[int, ...] | None = None,
               tp_sizes: int = 3, max_seqs: tuple[int, ...] = DEFAULT_MAX_SEQS,
               max_batch_tokens: tuple[int, ...] = DEFAULT_BATCH_TOKENS,
               ratios: tuple[tuple[int, int], ...] = DEFAULT_RATIOS, seed: int = 0,
               use_ray: bool = False, workers: int = 1, store: Path | None = None,
               progress: str | None = None,
               tco: TcoAssumptions | None = None) -> ServePlanResult:
    """Search the deployments of ``model`` on ``chip_or_system`` (a chip name, ChipSpec or
    System) for the most output tokens/s per chip within "p``percentile`` TTFT <=
    ``slo_ttft_s`` and TPOT <= ``slo_tpot_s``", and size the fleet for ``rate`` requests/s.

    ``tps`` defaults to the ``tp_sizes`` smallest tensor-parallel sizes (powers of two)
    that hold the model; each
    is tried colocated at every ``max_seqs`` x ``max_batch_tokens`` and disaggregated at
    every prefill:decode ``ratios``. ``dtype`` defaults to the chip's serving dtype
    (``chipforge.cost.serving_dtype``). ``$ per M tokens`` = the system's price per chip
    over ``tco.lifetime_years`` plus its power per chip at ``tco.pue`` and
    ``tco.usd_per_kwh``, over the tokens served at ``tco.utilization`` of the SLO rate.

    Raises :class:`ClusterError` when no deployment meets the SLO (naming the best
    latencies reached) or the model fits no replica.
    """
    rate = _positive("rate", rate)
    slo_ttft_s, slo_tpot_s = _positive("slo_ttft_s", slo_ttft_s), _positive("slo_tpot_s",
                                                                            slo_tpot_s)
    if not 0 < _positive("percentile", percentile) <= 100:
        raise ClusterError(f"percentile={percentile!r}; expected a number in (0, 100]")
    if isinstance(n_requests, bool) or not isinstance(n_requests, int) or n_requests < 20:
        raise ClusterError(f"n_requests={n_requests!r}; expected an integer >= 20")
    inputs, outputs = _length(input_len, "input_len"), _length(output_len, "output_len")
    cfg, sysm, dtype = _resolve(model, chip_or_system, dtype)
    tco = tco or TcoAssumptions()
    jobs = [Job(cfg, sysm, dtype, c, inputs, outputs, n_requests, slo_ttft_s, slo_tpot_s,
                percentile, seed)
            for c in candidates(fitting_tps(cfg, sysm, dtype, tps, _tp_sizes(tp_sizes)),
                                max_seqs,
                                max_batch_tokens, ratios)]
    results = run_tasks(evaluate, [(_key(j), j) for j in jobs], store=store,
                        use_ray=use_ray, workers=workers, progress=progress)
    mean_output = float(Traffic(1.0, n_requests, inputs, outputs, seed=seed).requests()[2]
                        .mean())
    per_chip_s = _usd_per_chip_s(sysm, tco)
    scores = [_score(results[_key(j)], j, mean_output, per_chip_s, tco) for j in jobs]
    ranked = tuple(sorted(scores, key=lambda s: (not s.feasible, -s.tokens_per_s_per_chip)))
    best = ranked[0]
    what = (f"p{percentile:g} TTFT <= {slo_ttft_s:g} s and TPOT <= {slo_tpot_s * 1e3:g} ms "
            f"({_describe(inputs)} in / {_describe(outputs)} out tokens)")
    if not best.feasible:
        closest = min(scores, key=lambda s: max(s.ttft_s / slo_ttft_s, s.tpot_s / slo_tpot_s))
        raise ClusterError(
            f"no deployment of {cfg.name} on {sysm.chip.name} meets {what}: the closest, "
            f"{closest.label}, reached p{percentile:g} TTFT {closest.ttft_s:.3g} s and TPOT "
            f"{closest.tpot_s * 1e3:.3g} ms even at a sixty-fourth of its saturated rate; "
            "expected a looser SLO, shorter requests or a faster chip")
    units = units_needed(rate, best.max_rate_per_unit)
    basis = (f"system {sysm.name}: ${sysm.price_per_chip_usd:,.0f} and "
             f"{sysm.power_per_chip_w:,.0f} W per chip (host and network share included) over "
             f"{tco.lifetime_years:g} years, PUE {tco.pue:g}, ${tco.usd_per_kwh:g}/kWh, "
             f"{tco.utilization:.0%} utilization")
    return ServePlanResult(cfg.name, sysm.chip.name, sysm.name, dtype, rate, slo_ttft_s,
                           slo_tpot_s, percentile, _describe(inputs), _describe(outputs),
                           best, units, units * best.chips_per_unit, sysm.price_per_chip_usd,
                           sysm.power_per_chip_w, basis, ranked, inputs, outputs, n_requests)


@dataclass(frozen=True)
class ServingComparison:
    """Another chip's fleet bought with a plan's capital: ``chips`` of it (whole deployment
    units), the request rate they serve within the same SLO, and the chips and $ per
    million tokens that the plan's rate would take on it; ``error`` instead when it cannot
    serve the model within the SLO. ``verdict``: its export verdict under the scenario."""

    chip: str
    verdict: str | None
    chips: int
    rate_served: float
    chips_for_rate: int
    tokens_per_s_per_chip: float
    usd_per_m_tokens: float
    deployment: str
    error: str | None


def compare_serving_on_budget(result: ServePlanResult, chips: list[str], *,
                              scenario: str | None = None, progress: Any = None,
                              **search: Any) -> list[ServingComparison]:
    """Each of ``chips``, on its default system, bought with ``result``'s fleet capital
    (its chips x price per chip) and searched for the same traffic and SLO."""
    budget = result.fleet_capex_usd
    rows = []
    for i, name in enumerate(chips):
        verdict = purchase_verdict(name, scenario)
        try:
            other = serve_plan(result.model, name, rate=result.rate,
                               slo_ttft_s=result.slo_ttft_s, slo_tpot_s=result.slo_tpot_s,
                               percentile=result.percentile, input_len=result.inputs,
                               output_len=result.outputs, n_requests=result.n_requests,
                               **search)
            unit_usd = other.price_per_chip_usd * other.best.chips_per_unit
            units = int(budget // unit_usd)
            rows.append(ServingComparison(
                name, verdict, units * other.best.chips_per_unit,
                units * other.best.max_rate_per_unit, other.chips,
                other.tokens_per_s_per_chip, other.usd_per_m_tokens, other.best.label, None))
        except ChipforgeError as exc:
            rows.append(ServingComparison(name, verdict, 0, 0.0, 0, 0.0, float("nan"), "",
                                          str(exc)))
        if progress is not None:
            progress(i + 1, len(chips))
    return rows

