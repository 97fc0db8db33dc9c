"""A DSE run under a legal scenario: the verdict and the supply become constraints, the
3A090 tier is read on the scenario's date, and the modelled transistor count can carry a
margin. Oracles: the rules as docs/legal.md states them, hand-derived per point."""

from __future__ import annotations

import pytest
from dse_fixtures import write

from chipforge.dse import DseError, EvalContext, evaluate_point, load_problem

# forge-i1's core at 0.8 GHz: TPP = 2 x 56 x 2048 x 0.8 GHz x 8 bits = 1,468 < 1600, so no
# 3A090 tier whatever the PD; 16 MiB of global SRAM puts the modelled count at 29.5e9
SPACE = """\
name: scenario-test
base: forge-i1
dtype_sets:
  i1: {int8: 1, fp8_e4m3: 1, fp8_e5m2: 1, bf16: 0.5, fp16: 0.5}
params:
  array_rows: 32
  array_cols: 64
  cores: 56
  matrix_units_per_core: 1
  clock_ghz: 0.8
  local_sram_mib: 4
  global_sram_mib: 16
  memory:
    - {kind: GDDR7, stacks: 16, capacity_per_stack_gb: 2}
    - {kind: HBM3e, stacks: 4, capacity_per_stack_gb: 36}
  links: 16
  dtypes: i1
  tdp_w: 250
  process_node: {choices: [N5, SMIC-N+2]}
objectives: [unit_cost_usd]
"""


def _eval(tmp_path, scenario, memory="GDDR7 x16 2GB", node="N5", constraints=""):
    space = write(tmp_path, "space.yaml", SPACE)
    extra = write(tmp_path, "c.yaml", f"constraints: {{{constraints}}}\n") if constraints \
        else None
    problem = load_problem(space, extra, scenario)
    point = {"array_rows": 32, "array_cols": 64, "cores": 56, "matrix_units_per_core": 1,
             "clock_ghz": 0.8, "local_sram_mib": 4.0, "global_sram_mib": 16.0,
             "memory": memory, "links": 16, "dtypes": "i1", "tdp_w": 250.0,
             "process_node": node}
    return evaluate_point(EvalContext(problem), point)


def test_a_small_gddr7_design_is_legal_at_tsmc(tmp_path):
    ev = _eval(tmp_path, "tsmc-2026")
    # TPP 1,468 < 1600: no tier; 29.5e9 < 30e9 transistors; GDDR7 is 0.74 GB/s/mm2 < 2
    assert ev.metrics["tpp"] == pytest.approx(2 * 56 * 2048 * 0.8e9 / 1e12 * 8)
    assert ev.metrics["transistors"] < 30e9
    assert (ev.metrics["legal_verdict"], ev.metrics["legal_binding"]) == ("uncontrolled", "")
    assert ev.feasible


def test_the_transistor_margin_can_make_the_foundry_rule_bind(tmp_path):
    ev = _eval(tmp_path, "tsmc-2026", constraints="transistor_margin: 0.15")
    # 29.5e9 x 1.15 = 33.9e9 >= 30e9: presumed 3A090.a without the approved-designer path
    assert ev.metrics["legal_verdict"] == "presumed controlled"
    assert ev.violations == ["legal (tsmc-2026): presumed controlled beyond uncontrolled "
                             "(binding: foundry-dd-2025)"]


def test_hbm_at_tsmc_needs_a_licence_and_the_approved_path_does_not_lift_it(tmp_path):
    for scenario in ("tsmc-2026", "tsmc-2026-approved"):
        ev = _eval(tmp_path, scenario, memory="HBM3e x4 36GB")
        # 1 TB/s per stack over 121 mm2 = 8.3 GB/s/mm2 > 2 (3A090.c)
        assert "3a090c-2024" in ev.metrics["legal_binding"].split()
        assert not ev.feasible


def test_a_domestic_scenario_checks_what_smic_can_build(tmp_path):
    at_tsmc_node = _eval(tmp_path, "domestic-2026")
    assert at_tsmc_node.metrics["legal_verdict"] == "uncontrolled"
    assert at_tsmc_node.violations == [
        "supply (domestic-2026): SMIC does not run N5: it offers SMIC-N+2"]
    ok = _eval(tmp_path, "domestic-2026", node="SMIC-N+2")
    assert ok.feasible
    hbm = _eval(tmp_path, "full-ban", memory="HBM3e x4 36GB", node="SMIC-N+2")
    assert hbm.violations == ["supply (full-ban): HBM3e: no domestic supplier in volume on "
                              "2026-06-01 (foreign HBM to a China-HQ designer is 3A090.c)"]


def test_without_a_scenario_there_is_no_legal_metric(tmp_path):
    ev = _eval(tmp_path, None)
    assert "legal_verdict" not in ev.metrics and ev.feasible


def test_an_unknown_scenario_is_one_clear_error(tmp_path):
    with pytest.raises(DseError) as err:
        load_problem(write(tmp_path, "space.yaml", SPACE), None, "tsmc-2030")
    assert str(err.value) == ("--scenario: scenario: got 'tsmc-2030'; expected one of "
                              "tsmc-2026, tsmc-2026-approved, domestic-2026, full-ban "
                              "(chipforge/legal/data/scenarios.yaml)")
