"""Transistor-count model: validated on published counts (the catalog's `transistors`,
each sourced), hand-derived component checks, and the spec field's errors."""

import json
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chipforge.arch import catalog_names, derive_chip, load_chip
from chipforge.arch._loader import catalog_path
from chipforge.cli import app
from chipforge.cost import CostError, modelled_transistors, transistor_count
from chipforge.cost._nodes import COVERED
from chipforge.cost._transistors import (
    FIT_CHIPS,
    SIMT_CORE_TRANSISTORS,
    SIMT_LANE_TRANSISTORS,
    fit_simt,
    held_out_dies,
)
from chipforge.errors import SpecError

# AMD's 3D V-Cache die: 4.7e9 transistors for 64 MiB of SRAM (AMD ISSCC 2022 / Tom's
# Hardware 2023), the SRAM oracle; NoC and control add 10 % of the cores and SRAM
VCACHE_PER_BIT = 4.7e9 / (64 * 8 * 2**20)
NOC = 1.10
# the RTL's synthesized bf16 processing element: 57,118 transistors (docs/rtl.md)
BF16_PE = 57_118
# one chip per held-out die (the H200 and H800 are the fitted H100's GH100 die)
HELD_OUT_DIES = ("l40s", "rtx-pro-6000-server", "b200")
runner = CliRunner()


def _published():
    chips = [load_chip(n) for n in catalog_names()]
    return [c for c in chips if c.transistor_count is not None]


def _error(chip) -> float:
    return modelled_transistors(chip).total / chip.transistor_count - 1.0


def test_median_error_over_the_published_counts_is_within_15_percent():
    chips = _published()
    # the catalog's published counts: GA100, GH100 x4, GB100 x3, AD102, GB202
    assert {c.name: c.transistor_count / 1e9 for c in chips} == {
        "a100-sxm": 54.2, "b200": 208.0, "b300": 208.0, "gb200": 208.0, "h100-sxm": 80.0,
        "h20": 80.0, "h200-sxm": 80.0, "h800-sxm": 80.0, "l40s": 76.3,
        "rtx-pro-6000-server": 92.2}
    median = statistics.median(abs(_error(c)) for c in chips)
    assert median <= 0.15, median


def test_median_error_over_the_held_out_dies_is_within_15_percent():
    assert sorted(c.name for c in held_out_dies(_published())) == sorted(HELD_OUT_DIES)
    median = statistics.median(abs(_error(load_chip(n))) for n in HELD_OUT_DIES)
    assert median <= 0.15, median


def test_mi300x_held_out_is_within_15_percent():
    # another vendor's die, not in the catalog: AMD's published 153 B (tests/cost/data)
    chip = load_chip(Path(__file__).parent / "data" / "mi300x.yaml")
    assert chip.transistor_count == 153e9
    assert abs(_error(chip)) <= 0.15, _error(chip)


def test_the_simt_fit_is_rederived_from_a100_and_h100():
    core, lane = fit_simt(*(load_chip(n) for n in FIT_CHIPS))
    assert core == pytest.approx(SIMT_CORE_TRANSISTORS, rel=2e-3)
    assert lane == pytest.approx(SIMT_LANE_TRANSISTORS, rel=2e-3)
    for name in FIT_CHIPS:
        assert _error(load_chip(name)) == pytest.approx(0.0, abs=2e-3)


def test_twice_the_sram_adds_its_bitcells_and_overhead():
    t1 = load_chip("forge-t1")  # 32 MiB shared buffer
    double = derive_chip(t1, {"shared_buffer": {"size": "1056 MiB"}})
    added = modelled_transistors(double).total - modelled_transistors(t1).total
    # 1 GiB more = 16 V-Cache dies' worth of SRAM (16 x 4.7 B), plus 10 % NoC/control
    assert added == pytest.approx(16 * 4.7e9 * NOC, rel=1e-9)
    assert added == pytest.approx(2**30 * 8 * VCACHE_PER_BIT * NOC, rel=1e-9)


def test_h100_matrix_units_are_the_rtl_pe_per_mac_of_the_widest_datapath():
    h100 = load_chip("h100-sxm")
    parts = modelled_transistors(h100).components
    # 144 physical SMs x 4 tensor cores x 512 bf16 MACs x one bf16 PE (tf32's 256 MACs at
    # 2 PEs each ties; 1024 fp8 MACs of ~5.7k transistors reuse the bf16 multipliers)
    assert parts["matrix"] == pytest.approx(144 * 4 * 512 * BF16_PE)
    # 144 x 128 FP32 lanes x one fp32 FMA = 4 bf16 PEs
    assert parts["vector"] == pytest.approx(144 * 128 * 4 * BF16_PE)
    # all 144 SMs' shared memory (228 KiB) and register files (256 KiB), and the 60 MB L2
    bits = 8 * (144 * (228 + 256) * 1024 + 60e6)
    assert parts["sram"] == pytest.approx(bits * VCACHE_PER_BIT)


def test_logic_and_sram_do_not_depend_on_the_node():
    h100 = load_chip("h100-sxm")
    n3 = derive_chip(h100, {"process_node": "N3"})
    a, b = modelled_transistors(h100).components, modelled_transistors(n3).components
    for part in ("matrix", "vector", "simt", "sram", "noc_control"):
        assert a[part] == b[part]
    # the PHYs' area is node-independent, so their transistors follow the node's density
    # (N3 291.2 vs N4 181.6 MTr/mm2, chipforge.cost._nodes)
    assert b["memory_phy"] / a["memory_phy"] == pytest.approx(291.2 / 181.6)


def test_accelerators_carry_no_simt_machinery():
    parts = modelled_transistors(load_chip("tpu-v5e")).components
    assert parts["simt"] == 0.0
    gpu = modelled_transistors(load_chip("a100-sxm")).components
    # 128 physical SMs x (per-core + 64 lanes x per-lane SIMT)
    assert gpu["simt"] == pytest.approx(128 * (SIMT_CORE_TRANSISTORS + 64 * SIMT_LANE_TRANSISTORS))


def test_published_count_wins_and_the_model_is_kept():
    h20 = transistor_count(load_chip("h20"))
    assert (h20.total, h20.source) == (80e9, "published")
    assert h20.modelled.total < 80e9  # its spec gives the enabled (quarter) tensor rate
    t1 = load_chip("forge-t1")
    count = transistor_count(t1)
    assert count.source == "modelled"
    assert count.total == count.modelled.total == sum(count.modelled.components.values())


def test_an_uncovered_node_is_one_cost_error():
    chip = derive_chip(load_chip("h100-sxm"), {"process_node": "N16"})
    with pytest.raises(CostError) as err:
        modelled_transistors(chip)
    assert str(err.value) == ("h100-sxm: process_node 'N16' has no silicon area/cost tables; "
                              f"expected one of {COVERED}")


@pytest.mark.parametrize(("value", "message"), [
    ("80", "expected a transistor count between 1e+06 and 1e+14 (got 80)"),
    ("1.0e+15", "expected a transistor count between 1e+06 and 1e+14 (got 1000000000000000.0)"),
    (".nan", "expected a finite transistor count (got nan)"),
    (".inf", "expected a finite transistor count (got inf)"),
    ("1e400", "expected a finite transistor count (got '1e400')"),
    ("80 B", "expected a transistor count, a number like 80e9 (got '80 B')"),
    ("true", "expected a transistor count, a number like 80e9 (got True)"),
])
def test_a_bad_transistor_count_is_one_spec_error(tmp_path, value, message):
    path = tmp_path / "bad.yaml"
    text = catalog_path("h100-sxm").read_text()
    line = next(x for x in text.splitlines() if x.startswith("transistors:"))
    path.write_text(text.replace(line, f"transistors: {value}"))
    with pytest.raises(SpecError) as err:
        load_chip(path)
    assert str(err.value) == f"{path}: transistors: {message}"


def test_a_count_written_as_80e9_reads_as_80_billion(tmp_path):
    path = tmp_path / "ok.yaml"
    text = catalog_path("h100-sxm").read_text()
    line = next(x for x in text.splitlines() if x.startswith("transistors:"))
    path.write_text(text.replace(line, "transistors: 80e9"))
    assert load_chip(path).transistor_count == 80e9


@pytest.mark.parametrize(("name", "total", "source"), [
    ("h100-sxm", 80e9, "published"),  # H100 whitepaper
    ("forge-t1", None, "modelled"),  # no published count: the model's
])
def test_chip_show_prints_the_count_and_its_source(name, total, source):
    doc = json.loads(runner.invoke(app, ["chip", "show", name, "--json"]).output)["silicon"]
    expected = total or modelled_transistors(load_chip(name)).total
    assert (doc["transistors"], doc["transistors_source"]) == (expected, source)
    text = runner.invoke(app, ["chip", "show", name], env={"COLUMNS": "400"}).output
    row = next(line for line in text.splitlines() if line.startswith("│ transistors "))
    assert f"{expected / 1e9:,.1f} B" in row and source in row
