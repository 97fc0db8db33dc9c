"""Average power on a workload, leakage from the die area, and the TDP clock throttle.

Dynamic energy per MAC, vector op and byte at each memory level comes from the performance
engine's energy model (per node), which keeps each estimate's energy split into core,
off-chip and static parts (``Estimate.energy``). This module replaces the flat static part
(20% of TDP) by leakage proportional to the modelled die area, and adds dynamic voltage and
frequency scaling (DVFS): the core part scales with the voltage, and when the average power
at the rated clock exceeds the TDP, the chip runs at the highest clock at which it fits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from chipforge.arch import ChipSpec, derive_chip, load_chip
from chipforge.cost._area import die_area
from chipforge.errors import ChipforgeError
from chipforge.ops import Graph, Op
from chipforge.perf import DEFAULT, Efficiency, Estimate, estimate

# Leakage power per mm2 of die at the nominal (top-clock) voltage and a hot junction
# (~85 C under load), W/mm2. assumption: anchored on the A100 (826 mm2, N7), whose measured
# idle draw is 50-60 W (the figure behind perf's static term); idle runs cooler and at a
# lower voltage than load, so ~0.07 W/mm2 (58 W) at load on N7 is a low-side anchor. Each
# full node step packs ~1.6-1.8x the transistors per mm2 (TSMC: N5 1.8x N7 logic density)
# while leakage per transistor at iso-speed falls ~0.7x (TSMC: N5 -30% power vs N7), so
# leakage per mm2 rises ~15% per step; half-node variants (N6, N4, 4N, 4NP) take their
# parent's figure. Planar-era N16/N12 FinFETs leak less per mm2 at their lower density.
# assumption: SMIC-N+2 takes N7's 0.07 W/mm2: a 7 nm-class FinFET at slightly lower density
# (fewer transistors per mm2) but no published leakage figures; the two roughly offset.
LEAKAGE_W_PER_MM2 = {"N16": 0.05, "N12": 0.05, "N7": 0.07, "N6": 0.07, "N5": 0.08,
                     "4N": 0.08, "N4": 0.08, "4NP": 0.08, "N3": 0.09, "N2": 0.1,
                     "SMIC-N+2": 0.07}

# assumption: over the DVFS range the supply voltage tracks the clock, V/V0 ~ f/f0 (the
# alpha-power law, Sakurai & Newton, IEEE JSSC 1990, with alpha ~1.3 is close to linear in
# the upper range), so core dynamic energy per op ~ V^2 ~ f^2 and core power ~ f^3, the
# classic cube law. Leakage power = V x I_leak with I_leak held at its nominal value (DIBL
# makes it fall faster, so this is conservative). DRAM and link I/O sit on their own
# supplies and do not scale.
# assumption: the voltage stops falling at ~0.6 V0: FinFET logic on N7-N3 runs from
# ~0.55-0.6 V (Vmin) up to ~0.9-1.0 V at the top clock, so below 0.6 f0 energy/op is flat.
VMIN_FRACTION = 0.6
# assumption: the lowest clock the throttle may pick, as a fraction of the rated clock.
# NVIDIA exposes application clocks down to ~15% of boost (A100: 210 MHz of 1,410 MHz in
# nvidia-smi's supported clocks); below it a workload that still exceeds TDP does not fit.
MIN_CLOCK_FRACTION = 0.15
# the throttled point draws between (1 - tolerance) x TDP and TDP
THROTTLE_TOLERANCE = 1e-3
# the search stops when the clock bracket is this narrow (fraction of the rated clock)
CLOCK_RESOLUTION = 1e-4
MAX_EVALUATIONS = 24


@dataclass(frozen=True)
class PowerReport:
    """Average power of one workload at the clock it runs at.

    ``clock_hz`` is the rated clock of the (possibly throttled) spec; the engine's sustained
    clock is ``Efficiency.clock_fraction`` of it, at every clock alike. ``dynamic_w``
    includes ``offchip_w`` (DRAM and links). ``estimate`` is the performance estimate at
    ``clock_hz``; its own ``energy_j`` keeps perf's flat static term and nominal-voltage core
    energy, so use ``avg_power_w`` here for power.
    """

    avg_power_w: float
    dynamic_w: float
    offchip_w: float
    leakage_w: float
    tdp_w: float
    nominal_clock_hz: float
    clock_hz: float
    throttled: bool
    estimate: Estimate

    @property
    def within_tdp(self) -> bool:
        return self.avg_power_w <= self.tdp_w * (1 + 1e-9)

    @property
    def energy_j(self) -> float:
        return self.avg_power_w * self.estimate.seconds


def voltage_fraction(clock_fraction: float) -> float:
    """V / V0 at f / f0 (see VMIN_FRACTION)."""
    return max(clock_fraction, VMIN_FRACTION)


def leakage_power_w(chip: ChipSpec) -> float:
    """Leakage at the rated clock's voltage: per-node density x modelled die area."""
    if chip.process_node not in LEAKAGE_W_PER_MM2:
        raise ChipforgeError(f"process_node: no leakage density for {chip.process_node!r} "
                             f"(chip {chip.name!r}); expected one of "
                             f"{', '.join(LEAKAGE_W_PER_MM2)}")
    return LEAKAGE_W_PER_MM2[chip.process_node] * die_area(chip).total_mm2


def power_at_clock(chip: ChipSpec | str, graph_or_op: Graph | Op, clock_hz: float,
                   eff: Efficiency = DEFAULT) -> PowerReport:
    """Average power of the workload with the chip clocked at ``clock_hz`` (no throttle)."""
    spec = _spec(chip)
    if not MIN_CLOCK_FRACTION * spec.clock_hz <= clock_hz <= spec.clock_hz:
        raise ChipforgeError(
            f"clock_hz: {clock_hz!r} is outside the DVFS range of chip {spec.name!r}; "
            f"expected {MIN_CLOCK_FRACTION * spec.clock_hz:.6g} to {spec.clock_hz:.6g} Hz")
    return _Workload.of(spec, graph_or_op, eff).at(clock_hz, throttled=False)


def workload_power(chip: ChipSpec | str, graph_or_op: Graph | Op,
                   eff: Efficiency = DEFAULT) -> PowerReport:
    """Average power on the workload, with the clock throttled to fit the TDP if needed.

    Throttled: the highest clock (to ``CLOCK_RESOLUTION``) at which the average power is at
    most the TDP. If even ``MIN_CLOCK_FRACTION`` of the rated clock exceeds it, the report
    at that clock has ``within_tdp`` False.
    """
    return _workload_power(_spec(chip), graph_or_op, eff)


def _spec(chip: ChipSpec | str) -> ChipSpec:
    return load_chip(chip) if isinstance(chip, str) else chip


@functools.lru_cache(maxsize=4096)
def _workload_power(spec: ChipSpec, work: Graph | Op, eff: Efficiency) -> PowerReport:
    # specs, ops and graphs are frozen and hashable: the DSE re-asks for the same points
    workload = _Workload.of(spec, work, eff)
    nominal = workload.at(spec.clock_hz, throttled=False)
    if nominal.avg_power_w <= spec.tdp_w:
        return nominal
    return _throttle(workload, nominal)


@dataclass(frozen=True)
class _Workload:
    spec: ChipSpec
    work: Graph | Op
    eff: Efficiency
    leakage0_w: float

    @classmethod
    def of(cls, spec: ChipSpec, work: Graph | Op, eff: Efficiency) -> _Workload:
        return cls(spec, work, eff, leakage_power_w(spec))

    def at(self, clock_hz: float, *, throttled: bool) -> PowerReport:
        spec = self.spec
        if clock_hz != spec.clock_hz:
            spec = derive_chip(spec, {"clock": clock_hz}, sources={
                "clock": f"chipforge.cost TDP throttle of {self.spec.name!r}"})
        # parallel=None: price exactly the graph given; the caller chose its group
        est = estimate(self.work, spec, self.eff, parallel=None)
        volts = voltage_fraction(clock_hz / self.spec.clock_hz)
        # perf's core energy is at the nominal voltage at any clock; its static part is
        # left out here, replaced by leakage
        offchip_j = est.energy.offchip_j
        dynamic_j = est.energy.core_j * volts**2 + offchip_j
        dynamic_w = dynamic_j / est.seconds if est.seconds else 0.0
        offchip_w = offchip_j / est.seconds if est.seconds else 0.0
        leakage_w = self.leakage0_w * volts
        return PowerReport(dynamic_w + leakage_w, dynamic_w, offchip_w, leakage_w,
                           spec.tdp_w, self.spec.clock_hz, clock_hz, throttled, est)


def _throttle(workload: _Workload, nominal: PowerReport) -> PowerReport:
    """Safeguarded model-guided search for the clock at which power meets the TDP.

    Each step fits time(f) = a + b f0/f through the last two evaluated points (exact for a
    graph whose ops stay compute- or memory-bound), solves the power model for TDP, and
    evaluates there; proposals outside the current bracket fall back to its midpoint.
    """
    tdp, f0 = nominal.tdp_w, nominal.nominal_clock_hz
    lo_f, below = MIN_CLOCK_FRACTION * f0, None
    hi = nominal
    points = [nominal]
    for _ in range(MAX_EVALUATIONS):
        if hi.clock_hz - lo_f <= CLOCK_RESOLUTION * f0:
            break
        f = _propose(points[-2:], tdp, lo_f, hi.clock_hz)
        if not lo_f < f < hi.clock_hz:
            f = 0.5 * (lo_f + hi.clock_hz)
        point = workload.at(f, throttled=True)
        points.append(point)
        if point.avg_power_w <= tdp:
            lo_f, below = f, point
            if point.avg_power_w >= tdp * (1 - THROTTLE_TOLERANCE):
                return point
        else:
            hi = point
    return below if below is not None else workload.at(lo_f, throttled=True)


def _propose(points: list[PowerReport], tdp: float, lo_f: float, hi_f: float) -> float:
    """The clock at which the fitted power model meets ``tdp``, searched in [lo_f, hi_f]."""
    last = points[-1]
    f0 = last.nominal_clock_hz
    seconds = last.estimate.seconds
    (f1, t1), (f2, t2) = ((p.clock_hz, p.estimate.seconds) for p in points[-2:]) \
        if len(points) >= 2 else ((f0, seconds), (f0, seconds))
    # two clocks so close that f0/f1 - f0/f2 rounds to 0 carry no slope: use one point
    if len(points) == 2 and f0 / f1 != f0 / f2:
        b = max(0.0, (t1 - t2) / (f0 / f1 - f0 / f2))
    else:
        # one point: the compute-bound ops' time scales with 1/f, the rest does not
        b = last.estimate.bound_s[0] * last.clock_hz / f0
    a = max(0.0, seconds - b * f0 / last.clock_hz)
    v_last = voltage_fraction(last.clock_hz / f0)
    core_j = (last.dynamic_w - last.offchip_w) * seconds / v_last**2
    offchip_j = last.offchip_w * seconds
    leak0_w = last.leakage_w / v_last

    def model_w(f: float) -> float:
        v = voltage_fraction(f / f0)
        seconds_at_f = a + b * f0 / f
        dynamic_w = (core_j * v**2 + offchip_j) / seconds_at_f if seconds_at_f else 0.0
        return dynamic_w + leak0_w * v

    lo, hi = lo_f, hi_f
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if model_w(mid) <= tdp else (lo, mid)
    return lo
