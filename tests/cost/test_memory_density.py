"""ECCN 3A090.c memory bandwidth density (89 FR 96790, Dec 2024): GB/s / stack or package
mm2, each kind hand-derived from the sourced bandwidth and footprint in the table."""

from dataclasses import replace

import pytest

from chipforge.arch import load_chip
from chipforge.cost import (
    HBM_DENSITY_THRESHOLD_GB_PER_S_PER_MM2,
    MEMORY_TECHS,
    memory_bandwidth_density,
    memory_bandwidth_density_of,
)
from chipforge.errors import ChipforgeError

# kind: (GB/s per stack or device, footprint mm2), from the datasheets cited in the table
HAND = {
    "HBM2e": (2039 / 5, 7.75 * 11.87),  # A100 80GB: 2,039 GB/s on 5 stacks; 91.99 mm2
    "HBM3": (3350 / 5, 11 * 11),  # H100 SXM: 3.35 TB/s on 5 stacks; 121 mm2
    "HBM3e": (8000 / 8, 11 * 11),  # DGX B200: 8 TB/s on 8 stacks; 121 mm2
    "LPDDR5": (6.4 * 8, 12.4 * 15.0),  # 6400 MT/s x 8 B (x64); 315-ball 12.4 x 15 mm
    "LPDDR5X": (8.533 * 8, 12.4 * 15.0),  # 8533 MT/s x 8 B = 68.3 GB/s
    "GDDR6": (16 * 32 / 8, 12 * 14),  # 16 Gb/s x 32 bits = 64 GB/s; 180-ball 12 x 14 mm
    "GDDR7": (125, 12 * 14),  # 32 Gb/s x 32 bits = 128 raw, 125 quoted; 266-ball 12 x 14
    "DDR5": (6.4 * 2, 9 * 14),  # DDR5-6400 x16 = 12.8 GB/s; 102-ball ~9 x 14 mm
}


def test_every_spec_memory_kind_has_a_row_with_an_area():
    # the spec's memory kinds (chipforge.arch MEMORY_KINDS), each with a row
    assert set(MEMORY_TECHS) == set(HAND)
    assert all(t.stack_area_mm2 and t.area_source for t in MEMORY_TECHS.values())


@pytest.mark.parametrize("kind", sorted(HAND))
def test_density_of_each_kind_is_hand_derived(kind):
    gb_per_s, mm2 = HAND[kind]
    d = memory_bandwidth_density_of(kind)
    assert d.stack_area_mm2 == pytest.approx(mm2, rel=1e-9)
    # LPDDR5X's table rate is rounded to 68.3 GB/s (8533 x 8 = 68.264)
    assert d.gb_per_s_per_mm2 == pytest.approx(gb_per_s / mm2, rel=1e-3)


def test_only_hbm_is_above_the_2_gb_per_s_per_mm2_line():
    above = {k for k in MEMORY_TECHS if memory_bandwidth_density_of(k).above_3a090c}
    assert above == {"HBM2e", "HBM3", "HBM3e"}
    assert HBM_DENSITY_THRESHOLD_GB_PER_S_PER_MM2 == 2.0


def test_h100_hbm3_is_above_the_line():
    # 3.35 TB/s / 5 stacks = 670 GB/s; 670 / (11 x 11 mm) = 5.54 GB/s/mm2 > 2
    d = memory_bandwidth_density(load_chip("h100-sxm"))
    assert d.kind == "HBM3"
    assert d.bandwidth_per_stack_bytes_per_s == pytest.approx(670e9)
    assert d.gb_per_s_per_mm2 == pytest.approx(670 / 121)
    assert d.gb_per_s_per_mm2 > 2.0


def test_gddr7_and_lpddr5x_are_below_the_line():
    # RTX PRO 6000 Server: 1,597 GB/s / 16 x32 devices = 99.8 GB/s; / (12 x 14) = 0.59
    d = memory_bandwidth_density(load_chip("rtx-pro-6000-server"))
    assert d.gb_per_s_per_mm2 == pytest.approx(1597 / 16 / 168)
    assert d.gb_per_s_per_mm2 < 2.0
    # GDDR7 at its full 32 Gb/s: 125 / 168 = 0.74; LPDDR5X: 68.3 / 186 = 0.37
    assert memory_bandwidth_density_of("GDDR7").gb_per_s_per_mm2 == pytest.approx(125 / 168)
    assert memory_bandwidth_density_of("LPDDR5X").gb_per_s_per_mm2 == pytest.approx(68.3 / 186)
    # the GDDR7 bandwidth a part would need to cross: 2 x 168 = 336 GB/s per device
    assert memory_bandwidth_density_of("GDDR7", 337e9).above_3a090c


def test_a_kind_without_an_area_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(MEMORY_TECHS, "GDDR6", replace(MEMORY_TECHS["GDDR6"], stack_area_mm2=None))
    with pytest.raises(ChipforgeError) as err:
        memory_bandwidth_density(load_chip("l40s"))
    assert str(err.value) == ("l40s: memory.kind 'GDDR6' has no stack or package area in the "
                              "memory-technology table; expected a footprint in mm2")


def test_unknown_kind_and_bad_bandwidth_are_clear_errors():
    with pytest.raises(ChipforgeError) as err:
        memory_bandwidth_density_of("HBM4")
    assert str(err.value) == ("memory.kind: 'HBM4' has no memory-technology row; expected one "
                              "of HBM2e, HBM3, HBM3e, LPDDR5, LPDDR5X, GDDR6, GDDR7, DDR5")
    with pytest.raises(ChipforgeError) as err:
        memory_bandwidth_density_of("HBM3", -1.0)
    assert str(err.value) == ("memory bandwidth density of 'HBM3': got bandwidth -1.0 B/s and "
                              "area 121.0 mm2; expected both positive")
