"""Which memory a China-headquartered designer can source domestically, and from when.

One dated row per (kind, supplier): the date volume production was reported, or None
where only samples or plans are reported. A supplier whose part differs from the kind's
MEMORY_TECHS row (a lower pin rate) carries its own bandwidth per stack. Kinds with no
row (GDDR6, GDDR7, HBM2e, HBM3e) have no reported domestic volume supplier as of Dec 2026.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from chipforge.cost._memory import MEMORY_TECHS, memory_tech
from chipforge.errors import ChipforgeError


@dataclass(frozen=True)
class MemorySupply:
    kind: str
    supplier: str
    country: str  # ISO 3166 alpha-2 of the supplier's headquarters
    volume_from: date | None  # first reported volume production; None = not in volume
    bandwidth_per_stack_bytes_per_s: float | None  # None = the kind's MEMORY_TECHS figure
    source: str

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """Per stack / device: the supplier's own figure, else the kind's."""
        own = self.bandwidth_per_stack_bytes_per_s
        return own if own is not None else MEMORY_TECHS[self.kind].bandwidth_per_stack_bytes_per_s


DOMESTIC_MEMORY: tuple[MemorySupply, ...] = (
    MemorySupply(
        "LPDDR5", "CXMT", "CN", date(2023, 11, 28), None,
        "TrendForce, 1 Dec 2023: CXMT launched its LPDDR5 family on 28 Nov 2023 (12 Gb dies, "
        "6 and 12 GB packages), validated by Xiaomi and Transsion"),
    MemorySupply(
        "LPDDR5X", "CXMT", "CN", date(2025, 5, 1), None,
        "SCMP (2025), citing CXMT's website: LPDDR5X at 8,533 and 9,600 Mbps in mass "
        "production since May 2025 (10,667 Mbps sampling); 8,533 MT/s is the table's rate; "
        "assumption: 'May' read as 1 May"),
    MemorySupply(
        "DDR5", "CXMT", "CN", date(2024, 12, 1), None,
        "Korea JoongAng Daily, 26 Nov 2025 (via SCMP): CXMT 'began mass-producing DDR5 late "
        "last year' (6,400 Mbps; 8,000 Mbps shown at IC China 2025); assumption: 'late 2024' "
        "read as 1 Dec 2024"),
    MemorySupply(
        "HBM3", "CXMT", "CN", None, 665.6e9,
        "DigiTimes, 23 Oct 2025: CXMT delivered HBM3 samples to Huawei, 'a prelude to "
        "large-scale manufacturing' slated for 2026; MK (Feb 2026): 20% of CXMT's wafers to "
        "go to HBM3; reports in the first half of 2026 describe mass production slipping "
        "(no large material orders). No volume production confirmed: volume_from None. "
        "assumption: 5.2 Gb/s per pin x 1024 bits = 665.6 GB/s per stack (the rate SK hynix "
        "HBM3 ships at on the H100, under JEDEC's 6.4 Gb/s; no CXMT pin rate is published)"),
)


def domestic_suppliers(kind: str) -> tuple[MemorySupply, ...]:
    """Every domestic row for ``kind`` (a MEMORY_TECHS kind; empty when none is reported)."""
    memory_tech(kind)
    return tuple(s for s in DOMESTIC_MEMORY if s.kind == kind)


def available_as_of(kind: str, supplier: str, as_of: date) -> bool:
    """True when ``supplier`` makes ``kind`` in volume on ``as_of``.

    A supplier with no row for the kind is a ChipforgeError naming those that have one.
    """
    rows = [s for s in domestic_suppliers(kind) if s.supplier == supplier]
    if not rows:
        known = ", ".join(s.supplier for s in domestic_suppliers(kind)) or "none"
        raise ChipforgeError(f"memory supplier {supplier!r} has no row for {kind}; expected "
                             f"one of: {known}")
    start = rows[0].volume_from
    return start is not None and start <= as_of


def domestic_memory(as_of: date) -> tuple[MemorySupply, ...]:
    """The domestic rows in volume production on ``as_of``."""
    return tuple(s for s in DOMESTIC_MEMORY
                 if s.volume_from is not None and s.volume_from <= as_of)
