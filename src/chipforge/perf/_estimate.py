"""The cost record: a frozen :class:`Estimate` that adds up over a graph."""

from __future__ import annotations

from dataclasses import dataclass, field

BOUNDS = ("compute", "memory", "overhead", "network")


@dataclass(frozen=True)
class Energy:
    """Energy of some work, J, split by what a power model treats differently.

    ``core_j`` is the dynamic energy of the core (MACs, vector ops, SRAM traffic), which
    scales with the core voltage; ``offchip_j`` is DRAM and chip-to-chip link I/O, on their
    own supplies; ``static_j`` is the flat always-on term (``STATIC_FRACTION_OF_TDP``)
    charged over the time the work takes.
    """

    core_j: float = 0.0
    offchip_j: float = 0.0
    static_j: float = 0.0

    @property
    def total_j(self) -> float:
        return self.core_j + self.offchip_j + self.static_j

    def scaled(self, factor: float) -> Energy:
        return Energy(self.core_j * factor, self.offchip_j * factor, self.static_j * factor)

    def __add__(self, other: Energy) -> Energy:
        if not isinstance(other, Energy):
            return NotImplemented
        return Energy(self.core_j + other.core_j, self.offchip_j + other.offchip_j,
                      self.static_j + other.static_j)


@dataclass(frozen=True)
class Estimate:
    """Time, work, traffic and energy of one op (or, summed, of a graph).

    ``ideal_s`` is the time at the peak rate of the unit that runs the work, so
    ``utilization = ideal_s / seconds`` stays meaningful after summing ops of
    different dtypes. ``bound_s`` attributes each op's whole time to its bound.
    ``energy`` keeps its parts apart so a power model (``chipforge.cost``) can rescale
    each part instead of taking ``energy_j`` apart again.
    """

    seconds: float
    flops: float
    hbm_bytes: float
    energy: Energy
    ideal_s: float
    bound_s: tuple[float, float, float, float]  # seconds per BOUNDS entry
    name: str = ""
    count: int = 1
    mapping: str = ""  # the chosen mapping, for one op
    breakdown: tuple[Estimate, ...] = field(default=(), repr=False)

    @property
    def energy_j(self) -> float:
        return self.energy.total_j

    @property
    def utilization(self) -> float:
        return self.ideal_s / self.seconds if self.seconds else 0.0

    @property
    def bound(self) -> str:
        return BOUNDS[max(range(len(BOUNDS)), key=lambda i: self.bound_s[i])]

    @property
    def achieved_flops(self) -> float:
        return self.flops / self.seconds if self.seconds else 0.0

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.seconds if self.seconds else 0.0

    def scaled(self, count: int) -> Estimate:
        """This op repeated ``count`` times (the per-op record keeps the count)."""
        return Estimate(self.seconds * count, self.flops * count, self.hbm_bytes * count,
                        self.energy.scaled(count), self.ideal_s * count,
                        tuple(b * count for b in self.bound_s), self.name, count, self.mapping)

    def __add__(self, other: Estimate) -> Estimate:
        if not isinstance(other, Estimate):
            return NotImplemented
        parts = (self.breakdown or (self,)) + (other.breakdown or (other,))
        return Estimate(self.seconds + other.seconds, self.flops + other.flops,
                        self.hbm_bytes + other.hbm_bytes, self.energy + other.energy,
                        self.ideal_s + other.ideal_s,
                        tuple(a + b for a, b in zip(self.bound_s, other.bound_s, strict=True)),
                        breakdown=parts)


def make_estimate(*, compute_s: float, memory_s: float, overhead_s: float, flops: float,
                  hbm_bytes: float, energy: Energy, ideal_s: float, name: str = "",
                  mapping: str = "", network_s: float = 0.0) -> Estimate:
    """One op: its busy phases overlap, its fixed overhead does not."""
    busy = max(compute_s, memory_s, network_s)
    seconds = busy + overhead_s
    if overhead_s >= busy:
        bound = 2
    else:
        bound = max(range(2), key=lambda i: (compute_s, memory_s)[i])
        if network_s >= max(compute_s, memory_s):
            bound = 3
    bound_s = tuple(seconds if i == bound else 0.0 for i in range(4))
    return Estimate(seconds, flops, hbm_bytes, energy, ideal_s, bound_s, name, 1, mapping)
