"""Die area by component, from the spec plus shared physical parameters (docs/silicon.md).

Components: matrix units (synthesized RTL area per MAC of the widest datapath), vector
lanes, SRAM (bitcells / array efficiency, with ECC), memory PHYs, chip-to-chip SerDes,
NoC and control, and host I/O. The same parameters price every chip; only
``SIMT_LANE_UM2_N5`` (a GPU lane's share of the SIMT machinery) is fitted, on the A100
(the H100 is held out).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from chipforge.arch import ChipSpec
from chipforge.cost._nodes import NODES, node_table
from chipforge.rtl import SYNTH_NODE, SYNTH_RESULTS

# Placed generic-gate area of one processing element at the RTL's node (N5), um^2; the PE
# row uses the partial-sum widths of a 128-row array (docs/rtl.md "Synthesis and area").
# Each dtype's MAC as a multiple of a synthesized PE: (the PE's dtype, how many).
PE_OF_DTYPE: dict[str, tuple[str, int]] = {
    "int8": ("int8", 1), "fp8_e4m3": ("fp8_e4m3", 1), "fp8_e5m2": ("fp8_e5m2", 1),
    "bf16": ("bf16", 1),
    # assumption: fp16 shares the 16-bit datapath with fp32 accumulation; its 11-bit
    # significand product is a small part of a PE dominated by the accumulator
    "fp16": ("bf16", 1),
    # assumption: tf32 and fp32 run multi-pass on the 16-bit datapath (NVIDIA's tf32 rate
    # is 1/2 of bf16, forge-t1's fp32 1/4), so one tf32 MAC/cycle costs two bf16 MACs
    "tf32": ("bf16", 2),
    "fp32": ("bf16", 4),
}


def per_mac(pe_figure: dict[str, float]) -> dict[str, float]:
    """A synthesized PE figure (area, transistors) per MAC of each dtype (PE_OF_DTYPE)."""
    return {d: n * pe_figure[pe] for d, (pe, n) in PE_OF_DTYPE.items()}


MAC_UM2_AT_RTL_NODE: dict[str, float] = per_mac(
    {r["dtype"]: r["placed_um2"] for r in SYNTH_RESULTS if r["design"] == "pe"})

# assumption: generic-gate placed area ~ foundry-cell placed area (ratio 1.0). Two known
# biases roughly cancel: WikiChip densities are above what real N5 chips reach (A14: 134
# vs 171 MTr/mm2, Angstronomics, x1.28) while the RTL's exact (Kulisch) bf16 accumulation
# is wider than production tensor cores' aligned, truncated sums (docs/rtl.md).
GATE_TO_CELL_AREA_RATIO = 1.0

# An accelerator's vector lane is a plain SIMD fp32 FMA: costed as the RTL's fp32 MAC
# (the assumption above: 4 bf16 PEs). A GPU's FP32 lane also carries its share of the SIMT
# machinery (warp schedulers and dispatch, operand collectors, INT32/FP64 units, load/store
# and texture paths), which no spec field describes: that share is the one fitted
# parameter, SIMT_LANE_UM2_N5, per lane of a `kind: gpu` chip.
FMA_LANE_UM2_AT_RTL_NODE = MAC_UM2_AT_RTL_NODE["fp32"]
# fitted: SIMT share per GPU FP32 lane at N5, so the A100's predicted die is 826 mm2; the
# H100 is held out (tests/cost/test_area.py re-derives the fit).
SIMT_LANE_UM2_N5 = 28_283.0  # = fit_simt_lane_um2(a100-sxm, 826 mm2), rounded

# Effective density of SRAM as built into caches (bitcells, periphery, tags, ECC,
# redundancy): AMD's 3D V-Cache die holds 64 MiB of L3 in 41 mm2 on TSMC N7 (AMD, Hot
# Chips 33 / ISSCC 2022): 64 * 8 * 2^20 / 41 = 13.1 Mbit/mm2. Other nodes scale it by the
# HD bitcell area (periphery assumed to scale alike).
SRAM_MBIT_PER_MM2_N7 = 64 * 8 * 2**20 / 1e6 / 41.0

# memory PHY plus controller per HBM stack, or per GDDR/LPDDR/DDR device (x32), mm2
MEMORY_PHY_MM2: dict[str, float] = {
    # assumption: a 1024-bit HBM PHY is bump-pitch limited (~55 um microbumps), about
    # 11 x 1 mm of shoreline plus its controller; does not shrink with the node
    "HBM2e": 15.0, "HBM3": 15.0, "HBM3e": 15.0,
    # assumption: a x32 GDDR6/7 channel PHY + controller ~4.5 mm2 (Navi-class die shots,
    # 256-bit GDDR6 ~ 36 mm2 of shoreline blocks)
    "GDDR6": 4.5, "GDDR7": 4.5,
    # assumption: x32 LPDDR5(X) / DDR5 channel ~2.5 / 4 mm2 (lower speed, fewer pins)
    "LPDDR5": 2.5, "LPDDR5X": 2.5, "DDR5": 4.0,
}

# assumption: PCIe Gen5 x16 host interface, management and misc I/O per die, ~10 mm2
HOST_IO_MM2_PER_DIE = 10.0
# assumption: on-die network, clocking and control as 10% of the cores + SRAM area (the
# crossbar/NoC strips of A100/H100 die shots are a similar share)
NOC_CONTROL_FRACTION = 0.10


@dataclass(frozen=True)
class AreaBreakdown:
    """Predicted silicon area: mm2 per component; ``logic_mm2`` is the logic dies' total."""

    parts: dict[str, float]
    total_mm2: float
    logic_mm2: float
    node: str
    dies: int = 1
    core_mm2: float = 0.0  # one core (matrix, vector, local SRAM): the harvesting unit

    @property
    def die_mm2(self) -> float:
        """Area of one logic die."""
        return self.total_mm2 / self.dies


def die_area(chip: ChipSpec) -> AreaBreakdown:
    """Predicted die area by component (see docs/silicon.md)."""
    return _die_area(chip)


@lru_cache(maxsize=4096)
def _die_area(chip: ChipSpec) -> AreaBreakdown:
    node = node_table(chip.name, chip.process_node)
    return _breakdown(chip, node.name, SIMT_LANE_UM2_N5)


def _gate_scale(node: str) -> float:
    """Generic-gate area at the RTL's node -> foundry area at ``node``, per um^2."""
    rtl_density = NODES[SYNTH_NODE].logic_mtr_per_mm2
    return GATE_TO_CELL_AREA_RATIO * rtl_density / NODES[node].logic_mtr_per_mm2


def matrix_um2_per_core(chip: ChipSpec) -> float:
    """One core's matrix units, sized by each unit's widest datapath (max over dtypes of
    MACs/cycle x area per MAC): lower-precision rates reuse the wide multipliers."""
    total = 0.0
    for unit in chip.cores.matrix_units:
        total += unit.count * max(n * MAC_UM2_AT_RTL_NODE[d]
                                  for d, n in unit.macs_per_cycle.items())
    return total


def sram_mm2(bits: float, node: str) -> float:
    """Area of ``bits`` of cache-style SRAM at ``node``."""
    shrink = NODES["N7"].sram_bitcell_um2 / NODES[node].sram_bitcell_um2
    return bits / (SRAM_MBIT_PER_MM2_N7 * 1e6 * shrink)


def lane_um2(chip: ChipSpec, simt_lane_um2_n5: float = SIMT_LANE_UM2_N5) -> float:
    """Area of one vector lane at the RTL's node (N5): an FMA, plus the SIMT share on GPUs."""
    return FMA_LANE_UM2_AT_RTL_NODE + (simt_lane_um2_n5 if chip.kind == "gpu" else 0.0)


def _breakdown(chip: ChipSpec, node: str, simt_lane_um2_n5: float) -> AreaBreakdown:
    cores = chip.cores
    scale = _gate_scale(node)
    matrix_core = matrix_um2_per_core(chip) * scale / 1e6
    vector_core = cores.vector_unit.lanes * lane_um2(chip, simt_lane_um2_n5) * scale / 1e6
    core_bits = 8 * (cores.local_sram.size_bytes + (cores.register_file_bytes or 0.0))
    sram_core = sram_mm2(core_bits, node)
    buf = chip.shared_buffer
    shared_sram = sram_mm2(8 * (buf.physical_size_bytes or buf.size_bytes), node)
    n = cores.physical
    parts = {"matrix": n * matrix_core, "vector": n * vector_core,
             "sram": n * sram_core + shared_sram}
    parts["noc_control"] = NOC_CONTROL_FRACTION * sum(parts.values())
    mem = chip.memory
    parts["memory_phy"] = (mem.physical_stacks or mem.stacks) * MEMORY_PHY_MM2[mem.kind]
    gbps_per_direction = chip.links.bandwidth_bytes_per_s / 2 * 8 / 1e9
    parts["serdes"] = chip.links.count * gbps_per_direction * NODES[node].serdes_mm2_per_gbps
    parts["host_io"] = HOST_IO_MM2_PER_DIE * chip.dies
    total = sum(parts.values())
    return AreaBreakdown(parts=parts, total_mm2=total, logic_mm2=total, node=node,
                         dies=chip.dies, core_mm2=matrix_core + vector_core + sram_core)


def fit_simt_lane_um2(chip: ChipSpec, target_mm2: float) -> float:
    """The SIMT share per lane at N5 that makes GPU ``chip``'s predicted total
    ``target_mm2`` (the total is linear in it). Used once, on the A100, to set
    SIMT_LANE_UM2_N5."""
    node = node_table(chip.name, chip.process_node).name
    base = _breakdown(chip, node, 0.0).total_mm2
    slope = _breakdown(chip, node, 1.0).total_mm2 - base
    if slope <= 0:
        raise ValueError(f"{chip.name}: no vector lanes to fit")
    return (target_mm2 - base) / slope
