"""Off-chip memory technologies a design point may choose: per stack or device, the
bandwidth and the capacities one can buy.

A "stack" is an HBM stack; for LPDDR5X and GDDR7 it is one device (package), matching
``memory.stacks`` in the chip spec. Bandwidths are as shipped where a product exists
(datasheet total / stacks), otherwise the JEDEC pin rate times the bus width.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9


@dataclass(frozen=True)
class MemoryTech:
    kind: str
    bandwidth_per_stack_bytes_per_s: float
    capacities_per_stack_bytes: tuple[float, ...]  # first = default
    source: str


MEMORY_TECHS: dict[str, MemoryTech] = {
    "HBM3": MemoryTech(
        "HBM3", 670e9, (16 * GB, 24 * GB),
        "source: NVIDIA H100 SXM datasheet, 80 GB HBM3 at 3.35 TB/s on 5 active stacks = "
        "16 GB and 670 GB/s per stack (JEDEC JESD238 allows 6.4 Gb/s x 1024 bits = 819 GB/s); "
        "24 GB = 12-high x 16 Gbit (SK hynix HBM3 12-high, 2023)"),
    "HBM3e": MemoryTech(
        "HBM3e", 1.0e12, (24 * GB, 36 * GB),
        "source: NVIDIA DGX B200 datasheet, 192 GB HBM3e at 8 TB/s on 8 stacks = 24 GB and "
        "1.0 TB/s per stack; 36 GB = 12-high x 24 Gbit (Micron HBM3E 12-high 36GB, 2024)"),
    "LPDDR5X": MemoryTech(
        "LPDDR5X", 68.3e9, (16 * GB, 32 * GB),
        "source: JEDEC JESD209-5B, LPDDR5X at 8533 MT/s; one x64 package = 8533e6 x 8 B = "
        "68.3 GB/s; assumption: 16 GB (128 Gbit) and 32 GB packages, the capacities of "
        "Micron/Samsung LPDDR5X server parts (LPCAMM2 / SOCAMM modules)"),
    "GDDR7": MemoryTech(
        "GDDR7", 125e9, (2 * GB, 3 * GB),
        "source: JEDEC JESD239 GDDR7 and Samsung's 32 Gbps GDDR7 (2024): one x32 device = "
        "32 Gb/s x 32 bits = 128 GB/s raw, quoted at 125 GB/s (the ~2% margin forge-i1 uses); "
        "2 GB = 16 Gbit and 3 GB = 24 Gbit devices (Micron GDDR7 24Gb, 2024)"),
}
