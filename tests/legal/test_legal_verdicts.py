"""Verdicts for real chips under real dates and the scenarios, each derived by hand from the
rule text (rules.yaml quotes) and the chips' published or spec figures.

Measures here are independent lower bounds, not chipforge.cost's models: TPP and PD from
chipforge.cost.export_class (the published-TPP-checked ECCN formula); the transistor count
as the 6T SRAM bitcells alone (SRAM bits x 6), a floor under any full count; the HBM
density as per-stack bandwidth over an HBM stack footprint.
"""

from __future__ import annotations

import pytest
from legalkit import pre_legal

from chipforge.arch import ChipSpec, load_chip
from chipforge.cost import export_class
from chipforge.legal import Measured, check, check_scenario

# assumption: an HBM stack's footprint is about 11 x 11 mm (JEDEC HBM3 KGSD outlines are of
# that size); at ~1 TB/s per stack any footprint under 500 mm2 is above 2 GB/s per mm2, so
# the verdicts below do not hang on the exact figure
HBM_STACK_MM2 = 11 * 11


def hand_measure(chip: ChipSpec) -> Measured:
    ex = export_class(chip)
    sram_bytes = chip.cores.count * chip.cores.local_sram.size_bytes + \
        chip.shared_buffer.size_bytes
    per_stack_gb_s = chip.memory.bandwidth_bytes_per_s / chip.memory.stacks / 1e9
    return Measured(tpp=ex.tpp, pd=ex.pd, transistors=6 * 8 * sram_bytes,
                    transistor_source="modelled",
                    memory_bw_density_gb_s_mm2=per_stack_gb_s / HBM_STACK_MM2)


def _verdict(name, date, buyer="china-hq", fab="tsmc", approved=False):
    return check(load_chip(name), date, buyer, fab, approved, measure=hand_measure)


def _binding(report):
    return sorted(c.rule_id for c in report.binding)


def test_h100_in_2022_needs_a_licence_by_letter_then_by_rule():
    # 1 Sep 2022: only the 26 Aug 2022 letter (A100, H100 to China) is in force
    early = _verdict("h100-sxm", "2022-09-01")
    assert (early.verdict, _binding(early)) == ("licence required", ["nvidia-a100-h100-2022"])
    # 10 Oct 2022: 3A090 of 7 Oct 2022 also binds: TPP 15,832 >= 4800 and 18 NVLinks x
    # 50 GB/s = 900 GB/s >= 600
    late = _verdict("h100-sxm", "2022-10-10")
    assert _binding(late) == ["3a090-2022", "nvidia-a100-h100-2022"]
    assert late.verdict == "licence required"


def test_h100_for_a_us_buyer_is_uncontrolled():
    assert _verdict("h100-sxm", "2026-06-01", buyer="us").verdict == "uncontrolled"


@pytest.mark.parametrize(("date", "verdict", "binding"), [
    # TPP 2,368 < 4800 (not .a); TPP < 2400 and PD 2.9 < 3.2 (not .b); no H20 letter yet
    ("2024-06-01", "uncontrolled", []),
    # 9 Apr 2025 letter: licence for the H20 to China
    ("2025-05-01", "licence required", ["nvidia-h20-2025-04"]),
    # July 2025: licences granted, the requirement kept
    ("2026-06-01", "licence required", ["nvidia-h20-2025-07"]),
])
def test_h20_over_time(date, verdict, binding):
    report = _verdict("h20", date)
    assert (report.verdict, _binding(report)) == (verdict, binding)


def test_h20_under_full_ban_is_prohibited():
    report = check_scenario(load_chip("h20"), "full-ban", measure=hand_measure)
    assert report.verdict == "prohibited"
    assert "full-ban-nvidia" in _binding(report)


@pytest.mark.parametrize("name", ["forge-i1", "forge-t1"])
def test_forge_chips_before_the_hbm_and_foundry_rules(name):
    # June 2024: TPP ~1,573 < 1600 misses 3A090.a/.b; 3A090.c (Dec 2024) and the foundry
    # rule (Jan 2025) are not yet in force
    report = check(pre_legal(name), "2024-06-01", "china-hq", "tsmc", measure=hand_measure)
    assert report.verdict == "uncontrolled"


@pytest.mark.parametrize("name", ["forge-i1", "forge-t1"])
def test_forge_chips_after_3a090c(name):
    # 10 Jan 2025: 3A090.c binds: 1 TB/s per HBM stack over ~121 mm2 is ~8 GB/s/mm2 > 2;
    # the foundry rule is not yet in force (effective 16 Jan 2025)
    report = check(pre_legal(name), "2025-01-10", "china-hq", "tsmc", measure=hand_measure)
    assert (report.verdict, _binding(report)) == ("licence required", ["3a090c-2024"])


@pytest.mark.parametrize("name", ["forge-i1", "forge-t1"])
def test_forge_chips_tsmc_2026(name):
    # N4/N3 are FinFET at <= 16 nm, so the presumption applies; the 6T bitcells of > 1 GiB
    # of SRAM are > 51e9 transistors, above 30e9 (2026; HBM in the package): presumed 3A090.a
    report = check_scenario(pre_legal(name), "tsmc-2026", measure=hand_measure)
    assert report.quantities["transistors"] > 51e9
    assert (report.verdict, _binding(report)) == ("presumed controlled",
                                                  ["3a090c-2024", "foundry-dd-2025"])


@pytest.mark.parametrize("name", ["forge-i1", "forge-t1"])
def test_forge_chips_tsmc_2026_approved(name):
    # the approved designer's attestation (TPP < 4800, PD < 5.92: not 3A090.a) overcomes
    # the presumption; the HBM still needs a licence under 3A090.c
    report = check_scenario(pre_legal(name), "tsmc-2026-approved", measure=hand_measure)
    assert (report.verdict, _binding(report)) == ("licence required", ["3a090c-2024"])


@pytest.mark.parametrize("name", ["forge-i1", "forge-t1"])
def test_forge_chips_domestic_2026(name):
    # SMIC is not a foreign fab: no foreign-fab rule reaches it, and the licensing events are
    # for purchases
    report = check_scenario(pre_legal(name), "domestic-2026", measure=hand_measure)
    assert (report.verdict, _binding(report)) == ("uncontrolled", [])


@pytest.mark.parametrize("name", ["forge-i1", "forge-t1"])
def test_forge_chips_full_ban(name):
    # full-ban closes TSMC, so the scenario fabricates at SMIC: no foreign fab exports the
    # die and no export rule binds it (what SMIC can build is chipforge.legal.supply_problems')
    report = check_scenario(pre_legal(name), "full-ban", measure=hand_measure)
    assert report.fab == "smic" and report.verdict == "uncontrolled"
    at_tsmc = check(pre_legal(name), "2026-06-01", "china-hq", "tsmc", measure=hand_measure,
                    assumptions=["full-ban-tsmc"])
    assert at_tsmc.verdict == "prohibited" and "full-ban-tsmc" in _binding(at_tsmc)


@pytest.mark.parametrize("name", ["forge-i1", "forge-t1"])
def test_the_catalog_forge_chips_are_legal_to_make_at_tsmc_in_2026(name):
    # re-derived under tsmc-2026: TPP < 1600 (no 3A090 tier), GDDR7 (0.74 GB/s per mm2 < 2,
    # no 3A090.c), and well under 30e9 transistors: the SRAM floor here is < 1e9 x 8 x 6
    report = check_scenario(load_chip(name), "tsmc-2026", measure=hand_measure)
    assert report.quantities["tpp"] < 1600 and report.quantities["transistors"] < 30e9
    assert (report.verdict, _binding(report)) == ("uncontrolled", [])


def test_report_says_it_is_not_legal_advice():
    assert "Not legal advice" in _verdict("h20", "2026-06-01").notice
