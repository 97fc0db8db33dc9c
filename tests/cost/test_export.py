"""ECCN 3A090 quantities (TPP, PD) against published values (the tiers: tests/legal/test_tier.py).

Oracles: the published TPP of each GPU (H100 ~15,832, A100 4,992, H20 2,368 with PD ~2.9,
B200 36,000; /work/shared/notes/README.md) and the rule text written out below.
Tolerances: GPU specs carry a tensor clock derived from the datasheet dense rate, which
they reproduce to 0.04% (A100), 0.01% (H100), 0.2% (H20, B200); the TPP tolerance is that
rounding plus a margin, never looser than 0.5%.
"""

from __future__ import annotations

import pytest

from chipforge.arch import derive_chip, load_chip
from chipforge.cost import CostError, die_area, export_class

PUBLISHED_TPP = [
    # chip, published TPP, relative tolerance
    ("h100-sxm", 15_832, 0.001),  # 1,979 dense fp8 TOPS x 8 bits
    ("a100-sxm", 4_992, 0.001),  # 312 dense bf16 TF x 16 bits
    ("h20", 2_368, 0.003),  # 296 dense fp8 TF x 8; spec's derived clock is -0.2%
    ("b200", 36_000, 0.005),  # 4,500 dense fp8 TF x 8; spec's derived clock is +0.2%
]


@pytest.mark.parametrize(("name", "tpp", "rel"), PUBLISHED_TPP)
def test_tpp_matches_published(name, tpp, rel):
    assert export_class(load_chip(name)).tpp == pytest.approx(tpp, rel=rel)


def test_h20_performance_density_is_about_2_9():
    ex = export_class(load_chip("h20"))
    # 2,368 / 814 mm2 (GH100) = 2.909
    assert ex.pd == pytest.approx(2368 / 814, rel=0.003)
    assert ex.die_area_mm2 == 814 and ex.die_area_source == "spec"


def test_forge_i1_tpp_and_pd_on_the_predicted_area():
    chip = load_chip("forge-i1")
    ex = export_class(chip)
    # 32 cores x 2,048 int8 MACs x 1.5 GHz = 98.3 TMAC/s; 2 x 98.304 x 8 = 1,572.9 < 1600:
    # no 3A090 tier whatever the PD (tests/legal/test_tier.py)
    assert ex.tpp == pytest.approx(2 * 32 * 2048 * 1.5e9 / 1e12 * 8)
    assert ex.die_area_source == "predicted"
    assert ex.pd == pytest.approx(ex.tpp / die_area(chip).logic_mm2)


def test_pd_uses_the_predicted_area_without_a_spec_die_area():
    chip = derive_chip(load_chip("forge-i1"), {"die_area": None})
    ex = export_class(chip)
    assert ex.die_area_source == "predicted"
    assert ex.pd == pytest.approx(ex.tpp / die_area(chip).logic_mm2)


def test_uncovered_node_without_die_area_is_one_clear_error():
    chip = derive_chip(load_chip("forge-i1"), {"die_area": None, "process_node": "N16"})
    with pytest.raises(CostError) as err:
        export_class(chip)
    assert str(err.value) == ("forge-i1: process_node 'N16' has no silicon area/cost tables; "
                              "expected one of N7, N5, N4 (incl. NVIDIA 4N, 4NP), N3, "
                              "SMIC-N+2")
