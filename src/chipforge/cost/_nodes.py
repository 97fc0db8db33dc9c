"""Per-process-node tables: logic and SRAM density, SerDes area, wafer price, defect density.

Every figure carries its source or an ``assumption:``; docs/silicon.md repeats the table.
NVIDIA's 4N and 4NP are TSMC N4-class (N5-family) nodes and use the N4 row. SMIC-N+2 is
SMIC's second-generation 7 nm-class node (DUV multi-patterning, no EUV), the node of the
Kirin 9000S and, per TechInsights, of Huawei's Ascend 910B/910C dies.
"""

from __future__ import annotations

from dataclasses import dataclass

from chipforge.errors import ChipforgeError


class CostError(ChipforgeError):
    """A chip the silicon model cannot price: no tables for its node, or an unusable spec."""


@dataclass(frozen=True)
class NodeTable:
    name: str
    logic_mtr_per_mm2: float  # standard-cell logic density (Bohr metric), MTr/mm2
    sram_bitcell_um2: float  # high-density 6T bitcell
    serdes_mm2_per_gbps: float  # chip-to-chip SerDes area per Gbit/s of one direction
    wafer_usd: float  # 300 mm wafer price
    defects_per_cm2: float  # D0 of a mature process, for the negative-binomial yield
    sources: tuple[str, ...]


NODES: dict[str, NodeTable] = {
    "N7": NodeTable(
        "N7", 91.2, 0.027, 0.0070, 9_346, 0.09,
        ("logic: TSMC N7 HD 91.2 MTr/mm2 (WikiChip), as chipforge.rtl._synth.NODES",
         "bitcell: TSMC N7 HD SRAM 0.027 um2 (TSMC IEDM 2016 / WikiChip 'N7')",
         "serdes: assumption: a 50 Gbit/s NRZ NVLink-3-class lane ~0.35 mm2 incl. its "
         "share of bumps and clocking -> 0.0070 mm2 per Gbit/s",
         "wafer: CSET 'AI Chips: What They Are and Why They Matter' (2020), Table: "
         "$9,346 per 300 mm N7 wafer",
         "D0: TSMC 2020 Technology Symposium via AnandTech ('TSMC: N5 yield ahead of N7'): "
         "N7 ~0.09 defects/cm2 at maturity")),
    "N5": NodeTable(
        "N5", 171.3, 0.021, 0.0045, 16_988, 0.07,
        ("logic: TSMC N5 171.3 MTr/mm2 (WikiChip estimate from TSMC's 1.84x over N7)",
         "bitcell: TSMC N5 HD SRAM 0.021 um2 (WikiChip, 'IEDM 2022: Did We Just Witness "
         "The Death Of SRAM?')",
         "serdes: assumption: a 112 Gbit/s PAM4 lane ~0.45 mm2 (N5-class LR SerDes IP) "
         "-> ~0.0045 mm2 per Gbit/s",
         "wafer: CSET (2020), Table: $16,988 per 300 mm N5 wafer",
         "D0: AnandTech (Aug 2020, TSMC Technology Symposium): N5 D0 0.10 in its first "
         "year, falling to ~0.07 as it matured")),
    "N4": NodeTable(
        "N4", 181.6, 0.021, 0.0045, 16_988, 0.07,
        ("logic: TSMC N4 = N5 x 1.06 (TSMC: 6% smaller area than N5), as "
         "chipforge.rtl._synth.NODES",
         "bitcell: assumption: N4 keeps N5's 0.021 um2 HD bitcell (an N5-family "
         "optical shrink; N3E too is 0.021 um2 per WikiChip IEDM 2022)",
         "serdes: assumption: as N5 (same metal stack and analog devices)",
         "wafer: assumption: priced as N5 ($16,988, CSET 2020); N4 is N5-family with a few "
         "more EUV layers, and later price rises and volume discounts roughly offset",
         "D0: assumption: as mature N5 (N5-family), 0.07/cm2")),
    "N3": NodeTable(
        "N3", 291.2, 0.021, 0.0040, 20_000, 0.10,
        ("logic: TSMC N3 = N5 x 1.7 (TSMC's logic density claim; WikiChip ~291), as "
         "chipforge.rtl._synth.NODES",
         "bitcell: TSMC N3E HD SRAM 0.021 um2, unchanged from N5 (WikiChip IEDM 2022)",
         "serdes: assumption: ~10% below N5 (analog scales little)",
         "wafer: ~$20,000 per N3 wafer (DigiTimes report 2020, repeated by Tom's Hardware "
         "'TSMC 3nm wafer price')",
         "D0: assumption: 0.10/cm2, N3 still early on its learning curve (TSMC said N3 "
         "defect density tracks N5 at the same stage)")),
    "SMIC-N+2": NodeTable(
        "SMIC-N+2", 82.1, 0.030, 0.0070, 13_552, 0.23,
        ("logic: assumption: 0.9 x TSMC N7 = 82.1 MTr/mm2. TechInsights (Kirin 9000S, "
         "Sept 2023): N+2's gate pitch is relaxed against other 7 nm nodes, 'this suggests "
         "the gate density is less', partly recovered by single diffusion break; its cells "
         "are 10% smaller than N+1's, whose pitches were already relaxed (TechInsights, "
         "MinerVa, 2022)",
         "bitcell: assumption: 0.027 / 0.9 = 0.030 um2, N7's HD bitcell scaled by the same "
         "relaxed pitches (TechInsights confirms embedded SRAM bitcells on N+2 but publishes "
         "no size openly)",
         "serdes: assumption: as N7 (analog area scales little between 7 nm-class nodes)",
         "wafer: Financial Times (Feb 2024, repeated by SemiWiki/Evertiq): SMIC prices its "
         "7 nm and 5 nm wafers 40-50% above TSMC's; 1.45 x N7's $9,346 = $13,552",
         "D0: derived from Morgan Stanley (2025 note, as reported by cloudnews.tech): "
         "SMIC ends 2025 at ~30% yield on Ascend 910B dies, 78 candidate dies per wafer. "
         "78 gross dies is a ~645 mm2 die in dies_per_wafer; (1 + 6.45 D0/3)^-3 = 0.30 gives "
         "D0 = 0.23/cm2 (FT, Feb 2024: SMIC 7 nm yield under a third of TSMC's; Chosun Ilbo, "
         "June 2024: ~20% on the 910B)")),
}

# NVIDIA's custom N4-class nodes, and N4P/N5P/N3E variants, map onto the covered rows
ALIASES = {"4N": "N4", "4NP": "N4", "N4P": "N4", "N5P": "N5", "N3E": "N3", "N3P": "N3"}
COVERED = "N7, N5, N4 (incl. NVIDIA 4N, 4NP), N3, SMIC-N+2"


def node_table(chip_name: str, node: str) -> NodeTable:
    """The table for ``node``, or a CostError naming the chip, the node and the covered nodes."""
    key = ALIASES.get(node, node)
    table = NODES.get(key)
    if table is None:
        raise CostError(f"{chip_name}: process_node {node!r} has no silicon area/cost "
                        f"tables; expected one of {COVERED}")
    return table
