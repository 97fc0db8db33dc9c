"""The fleet MILP's inputs and result: options, workloads with their coefficients, the
economics, and what each workload gets (chipforge.cluster._fleet_milp solves it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

HOURS_PER_DAY = 24.0
DAYS_PER_YEAR = 365.25  # Julian year
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
JOULES_PER_KWH = 3.6e6
OPTION_KINDS = ("buy", "build", "owned")


@dataclass(frozen=True)
class Option:
    """One way to get chips: buy a vendor's, build our own (NRE, lead time), or use those
    already owned (no capex, at most ``max_chips``)."""
    name: str
    kind: str  # "buy", "build" or "owned"
    chip: str
    chips_per_node: int
    capex_per_chip_usd: float  # chip + its share of server and network; 0 for owned
    power_per_chip_w: float  # IT power incl. host and network share, at full load
    nre_usd: float = 0.0
    arrival_day: float = 0.0  # day of the demand year its first nodes arrive (<= 0: at once)
    max_chips: int | None = None


@dataclass(frozen=True)
class RateWorkload:
    """Demand at a sustained rate (``unit`` per second at the peak) from ``start_day``."""
    name: str
    kind: str  # "serving", "recsys-inference", "recsys-training"
    demand: float
    unit: str
    load_factor: float  # mean over peak: the share of the year at full power
    per_chip: Mapping[str, float]  # option name -> units/s per chip within the SLO
    start_day: float = 0.0
    why_not: Mapping[str, str] = field(default_factory=dict)  # option -> why it cannot


@dataclass(frozen=True)
class DeadlineWorkload:
    """A pre-training run: ``chip_hours[o]`` of work on option ``o``, due by
    ``deadline_days`` after the demand year starts, on at least ``min_chips[o]`` chips."""
    name: str
    deadline_days: float
    chip_hours: Mapping[str, float]
    min_chips: Mapping[str, int]
    why_not: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Economics:
    # source: TcoAssumptions (chipforge.cost): U.S. EIA industrial average 2023, 8 cents/kWh
    usd_per_kwh: float = 0.08
    # assumption: TcoAssumptions.pue, a liquid-cooled AI hall between Uptime's 1.58 and
    # Google's 1.10
    pue: float = 1.2
    # assumption: a node with no work draws ~30% of its full-load power (Barroso, Hoelzle and
    # Ranganathan, "The Datacenter as a Computer", 3rd ed.: servers idle at 30-50% of peak;
    # accelerators park lower, hosts and fabric do not)
    idle_fraction: float = 0.3
    horizon_days: float = DAYS_PER_YEAR


@dataclass(frozen=True)
class Allocation:
    """What one workload gets on one option."""
    workload: str
    option: str
    chips: int
    capex_usd: float
    energy_usd: float
    mw: float  # facility MW at full load (IT x PUE)
    utilization: float  # peak demand over the workload's whole capacity (rate); work over
    # pool time to the last deadline (training)


@dataclass(frozen=True)
class Solution:
    allocations: tuple[Allocation, ...]
    chips: dict[str, int]  # option -> chips in the fleet
    nre_paid: tuple[str, ...]
    capex_usd: float
    nre_usd: float
    energy_usd: float
    mw: float
    objective_usd: float
    mip_gap: float

    @property
    def total_usd(self) -> float:
        return self.capex_usd + self.nre_usd + self.energy_usd
