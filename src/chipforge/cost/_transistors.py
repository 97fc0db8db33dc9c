"""Transistor count of a packaged chip, modelled from its spec (docs/silicon.md).

The BIS foundry due-diligence rule (15 January 2025) tests a logic IC's "aggregated
approximate transistor count", so the count is modelled for every design, and the
published count is used where the spec gives one (``transistor_count``).

Logic is counted as gates, which do not depend on the node: the same netlist has the same
transistors on N7 and N3. Components, over the *physical* cores (all logic dies, as
fabricated, since the rule counts the packaged ICs' transistors):

- matrix: the RTL's synthesized processing element (``chipforge.rtl.SYNTH_RESULTS``, the
  ``pe`` rows' static-CMOS transistors) per MAC of each unit's widest datapath: the same
  per-MAC figures, dtype assumptions and widest-datapath rule as the die-area model;
- vector: one RTL fp32 FMA (4 bf16 PEs) per lane;
- simt (``kind: gpu`` only): the SIMT machinery no spec field describes (warp schedulers,
  dispatch, operand collectors, INT32/FP64 units, load/store, texture and TMA paths), as
  a per-core part plus a per-lane part: the two fitted parameters, fitted on the **A100 and
  H100** published counts; every other chip is held out;
- sram: bits x 6T bitcells x (1 + array overhead), with the overhead measured on AMD's 3D
  V-Cache die (periphery, tags, ECC, redundancy);
- noc_control: the die-area model's 10 % share of the cores and SRAM;
- memory_phy, serdes, host_io: the die-area model's areas (``die_area``) at a low
  analog/I/O transistor density.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import lru_cache

from chipforge.arch import ChipSpec
from chipforge.cost._area import NOC_CONTROL_FRACTION, die_area, per_mac
from chipforge.cost._nodes import node_table
from chipforge.rtl import SYNTH_RESULTS

# Static-CMOS transistors of one synthesized processing element (Weste & Harris gate
# counts over the Yosys netlist, docs/rtl.md "Synthesis and area"), per MAC of each dtype
# as the die-area model maps dtypes onto PEs (chipforge.cost._area.PE_OF_DTYPE)
MAC_TRANSISTORS: dict[str, float] = per_mac(
    {r["dtype"]: float(r["transistors"]) for r in SYNTH_RESULTS if r["design"] == "pe"})
# a vector lane is a SIMD fp32 FMA, costed as the RTL's fp32 MAC (as the die-area model)
FMA_LANE_TRANSISTORS = MAC_TRANSISTORS["fp32"]

# 6T SRAM bitcell
BITCELL_TRANSISTORS = 6
# AMD's first 3D V-Cache die: 64 MB of L3 SRAM, 41 mm2, 4.7 billion transistors (AMD ISSCC
# 2022, '3D V-Cache: the implementation of a hybrid-bonded 64MB stacked cache'; transistor
# count as confirmed by AMD to Tom's Hardware, March 2023, and VideoCardz 'Second generation
# AMD 3D V-Cache', 6 Mar 2023: '4.7 Billion' for the 41 mm2 die). 4.7e9 / (64 MiB x 8) =
# 8.75 transistors per data bit: 6 in the bitcell, 2.75 in periphery, tags, ECC bits,
# redundancy and the die's control. Applied to every on-die SRAM (caches, shared memory,
# register files; assumption: multi-ported register files carry more periphery per bit,
# but they are a few % of any chip's transistors).
VCACHE_TRANSISTORS = 4.7e9
VCACHE_BITS = 64 * 8 * 2**20
SRAM_ARRAY_OVERHEAD = VCACHE_TRANSISTORS / (BITCELL_TRANSISTORS * VCACHE_BITS) - 1.0

# Placed standard-cell utilization of the RTL's area model (chipforge.rtl._synth: cell area
# = transistors / node density, placed = cell / 0.7); the SYNTH_RESULTS rows carry it.
PLACED_UTILIZATION = statistics.median(r["cell_um2"] / r["placed_um2"] for r in SYNTH_RESULTS)
# assumption: memory PHYs, SerDes and host I/O hold a quarter of the placed logic density:
# their area is set by bumps, drivers, ESD and decoupling, not by gates (an HBM PHY is
# ~11 mm of 55 um microbump shoreline, chipforge.cost._area), with the controllers' logic
# and the PHYs' digital datapath making up the quarter
IO_DENSITY_FRACTION = 0.25

# fitted: the SIMT machinery of a GPU core (per physical core, and per FP32 lane), so that
# the A100 (54.2 B, whitepaper) and H100 (80 B, whitepaper) counts come out exactly; all
# other chips are held out (tests/cost/test_transistors.py re-derives both from the fit)
SIMT_CORE_TRANSISTORS = 212.8e6  # = fit_simt(a100-sxm, h100-sxm)[0], rounded
SIMT_LANE_TRANSISTORS = 0.460e6  # = fit_simt(a100-sxm, h100-sxm)[1], rounded

FIT_CHIPS = ("a100-sxm", "h100-sxm")
_IO_PARTS = ("memory_phy", "serdes", "host_io")


@dataclass(frozen=True)
class TransistorBreakdown:
    """Modelled transistors by component (``components``) and their ``total``."""

    components: dict[str, float]
    total: float


@dataclass(frozen=True)
class TransistorCount:
    """The count a rule reads: the spec's published ``transistor_count`` when given
    (``source == "published"``), else the model's (``"modelled"``); ``modelled`` is the
    model's breakdown either way."""

    total: float
    source: str
    modelled: TransistorBreakdown


def transistor_count(chip: ChipSpec) -> TransistorCount:
    """The packaged chip's transistor count: published when the spec gives it, else
    modelled (see the module docstring)."""
    modelled = modelled_transistors(chip)
    if chip.transistor_count is not None:
        return TransistorCount(chip.transistor_count, "published", modelled)
    return TransistorCount(modelled.total, "modelled", modelled)


def modelled_transistors(chip: ChipSpec) -> TransistorBreakdown:
    """Transistors by component, modelled from the spec over all physical cores."""
    return _modelled(chip, SIMT_CORE_TRANSISTORS, SIMT_LANE_TRANSISTORS)


def matrix_transistors_per_core(chip: ChipSpec) -> float:
    """One core's matrix units, sized by each unit's widest datapath (max over dtypes of
    MACs/cycle x transistors per MAC): lower-precision rates reuse the wide multipliers."""
    return sum(unit.count * max(n * MAC_TRANSISTORS[d] for d, n in unit.macs_per_cycle.items())
               for unit in chip.cores.matrix_units)


def sram_transistors(bits: float) -> float:
    """Transistors of ``bits`` of on-die SRAM: 6T bitcells plus the array overhead."""
    return bits * BITCELL_TRANSISTORS * (1.0 + SRAM_ARRAY_OVERHEAD)


def sram_bits(chip: ChipSpec) -> float:
    """Bits of SRAM on the silicon: every physical core's local SRAM and register file, and
    the physical shared buffer."""
    cores, buf = chip.cores, chip.shared_buffer
    per_core = cores.local_sram.size_bytes + (cores.register_file_bytes or 0.0)
    return 8.0 * (cores.physical * per_core + (buf.physical_size_bytes or buf.size_bytes))


@lru_cache(maxsize=4096)
def _modelled(chip: ChipSpec, simt_core: float, simt_lane: float) -> TransistorBreakdown:
    cores = chip.cores
    n, lanes = cores.physical, cores.vector_unit.lanes
    parts = {"matrix": n * matrix_transistors_per_core(chip),
             "vector": n * lanes * FMA_LANE_TRANSISTORS,
             "simt": n * (simt_core + lanes * simt_lane) if chip.kind == "gpu" else 0.0,
             "sram": sram_transistors(sram_bits(chip))}
    parts["noc_control"] = NOC_CONTROL_FRACTION * sum(parts.values())
    node = node_table(chip.name, chip.process_node)
    io_per_mm2 = node.logic_mtr_per_mm2 * 1e6 * PLACED_UTILIZATION * IO_DENSITY_FRACTION
    area = die_area(chip).parts
    for part in _IO_PARTS:
        parts[part] = area[part] * io_per_mm2
    return TransistorBreakdown(components=parts, total=sum(parts.values()))


def fit_simt(first: ChipSpec, second: ChipSpec) -> tuple[float, float]:
    """(per-core, per-lane) SIMT transistors that make two GPUs' modelled totals equal their
    published counts: the total is linear in both. Used once, on the A100 and H100, to set
    SIMT_CORE_TRANSISTORS and SIMT_LANE_TRANSISTORS."""
    rows = []
    for chip in (first, second):
        if chip.kind != "gpu" or chip.transistor_count is None:
            raise ValueError(f"{chip.name}: the SIMT fit needs GPUs with published counts")
        base = _modelled(chip, 0.0, 0.0).total
        rows.append((_modelled(chip, 1.0, 0.0).total - base,
                     _modelled(chip, 0.0, 1.0).total - base, chip.transistor_count - base))
    (a, b, y), (c, d, z) = rows
    det = a * d - b * c
    if det == 0:
        raise ValueError(f"{first.name}, {second.name}: same lanes per core; cannot separate "
                         f"the per-core and per-lane SIMT parts")
    return (y * d - b * z) / det, (a * z - y * c) / det


def _die(chip: ChipSpec) -> tuple:
    """What identifies a published die: its count, physical cores and node."""
    return chip.transistor_count, chip.cores.physical, chip.process_node


def validation_rows(chips: list[ChipSpec]) -> list[tuple[str, float, float, float, str]]:
    """(name, published, modelled, relative error, role) for each chip with a published
    count; role is "fitted" (FIT_CHIPS), "fitted die" (the same die as a fitted chip: same
    count, physical cores and node) or "held out"."""
    fitted = {_die(c) for c in chips if c.name in FIT_CHIPS}
    rows = []
    for chip in chips:
        if chip.transistor_count is None:
            continue
        model = modelled_transistors(chip).total
        role = ("fitted" if chip.name in FIT_CHIPS else
                "fitted die" if _die(chip) in fitted else "held out")
        rows.append((chip.name, chip.transistor_count, model,
                     model / chip.transistor_count - 1.0, role))
    return rows


def held_out_dies(chips: list[ChipSpec]) -> list[ChipSpec]:
    """One chip per held-out die (the first in ``chips``), for the held-out median."""
    fitted = {_die(c) for c in chips if c.name in FIT_CHIPS}
    seen: dict[tuple, ChipSpec] = {}
    for chip in chips:
        if chip.transistor_count is not None and _die(chip) not in fitted:
            seen.setdefault(_die(chip), chip)
    return list(seen.values())


def validation_report(chips: list[ChipSpec]) -> str:
    """The validation table of docs/silicon.md, as text."""
    rows = validation_rows(chips)
    lines = [f"{'chip':20s} {'published':>10s} {'modelled':>9s} {'error':>7s}  role"]
    for name, pub, model, err, role in rows:
        lines.append(f"{name:20s} {pub / 1e9:9.1f}B {model / 1e9:8.1f}B {err:+7.1%}  {role}")
    held = held_out_dies(chips)
    held_median = statistics.median(abs(r[3]) for r in validation_rows(held))
    lines.append(f"median |error|: {statistics.median(abs(r[3]) for r in rows):.1%} over "
                 f"{len(rows)} chips; {held_median:.1%} over {len(held)} held-out dies "
                 f"({', '.join(c.name for c in held)})")
    for chip in chips:
        if chip.transistor_count is None:
            lines.append(f"{chip.name:20s} {'-':>10s} "
                         f"{modelled_transistors(chip).total / 1e9:8.1f}B")
    return "\n".join(lines)
