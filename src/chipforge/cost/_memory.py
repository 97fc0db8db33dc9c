"""Off-chip memory technologies: per stack or device, the bandwidth, the capacities one can
buy and the footprint of one stack or package, with ECCN 3A090.c's memory bandwidth density.

A "stack" is an HBM stack; for LPDDR5/5X, GDDR6/7 and DDR5 it is one device (package),
matching ``memory.stacks`` in the chip spec. Bandwidths are as shipped where a product
exists (datasheet total / stacks), otherwise the JEDEC pin rate times the bus width.

ECCN 3A090.c (BIS interim final rule "Foreign-Produced Direct Product Rule Additions, and
Refinements to Controls for Advanced Computing and Semiconductor Manufacturing Items",
89 FR 96790, 5 Dec 2024, effective 2 Dec 2024,
https://www.federalregister.gov/d/2024-28270) controls "high bandwidth memory (HBM) having
a 'memory bandwidth density' greater than 2 GB/s/mm2"; its technical note: "'memory
bandwidth density' is the memory bandwidth measured in gigabytes (GB) per second divided
by the area of the package or stack measured in square millimeters". The wording is as
quoted by secondary summaries (chipclaims.com, "ECCN 3A090.c", 2026); the primary text was
not retrievable in this session.
Reading taken: GB = 1e9 bytes (decimal, as memory vendors quote GB/s); the bandwidth is
one stack's (or one package's) peak, and the area is that stack's or package's footprint
(length x width of its outline), not the interposer or the board area around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipforge.arch import ChipSpec
from chipforge.errors import ChipforgeError

GB = 1e9
# ECCN 3A090.c threshold, GB/s per mm2 (89 FR 96790: "greater than 2 GB/s/mm2")
HBM_DENSITY_THRESHOLD_GB_PER_S_PER_MM2 = 2.0


@dataclass(frozen=True)
class MemoryTech:
    kind: str
    bandwidth_per_stack_bytes_per_s: float
    capacities_per_stack_bytes: tuple[float, ...]  # first = default
    source: str
    stack_area_mm2: float | None = None  # footprint of one stack / package
    area_source: str = ""


def _hbm(kind: str, bw: float, caps: tuple[float, ...], source: str, side_mm: tuple[float, float],
         area_source: str) -> MemoryTech:
    return MemoryTech(kind, bw, caps, source, side_mm[0] * side_mm[1], area_source)


# HBM KGSD outlines. source: JEDEC MO-316 / SK hynix and Samsung HBM2E datasheets
# (7.75 x 11.87 mm), SK hynix HBM3 and Micron HBM3E datasheets (11 x 11 mm); the same
# figures chipforge.cost._unit_cost reads for the interposer area.
# JESD235B (JEDEC press release, 17 Dec 2018) added a larger footprint option for 16 Gb /
# 12-high HBM2(e) stacks; the verdict does not hinge on it: 407.8 GB/s stays above 2 GB/s/mm2
# up to a 204 mm2 footprint (HBM3 at 670 GB/s up to 335 mm2), far beyond any HBM outline.
_HBM2E_MM = (7.75, 11.87)
_HBM3_MM = (11.0, 11.0)
# GDDR6 (180-ball) and GDDR7 (266-ball) FBGA: 12 x 14 mm. source: JEDEC JESD250 / JESD239
# package outlines; Micron GDDR6 MT61K (180-ball FBGA, 12 x 14 mm) and Samsung GDDR7 (2024)
_GDDR_MM = (12.0, 14.0)
# LPDDR5/5X x64 (4 x16 channels) 315-ball TFBGA, 12.4 x 15.0 mm. source: Micron LPDDR5/5X
# datasheet (y31m multi-package, MT62F1G64D4 family), package option "315-ball 12.4 x 15"
_LPDDR_MM = (12.4, 15.0)
# DDR5 x16 device, 102-ball FBGA. assumption: ~9 x 14 mm (Micron DDR5 SDRAM datasheet
# lists a 102-ball FBGA for x16; the exact outline varies by die revision, ~8-10 x 14 mm)
_DDR5_MM = (9.0, 14.0)

MEMORY_TECHS: dict[str, MemoryTech] = {
    "HBM2e": _hbm(
        "HBM2e", 407.8e9, (16 * GB, 8 * GB, 24 * GB),
        "source: NVIDIA A100 80GB datasheet, 2,039 GB/s on 5 active HBM2e stacks = 407.8 GB/s "
        "per stack (3.2 Gb/s x 1024 bits; Samsung Flashbolt 2020: 410 GB/s, 16 GB = 8-high x "
        "16 Gbit); 8 GB = 8-high x 8 Gbit; 24 GB = 12-high x 16 Gbit (JEDEC JESD235B, 2018)",
        _HBM2E_MM, "7.75 x 11.87 mm KGSD (JEDEC MO-316; SK hynix / Samsung HBM2E)"),
    "HBM3": _hbm(
        "HBM3", 670e9, (16 * GB, 24 * GB),
        "source: NVIDIA H100 SXM datasheet, 80 GB HBM3 at 3.35 TB/s on 5 active stacks = "
        "16 GB and 670 GB/s per stack (JEDEC JESD238 allows 6.4 Gb/s x 1024 bits = 819 GB/s); "
        "24 GB = 12-high x 16 Gbit (SK hynix HBM3 12-high, 2023)",
        _HBM3_MM, "11 x 11 mm KGSD (SK hynix HBM3 datasheet; JEDEC HBM3 outline)"),
    "HBM3e": _hbm(
        "HBM3e", 1.0e12, (24 * GB, 36 * GB),
        "source: NVIDIA DGX B200 datasheet, 192 GB HBM3e at 8 TB/s on 8 stacks = 24 GB and "
        "1.0 TB/s per stack; 36 GB = 12-high x 24 Gbit (Micron HBM3E 12-high 36GB, 2024)",
        _HBM3_MM, "11 x 11 mm KGSD (Micron HBM3E: 'industry-standard package dimension')"),
    "LPDDR5": MemoryTech(
        "LPDDR5", 51.2e9, (8 * GB, 16 * GB),
        "source: JEDEC JESD209-5, LPDDR5 at 6400 MT/s; one x64 package = 6400e6 x 8 B = "
        "51.2 GB/s; 8 and 16 GB x64 packages (Micron LPDDR5 MT62F1G64D4, 2021)",
        _LPDDR_MM[0] * _LPDDR_MM[1], "315-ball x64 TFBGA 12.4 x 15.0 mm (Micron LPDDR5)"),
    "LPDDR5X": MemoryTech(
        "LPDDR5X", 68.3e9, (16 * GB, 32 * GB),
        "source: JEDEC JESD209-5B, LPDDR5X at 8533 MT/s; one x64 package = 8533e6 x 8 B = "
        "68.3 GB/s; assumption: 16 GB (128 Gbit) and 32 GB packages, the capacities of "
        "Micron/Samsung LPDDR5X server parts (LPCAMM2 / SOCAMM modules)",
        _LPDDR_MM[0] * _LPDDR_MM[1], "315-ball x64 TFBGA 12.4 x 15.0 mm (Micron LPDDR5X)"),
    "GDDR6": MemoryTech(
        "GDDR6", 64e9, (2 * GB, 1 * GB),
        "source: JEDEC JESD250 GDDR6 and Samsung 16 Gbps GDDR6 (2018): one x32 device = "
        "16 Gb/s x 32 bits = 64 GB/s; 2 GB = 16 Gbit and 1 GB = 8 Gbit devices",
        _GDDR_MM[0] * _GDDR_MM[1], "180-ball FBGA 12 x 14 mm (JESD250; Micron GDDR6)"),
    "GDDR7": MemoryTech(
        "GDDR7", 125e9, (2 * GB, 3 * GB),
        "source: JEDEC JESD239 GDDR7 and Samsung's 32 Gbps GDDR7 (2024): one x32 device = "
        "32 Gb/s x 32 bits = 128 GB/s raw, quoted at 125 GB/s (the ~2% margin forge-i1 uses); "
        "2 GB = 16 Gbit and 3 GB = 24 Gbit devices (Micron GDDR7 24Gb, 2024)",
        _GDDR_MM[0] * _GDDR_MM[1], "266-ball FBGA 12 x 14 mm (JESD239; Samsung GDDR7)"),
    "DDR5": MemoryTech(
        "DDR5", 12.8e9, (2 * GB, 4 * GB),
        "source: JEDEC JESD79-5, DDR5-6400; one x16 device = 6400e6 x 2 B = 12.8 GB/s; "
        "2 GB = 16 Gbit and 4 GB = 32 Gbit dies (Micron / SK hynix DDR5, 2023)",
        _DDR5_MM[0] * _DDR5_MM[1], "assumption: 102-ball x16 FBGA ~9 x 14 mm"),
}


@dataclass(frozen=True)
class MemoryDensity:
    """ECCN 3A090.c memory bandwidth density of one stack or package."""

    kind: str
    bandwidth_per_stack_bytes_per_s: float
    stack_area_mm2: float
    gb_per_s_per_mm2: float
    source: str

    @property
    def above_3a090c(self) -> bool:
        """True when the density exceeds 3A090.c's 2 GB/s/mm2 (a threshold test only:
        3A090.c applies to HBM; chipforge.legal decides what binds)."""
        return self.gb_per_s_per_mm2 > HBM_DENSITY_THRESHOLD_GB_PER_S_PER_MM2


def memory_tech(kind: str) -> MemoryTech:
    """The table row for ``kind``, or a ChipforgeError naming the kinds covered."""
    if kind not in MEMORY_TECHS:
        raise ChipforgeError(f"memory.kind: {kind!r} has no memory-technology row; expected "
                             f"one of {', '.join(MEMORY_TECHS)}")
    return MEMORY_TECHS[kind]


def memory_bandwidth_density_of(kind: str, bandwidth_per_stack_bytes_per_s: float | None = None,
                                stack_area_mm2: float | None = None) -> MemoryDensity:
    """3A090.c density of a technology alone: bandwidth (GB/s) / stack or package area (mm2).

    Defaults come from MEMORY_TECHS; either may be overridden (a supplier's own rate).
    """
    tech = memory_tech(kind)
    bw = tech.bandwidth_per_stack_bytes_per_s if bandwidth_per_stack_bytes_per_s is None \
        else bandwidth_per_stack_bytes_per_s
    area = tech.stack_area_mm2 if stack_area_mm2 is None else stack_area_mm2
    if area is None:
        raise ChipforgeError(f"memory.kind: {kind!r} has no stack or package area in the "
                             "memory-technology table; expected a footprint in mm2")
    if not bw > 0 or not area > 0:
        raise ChipforgeError(f"memory bandwidth density of {kind!r}: got bandwidth {bw!r} B/s "
                             f"and area {area!r} mm2; expected both positive")
    return MemoryDensity(kind, bw, area, bw / GB / area,
                         f"{tech.source}; area: {tech.area_source}")


def memory_bandwidth_density(chip: ChipSpec) -> MemoryDensity:
    """3A090.c density of the chip's memory: (memory bandwidth / stacks) / stack area."""
    mem = chip.memory
    if memory_tech(mem.kind).stack_area_mm2 is None:
        raise ChipforgeError(f"{chip.name}: memory.kind {mem.kind!r} has no stack or package "
                             "area in the memory-technology table; expected a footprint in mm2")
    return memory_bandwidth_density_of(mem.kind, mem.bandwidth_bytes_per_s / mem.stacks)
