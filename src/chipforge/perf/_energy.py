"""First-order energy: per MAC, per elementwise op and per byte at each memory level.

Constants are the 45 nm figures of Horowitz (ISSCC 2014, "Computing's energy problem")
scaled to each node, plus published DRAM and link energies. The scaling factor per node
is an assumption stated below; the point of the model is the split between compute and
data movement, which these constants get right to within a factor of ~1.5.
"""

from __future__ import annotations

from chipforge.arch import ChipSpec
from chipforge.perf._estimate import Energy

# source: Horowitz ISSCC 2014 Fig. 1.1.9 (45 nm, 0.9 V): multiply + add energy, pJ.
# fp16 1.1 + 0.4; fp32 3.7 + 0.9; int8 0.2 + int32 add 0.1. assumption: bf16 ~ fp16 (smaller
# mantissa multiplier, fp32 accumulate), fp8 ~ half of fp16, tf32 ~ between fp16 and fp32.
MAC_PJ_45NM = {"fp32": 4.6, "tf32": 2.5, "bf16": 1.5, "fp16": 1.5, "fp8_e4m3": 0.75,
               "fp8_e5m2": 0.75, "int8": 0.3}
# assumption: delivering operands to the arithmetic (register files, operand buffers,
# pipeline registers, clocking of the datapath) costs several times the arithmetic itself
# (Horowitz 2014 Fig. 1.1.10: an add's energy is a small slice of an instruction's). The
# factor 8 is chosen so that a saturating cuBLAS GEMM on an A100 draws its 400 W power
# limit, which it does in practice (the GPU runs power-capped under dense GEMMs); it
# applies unchanged to every chip.
DATAPATH_FACTOR = 8.0
VECTOR_OP_PJ_45NM = 4.6  # one fp32 FMA-class op on a vector lane (Horowitz, fp32 mult + add)
SRAM_PJ_PER_BYTE_45NM = 1.25  # source: Horowitz 2014: 64-bit read of an 8 KB SRAM, 10 pJ
# assumption: a large shared buffer (L2 / global SRAM) costs ~4x a small local SRAM per
# byte because of the wire distance (Dally, "Hardware for Deep Learning", Hot Chips 2023:
# on-chip wires ~0.1 pJ/bit/mm barely scale with node).
SHARED_BUFFER_FACTOR = 4.0

# assumption: energy per op relative to 45 nm. Stillmaker & Baas, Integration 2017
# ("Scaling equations ... 180 nm to 7 nm") give ~0.15x for 45 -> 7 nm at nominal voltage;
# N5-class ~0.11x, N3 ~0.09x extrapolating TSMC's quoted ~20-30% power per node step.
# assumption: SMIC-N+2 0.16, ~7% above TSMC N7: a 7 nm-class FinFET whose gate and metal
# pitches are relaxed against N7 (TechInsights, Kirin 9000S teardown, Sept 2023), so wires
# and gate capacitance per op are somewhat longer/larger
NODE_ENERGY_SCALE = {"N16": 0.35, "N12": 0.3, "N7": 0.15, "N6": 0.14, "N5": 0.11, "4N": 0.105,
                     "N4": 0.105, "4NP": 0.1, "N3": 0.09, "N2": 0.08, "SMIC-N+2": 0.16}

# DRAM interface + core energy per bit, pJ.
# source: O'Connor et al., "Fine-Grained DRAM", MICRO 2017: HBM2 3.9 pJ/bit, GDDR5 14 pJ/bit.
# assumption: HBM2e 3.7, HBM3 3.4, HBM3e 3.0 (lower I/O voltage each generation);
# GDDR6 7.5 and GDDR7 6.5 (Micron quotes GDDR7 >50% better energy efficiency than GDDR6
# per bandwidth at the interface only); LPDDR5/5X 4.0-3.5 (short, unterminated channels);
# DDR5 ~10 (DIMM channel).
DRAM_PJ_PER_BIT = {"HBM2e": 3.7, "HBM3": 3.4, "HBM3e": 3.0, "GDDR6": 7.5, "GDDR7": 6.5,
                   "LPDDR5": 4.0, "LPDDR5X": 3.5, "DDR5": 10.0}

# assumption: chip-to-chip SerDes at 50-112 Gb/s per lane ~5 pJ/bit including retimerless
# board reach (ISSCC 2022-23 112G long-reach transceivers report 4-6 pJ/bit).
LINK_PJ_PER_BIT = 5.0

# assumption: leakage and always-on power (clock tree, PHYs idle) is ~20% of TDP; measured
# idle draw of an A100 SXM is 50-60 W of its 400 W TDP.
STATIC_FRACTION_OF_TDP = 0.2


def node_scale(chip: ChipSpec) -> float:
    if chip.process_node not in NODE_ENERGY_SCALE:
        from chipforge.errors import ChipforgeError

        raise ChipforgeError(f"no energy figures for process node {chip.process_node!r} of "
                             f"chip {chip.name!r}; expected one of "
                             f"{', '.join(NODE_ENERGY_SCALE)}")
    return NODE_ENERGY_SCALE[chip.process_node]


def static_power_w(chip: ChipSpec) -> float:
    """The always-on power the time model charges per second: 20% of TDP.

    ``chipforge.cost`` replaces this term by leakage from the modelled die area; the
    estimate keeps it apart (``Energy.static_j``), so the two never count static power
    twice.
    """
    return STATIC_FRACTION_OF_TDP * chip.tdp_w


def offchip_energy_j(chip: ChipSpec, dram_bytes: float, link_bytes: float) -> float:
    """DRAM and chip-to-chip link energy: I/O on their own supplies, so it does not scale
    with the core clock or voltage (the TDP throttle relies on that split)."""
    pj = dram_bytes * 8 * DRAM_PJ_PER_BIT[chip.memory.kind] + link_bytes * 8 * LINK_PJ_PER_BIT
    return pj * 1e-12


def op_energy(chip: ChipSpec, *, macs: float = 0.0, dtype: str = "bf16",
              vector_ops: float = 0.0, local_bytes: float = 0.0, shared_bytes: float = 0.0,
              dram_bytes: float = 0.0, link_bytes: float = 0.0, seconds: float = 0.0) -> Energy:
    """Dynamic energy of the work (core and off-chip) plus static power over its time."""
    scale = node_scale(chip)
    core_pj = (macs * MAC_PJ_45NM.get(dtype, 1.5) * scale * DATAPATH_FACTOR
               + vector_ops * VECTOR_OP_PJ_45NM * scale * DATAPATH_FACTOR
               + local_bytes * SRAM_PJ_PER_BYTE_45NM * scale
               + shared_bytes * SRAM_PJ_PER_BYTE_45NM * SHARED_BUFFER_FACTOR * scale)
    return Energy(core_j=core_pj * 1e-12,
                  offchip_j=offchip_energy_j(chip, dram_bytes, link_bytes),
                  static_j=static_power_w(chip) * seconds)
