"""The domestic-2026 technology: the SMIC-N+2 node rows and the dated domestic memory
table, each against the figures its sources give."""

from datetime import date

import pytest

from chipforge.arch import PROCESS_NODES, derive_chip, load_chip
from chipforge.cost import (
    DOMESTIC_MEMORY,
    available_as_of,
    die_area,
    domestic_memory,
    domestic_suppliers,
    memory_bandwidth_density_of,
    unit_cost,
)
from chipforge.cost._nodes import NODES
from chipforge.cost._power import LEAKAGE_W_PER_MM2
from chipforge.cost._unit_cost import dies_per_wafer, negative_binomial_yield
from chipforge.errors import ChipforgeError
from chipforge.perf._energy import NODE_ENERGY_SCALE
from chipforge.rtl._synth import node_density

SMIC = "SMIC-N+2"


def test_smic_node_is_in_every_per_node_table():
    assert SMIC in PROCESS_NODES
    assert SMIC in NODES and SMIC in LEAKAGE_W_PER_MM2 and SMIC in NODE_ENERGY_SCALE
    assert node_density(SMIC)[1] == NODES[SMIC].logic_mtr_per_mm2


def test_smic_is_less_dense_and_dearer_than_n7():
    smic = NODES[SMIC]
    # assumption in the table: 0.9 x N7's logic, N7's bitcell / 0.9
    assert smic.logic_mtr_per_mm2 == pytest.approx(0.9 * 91.2, abs=0.05)
    assert smic.sram_bitcell_um2 == pytest.approx(0.027 / 0.9, abs=5e-4)
    # FT, Feb 2024: 40-50% above TSMC; the table takes the midpoint
    assert smic.wafer_usd == pytest.approx(1.45 * 9_346, abs=1)


def test_smic_d0_reproduces_the_reported_910b_yield():
    # Morgan Stanley (2025): 78 candidate 910B dies per wafer, ~30% of them good
    assert dies_per_wafer(645) == 78
    assert negative_binomial_yield(645, NODES[SMIC].defects_per_cm2) == pytest.approx(0.30,
                                                                                     abs=0.01)
    # FT (Feb 2024) put SMIC's 7 nm yield under a third of TSMC's; with the 2025 figure
    # the model gives about half of N7's yield on the same 645 mm2 die
    assert negative_binomial_yield(645, NODES["N7"].defects_per_cm2) > 1.9 * 0.30


def test_same_design_on_smic_is_bigger_and_costs_more_per_good_die():
    n7 = derive_chip(load_chip("ascend-910b"), {"process_node": "N7"})
    smic = load_chip("ascend-910b")
    assert smic.process_node == SMIC
    a7, a2 = die_area(n7), die_area(smic)
    # logic scales by the density ratio, SRAM by the bitcell ratio, PHYs/host I/O not at all
    assert a2.parts["matrix"] / a7.parts["matrix"] == pytest.approx(91.2 / 82.1, rel=1e-9)
    assert a2.parts["sram"] / a7.parts["sram"] == pytest.approx(0.030 / 0.027, rel=1e-9)
    assert a2.parts["memory_phy"] == a7.parts["memory_phy"]
    c7, c2 = unit_cost(n7), unit_cost(smic)
    assert c2.die_yield < c7.die_yield
    assert c2.parts["die"] > 2 * c7.parts["die"]


def test_domestic_memory_dates():
    assert not available_as_of("LPDDR5X", "CXMT", date(2025, 4, 30))
    assert available_as_of("LPDDR5X", "CXMT", date(2025, 5, 1))
    assert available_as_of("DDR5", "CXMT", date(2026, 6, 1))
    # CXMT HBM3: samples in Oct 2025, no volume production confirmed
    assert not available_as_of("HBM3", "CXMT", date(2026, 6, 1))
    kinds = {s.kind for s in domestic_memory(date(2026, 6, 1))}
    assert kinds == {"LPDDR5", "LPDDR5X", "DDR5"}
    assert domestic_suppliers("GDDR7") == ()


def test_cxmt_hbm3_is_a_supplier_row_with_its_own_rate():
    (row,) = [s for s in DOMESTIC_MEMORY if s.kind == "HBM3"]
    assert row.bandwidth_bytes_per_s == pytest.approx(5.2e9 * 1024 / 8)  # 665.6 GB/s
    # still HBM above 3A090.c's line: 665.6 / 121 = 5.5 GB/s/mm2
    assert memory_bandwidth_density_of("HBM3", row.bandwidth_bytes_per_s).above_3a090c


def test_unknown_supplier_and_kind_are_clear_errors():
    with pytest.raises(ChipforgeError) as err:
        available_as_of("GDDR7", "CXMT", date(2026, 6, 1))
    assert str(err.value) == "memory supplier 'CXMT' has no row for GDDR7; expected one of: none"
    with pytest.raises(ChipforgeError) as err:
        available_as_of("LPDDR5X", "YMTC", date(2026, 6, 1))
    assert str(err.value) == ("memory supplier 'YMTC' has no row for LPDDR5X; expected one "
                              "of: CXMT")
    with pytest.raises(ChipforgeError) as err:
        domestic_suppliers("HBM4")
    assert "'HBM4' has no memory-technology row" in str(err.value)
