"""The options of a fleet plan: those a legal scenario allows, priced per chip from their
systems (chipforge.cluster._system) at fleet scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chipforge.arch import load_chip
from chipforge.cluster._fleet_demand import BuildOption, BuyOption, Demand, OwnedChips
from chipforge.cluster._fleet_model import DAYS_PER_MONTH, Option
from chipforge.cost import TcoAssumptions, chip_capex_usd
from chipforge.errors import ChipforgeError, ClusterError
from chipforge.legal import LegalReport, check_scenario, supply_problems

# licence policies under which a licence-required purchase or fabrication can go ahead
_OPEN_POLICIES = ("granted", "case-by-case", "case by case", "approved")


@dataclass(frozen=True)
class OptionVerdict:
    """Whether a scenario allows an option, and why (chipforge.legal's verdict)."""
    name: str
    kind: str
    chip: str
    allowed: bool
    verdict: str
    reason: str


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
    """Each option's verdict: the export rules (``licence_path``) and, for our designs, what
    the scenario's fab and suppliers can make (``chipforge.legal.supply_problems``)."""
    out = []
    for entry, kind in [*((b, "buy") for b in demand.options.buy),
                        *((b, "build") for b in demand.options.build)]:
        spec = _chip(entry.chip, kind)
        report = check_scenario(spec, scenario)
        allowed, reason = licence_path(report)
        problems = supply_problems(spec, scenario)  # our designs: the fab's nodes, HBM
        if problems:
            allowed, reason = False, f"cannot be made under {scenario}: {'; '.join(problems)}"
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
