"""What the fleet MILP needs from the rest of chipforge: the options a legal scenario allows,
priced per chip from their systems, and each workload's coefficients on each option from
the training, serving and recommendation planners.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chipforge.arch import load_chip
from chipforge.cluster._fleet_demand import (
    BuildOption,
    BuyOption,
    Demand,
    OwnedChips,
    PretrainingRun,
    RecsysInference,
    RecsysTraining,
    ServingTraffic,
)
from chipforge.cluster._fleet_milp import DAYS_PER_MONTH, HOURS_PER_DAY, Option
from chipforge.cost import TcoAssumptions, chip_capex_usd
from chipforge.errors import ChipforgeError, ClusterError
from chipforge.legal import LegalReport, check_scenario

# licence policies under which a licence-required purchase or fabrication can go ahead
_OPEN_POLICIES = ("granted", "case-by-case", "case by case", "approved")
_FIRST_GUESS_MFU = 0.35  # assumption: only to pick the first chip count to evaluate a run at


@dataclass(frozen=True)
class OptionVerdict:
    """Whether a scenario allows an option, and why (chipforge.legal's verdict)."""
    name: str
    kind: str
    chip: str
    allowed: bool
    verdict: str
    reason: str


@dataclass(frozen=True)
class Coefficient:
    """A workload on one option: ``value`` (units/s per chip for a rate workload, chip-hours
    for a run at ``chips``), or ``why_not`` when it cannot run there."""
    value: float | None
    chips: int = 1  # the chip count the value was computed at
    why_not: str | None = None


def licence_path(report: LegalReport) -> tuple[bool, str]:
    """Whether a verdict leaves a way to buy or fabricate: uncontrolled, or a licence under a
    product-named rule whose policy grants licences (H20: granted; H200: case by case).
    A licence under a presumption of denial, a presumption of control or a prohibition: no."""
    if report.verdict == "uncontrolled":
        return True, "uncontrolled"
    rules = ", ".join(c.rule_id for c in report.binding)
    if report.verdict != "licence required":
        return False, f"{report.verdict} ({rules})"
    named = [c for c in report.binding if c.threshold.startswith("product")]
    open_ = [c for c in named if c.licence_policy and
             any(p in c.licence_policy.lower() for p in _OPEN_POLICIES)]
    if open_:
        return True, f"licence required; {open_[0].rule_id}: {open_[0].licence_policy}"
    return False, f"licence required under a presumption of denial ({rules})"


def option_verdicts(demand: Demand, scenario: str) -> list[OptionVerdict]:
    out = []
    for entry, kind in [*((b, "buy") for b in demand.options.buy),
                        *((b, "build") for b in demand.options.build)]:
        report = check_scenario(_chip(entry.chip, kind), scenario)
        allowed, reason = licence_path(report)
        out.append(OptionVerdict(_name(entry, kind), kind, entry.chip, allowed, report.verdict,
                                 reason))
    for entry in demand.options.owned:  # already on the floor: no export to make
        out.append(OptionVerdict(_name(entry, "owned"), "owned", entry.chip, True, "owned",
                                 f"{entry.chips:,} chips already owned"))
    return out


def _name(entry: BuyOption | BuildOption | OwnedChips, kind: str) -> str:
    return f"{entry.chip} (owned)" if kind == "owned" else entry.chip


def _chip(name: str, kind: str) -> Any:
    try:
        return load_chip(name)
    except ChipforgeError as exc:
        raise ClusterError(f"fleet option {kind} chip {name!r}: {exc}") from None


FLEET_SCALE_CHIPS = 16_384  # assumption: the scale at which a node's network share is priced


def _system(chip: str) -> tuple[Any, float]:
    """The chip's default system at fleet scale, and the chip's own part of its price."""
    from chipforge.cluster._system import _chip_price_usd, _systems_file, system

    sysm = system(chip, FLEET_SCALE_CHIPS)
    doc = _systems_file()
    name = doc.defaults[sysm.chip.name]
    return sysm, _chip_price_usd(sysm.chip, doc.presets[name], name)


def build_options(demand: Demand, verdicts: list[OptionVerdict]) -> list[Option]:
    """The allowed options, priced per chip from the chip's default system."""
    allowed = {v.name for v in verdicts if v.allowed}
    offset_days = demand.starts_in_months * DAYS_PER_MONTH
    out = []
    for b in demand.options.buy:
        if b.chip in allowed:
            out.append(_option(b.chip, "buy", b.chip, b.lead_time_months, offset_days,
                               price=b.price_per_chip_usd, max_chips=b.max_chips))
    for b in demand.options.build:
        if b.chip in allowed:
            out.append(_option(b.chip, "build", b.chip, b.lead_time_months, offset_days,
                               nre=b.nre_usd, max_chips=b.max_chips))
    for o in demand.options.owned:
        out.append(_option(_name(o, "owned"), "owned", o.chip, 0.0, offset_days,
                           max_chips=o.chips))
    return out


def _option(name: str, kind: str, chip: str, lead_months: float, offset_days: float, *,
            price: float | None = None, nre: float = 0.0,
            max_chips: int | None = None) -> Option:
    sysm, listed = _system(chip)
    spec = sysm.chip
    if kind == "owned":
        capex = 0.0  # sunk
    elif kind == "build":  # the NRE is the MILP's to pay once, not amortized per chip
        capex = sysm.price_per_chip_usd - listed + chip_capex_usd(spec, TcoAssumptions(
            nre_usd=0.0))
    else:
        capex = sysm.price_per_chip_usd - listed + (price if price is not None else listed)
    arrival = lead_months * DAYS_PER_MONTH - offset_days if kind != "owned" else 0.0
    return Option(name, kind, chip, sysm.chips_per_node, capex, sysm.power_per_chip_w,
                  nre_usd=nre, arrival_day=arrival, max_chips=max_chips)


# ---- coefficients from the planners -------------------------------------------------------

Provider = Callable[[Any, Option, int | None], Coefficient]


def planner_coefficient(work: Any, option: Option, chips_hint: int | None) -> Coefficient:
    """The planners' figure for one workload on one option (cached: the plans are slow)."""
    try:
        return _cached(work, option.chip, chips_hint or 0, option.chips_per_node)
    except ClusterError as exc:
        return Coefficient(None, why_not=str(exc))


_CACHE: dict[tuple, Coefficient] = {}


def _cached(work: Any, chip: str, hint: int, per_node: int) -> Coefficient:
    key = (type(work).__name__, work.model_dump_json(), chip, hint, per_node)
    if key not in _CACHE:
        _CACHE[key] = _compute(work, chip, hint, per_node)
    return _CACHE[key]


def _compute(work: Any, chip: str, hint: int, per_node: int) -> Coefficient:
    if isinstance(work, ServingTraffic):
        return _serving(work, chip)
    if isinstance(work, PretrainingRun):
        return _pretraining(work, chip, hint, per_node)
    if isinstance(work, RecsysInference):
        return _recsys_inference(work, chip)
    if isinstance(work, RecsysTraining):
        return _recsys_training(work, chip)
    raise ClusterError(f"workload {work!r}: expected a demand entry")


def _serving(work: ServingTraffic, chip: str) -> Coefficient:
    from chipforge.cluster._serve import serve_plan

    plan = serve_plan(work.model, chip, rate=work.peak_rate_per_s, slo_ttft_s=work.slo.ttft_s,
                      slo_tpot_s=work.slo.tpot_s, input_len=work.input_len,
                      output_len=work.output_len)
    return Coefficient(float(plan.max_rate_per_chip), int(getattr(plan, "chips", 1) or 1))


def _pretraining(work: PretrainingRun, chip: str, hint: int, per_node: int) -> Coefficient:
    from chipforge.cluster._train import train_plan

    chips = hint or _first_guess(work, chip, per_node)
    result = train_plan(work.model, chip, count=chips, tokens=work.tokens, seq_len=work.seq_len,
                        global_batch_tokens=work.global_batch_tokens)
    return Coefficient(float(result.plan.chip_hours), chips)


def _first_guess(work: PretrainingRun, chip: str, per_node: int) -> int:
    """Chips that would finish the run by its deadline at a typical large-scale MFU."""
    from chipforge.cluster._train import resolve_model

    cfg = resolve_model(work.model)
    # source: Kaplan et al. 2020, training compute C = 6 N D (N active parameters)
    flops = 6.0 * cfg.active_param_count() * work.tokens
    peak = load_chip(chip).peak_flops("bf16")
    chips = flops / (peak * _FIRST_GUESS_MFU * work.deadline_days * HOURS_PER_DAY * 3600)
    return max(per_node, per_node * math.ceil(chips / per_node))


def _recsys_inference(work: RecsysInference, chip: str) -> Coefficient:
    from chipforge.cluster._recsys import dlrm_inference_plan

    plan = dlrm_inference_plan(_dlrm_model(work.model), chip, qps=work.qps_peak,
                               p99_s=work.p99_s)
    chips = int(plan.chips)
    return Coefficient(work.qps_peak / chips, chips)


def _recsys_training(work: RecsysTraining, chip: str) -> Coefficient:
    from chipforge.cluster._recsys import dlrm_train_plan

    plan = dlrm_train_plan(_dlrm_model(work.model), chip)
    return Coefficient(float(plan.samples_per_s) / int(plan.chips), int(plan.chips))


def _dlrm_model(model: dict[str, Any]) -> Any:
    from chipforge.cluster._recsys import dlrm_spec

    spec = dict(model)
    return dlrm_spec(spec.pop("preset", "mlperf-dlrm-dcnv2"), **spec)
