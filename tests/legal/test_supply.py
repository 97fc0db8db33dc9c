"""What a scenario lets our design be built with: the fab's nodes and, at a fab domestic to
a China-HQ buyer, HBM only from a domestic supplier in volume (docs/legal.md, "Supply")."""

from __future__ import annotations

from chipforge.arch import derive_chip, load_chip
from chipforge.legal import supply_problems


def _own(node: str, memory: str) -> object:
    return derive_chip(load_chip("forge-i1"), {"process_node": node, "memory": {"kind": memory}})


def test_tsmc_runs_its_own_nodes_with_any_memory():
    # HBM at TSMC is the 3a090c-2024 rule's question (a verdict), not supply
    assert supply_problems(_own("N5", "HBM3e"), "tsmc-2026") == []
    assert supply_problems(_own("N3", "GDDR7"), "tsmc-2026") == []


def test_tsmc_does_not_run_smic_n_plus_2():
    assert supply_problems(_own("SMIC-N+2", "GDDR7"), "tsmc-2026") == [
        "TSMC does not run SMIC-N+2: it offers N16, N12, N7, N6, N5, 4N, N4, 4NP, N3, N2"]


def test_smic_runs_n_plus_2_and_imported_gddr7_or_lpddr5x():
    assert supply_problems(_own("SMIC-N+2", "GDDR7"), "domestic-2026") == []
    assert supply_problems(_own("SMIC-N+2", "LPDDR5X"), "full-ban") == []


def test_domestic_hbm_is_not_in_volume_in_2026():
    # CXMT's HBM3 was sampling in Oct 2025 with volume slated for 2026 and slipping
    # (chipforge.cost.DOMESTIC_MEMORY: volume_from None); foreign HBM would be 3A090.c
    problems = supply_problems(_own("SMIC-N+2", "HBM3"), "domestic-2026")
    assert problems == ["HBM3: no domestic supplier in volume on 2026-06-01 (foreign HBM to a "
                        "China-HQ designer is 3A090.c)"]


def test_smic_does_not_run_tsmc_nodes():
    assert supply_problems(_own("N5", "GDDR7"), "domestic-2026") == [
        "SMIC does not run N5: it offers SMIC-N+2"]


def test_a_bought_chip_has_no_supply_question():
    assert supply_problems(load_chip("h20"), "domestic-2026") == []
