"""The cost record: a frozen :class:`Estimate` that adds up over a graph."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chipforge.workloads import MemoryFootprint

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

    Memory (set by :func:`chipforge.perf.estimate` on the total; per-op parts keep the
    defaults): ``memory_bytes`` is what one chip holds (``memory``: the parts, for a
    workload graph), ``fits`` whether that is within the chip's usable memory, ``tp`` x
    ``pp`` the split that was estimated (``chips`` in all; ``seconds`` is one step of one
    chip of that group), ``needs_chips`` the fewest chips of a split that fits (0: none up
    to ``chipforge.workloads.MAX_CHIPS``), and ``note`` says in words what was assumed and
    decided. ``items`` / ``item_unit`` are the graph's tokens or samples per step.
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
    memory_bytes: float = 0.0
    fits: bool = True
    tp: int = 1
    pp: int = 1
    needs_chips: int = 1
    items: float = 0.0
    item_unit: str = ""
    note: str = ""
    memory: MemoryFootprint | None = field(default=None, repr=False)

    @property
    def chips(self) -> int:
        return self.tp * self.pp

    @property
    def parallelism(self) -> str:
        return "1 chip" if self.chips == 1 else (
            f"tp={self.tp}" if self.pp == 1 else f"tp={self.tp} x pp={self.pp}")

    @property
    def items_per_s(self) -> float:
        """The group's throughput: ``items`` per step over the step's ``seconds``."""
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def items_per_s_per_chip(self) -> float:
        return self.items_per_s / self.chips

    @property
    def tokens_per_s(self) -> float | None:
        return self.items_per_s if self.item_unit == "tokens" else None

    @property
    def samples_per_s(self) -> float | None:
        return self.items_per_s if self.item_unit == "samples" else None

    def with_memory(self, **fields: object) -> Estimate:
        """This estimate with its memory and throughput fields set."""
        return replace(self, **fields)

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
