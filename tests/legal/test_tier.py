"""The ECCN 3A090 tier from the rules data, against the rule text written out by hand and the
tiers the GPUs are known to have (H100, A100, B200 controlled; the H20 designed under it)."""

from __future__ import annotations

import pytest

from chipforge.arch import derive_chip, load_chip
from chipforge.cost import export_class
from chipforge.legal import classify_3a090, explain_3a090, export_tier, tier_limits

AS_OF = "2026-06-01"  # the October 2023 rule, in force since 17 Nov 2023


@pytest.mark.parametrize(("name", "tier"), [("h100-sxm", "3A090.a"), ("a100-sxm", "3A090.a"),
                                            ("b200", "3A090.a"), ("h20", "not controlled")])
def test_gpu_tiers(name, tier):
    assert export_tier(load_chip(name), AS_OF) == tier


# (TPP, PD, tier) at and around each threshold of the October 2023 rule text (88 FR 73458:
# 3A090.a: TPP >= 4800, or TPP >= 1600 and PD >= 5.92; 3A090.b: 2400 <= TPP < 4800 and
# 1.6 <= PD < 5.92, or TPP >= 1600 and 3.2 <= PD < 5.92)
BOUNDARIES = [
    (4800.0, 0.1, "3A090.a"),  # TPP >= 4800 alone
    (4799.9, 1.59, "not controlled"),  # below every PD floor, TPP < 4800
    (4799.9, 1.6, "3A090.b"),  # 2400 <= TPP < 4800 and PD >= 1.6
    (1600.0, 5.92, "3A090.a"),  # TPP >= 1600 and PD >= 5.92
    (1600.0, 5.91, "3A090.b"),  # TPP >= 1600 and 3.2 <= PD < 5.92
    (1600.0, 3.2, "3A090.b"),
    (1600.0, 3.19, "not controlled"),  # TPP < 2400 needs PD >= 3.2
    (2400.0, 1.6, "3A090.b"),
    (2399.9, 1.6, "not controlled"),
    (2400.0, 1.59, "not controlled"),
    (1599.9, 100.0, "not controlled"),  # every tier needs TPP >= 1600
]


@pytest.mark.parametrize(("tpp", "pd", "tier"), BOUNDARIES)
def test_tier_rule_boundaries(tpp, pd, tier):
    assert classify_3a090(tpp, pd, AS_OF) == tier


# forge-i1 (1.1 GHz) at 1.5 GHz with 40 cores: TPP = 2 x 40 x 2,048 x 1.5 GHz x 8 bits
# = 1,966.08 (hand-derived)
@pytest.mark.parametrize(("die_mm2", "tier"), [
    (300, "3A090.a"),  # PD = 6.55 >= 5.92
    (400, "3A090.b"),  # PD = 4.92, in [3.2, 5.92)
    (700, "not controlled"),  # PD = 2.81 < 3.2 and TPP < 2400
])
def test_derived_specs_cross_the_tiers(die_mm2, tier):
    chip = derive_chip(load_chip("forge-i1"), {"cores": {"count": 40}, "die_area": die_mm2,
                                               "clock": "1.5 GHz"})
    ex = export_class(chip)
    assert ex.tpp == pytest.approx(1966.08)
    assert ex.pd == pytest.approx(1966.08 / die_mm2)
    assert export_tier(chip, AS_OF) == tier




def test_forge_i1_is_not_controlled_with_its_pd_margin():
    chip = load_chip("forge-i1")
    assert export_tier(chip, AS_OF) == "not controlled"
    assert export_tier(chip, AS_OF, pd_margin=0.1) == "not controlled"  # docs/designs.md


@pytest.mark.parametrize(("tpp", "pd", "text"), [
    (2386, 2.88, "not controlled: TPP 2,386 < 4800, PD 2.88 < 5.92, TPP 2,386 < 2400, "
                 "PD 2.88 < 3.2"),  # forge-i1: under 2400 and under 3.2
    (1500, 9.0, "not controlled: TPP 1,500 < 4800, TPP 1,500 < 1600, TPP 1,500 < 2400"),
    (15831, 19.45, "3A090.a: TPP 15,831 ≥ 4800"),  # H100
    (2000, 6.0, "3A090.a: TPP 2,000 ≥ 1600 and PD 6.00 ≥ 5.92"),
    (2000, 4.0, "3A090.b: TPP 2,000 ≥ 1600 and PD 4.00 ≥ 3.2 and PD 4.00 < 5.92"),
])
def test_the_clause_that_decides_the_tier(tpp, pd, text):
    assert explain_3a090(tpp, pd, AS_OF) == text


@pytest.mark.parametrize(("tpp", "pd", "limits"), [
    (2386, 2.88, [("pd", 3.2), ("tpp", 2400.0)]),  # .b needs TPP >= 2400 or PD >= 3.2
    (3000, 1.0, [("pd", 1.6), ("tpp", 4800.0)]),  # past 2400 only while PD < 1.6
    (15831, 19.45, []),  # controlled: no limit to stay under
])
def test_the_thresholds_an_uncontrolled_design_must_stay_under(tpp, pd, limits):
    assert tier_limits(tpp, pd, AS_OF) == limits


def test_before_the_2023_rule_the_interconnect_decides():
    # October 2022 rule (87 FR 62186): TPP >= 4800 AND >= 600 GB/s bidirectional I/O
    a100 = load_chip("a100-sxm")  # 12 NVLinks x 50 GB/s = 600 GB/s; TPP 4,992
    assert export_tier(a100, "2023-01-01") == "3A090.a"
    slow = derive_chip(a100, {"links": {"count": 11}})  # 550 GB/s: not controlled in 2022
    assert export_tier(slow, "2023-01-01") == "not controlled"
    assert export_class(slow).tpp == export_class(a100).tpp
